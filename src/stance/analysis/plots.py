"""Figures for people: confusion matrix, stance per actor, run comparison (PNG, atomic writes)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: figures are files

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from stance.io import atomic_path  # noqa: E402


def _save(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_confusion(cm: Any, labels: Sequence[str], path: str | Path, title: str = "") -> Path:
    """Confusion matrix (rows gold, columns predicted): counts, shaded by row-normalised share."""
    cm = np.asarray(cm)
    rows = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, rows, out=np.zeros(cm.shape, dtype=float), where=rows > 0)
    fig, ax = plt.subplots(figsize=(1.4 * len(labels) + 1.5, 1.2 * len(labels) + 1))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, f"{cm[i, j]}", ha="center", va="center", color="white" if share[i, j] > 0.5 else "black")
    if title:
        ax.set_title(title)
    return _save(fig, path)


def plot_reliability(
    confidence: Any,
    accuracy: Any,
    count: Any,
    edges: Any,
    path: str | Path,
    title: str = "",
    ece: float | None = None,
    temperature: float | None = None,
) -> Path:
    """Reliability diagram: accuracy of the top label per confidence bin against the diagonal
    (perfect calibration), bar width = bin, the number of rows written on each bar."""
    edges = np.asarray(edges, dtype=float)
    fig, ax = plt.subplots(figsize=(4.8, 4.4))
    ax.plot([0, 1], [0, 1], ls="--", color="#7f8c8d", lw=1, label="perfect calibration")
    mids, widths = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
    filled = np.asarray(count) > 0
    ax.bar(
        mids[filled],
        np.asarray(accuracy)[filled],
        width=widths[filled] * 0.9,
        color="#2e86c1",
        alpha=0.8,
        label="accuracy in bin",
    )
    ax.plot(
        np.asarray(confidence)[filled],
        np.asarray(accuracy)[filled],
        "o",
        color="#1b4f72",
        ms=3,
        label="mean confidence",
    )
    for x, y, n in zip(mids[filled], np.asarray(accuracy)[filled], np.asarray(count)[filled]):
        ax.text(x, min(y + 0.02, 0.97), str(int(n)), ha="center", va="bottom", fontsize=7)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (top probability)")
    ax.set_ylabel("accuracy")
    extra = ", ".join(
        x
        for x in (f"ECE {ece:.3f}" if ece is not None else "", f"temperature {temperature:.2f}" if temperature else "")
        if x
    )
    ax.set_title(" ".join(x for x in (title, f"({extra})" if extra else "") if x), fontsize=9)
    ax.legend(loc="upper left", fontsize=7)
    return _save(fig, path)


# Diverging order: critical left, neutral in the middle, supportive right.
_STANCE_COLORS: dict[str, str] = {"critical": "#c0392b", "neutral": "#bdc3c7", "supportive": "#27ae60"}


def plot_stance_by_actor(actors: Any, path: str | Path, title: str = "", top_n: int = 30) -> Path:
    """Label shares per actor as horizontal stacked bars (critical | neutral | supportive).

    ``actors``: a DataFrame with ``actor_name``, ``n_sentences``, ``share_<label>`` and
    ``net_stance`` (optionally ``net_stance_ci_low``/``_high``), as ``stance.score`` writes it.
    The ``top_n`` actors with the most scored sentences are shown, most mentioned at the top; each
    bar is labelled with its sentence count and net stance (with its 95% CI when given).
    """
    df = actors.sort_values("n_sentences", ascending=False, kind="stable").head(top_n).iloc[::-1]
    n = len(df)
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.42 * max(n, 1)))
    y = np.arange(n)
    left = np.zeros(n)
    for label in ("critical", "neutral", "supportive"):
        share = df[f"share_{label}"].to_numpy(dtype=float)
        ax.barh(
            y, share, left=left, color=_STANCE_COLORS[label], label=label, height=0.7, edgecolor="white", linewidth=0.5
        )
        for yi, li, si in zip(y, left, share):
            if si >= 0.08:  # a label only where it fits inside its segment
                ax.text(
                    li + si / 2,
                    float(yi),
                    f"{si:.0%}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="black" if label == "neutral" else "white",
                )
        left += share
    names = [f"{name}  (n={int(k):,})" for name, k in zip(df["actor_name"], df["n_sentences"])]
    ax.set_yticks(y, names)
    ax.set_xlim(0, 1)
    ax.set_xticks(np.linspace(0, 1, 6), [f"{v:.0%}" for v in np.linspace(0, 1, 6)])
    ax.set_xlabel("share of sentences mentioning the actor")
    has_ci = "net_stance_ci_low" in df.columns and "net_stance_ci_high" in df.columns
    for i, (_, row) in enumerate(df.iterrows()):
        text = f"net {row['net_stance']:+.2f}"
        if has_ci and np.isfinite(row["net_stance_ci_low"]) and np.isfinite(row["net_stance_ci_high"]):
            text += f" [{row['net_stance_ci_low']:+.2f}, {row['net_stance_ci_high']:+.2f}]"
        ax.text(1.01, y[i], text, va="center", ha="left", fontsize=8, transform=ax.get_yaxis_transform())
    ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncol=3, frameon=False, fontsize=9)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.set_title(title or "Stance by actor", loc="left", pad=24)
    return _save(fig, path)


def plot_comparison(
    names: Sequence[str],
    means: Sequence[float],
    stds: Sequence[float],
    path: str | Path,
    metric: str = "test_macro_f1",
    n_seeds: Sequence[int] | None = None,
) -> Path:
    """One horizontal bar per configuration (best first, on top): mean ``metric``, error bar = std.

    A NaN std (a single seed) draws no error bar; ``n_seeds`` is written next to each bar.
    """
    means_a = np.asarray(means, dtype=float)
    errs = np.nan_to_num(np.asarray(stds, dtype=float), nan=0.0)
    fig, ax = plt.subplots(figsize=(7, 0.45 * max(len(names), 1) + 1.2))
    pos = np.arange(len(names))[::-1]
    ax.barh(pos, np.nan_to_num(means_a), xerr=errs, color="#4c72b0", capsize=3)
    ax.set_yticks(pos, [n if len(n) <= 60 else n[:57] + "..." for n in names])
    seeds: list[int | None] = list(n_seeds) if n_seeds else [None] * len(names)
    for y, m, e, n in zip(pos, means_a, errs, seeds):
        if not np.isnan(m):  # right of the error bar, so the two never overlap
            ax.text(m + e + 0.01, y, f"{m:.3f}" + (f" (n={n})" if n else ""), va="center", fontsize=8)
    ax.set_xlim(0, 1.15)
    ax.set_xlabel(f"{metric} (mean ± std over seeds)")
    return _save(fig, path)
