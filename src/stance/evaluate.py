"""``python -m stance.evaluate``: score a saved model on labelled data and write the evaluation files.

    python -m stance.evaluate model_dir=outputs/train/<run>/model                 # data=seed, split=test
    python -m stance.evaluate model_dir=RUN/model split=all                       # every split of the data
    python -m stance.evaluate model_dir=RUN/model data=newsmtsc split=validation
    python -m stance.evaluate model_dir=RUN/model file=../shared/newsmtsc/dev_mt.jsonl

Writes ``metrics.json``, ``predictions.jsonl``, ``misclassified.jsonl``, ``confusion_matrix.png``
and ``report.md`` in its run dir. The functions that make these files are shared with
``stance.train``, so a training run and a later evaluation report the same way.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import hydra
import numpy as np

from stance import config as _config  # registers the schemas
from stance.errors import StanceError, reports_errors
from stance.io import write_json, write_jsonl, write_text
from stance.labels import LABELS
from stance.metrics import actor_metrics, compute_metrics, confusion, per_actor

log = logging.getLogger(__name__)

CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "configs")
_ = _config


# --- shared with stance.train ------------------------------------------------------------------
def examples_hash(rows: Sequence[Mapping[str, Any]]) -> str:
    """sha256 over the rows' ``example_id`` + gold label (sorted): two runs with the same hash were
    scored on the same examples with the same gold labels, so their metrics are comparable."""
    keys = sorted(f"{r['example_id']}\t{_label_name(r['label'])}" for r in rows)
    return hashlib.sha256("\n".join(keys).encode("utf-8")).hexdigest()


def _label_name(label: Any) -> str:
    return LABELS[int(label)] if not isinstance(label, str) else label


def evaluate_rows(
    classifier: Any,
    rows: Sequence[Mapping[str, Any]],
    prefix: str,
    bootstrap: int = 1000,
    seed: int = 42,
) -> tuple[dict[str, float], np.ndarray]:
    """Predict ``rows`` (with integer ``label``) and return (flat metrics, probabilities)."""
    probs = classifier.predict_proba(rows, progress=len(rows) > 500)
    y_true = [int(r["label"]) for r in rows]
    y_pred = probs.argmax(axis=1).tolist() if len(rows) else []
    return compute_metrics(y_true, y_pred, prefix=prefix, bootstrap=bootstrap, seed=seed), probs


def prediction_rows(rows: Sequence[Mapping[str, Any]], probs: np.ndarray) -> list[dict[str, Any]]:
    """The ``predictions.jsonl`` rows: ids, text, gold ``label``, ``pred`` and ``prob_<label>``."""
    out = []
    for row, p in zip(rows, probs):
        rec = {k: row.get(k) for k in ("example_id", "article_id", "sentence", "actor_id", "mention")}
        rec["label"] = _label_name(row["label"])
        rec["pred"] = LABELS[int(np.argmax(p))]
        rec.update({f"prob_{label}": round(float(p[i]), 6) for i, label in enumerate(LABELS)})
        out.append(rec)
    return out


def _fmt(x: float) -> str:
    return "n/a" if x != x else f"{x:.3f}"  # NaN-safe


def render_report(
    title: str,
    metrics: Mapping[str, float],
    splits: Sequence[str],
    focus: str,
    rows: Sequence[Mapping[str, Any]],
    preds: Sequence[Mapping[str, Any]],
    notes: Sequence[str] = (),
) -> str:
    """A short Markdown report: headline metrics per split, per-class scores, confusion matrix and
    per-actor breakdown of ``focus``, and a few misclassified examples."""
    lines = [f"# {title}", ""]
    lines += [f"- {n}" for n in notes]
    if notes:
        lines.append("")
    lines += ["| split | n | macro-F1 (95% CI) | F1 pn | accuracy | mean recall |", "|---|---|---|---|---|---|"]
    for s in splits:
        if f"{s}_macro_f1" not in metrics:
            continue
        ci = f"{_fmt(metrics.get(f'{s}_macro_f1_ci_low', float('nan')))}-{_fmt(metrics.get(f'{s}_macro_f1_ci_high', float('nan')))}"
        lines.append(
            f"| {s} | {int(metrics[f'{s}_n'])} | {_fmt(metrics[f'{s}_macro_f1'])} ({ci}) | "
            f"{_fmt(metrics[f'{s}_f1_pn'])} | {_fmt(metrics[f'{s}_accuracy'])} | {_fmt(metrics[f'{s}_mean_recall'])} |"
        )
    if "cv_macro_f1_mean" in metrics:
        lines += ["", f"Cross-validation macro-F1: {_fmt(metrics['cv_macro_f1_mean'])} ± {_fmt(metrics['cv_macro_f1_std'])}"]
    if not preds:
        return "\n".join(lines) + "\n"
    lines += ["", f"## {focus}: per class", "", "| label | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for label in LABELS:
        lines.append(
            f"| {label} | {_fmt(metrics[f'{focus}_{label}_precision'])} | {_fmt(metrics[f'{focus}_{label}_recall'])} | "
            f"{_fmt(metrics[f'{focus}_{label}_f1'])} | {int(metrics[f'{focus}_{label}_support'])} |"
        )
    gold = [LABELS.index(p["label"]) for p in preds]
    pred = [LABELS.index(p["pred"]) for p in preds]
    cm = confusion(gold, pred)
    lines += ["", f"## {focus}: confusion matrix (rows gold, columns predicted)", "", "| | " + " | ".join(LABELS) + " |"]
    lines.append("|---" * (len(LABELS) + 1) + "|")
    for i, label in enumerate(LABELS):
        lines.append(f"| {label} | " + " | ".join(str(int(v)) for v in cm[i]) + " |")
    actors = per_actor(gold, pred, [str(r.get("actor_id")) for r in rows])
    lines += ["", f"## {focus}: per actor (top 20 by examples)", "", "| actor | n | accuracy | macro-F1 | gold s/c/n | predicted s/c/n |", "|---|---|---|---|---|---|"]
    for a in actors[:20]:
        g = "/".join(str(a[f"gold_{lab}"]) for lab in LABELS)
        pr = "/".join(str(a[f"pred_{lab}"]) for lab in LABELS)
        lines.append(f"| {a['actor_id']} | {a['n']} | {_fmt(a['accuracy'])} | {_fmt(a['macro_f1'])} | {g} | {pr} |")
    wrong = [p for p in preds if p["label"] != p["pred"]]
    lines += ["", f"## {focus}: misclassified ({len(wrong)} of {len(preds)}, first 10)", ""]
    for p in wrong[:10]:
        lines.append(f"- gold **{p['label']}**, predicted **{p['pred']}** ({p['actor_id']}): {p['sentence']}")
    return "\n".join(lines) + "\n"


def write_evaluation(
    out_dir: str | Path,
    metrics: Mapping[str, float],
    focus: str,
    rows: Sequence[Mapping[str, Any]],
    probs: np.ndarray,
    title: str,
    splits: Sequence[str],
    notes: Sequence[str] = (),
) -> None:
    """Write metrics.json, predictions.jsonl, misclassified.jsonl, confusion_matrix.png, report.md."""
    from stance.plots import plot_confusion

    out_dir = Path(out_dir)
    preds = prediction_rows(rows, probs)
    write_json(out_dir / "metrics.json", dict(metrics))
    write_jsonl(out_dir / "predictions.jsonl", preds)
    write_jsonl(out_dir / "misclassified.jsonl", [p for p in preds if p["label"] != p["pred"]])
    gold = [LABELS.index(p["label"]) for p in preds]
    pred = [LABELS.index(p["pred"]) for p in preds]
    plot_confusion(confusion(gold, pred), LABELS, out_dir / "confusion_matrix.png", title=f"{focus} (n={len(preds)})")
    write_text(out_dir / "report.md", render_report(title, metrics, splits, focus, rows, preds, notes))


def log_metrics(metrics: Mapping[str, float], splits: Sequence[str]) -> None:
    """One concise line per split."""
    for s in splits:
        if f"{s}_macro_f1" in metrics:
            log.info(
                "%s: macro-F1 %.4f [%.4f, %.4f]  F1pn %.4f  accuracy %.4f  n=%d",
                s,
                metrics[f"{s}_macro_f1"],
                metrics.get(f"{s}_macro_f1_ci_low", float("nan")),
                metrics.get(f"{s}_macro_f1_ci_high", float("nan")),
                metrics[f"{s}_f1_pn"],
                metrics[f"{s}_accuracy"],
                int(metrics[f"{s}_n"]),
            )


# --- evaluation data ---------------------------------------------------------------------------
def select_split(dd: Any, split: str, where: str) -> Any:
    """One split of a DatasetDict, or ``all`` of them concatenated; one-line errors otherwise."""
    import datasets

    from stance.models import check_data_labels

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


def load_labelled_file(cfg: Any) -> Any:
    """All rows of one labelled file as a Dataset in the row schema (nothing is split off).

    A file whose records carry NewsMTSC's fields (``polarity``, ``from``, ``to`` ...) is read as
    NewsMTSC; any other .jsonl/.csv through ``data.columns`` / ``data.label_map``.
    """
    from stance.corpora import NEWSMTSC_FIELDS, finish_splits, labelled_records, labelled_row, newsmtsc_row
    from stance.dataset import registry_from_config

    path = str(cfg.file)
    registry = registry_from_config(cfg)
    records = list(labelled_records(path))
    if not records:
        raise StanceError(f"{path}: no rows")
    if all(f in records[0][1] for f in NEWSMTSC_FIELDS):
        rows = [newsmtsc_row(rec, where, registry) for where, rec in records]
    else:
        label_col = cfg.data.columns.label
        if label_col not in records[0][1]:
            raise StanceError(f"{path}: dataset has no labels (no {label_col!r} column; set data.columns.label)")
        label_map = {str(k): str(v).strip().lower() for k, v in (cfg.data.label_map or {}).items()}
        rows = [labelled_row(rec, where, cfg.data, registry, label_map) for where, rec in records]
    return finish_splits({"eval": rows}, int(cfg.data.split.folds), int(cfg.data.split.seed))["eval"]


def load_eval_data(cfg: Any) -> tuple[Any, str]:
    """The rows to evaluate (a Dataset) and a name for them."""
    if cfg.file:
        path = Path(cfg.file)
        if not path.is_file():
            raise StanceError(f"{cfg.file}: no such file")
        return load_labelled_file(cfg), path.stem
    from stance.dataset import ensure_dataset, output_path

    dd = ensure_dataset(cfg)
    return select_split(dd, cfg.split, str(output_path(cfg))), cfg.split


def run_evaluation(cfg: Any, output_dir: str | Path | None = None) -> dict[str, float]:
    """Evaluate ``cfg.model_dir`` on ``cfg.file`` or split ``cfg.split`` of ``cfg.data``; write the
    evaluation files in ``output_dir`` (default: the Hydra run dir) and return the metrics."""
    from stance.models import load_classifier

    if output_dir is None:
        from hydra.core.hydra_config import HydraConfig

        output_dir = HydraConfig.get().runtime.output_dir
    if cfg.threads and cfg.threads > 0:
        import torch

        torch.set_num_threads(int(cfg.threads))
    t0 = time.perf_counter()
    classifier = load_classifier(cfg.model_dir, batch_size=cfg.batch_size)
    ds, name = load_eval_data(cfg)
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


@hydra.main(config_path=CONFIG_DIR, config_name="evaluate", version_base="1.3")
@reports_errors("stance.evaluate")
def main(cfg: Any) -> float:
    metrics = run_evaluation(cfg)
    name = next(k for k in metrics if k.endswith("_macro_f1"))
    return float(metrics[name])


if __name__ == "__main__":
    main()
