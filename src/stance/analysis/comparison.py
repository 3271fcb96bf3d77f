"""Rank training runs and sweeps in one table (the logic of ``python -m stance.compare PATH...``).

Inputs are sweep folders or run folders in any mix; every folder below them holding ``.hydra/``
or ``run.json`` is a run (``stance.train``'s run dir, docs/ARCHITECTURE.md). For each run the
compare reads ``.hydra/overrides.yaml`` (what was varied), ``run.json`` (status, seed,
``test_data_hash``), ``metrics.json`` and ``predictions.jsonl``.

Contract:

* Columns: one per override key (any run's) whose value differs between runs, the value being
  each run's resolved one (its config-group choice or its ``.hydra/config.yaml`` value, so a run
  that did not override a key still has it), then the chosen metrics, ``--metric`` first; rows
  sorted by ``--metric``, higher first.
* Runs whose overrides differ only by ``seed`` form one configuration row: the mean over seeds,
  the sample standard deviation (ddof=1; blank for one seed) and the number of seeds.
* Significance: a paired bootstrap over the test rows every run of both configurations
  predicted (joined on ``example_id``), each configuration against the best-ranked one. Every
  resample draws the rows once and scores all runs on them; a multi-seed configuration scores
  the mean of its seeds' macro-F1 on that resample (pooled, like the table), so the interval
  reflects test-set sampling of the seed-averaged score; seed-to-seed spread is the ``std``
  column. Reported: the observed macro-F1 difference (config - best), its 95% percentile
  interval and a two-sided p-value ``min(1, 2 * (min(#d < 0, #d > 0) + #d == 0 / 2 + 1) / (N + 1))``
  (N resamples; identical predictions give p = 1, the smallest p is 2 / (N + 1)).
* Runs evaluated on different test data (``run.json`` ``test_data_hash``) are refused unless
  ``allow_mixed_test_data``; then a ``test_data`` column shows each row's hash.
* Runs that are running, failed or have no ``metrics.json`` are rows with that status (one row
  per run, after the ranked rows), never a crash.
* Writes ``comparison.md``, ``comparison.csv`` and ``comparison.png`` atomically (``stance.io``)
  to ``--out`` or the common parent of the inputs.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stance.analysis.plots import plot_comparison
from stance.analysis.runs import Run, find_run_dirs, load_run, read_predictions
from stance.errors import StanceError
from stance.io import write_table, write_text
from stance.labels import LABELS

log = logging.getLogger(__name__)

DEFAULT_METRICS = ("test_macro_f1", "test_accuracy", "validation_macro_f1", "cv_macro_f1_mean")
# keys that identify repetitions of one configuration, never a column of their own
SEED_KEYS = ("seed",)
OUTPUT_NAMES = ("comparison.md", "comparison.csv", "comparison.png")


# --- paired bootstrap --------------------------------------------------------------------------
def _macro_f1_weighted(y: np.ndarray, p: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Macro-F1 over all LABELS (absent label = 0, as stance.analysis.metrics) for each row of ``weights``.

    ``weights`` is (B, n): how often each test row is drawn in each resample; a row of ones is
    the observed score.
    """
    f1s = []
    for label in range(len(LABELS)):
        tp = weights @ ((y == label) & (p == label)).astype(np.float64)
        fp = weights @ ((y != label) & (p == label)).astype(np.float64)
        fn = weights @ ((y == label) & (p != label)).astype(np.float64)
        denom = 2 * tp + fp + fn
        f1s.append(np.divide(2 * tp, denom, out=np.zeros_like(denom), where=denom > 0))
    return np.mean(f1s, axis=0)


@dataclass
class Difference:
    delta: float
    low: float
    high: float
    p_value: float
    n_rows: int


