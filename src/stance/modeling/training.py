"""Training: fine-tune (or fit a baseline) on a built dataset, evaluate it, write the run's artifacts.

``run_training(cfg)`` returns the validation macro-F1 (the CV mean with ``eval.cv_folds``), never a
test score, so a Hydra sweeper can optimise it without looking at the test split. The run dir gets
the fixed artifacts of docs/ARCHITECTURE.md: model/, metrics.json, predictions.jsonl,
misclassified.jsonl, confusion_matrix.png, report.md, run.json.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import datasets
import numpy as np
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict
from sklearn.model_selection import StratifiedGroupKFold

from stance.analysis.calibration import expected_calibration_error, fit_temperature
from stance.analysis.metrics import actor_metrics, compute_metrics
from stance.analysis.report import evaluate_rows, examples_hash, log_metrics, prediction_rows, write_evaluation
from stance.config import to_container
from stance.data.dataset import ensure_dataset
from stance.data.rows import check_data_labels
from stance.errors import StanceError
from stance.io import write_json, write_jsonl
from stance.labels import LABELS
from stance.modeling.finetune import fit_transformer, setup_runtime
from stance.modeling.models import make_baseline, save_model
from stance.modeling.settings import check_training

log = logging.getLogger(__name__)


def fit_model(cfg: Any, train_rows: Any, valid_rows: Any | None, work_dir: str | Path) -> tuple[Any, dict[str, Any]]:
    """Fit ``cfg.model`` (transformer or baseline) on the train rows; returns (classifier, info)."""
    if cfg.model.kind == "transformer":
        return fit_transformer(cfg, train_rows, valid_rows, work_dir)
    t0 = time.perf_counter()
    model = make_baseline(cfg.model.kind, cfg.model.context_chars, cfg.model.C, cfg.seed)
    model.fit(train_rows.to_list(), train_rows["label"])
    s = time.perf_counter() - t0
    return model, {
        "train_seconds": round(s, 3),
        "train_examples_per_s": round(len(train_rows) / s, 1) if s > 0 else None,
    }


def mix_weight(cfg: Any) -> float:
    """``mix.weight``, checked (a StanceError before any data is loaded)."""
    weight = float(cfg.mix.weight)
    if not weight > 0:
        raise StanceError(f"mix.weight must be positive, got {cfg.mix.weight}")
    return weight


def mix_rows(cfg: Any, own: Any) -> Any:
    """``cfg.mix.data``'s train rows (built if absent) in the columns and features of ``own``."""
    mix_cfg = cfg.copy()
    with open_dict(mix_cfg):  # the mixed dataset replaces data whole (a merge would mix their files)
        mix_cfg.data = cfg.mix.data
        mix_cfg.mix = None
    if mix_cfg.data.name == cfg.data.name:
        raise StanceError(
            f"mix.data.name={cfg.mix.data.name!r} is this run's own dataset: give the mixed dataset its own name"
        )
    added = ensure_dataset(mix_cfg)["train"]
    common = [c for c in own.column_names if c in added.column_names]
    return added.select_columns(common).cast(own.select_columns(common).features)


def with_mix(own: Any, added: Any, weight: float) -> Any:
    """``own`` train rows followed by ``added`` ones, with a ``sample_weight`` column (own rows 1)."""
    common = list(added.column_names)
    merged = datasets.concatenate_datasets([own.select_columns(common), added])
    return merged.add_column("sample_weight", [1.0] * len(own) + [weight] * len(added))


def add_mix(cfg: Any, data: Any) -> Any:
    """``data`` with ``cfg.mix.data``'s train rows added to its train split, every train row
    weighted (own rows 1, added rows ``cfg.mix.weight``); validation and test stay ``data``'s own."""
    weight = mix_weight(cfg)
    own = data["train"]
    added = mix_rows(cfg, own)
    log.info(
        "mix: %d own train rows (weight 1) + %d rows of %s (weight %g)", len(own), len(added), cfg.mix.data.name, weight
    )
    out = datasets.DatasetDict(dict(data))
    out["train"] = with_mix(own, added, weight)
    return out


