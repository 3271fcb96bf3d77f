"""Figures for people: confusion matrix, stance per actor, run comparison, net stance over time and by
outlet (PNG, atomic writes)."""

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


# Diverging order: critical left, neutral in the middle, supportive right. Okabe-Ito vermillion
# and blue: told apart with every common colour-vision deficiency (red/green is not).
_STANCE_COLORS: dict[str, str] = {"critical": "#D55E00", "neutral": "#C8C8C8", "supportive": "#0072B2"}
# Okabe-Ito, for one line per actor
_LINE_COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")


def plot_stance_by_actor(actors: Any, path: str | Path, title: str = "", top_n: int = 30, *, note: str = "") -> Path:
    """Label shares per actor as horizontal stacked bars (critical | neutral | supportive).

    ``actors``: a DataFrame with ``actor_name``, ``n_sentences``, ``share_<label>`` and
    ``net_stance`` (optionally ``net_stance_ci_low``/``_high``), as ``stance.score`` writes it.
    The ``top_n`` actors with the most scored sentences are shown, most mentioned at the top; each
    bar is labelled with its sentence count and net stance (with its 95% CI when given). ``note``
    (the model, the low-confidence share) and the number of actors left out go under the axis.
    """
    df = actors.sort_values("n_sentences", ascending=False, kind="stable").head(top_n).iloc[::-1]
    left_out = len(actors) - len(df)
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
    caption = [note] if note else []
    if left_out > 0:
        caption.append(f"{left_out} less-mentioned actor{'s' if left_out != 1 else ''} not shown (top {top_n})")
    if caption:
        fig.text(0.01, -0.02, "\n".join(caption), ha="left", va="top", fontsize=8, color="#444444")
    return _save(fig, path)


def plot_comparison(
    names: Sequence[str],
    means: Sequence[float],
    stds: Sequence[float],
    path: str | Path,
    metric: str = "test_macro_f1",
    n_seeds: Sequence[int] | None = None,
    *,
    ci_low: Sequence[float] | None = None,
    ci_high: Sequence[float] | None = None,
    title: str = "",
) -> Path:
    """One horizontal bar per configuration (best first, on top): mean ``metric``, error bar = std,
    or the bootstrap 95% CI when ``ci_low``/``ci_high`` are given (a seed spread of 2-3 runs says
    little about the test set's sampling error; the CI does).

    A NaN std or CI (a single seed) draws no error bar; ``n_seeds`` is written next to each bar.
    """
    means_a = np.asarray(means, dtype=float)
    errs: Any = np.nan_to_num(np.asarray(stds, dtype=float), nan=0.0)
    if ci_low is not None and ci_high is not None:
        lo = np.nan_to_num(means_a - np.asarray(ci_low, dtype=float), nan=0.0).clip(min=0)
        hi = np.nan_to_num(np.asarray(ci_high, dtype=float) - means_a, nan=0.0).clip(min=0)
        errs = np.vstack([lo, hi])
    fig, ax = plt.subplots(figsize=(7, 0.45 * max(len(names), 1) + 1.2))
    pos = np.arange(len(names))[::-1]
    ax.barh(pos, np.nan_to_num(means_a), xerr=errs, color="#4c72b0", capsize=3)
    ax.set_yticks(pos, [n if len(n) <= 60 else n[:57] + "..." for n in names])
    seeds: list[int | None] = list(n_seeds) if n_seeds else [None] * len(names)
    right = errs[-1] if errs.ndim == 2 else errs
    for y, m, e, n in zip(pos, means_a, right, seeds):
        if not np.isnan(m):  # right of the error bar, so the two never overlap
            ax.text(m + e + 0.01, y, f"{m:.3f}" + (f" (n={n})" if n else ""), va="center", fontsize=8)
    ax.set_xlim(0, 1.15)
    spread = "bootstrap 95% CI" if errs.ndim == 2 else "± std over seeds"
    ax.set_xlabel(f"{metric} (mean, {spread})")
    ax.set_title(title or f"{metric} by configuration", loc="left", fontsize=10)
    return _save(fig, path)