def paired_bootstrap(
    gold: Sequence[str],
    preds_a: Sequence[Sequence[str]],
    preds_b: Sequence[Sequence[str]],
    n: int = 1000,
    seed: int = 0,
) -> Difference:
    """Macro-F1 difference ``mean_seeds(a) - mean_seeds(b)`` on shared rows, paired over resamples.

    ``preds_a``/``preds_b``: one prediction list per seed, aligned with ``gold``. Each resample
    draws the rows with replacement once and scores every seed of both sides on it.
    """
    index = {label: i for i, label in enumerate(LABELS)}
    y = np.array([index.get(g, -1) for g in gold])
    pa = [np.array([index.get(x, -2) for x in p]) for p in preds_a]
    pb = [np.array([index.get(x, -2) for x in p]) for p in preds_b]
    rows = len(y)
    if rows == 0:
        nan = float("nan")
        return Difference(nan, nan, nan, nan, 0)

    def diff(weights: np.ndarray) -> np.ndarray:
        a = np.mean([_macro_f1_weighted(y, p, weights) for p in pa], axis=0)
        b = np.mean([_macro_f1_weighted(y, p, weights) for p in pb], axis=0)
        return a - b

    observed = float(diff(np.ones((1, rows)))[0])
    if n <= 0:
        nan = float("nan")
        return Difference(observed, nan, nan, nan, rows)
    rng = np.random.default_rng(seed)
    deltas = []
    for start in range(0, n, 200):  # chunks bound the (B, n) weight matrix
        size = min(200, n - start)
        weights = rng.multinomial(rows, np.full(rows, 1.0 / rows), size=size).astype(np.float64)
        deltas.append(diff(weights))
    d = np.concatenate(deltas)
    # float noise: identical predictions give exact zeros, but guard against 1e-17 differences
    d = np.where(np.abs(d) < 1e-12, 0.0, d)
    low, high = np.quantile(d, [0.025, 0.975])
    # mid-p: a resample with no difference (common when two runs disagree on few rows) counts half
    # to each side; +1 keeps p above 0 with a finite number of resamples
    ties = 0.5 * int((d == 0).sum())
    extreme = min(int((d < 0).sum()), int((d > 0).sum())) + ties
    p_value = min(1.0, 2.0 * (extreme + 1) / (n + 1))
    return Difference(observed, float(low), float(high), p_value, rows)


# --- the comparison ----------------------------------------------------------------------------
# fewer shared test rows than this and the paired bootstrap says nothing (4 rows give an interval
# of [+0.000, +0.000] and p 1.000): the table shows "n/a (N shared rows)" instead
MIN_SHARED_ROWS = 30


@dataclass
class Row:
    """One line of the table: a configuration (completed seeds) or one unfinished run."""

    values: dict[str, str]  # override key -> value (the shown columns)
    runs: list[Run]
    status: str
    rank: int | None = None
    mean: dict[str, float] = field(default_factory=dict)
    std: dict[str, float] = field(default_factory=dict)
    nans: dict[str, int] = field(default_factory=dict)  # metric -> runs that reported it as NaN
    diff: Difference | None = None
    reference: bool = False

    @property
    def seeds(self) -> list[str]:
        return [str(r.seed) for r in self.runs]

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.values.items()) or "all runs"


@dataclass
class Comparison:
    keys: list[str]
    metrics: list[str]
    metric: str
    rows: list[Row]
    mixed_test_data: bool
    bootstrap: int
    seed: int
    inputs: list[Path]


def _mean_std(values: list[float]) -> tuple[float, float]:
    vals = [v for v in values if not math.isnan(v)]
    if not vals:
        return float("nan"), float("nan")
    mean = float(np.mean(vals))
    std = float(np.std(vals, ddof=1)) if len(vals) > 1 else float("nan")
    return mean, std