def calibrate(classifier: Any, rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Fit the softmax temperature on validation rows and store it with the model (its ``stance``
    block, saved with it); predictions do not change, probabilities do. Returns the temperature
    and the validation ECE before calibration (the after-figure is the split's ``_ece``)."""
    classifier.temperature = 1.0
    probs = classifier.predict_proba(rows)
    labels = np.asarray([int(r["label"]) for r in rows])
    # log-probabilities are the logits up to a per-row constant, which softmax ignores
    temperature = fit_temperature(np.log(np.clip(probs.astype(np.float64), 1e-12, None)), labels)
    # rounded as saved, so this run's metrics and a reload of the model agree exactly
    classifier.temperature = round(temperature, 6)
    classifier.model.config.stance = {
        **dict(classifier.model.config.stance or {}),
        "temperature": classifier.temperature,
    }
    log.info("calibration: temperature %.3f fitted on %d validation rows", temperature, len(rows))
    return {
        "temperature": classifier.temperature,
        "validation_ece_uncalibrated": expected_calibration_error(probs, labels),
    }


# --- cross-validation --------------------------------------------------------------------------
def cv_folds(rows: Any, k: int, seed: int) -> np.ndarray:
    """Fold index per row: the dataset's ``fold`` column when it has exactly ``k`` folds, else
    StratifiedGroupKFold on ``group`` (a group never spans two folds)."""
    if "fold" in rows.column_names:
        folds = np.asarray(rows["fold"])
        if len(set(folds.tolist())) == k:
            _, inv = np.unique(folds, return_inverse=True)
            return inv
    groups = rows["group"] if "group" in rows.column_names else rows["example_id"]
    n_groups = len(set(groups))
    if n_groups < k:
        raise StanceError(f"eval.cv_folds={k} but the data has only {n_groups} groups")
    out = np.zeros(len(rows), dtype=int)
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    for i, (_, held) in enumerate(splitter.split(np.zeros(len(rows)), rows["label"], groups)):
        out[held] = i
    return out


def run_cv(
    cfg: Any, rows: Any, work_dir: Path, on_fold: Callable[[int, Any], None] | None = None
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Grouped K-fold CV over ``rows`` (train + validation; test is never used): each fold trains
    the full budget (no early stopping: the held-out fold is not peeked at) and predicts its held-out
    rows. ``on_fold(i, classifier)`` sees each fold's model (a benchmark scoring it elsewhere).
    Returns (``cv_<metric>_mean``/``_std`` + pooled ``cv_oof_*``, out-of-fold predictions)."""
    k = int(cfg.eval.cv_folds)
    folds = cv_folds(rows, k, int(cfg.seed))
    # mixed (+experiment=mixed): the other corpus joins every fold's training rows, never its held-out ones
    added = mix_rows(cfg, rows) if cfg.get("mix") is not None else None
    weight = mix_weight(cfg) if added is not None else 1.0
    per_fold: list[dict[str, float]] = []
    probs = np.zeros((len(rows), len(LABELS)), dtype=np.float32)
    for i in range(k):
        held = np.flatnonzero(folds == i)
        train_idx = np.flatnonzero(folds != i)
        log.info("CV fold %d/%d: %d train, %d held out", i + 1, k, len(train_idx), len(held))
        train = rows.select(train_idx)
        if added is not None:
            train = with_mix(train, added, weight)
        clf, _ = fit_model(cfg, train, None, work_dir)
        if on_fold is not None:
            on_fold(i, clf)
        held_rows = rows.select(held).to_list()
        m, p = evaluate_rows(clf, held_rows, prefix="", bootstrap=0, seed=cfg.seed)
        probs[held] = p
        per_fold.append(m)
        log.info("CV fold %d/%d: macro-F1 %.4f", i + 1, k, m.get("macro_f1", float("nan")))
    out: dict[str, float] = {}
    for key in per_fold[0]:
        vals = np.array([f[key] for f in per_fold if key in f], dtype=float)
        out[f"cv_{key}_mean"] = float(vals.mean())
        out[f"cv_{key}_std"] = float(vals.std(ddof=1)) if len(vals) > 1 else 0.0
    all_rows = rows.to_list()
    y_true = [int(r["label"]) for r in all_rows]
    pooled = compute_metrics(y_true, probs.argmax(axis=1), prefix="cv_oof", bootstrap=cfg.eval.bootstrap, seed=cfg.seed)
    out.update(pooled)
    oof = prediction_rows(all_rows, probs)
    for rec, f in zip(oof, folds):
        rec["fold"] = int(f)
    return out, oof


# --- the run -----------------------------------------------------------------------------------
def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _order_splits(names: Sequence[str]) -> list[str]:
    first = [s for s in ("validation", "test") if s in names]
    return first + [s for s in names if s not in first and s != "train"]


def run_training(cfg: Any, output_dir: str | Path | None = None, data: Any | None = None) -> float:
    """Train ``cfg.model`` on ``cfg.data`` (built first if absent), evaluate, write the artifacts.

    ``data`` (a DatasetDict in the row schema) replaces ``ensure_dataset(cfg)`` (tests, benchmarks).
    Returns the validation macro-F1, or ``cv_macro_f1_mean`` when ``eval.cv_folds`` > 1.
    """
    check_training(cfg)  # before anything is written or loaded (the pipeline and benchmarks call this directly)
    if output_dir is None:
        output_dir = HydraConfig.get().runtime.output_dir
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    record: dict[str, Any] = {
        "status": "running",
        "started_at": _now(),
        "seed": int(cfg.seed),
        "model": {
            "kind": cfg.model.kind,
            "name_or_path": cfg.model.name_or_path,
            "input_format": cfg.model.input_format,
        },
        "data": cfg.data.name,
        "output_dir": str(out),
        "pid": os.getpid(),
        "host": socket.gethostname(),  # with pid: stance.compare tells a dead run from a running one
    }
    write_json(out / "run.json", record)
    _terminate_as_exception()
    try:
        value = _run(cfg, out, data, record, t_start)
    except BaseException as err:
        record.update(status="failed", finished_at=_now(), error=f"{type(err).__name__}: {err}".splitlines()[0])
        write_json(out / "run.json", record)
        raise
    return value


def _load(cfg: Any, data: Any | None, record: dict[str, Any]) -> tuple[Any, list[str]]:
    """The dataset (built if absent), checked; (data, non-empty splits in order). ``mix`` is added
    later (:func:`add_mix`), after cross-validation, which mixes inside each fold."""
    if cfg.get("mix") is not None:
        mix_weight(cfg)
    if data is None:
        data = ensure_dataset(cfg)
    where = f"dataset {cfg.data.name}"
    if "train" not in data or len(data["train"]) == 0:
        raise StanceError(f"{where}: no training examples (split 'train' is missing or empty)")
    for name in data:
        check_data_labels(data[name].features, f"{where} split {name}")
    record["counts"] = {name: len(data[name]) for name in data}
    log.info("data %s: %s", cfg.data.name, ", ".join(f"{k} {v}" for k, v in record["counts"].items()))
    return data, [s for s in _order_splits(list(data.keys())) if len(data[s]) > 0]


def _cross_validate(cfg: Any, data: Any, out: Path) -> dict[str, float]:
    """``eval.cv_folds`` > 1: grouped CV over train + validation (never test), out-of-fold rows saved."""
    cv_k = int(cfg.eval.cv_folds)
    if cv_k == 1 or cv_k < 0:
        raise StanceError(f"eval.cv_folds: must be 0 (off) or at least 2, got {cv_k}")
    if cv_k < 2:
        return {}
    pool_names = [s for s in ("train", "validation") if s in data]
    pool = datasets.concatenate_datasets([data[s] for s in pool_names])
    metrics, oof = run_cv(cfg, pool, out)
    write_jsonl(out / "cv_predictions.jsonl", oof)
    log.info(
        "CV (%d folds over %s): macro-F1 %.4f ± %.4f",
        cv_k,
        "+".join(pool_names),
        metrics["cv_macro_f1_mean"],
        metrics["cv_macro_f1_std"],
    )
    return metrics


def _evaluate_splits(
    cfg: Any, classifier: Any, data: Any, splits: list[str], metrics: dict[str, float]
) -> tuple[str | None, list[dict[str, Any]], np.ndarray]:
    """Every split scored into ``metrics``; (focus split, its rows, its probabilities): test if any."""
    focus = "test" if "test" in splits else (splits[0] if splits else None)
    focus_rows: list[dict[str, Any]] = []
    focus_probs = np.zeros((0, len(LABELS)))
    for s in splits:
        rows = data[s].to_list()
        m, p = evaluate_rows(classifier, rows, prefix=s, bootstrap=int(cfg.eval.bootstrap), seed=int(cfg.seed))
        metrics.update(m)
        if s == focus:
            focus_rows, focus_probs = rows, p
            metrics.update(
                actor_metrics([r["label"] for r in rows], p.argmax(axis=1), [r["actor_id"] for r in rows], s)
            )
    return focus, focus_rows, focus_probs


def _primary(cfg: Any, metrics: dict[str, float], has_valid: bool) -> tuple[str | None, float]:
    """The value a sweeper optimises: the CV mean, else validation macro-F1 (never a test score)."""
    if int(cfg.eval.cv_folds) > 1:
        return "cv_macro_f1_mean", float(metrics["cv_macro_f1_mean"])
    if has_valid:
        return "validation_macro_f1", float(metrics["validation_macro_f1"])
    log.warning("no validation split: the returned value is NaN (nothing to select on)")
    return None, float("nan")


def _run(cfg: Any, out: Path, data: Any | None, record: dict[str, Any], t_start: float) -> float:
    setup_runtime(int(cfg.seed), int(cfg.threads))
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    data, splits = _load(cfg, data, record)
    has_valid = "validation" in splits
    timings["data_s"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    metrics: dict[str, float] = _cross_validate(cfg, data, out)
    if metrics:
        timings["cv_s"] = round(time.perf_counter() - t0, 2)

    if cfg.get("mix") is not None:
        data = add_mix(cfg, data)
        record["counts"]["train"] = len(data["train"])
    t0 = time.perf_counter()
    classifier, info = fit_model(cfg, data["train"], data["validation"] if has_valid else None, out)
    timings["train_s"] = round(time.perf_counter() - t0, 2)
    if cfg.train.calibrate and has_valid and getattr(classifier, "kind", "") == "transformer":
        metrics.update(calibrate(classifier, data["validation"].to_list()))
    save_model(classifier, out / "model")

    t0 = time.perf_counter()
    focus, focus_rows, focus_probs = _evaluate_splits(cfg, classifier, data, splits, metrics)
    timings["eval_s"] = round(time.perf_counter() - t0, 2)
    primary_name, primary = _primary(cfg, metrics, has_valid)
    notes = [
        f"model: `{cfg.model.name_or_path}` ({cfg.model.kind}, input {cfg.model.input_format}), seed {cfg.seed}",
        f"data: `{cfg.data.name}` ({', '.join(f'{k} {v}' for k, v in record['counts'].items())})",
        f"primary metric: {primary_name} = {primary:.4f}"
        if primary_name
        else "primary metric: none (no validation split)",
    ]
    if focus:
        shown = splits + (["cv_oof"] if int(cfg.eval.cv_folds) > 1 else [])
        write_evaluation(out, metrics, focus, focus_rows, focus_probs, f"Training run {out.name}", shown, notes)
    else:
        write_json(out / "metrics.json", metrics)
    log_metrics(metrics, splits)

    timings["total_s"] = round(time.perf_counter() - t_start, 2)
    record.update(
        status="completed",
        finished_at=_now(),
        primary_metric={"name": primary_name, "value": primary},
        test_data_hash=examples_hash(focus_rows) if focus_rows else None,
        predictions_split=focus,
        timings=timings,
        train_examples_per_s=info.get("train_examples_per_s"),
        training=info,
        threads=_threads(),
        config=to_container(cfg),
    )
    write_json(out / "run.json", record)
    log.info("%s = %.4f; artifacts in %s", primary_name, primary, out)
    return primary


def _terminate_as_exception() -> None:
    """Turn SIGTERM (kill, a scheduler's time-out) into an exception, so a killed run still records
    status "failed" and removes its temporary checkpoints."""
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum: int, frame: Any) -> None:
        raise SystemExit(f"terminated by signal {signum}")

    signal.signal(signal.SIGTERM, handler)


def _threads() -> int:
    import torch

    return int(torch.get_num_threads())