def plot_net_stance_over_time(
    over_time: Any, path: str | Path, top_n: int = 5, title: str = "", period_name: str = "period"
) -> Path:
    """Net stance per period for the ``top_n`` most mentioned actors: one line each, the bootstrap
    95% CI as a band (where defined), the sentence count at each point.

    ``over_time``: ``actor_id``, ``actor_name``, ``period_start``, ``n_sentences``, ``net_stance``,
    ``net_stance_ci_low``/``_high`` (``over_time.<fmt>`` of ``stance.score``).
    """
    totals = over_time.groupby("actor_id", sort=False)["n_sentences"].sum().sort_values(ascending=False, kind="stable")
    top = list(totals.index[:top_n])
    fig, ax = plt.subplots(figsize=(8, 4.2))
    for i, actor_id in enumerate(top):
        g = over_time[over_time["actor_id"] == actor_id].sort_values("period_start")
        x, color = g["period_start"].to_numpy(), _LINE_COLORS[i % len(_LINE_COLORS)]
        ax.plot(x, g["net_stance"], marker="o", color=color, label=str(g["actor_name"].iloc[0]), lw=1.6)
        ax.fill_between(
            x, g["net_stance_ci_low"].astype(float), g["net_stance_ci_high"].astype(float), color=color, alpha=0.15
        )
        for xi, yi, n in zip(x, g["net_stance"], g["n_sentences"]):
            ax.annotate(f"n={int(n)}", (xi, yi), textcoords="offset points", xytext=(0, 6), fontsize=7, ha="center")
    ax.axhline(0, color="#888888", lw=0.8, ls="--")
    ax.set_ylim(-1.05, 1.05)
    ax.set_ylabel("net stance (supportive − critical) / n")
    ax.set_xlabel(period_name)
    left_out = len(totals) - len(top)
    note = f"; {left_out} more actor{'s' if left_out != 1 else ''} in the table" if left_out > 0 else ""
    ax.set_title(title or f"Net stance by {period_name} (95% CI bands{note})", loc="left", fontsize=10)
    if top:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=8)
    fig.autofmt_xdate()
    return _save(fig, path)


def plot_stance_heatmap(by_group: Any, column: str, path: str | Path, top_n: int = 20, title: str = "") -> Path:
    """Actors (rows, most mentioned first) x values of ``column`` (e.g. outlets): net stance as a
    colour on a diverging, colour-blind-safe scale (-1 critical ... +1 supportive), with the net
    stance and the sentence count n written in each cell; empty cells have no mentions."""
    totals = by_group.groupby("actor_id", sort=False)["n_sentences"].sum().sort_values(ascending=False, kind="stable")
    actors = list(totals.index[:top_n])
    values = sorted(by_group[column].astype(str).unique())
    grid = np.full((len(actors), len(values)), np.nan)
    counts = np.zeros_like(grid)
    names = {}
    for _, row in by_group[by_group["actor_id"].isin(actors)].iterrows():
        i, j = actors.index(row["actor_id"]), values.index(str(row[column]))
        grid[i, j], counts[i, j] = row["net_stance"], row["n_sentences"]
        names[row["actor_id"]] = row["actor_name"]
    fig, ax = plt.subplots(figsize=(1.3 * max(len(values), 1) + 3, 0.5 * max(len(actors), 1) + 1.6))
    image = ax.imshow(np.ma.masked_invalid(grid), cmap="PuOr", vmin=-1, vmax=1, aspect="auto")
    ax.set_xticks(range(len(values)), values, rotation=30, ha="right")
    ax.set_yticks(range(len(actors)), [str(names.get(a, a)) for a in actors])
    for i in range(len(actors)):
        for j in range(len(values)):
            if counts[i, j] > 0:
                dark = abs(grid[i, j]) > 0.6
                text = f"{grid[i, j]:+.2f}\nn={int(counts[i, j])}"
                ax.text(j, i, text, ha="center", va="center", fontsize=7, color="white" if dark else "black")
    fig.colorbar(image, ax=ax, label="net stance", shrink=0.8)
    left_out = len(totals) - len(actors)
    note = f" ({left_out} more actor{'s' if left_out != 1 else ''} in the table)" if left_out > 0 else ""
    ax.set_title(title or f"Net stance by actor and {column}{note}", loc="left", fontsize=10)
    return _save(fig, path)