def compare_runs(
    paths: Sequence[str | os.PathLike[str]],
    metric: str = "test_macro_f1",
    metrics: Sequence[str] | None = None,
    allow_mixed_test_data: bool = False,
    bootstrap: int = 1000,
    seed: int = 0,
) -> Comparison:
    """Find, group, rank and bootstrap the runs under ``paths`` (see the module docstring)."""
    if not paths:
        raise StanceError("no paths given (pass sweep folders or run folders)")
    run_dirs: dict[Path, None] = {}
    for path in paths:
        for run_dir in find_run_dirs(path):
            run_dirs.setdefault(run_dir.resolve(), None)
    runs = [load_run(p) for p in run_dirs]
    log.info("found %d runs under %d path(s)", len(runs), len(paths))

    hashes: dict[str, list[Run]] = {}
    for run in runs:
        if run.test_data_hash:
            hashes.setdefault(str(run.test_data_hash), []).append(run)
    mixed = len(hashes) > 1
    if mixed and not allow_mixed_test_data:
        desc = "; ".join(f"{h[:12]} ({len(rs)} runs, e.g. {rs[0].path})" for h, rs in hashes.items())
        raise StanceError(
            f"runs were evaluated on different test data (test_data_hash {desc}); "
            "their scores are not comparable: pass --allow-mixed-test-data to list them anyway"
        )

    all_keys = sorted({k for r in runs for k in r.overrides if k not in SEED_KEYS})
    keys = [k for k in all_keys if len({r.resolved(k) for r in runs}) > 1]
    shown_metrics = [metric] + [m for m in (metrics or DEFAULT_METRICS) if m != metric]
    shown_metrics = [m for m in shown_metrics if m == metric or any(m in r.metrics for r in runs)]

    def ident(run: Run) -> tuple[str, ...]:
        # all non-seed keys, not only the shown ones: the grouping must not depend on display
        values = tuple(run.resolved(k) for k in all_keys)
        return values + ((str(run.test_data_hash),) if mixed else ())

    groups: dict[tuple[str, ...], list[Run]] = {}
    unfinished: list[Row] = []
    for run in runs:
        values = {k: run.resolved(k) for k in keys}
        if run.status == "completed":
            groups.setdefault(ident(run), []).append(run)
        else:
            unfinished.append(Row(values=values, runs=[run], status=run.status))
    rows: list[Row] = []
    for members in groups.values():
        members.sort(key=lambda r: (str(r.seed), str(r.path)))
        row = Row(values={k: members[0].resolved(k) for k in keys}, runs=members, status="completed")
        for m in shown_metrics:
            row.mean[m], row.std[m] = _mean_std([r.metrics.get(m, float("nan")) for r in members])
            row.nans[m] = sum(1 for r in members if m in r.metrics and math.isnan(r.metrics[m]))
            if row.nans[m]:
                log.warning("%s: %s is NaN in %d of %d run(s)", row.label, m, row.nans[m], len(members))
        seeds = [str(r.seed) for r in members]
        if len(set(seeds)) < len(seeds):
            log.warning("%s: %d runs share a seed; they count as repetitions", row.label, len(seeds))
        rows.append(row)
    rows.sort(key=lambda r: (math.isnan(r.mean[metric]), -np.nan_to_num(r.mean[metric], nan=0.0), r.label))
    for i, row in enumerate(rows, 1):
        row.rank = i
    unfinished.sort(key=lambda r: (r.status, r.label, str(r.runs[0].path)))
    _significance(rows, bootstrap, seed)
    return Comparison(
        keys=keys,
        metrics=shown_metrics,
        metric=metric,
        rows=rows + unfinished,
        mixed_test_data=mixed,
        bootstrap=bootstrap,
        seed=seed,
        inputs=[Path(p) for p in paths],
    )


