"""Evaluate a saved model on labelled data: a built split or one labelled file.

``run_evaluation(cfg)`` is the plain function behind ``python -m stance.evaluate``; it writes the
same files as a training run (:func:`stance.analysis.report.write_evaluation`).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import datasets
from hydra.core.hydra_config import HydraConfig
from omegaconf import MISSING, OmegaConf

from stance.analysis.metrics import actor_metrics
from stance.analysis.report import evaluate_rows, examples_hash, log_metrics, write_evaluation
from stance.data.corpora import load_labelled_file
from stance.data.dataset import ensure_dataset, output_path
from stance.data.rows import check_data_labels
from stance.errors import StanceError
from stance.modeling.models import load_classifier

log = logging.getLogger(__name__)


def select_split(dd: Any, split: str, where: str) -> Any:
    """One split of a DatasetDict, or ``all`` of them concatenated; one-line errors otherwise."""
    names = list(dd.keys())
    if split == "all":
        parts = [dd[n] for n in names]
        if not parts:
            raise StanceError(f"{where}: the dataset has no splits")
        ds = datasets.concatenate_datasets(parts) if len(parts) > 1 else parts[0]
    elif split not in dd:
        raise StanceError(f"{where}: unknown split {split!r} (available: {', '.join(names + ['all'])})")
    else:
        ds = dd[split]
    check_data_labels(ds.features, where)
    if len(ds) == 0:
        raise StanceError(f"{where}: split {split!r} is empty")
    return ds


def load_eval_data(cfg: Any) -> tuple[Any, str]:
    """The rows to evaluate (a Dataset) and a name for them."""
    if cfg.file:
        path = Path(cfg.file)
        if not path.is_file():
            raise StanceError(f"{cfg.file}: no such file")
        return load_labelled_file(cfg), path.stem
    dd = ensure_dataset(cfg)
    return select_split(dd, cfg.split, str(output_path(cfg))), cfg.split


def check_model_dir(cfg: Any) -> Path:
    """``cfg.model_dir`` as a folder; one-line StanceError when it is unset or missing."""
    value = None if OmegaConf.is_config(cfg) and OmegaConf.is_missing(cfg, "model_dir") else cfg.model_dir
    if value is None or value == MISSING or not str(value).strip():
        raise StanceError("model_dir: no model given (model_dir=RUN/model)")
    path = Path(str(value)).expanduser()
    if not path.is_dir():
        raise StanceError(f"model_dir: {value}: no such folder (expected a trained model, e.g. RUN/model)")
    return path


def run_evaluation(cfg: Any, output_dir: str | Path | None = None) -> dict[str, float]:
    """Evaluate ``cfg.model_dir`` on ``cfg.file`` or split ``cfg.split`` of ``cfg.data``; write the
    evaluation files in ``output_dir`` (default: the Hydra run dir) and return the metrics."""
    if output_dir is None:
        output_dir = HydraConfig.get().runtime.output_dir
    if cfg.threads and cfg.threads > 0:
        import torch  # heavy: only when a thread count is set

        torch.set_num_threads(int(cfg.threads))
    t0 = time.perf_counter()
    model_dir = check_model_dir(cfg)
    if int(cfg.batch_size) < 1:
        raise StanceError(f"batch_size: must be at least 1, got {cfg.batch_size}")
    ds, name = load_eval_data(cfg)  # bad data is reported before the model loads
    classifier = load_classifier(model_dir, batch_size=cfg.batch_size)
    rows = ds.to_list()
    metrics, probs = evaluate_rows(classifier, rows, prefix=name, bootstrap=cfg.eval.bootstrap, seed=cfg.seed)
    metrics.update(actor_metrics([r["label"] for r in rows], probs.argmax(axis=1), [r["actor_id"] for r in rows], name))
    elapsed = time.perf_counter() - t0
    metrics[f"{name}_examples_per_s"] = len(rows) / elapsed if elapsed > 0 else float("nan")
    notes = [
        f"model: `{cfg.model_dir}`",
        f"data: `{cfg.file or cfg.data.name}` ({name}), test data hash `{examples_hash(rows)[:16]}`",
    ]
    write_evaluation(output_dir, metrics, name, rows, probs, f"Evaluation of {cfg.model_dir}", [name], notes)
    log_metrics(metrics, [name])
    log.info("wrote %s", output_dir)
    return metrics
