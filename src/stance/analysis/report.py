"""Evaluation reports: predictions, metrics files, the Markdown report and the confusion plot.

Shared by ``stance.train`` and ``stance.evaluate`` (through :mod:`stance.modeling.training` and
:mod:`stance.modeling.evaluation`), so a training run and a later evaluation report the same way:
``metrics.json``, ``predictions.jsonl``, ``misclassified.jsonl``, ``confusion_matrix.png`` and
``report.md``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from stance.analysis.calibration import expected_calibration_error, reliability
from stance.analysis.metrics import compute_metrics, confusion, per_actor
from stance.analysis.plots import plot_confusion, plot_reliability
from stance.io import write_json, write_jsonl, write_text
from stance.labels import LABELS

log = logging.getLogger(__name__)


# --- predictions and metrics -------------------------------------------------------------------
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
    """Predict ``rows`` (with integer ``label``) and return (flat metrics, probabilities);
    ``<prefix>_ece`` is the expected calibration error of the probabilities (10 bins)."""
    probs = classifier.predict_proba(rows, progress=len(rows) > 500)
    y_true = [int(r["label"]) for r in rows]
    y_pred = probs.argmax(axis=1).tolist() if len(rows) else []
    metrics = compute_metrics(y_true, y_pred, prefix=prefix, bootstrap=bootstrap, seed=seed)
    if len(rows):
        metrics[f"{prefix}_ece"] = expected_calibration_error(probs, np.asarray(y_true))
    return metrics, probs


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


def _class_tables(metrics: Mapping[str, float], focus: str, gold: list[int], pred: list[int]) -> list[str]:
    """The report's per-class scores and confusion matrix of the ``focus`` split (Markdown lines)."""
    lines: list[str] = []
    lines += [
        "",
        f"## {focus}: per class",
        "",
        "| label | precision | recall | F1 | support |",
        "|---|---|---|---|---|",
    ]
    for label in LABELS:
        lines.append(
            f"| {label} | {_fmt(metrics[f'{focus}_{label}_precision'])} | {_fmt(metrics[f'{focus}_{label}_recall'])} | "
            f"{_fmt(metrics[f'{focus}_{label}_f1'])} | {int(metrics[f'{focus}_{label}_support'])} |"
        )
    cm = confusion(gold, pred)
    lines += [
        "",
        f"## {focus}: confusion matrix (rows gold, columns predicted)",
        "",
        "| | " + " | ".join(LABELS) + " |",
    ]
    lines.append("|---" * (len(LABELS) + 1) + "|")
    for i, label in enumerate(LABELS):
        lines.append(f"| {label} | " + " | ".join(str(int(v)) for v in cm[i]) + " |")
    return lines


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
    lines += [
        "| split | n | macro-F1 (95% CI) | F1 pn | accuracy | mean recall | ECE |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in splits:
        if f"{s}_macro_f1" not in metrics:
            continue
        ci = f"{_fmt(metrics.get(f'{s}_macro_f1_ci_low', float('nan')))}-{_fmt(metrics.get(f'{s}_macro_f1_ci_high', float('nan')))}"
        lines.append(
            f"| {s} | {int(metrics[f'{s}_n'])} | {_fmt(metrics[f'{s}_macro_f1'])} ({ci}) | "
            f"{_fmt(metrics[f'{s}_f1_pn'])} | {_fmt(metrics[f'{s}_accuracy'])} | {_fmt(metrics[f'{s}_mean_recall'])} | "
            f"{_fmt(metrics.get(f'{s}_ece', float('nan')))} |"
        )
    if "temperature" in metrics:
        lines += [
            "",
            f"Probabilities calibrated by temperature scaling on the validation split: T = "
            f"{metrics['temperature']:.3f} (validation ECE {_fmt(metrics.get('validation_ece_uncalibrated', float('nan')))} "
            f"before, {_fmt(metrics.get('validation_ece', float('nan')))} after); `reliability.png` shows the "
            f"{focus} split.",
        ]
    if "cv_macro_f1_mean" in metrics:
        lines += [
            "",
            f"Cross-validation macro-F1: {_fmt(metrics['cv_macro_f1_mean'])} ± {_fmt(metrics['cv_macro_f1_std'])}",
        ]
    if not preds:
        return "\n".join(lines) + "\n"
    gold = [LABELS.index(p["label"]) for p in preds]
    pred = [LABELS.index(p["pred"]) for p in preds]
    lines += _class_tables(metrics, focus, gold, pred)
    actors = per_actor(gold, pred, [str(r.get("actor_id")) for r in rows])
    lines += [
        "",
        f"## {focus}: per actor (top 20 by examples)",
        "",
        "| actor | n | accuracy | macro-F1 | gold s/c/n | predicted s/c/n |",
        "|---|---|---|---|---|---|",
    ]
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
    out_dir = Path(out_dir)
    preds = prediction_rows(rows, probs)
    write_json(out_dir / "metrics.json", dict(metrics))
    write_jsonl(out_dir / "predictions.jsonl", preds)
    write_jsonl(out_dir / "misclassified.jsonl", [p for p in preds if p["label"] != p["pred"]])
    gold = [LABELS.index(p["label"]) for p in preds]
    pred = [LABELS.index(p["pred"]) for p in preds]
    plot_confusion(confusion(gold, pred), LABELS, out_dir / "confusion_matrix.png", title=f"{focus} (n={len(preds)})")
    if len(preds):
        rel = reliability(probs, np.asarray(gold))
        plot_reliability(
            rel.confidence,
            rel.accuracy,
            rel.count,
            rel.edges,
            out_dir / "reliability.png",
            title=f"{focus} (n={len(preds)})",
            ece=rel.ece,
            temperature=metrics.get("temperature"),
        )
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