def _significance(rows: list[Row], bootstrap: int, seed: int) -> None:
    """Paired bootstrap of each configuration against the best-ranked one with predictions."""
    preds: dict[int, list[dict[str, tuple[str, str]]]] = {}
    for i, row in enumerate(rows):
        if all(r.predictions.is_file() for r in row.runs):
            preds[i] = [read_predictions(r.predictions) for r in row.runs]
    if not preds:
        return
    best = min(preds)
    rows[best].reference = True
    for i, row_preds in preds.items():
        if i == best:
            continue
        both = row_preds + preds[best]
        shared = set(both[0]).intersection(*both[1:])
        # a row counts only where every run agrees on its gold label (same test data)
        ids = sorted(e for e in shared if len({p[e][0] for p in both}) == 1)
        if len(ids) < MIN_SHARED_ROWS:
            nan = float("nan")
            rows[i].diff = Difference(nan, nan, nan, nan, len(ids))
            continue
        gold = [both[0][e][0] for e in ids]
        rows[i].diff = paired_bootstrap(
            gold,
            [[p[e][1] for e in ids] for p in row_preds],
            [[p[e][1] for e in ids] for p in preds[best]],
            n=bootstrap,
            seed=seed,
        )


# --- output ------------------------------------------------------------------------------------
def _fmt(mean: float, std: float, n: int, nans: int = 0) -> str:
    """``mean ± std`` over the seeds that have the metric; NaN values are said, never dropped silently."""
    note = f" ({nans} of {n} NaN)" if nans else ""
    if math.isnan(mean):
        return f"NaN{note}" if nans else ""
    return (f"{mean:.3f} ± {std:.3f}" if n - nans > 1 and not math.isnan(std) else f"{mean:.3f}") + note


def _short(value: str) -> str:
    """Sampled floats (Optuna's 2.368863950364079e-05) shown as 2.369e-05; the CSV keeps them whole."""
    try:
        number = float(value)
    except ValueError:
        return value
    return f"{number:.4g}" if len(value) > 8 and math.isfinite(number) else value


