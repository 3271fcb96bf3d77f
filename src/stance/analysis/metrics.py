"""Classification metrics (scikit-learn), a seeded bootstrap CI and a per-actor breakdown.

``compute_metrics`` returns flat, split-prefixed floats ready for ``metrics.json`` and for
comparing runs: ``test_macro_f1`` (the primary metric), ``test_f1_pn`` (F1 averaged over
supportive and critical only, NewsMTSC's F1pn), ``test_accuracy``, ``test_mean_recall``,
``test_<label>_precision|recall|f1|support``, ``test_macro_f1_ci_low|high``, ``test_n``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from stance.labels import LABELS, POLAR_LABELS

_IDS = list(range(len(LABELS)))
_POLAR_IDS = [LABELS.index(label) for label in POLAR_LABELS]


def macro_f1(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray) -> float:
    """Macro-F1 over all labels (a label absent from both gold and predictions counts 0)."""
    return float(f1_score(y_true, y_pred, labels=_IDS, average="macro", zero_division=0))


def bootstrap_ci(
    y_true: Sequence[int] | np.ndarray,
    y_pred: Sequence[int] | np.ndarray,
    n: int = 1000,
    seed: int = 42,
    alpha: float = 0.05,
    metric: Any = macro_f1,
) -> tuple[float, float]:
    """Percentile bootstrap (1 - alpha) CI of ``metric``: ``n`` resamples of the rows, seeded."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if len(y_true) == 0 or n <= 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(y_true), size=(n, len(y_true)))
    scores = np.array([metric(y_true[i], y_pred[i]) for i in idx])
    return float(np.quantile(scores, alpha / 2)), float(np.quantile(scores, 1 - alpha / 2))


def compute_metrics(
    y_true: Sequence[int] | np.ndarray,
    y_pred: Sequence[int] | np.ndarray,
    prefix: str = "",
    bootstrap: int = 1000,
    seed: int = 42,
) -> dict[str, float]:
    """Flat metrics for one split; keys are ``<prefix>_<name>`` (no prefix when ``prefix`` is "")."""
    y_true, y_pred = np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)
    p = f"{prefix}_" if prefix else ""
    out: dict[str, float] = {f"{p}n": float(len(y_true))}
    if len(y_true) == 0:
        return out
    prec, rec, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=_IDS, zero_division=0)
    out[f"{p}macro_f1"] = macro_f1(y_true, y_pred)
    out[f"{p}f1_pn"] = float(f1_score(y_true, y_pred, labels=_POLAR_IDS, average="macro", zero_division=0))
    out[f"{p}accuracy"] = float(accuracy_score(y_true, y_pred))
    # mean recall over the labels present in the gold data (balanced accuracy)
    present = support > 0
    out[f"{p}mean_recall"] = float(rec[present].mean()) if present.any() else 0.0
    for i, label in enumerate(LABELS):
        out[f"{p}{label}_precision"] = float(prec[i])
        out[f"{p}{label}_recall"] = float(rec[i])
        out[f"{p}{label}_f1"] = float(f1[i])
        out[f"{p}{label}_support"] = float(support[i])
    if bootstrap > 0:
        low, high = bootstrap_ci(y_true, y_pred, n=bootstrap, seed=seed)
        out[f"{p}macro_f1_ci_low"] = low
        out[f"{p}macro_f1_ci_high"] = high
    return out


def confusion(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray) -> np.ndarray:
    """Confusion matrix, rows = gold, columns = predicted, both in LABELS order."""
    return confusion_matrix(np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int), labels=_IDS)


def per_actor(
    y_true: Sequence[int] | np.ndarray,
    y_pred: Sequence[int] | np.ndarray,
    actors: Sequence[str],
    min_support: int = 1,
) -> list[dict[str, Any]]:
    """One dict per actor (most examples first): n, accuracy, macro-F1, gold and predicted counts."""
    y_true, y_pred = np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)
    actors_arr = np.asarray([str(a) for a in actors])
    rows = []
    for actor, n in Counter(actors_arr.tolist()).most_common():
        if n < min_support:
            continue
        mask = actors_arr == actor
        t, pr = y_true[mask], y_pred[mask]
        rows.append(
            {
                "actor_id": actor,
                "n": int(n),
                "accuracy": float(accuracy_score(t, pr)),
                # over the labels this actor has (gold or predicted): an actor only ever neutral
                # and always predicted neutral scores 1, not 1/3
                "macro_f1": float(f1_score(t, pr, average="macro", zero_division=0)),
                **{f"gold_{label}": int((t == i).sum()) for i, label in enumerate(LABELS)},
                **{f"pred_{label}": int((pr == i).sum()) for i, label in enumerate(LABELS)},
            }
        )
    return rows


def actor_metrics(
    y_true: Sequence[int] | np.ndarray,
    y_pred: Sequence[int] | np.ndarray,
    actors: Sequence[str],
    prefix: str,
    min_support: int = 10,
    top: int = 20,
) -> dict[str, float]:
    """Flat ``<prefix>_actor_<id>_macro_f1`` / ``_n`` for the ``top`` actors with ``min_support`` rows."""
    out: dict[str, float] = {}
    for row in per_actor(y_true, y_pred, actors, min_support)[:top]:
        key = f"{prefix}_actor_{row['actor_id']}"
        out[f"{key}_macro_f1"] = row["macro_f1"]
        out[f"{key}_n"] = float(row["n"])
    return out