def table(comp: Comparison) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the table as strings (what is printed and put in comparison.md)."""
    header = ["rank", *comp.keys]
    if comp.mixed_test_data:
        header.append("test_data")
    header += ["status", "seeds", *comp.metrics, "Δ macro-F1 vs best [95% CI]", "p", "shared rows"]
    body = []
    for row in comp.rows:
        cells = [str(row.rank) if row.rank else "-", *(_short(row.values[k]) for k in comp.keys)]
        if comp.mixed_test_data:
            cells.append(str(row.runs[0].test_data_hash or "")[:8])
        seeds = ",".join(row.seeds)
        cells += [row.status, f"{len(row.runs)} ({seeds})" if len(row.runs) > 1 else seeds]
        nan = float("nan")
        cells += [
            _fmt(row.mean.get(m, nan), row.std.get(m, nan), len(row.runs), row.nans.get(m, 0)) for m in comp.metrics
        ]
        if row.reference:
            cells += ["(best)", ""]
        elif row.diff is not None and 0 < row.diff.n_rows < MIN_SHARED_ROWS:
            cells += [f"n/a ({row.diff.n_rows} shared rows)", ""]
        elif row.diff is not None and row.diff.n_rows and not math.isnan(row.diff.low):
            d = row.diff
            cells += [f"{d.delta:+.3f} [{d.low:+.3f}, {d.high:+.3f}]", f"{d.p_value:.3f}"]
        elif row.diff is not None and row.diff.n_rows:
            cells += [f"{row.diff.delta:+.3f}", ""]
        elif row.diff is not None:
            cells += ["no shared test rows", ""]
        else:
            cells += ["", ""]
        cells.append(str(row.diff.n_rows) if row.diff is not None else "")
        body.append(cells)
    return header, body


def render_text(header: list[str], body: list[list[str]]) -> str:
    widths = [max(len(c) for c in col) for col in zip(header, *body)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render_markdown(header: list[str], body: list[list[str]]) -> str:
    def esc(cell: str) -> str:
        return cell.replace("|", "\\|")

    lines = ["| " + " | ".join(esc(c) for c in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(esc(c) for c in r) + " |" for r in body]
    return "\n".join(lines)


def to_frame(comp: Comparison, base: Path) -> Any:
    """The table as numbers (one column per statistic) for comparison.csv."""
    records = []
    for row in comp.rows:
        rec: dict[str, Any] = {"rank": row.rank, **row.values, "status": row.status}
        rec["n_seeds"] = len(row.runs)
        rec["seeds"] = " ".join(row.seeds)
        for m in comp.metrics:
            rec[f"{m}_mean"] = row.mean.get(m)
            rec[f"{m}_std"] = row.std.get(m)
            rec[f"{m}_nan_runs"] = row.nans.get(m, 0)
        d = row.diff
        rec["delta_macro_f1"] = 0.0 if row.reference else (d.delta if d else None)
        rec["delta_ci_low"] = d.low if d else None
        rec["delta_ci_high"] = d.high if d else None
        rec["p_value"] = d.p_value if d else None
        rec["shared_test_rows"] = d.n_rows if d else None
        rec["test_data_hash"] = " ".join(sorted({str(r.test_data_hash or "") for r in row.runs}))
        rec["runs"] = " ".join(os.path.relpath(r.path, base) for r in row.runs)
        records.append(rec)
    frame = pd.DataFrame.from_records(records)
    for col in ("rank", "shared_test_rows"):  # integers with gaps, not floats
        frame[col] = frame[col].astype("Int64")
    return frame


def default_out(paths: Sequence[str | os.PathLike[str]]) -> Path:
    """The common parent of the inputs (the input itself when there is one)."""
    return Path(os.path.commonpath([str(Path(p).resolve()) for p in paths]))


def _mean_bound(runs: list[Run], key: str) -> float:
    """A configuration's CI bound: the mean of its runs' bootstrap bounds (NaN when none has one)."""
    values = [r.metrics[key] for r in runs if key in r.metrics and r.metrics[key] == r.metrics[key]]
    return float(np.mean(values)) if values else float("nan")


def write_comparison(comp: Comparison, out: Path) -> list[Path]:
    """Write comparison.md / .csv / .png into ``out`` (atomically, via stance.io)."""
    out.mkdir(parents=True, exist_ok=True)
    header, body = table(comp)
    method = (
        f"Sorted by `{comp.metric}` (mean over seeds, ± sample std). Δ: paired bootstrap "
        f"({comp.bootstrap} resamples of the shared test rows, seed {comp.seed}) of each "
        "configuration's seed-averaged test macro-F1 minus the best's, 95% percentile interval, "
        "two-sided p."
    )
    runs = [
        f"- `{os.path.relpath(r.path, out)}`: {row.status}" + (f" ({r.error})" if r.error else "")
        for row in comp.rows
        for r in row.runs
    ]
    md = "\n\n".join(["# Comparison", method, render_markdown(header, body), "## Runs\n\n" + "\n".join(runs)])
    write_text(out / "comparison.md", md + "\n")
    write_table(to_frame(comp, out), out / "comparison.csv")
    ranked = [r for r in comp.rows if r.rank]
    metric = "test_macro_f1" if "test_macro_f1" in comp.metrics else comp.metric
    plot_comparison(
        [r.label for r in ranked],
        [r.mean.get(metric, r.mean[comp.metric]) for r in ranked],
        [r.std.get(metric, r.std[comp.metric]) for r in ranked],
        out / "comparison.png",
        metric=metric,
        n_seeds=[len(r.runs) for r in ranked],
        ci_low=[_mean_bound(r.runs, f"{metric}_ci_low") for r in ranked],
        ci_high=[_mean_bound(r.runs, f"{metric}_ci_high") for r in ranked],
        title=f"{metric}: mean over seeds; error bars: bootstrap 95% CI over the test rows (mean of the seeds' bounds)",
    )
    return [out / name for name in OUTPUT_NAMES]
