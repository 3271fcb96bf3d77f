"""The analyst's views of a finished scoring run, after ``articles``/``actors`` are written:
``by_<column>.<fmt>`` and ``over_time.<fmt>`` (:mod:`stance.scoring.groups`), their figures,
the spreadsheet-safe CSV flavour and ``report.html`` (:mod:`stance.scoring.html_report`).
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from stance.analysis.plots import plot_net_stance_over_time, plot_stance_by_actor, plot_stance_heatmap
from stance.errors import StanceError
from stance.io import atomic_path, write_table
from stance.scoring.groups import article_counts, freq_name, grouped_table, over_time_table
from stance.scoring.html_report import write_report
from stance.scoring.state import ScoreState

log = logging.getLogger("stance.score")
# a spreadsheet runs a cell starting with one of these as a formula (CSV/formula injection)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def check_view_options(opts: Any, meta_columns: Iterable[str]) -> None:
    """score.group_by / score.time_column must name meta columns that are read (start-up check)."""
    meta = list(meta_columns)
    for column in [*opts.group_by, *([opts.time_column] if opts.time_column else [])]:
        if column not in meta:
            key = "score.time_column" if column == opts.time_column else "score.group_by"
            raise StanceError(
                f"{key}: {column!r} is not a meta column of the input (add it: input.meta_columns=[{','.join([*meta, column])}])"
            )
    if int(opts.top_actors) < 1 or int(opts.examples) < 0:
        raise StanceError("score.top_actors must be at least 1 and score.examples at least 0")


def excel_cell(value: str) -> str:
    """``value`` with a leading apostrophe when a spreadsheet would read it as a formula."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def excel_csv(path: Path) -> None:
    """Rewrite a CSV for spreadsheets, atomically and row by row: UTF-8 BOM (Excel then reads
    UTF-8), formula-looking text cells neutralised. Numbers (``-0.25``) stay numbers."""
    # contexts exit in reverse: both files are closed before atomic_path renames
    with (
        atomic_path(path) as tmp,
        path.open(encoding="utf-8", newline="") as src,
        tmp.open("w", encoding="utf-8-sig", newline="") as dst,
    ):
        writer = csv.writer(dst)
        for row in csv.reader(src):
            writer.writerow([cell if _is_number(cell) else excel_cell(cell) for cell in row])


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def write_views(out: Path, state: ScoreState, cfg: Any, actors: pd.DataFrame, record: dict[str, Any]) -> dict[str, Any]:
    """Group and time tables, figures, excel CSVs, report.html; returns run.json's ``outputs`` entries."""
    opts, fmt = cfg.score, str(cfg.score.format)
    outputs: dict[str, Any] = {}
    figures: dict[str, Path] = {}
    views: dict[str, pd.DataFrame] = {}
    model_name = Path(str(record.get("model", {}).get("dir", ""))).name or "model"
    counts = record.get("counts", {})
    mentions, low = int(counts.get("mentions") or 0), int(counts.get("low_confidence") or 0)
    plot_path = out / "stance_by_actor.png"
    if len(actors):  # redrawn here with the model and the low-confidence share on the figure
        note = f"model: {model_name} · low-confidence mentions: {low} of {mentions} ({low / max(mentions, 1):.0%})"
        title = f"Stance by actor ({counts.get('articles', 0)} articles)"
        plot_stance_by_actor(actors, plot_path, title=title, top_n=int(opts.top_actors), note=note)
        figures["Stance by actor"] = plot_path
    columns = [*opts.group_by, *([opts.time_column] if opts.time_column else [])]
    arts = article_counts(state, columns) if columns else None
    reps, seed = int(opts.bootstrap), int(cfg.seed)
    for column in opts.group_by:
        assert arts is not None
        views[f"by_{column}"] = table = grouped_table(arts, column, reps, seed)
        outputs[f"by_{column}"] = write_table(table, out / f"by_{column}.{fmt}").name
        if len(table):
            fig = plot_stance_heatmap(table, column, out / f"stance_by_{column}.png", top_n=int(opts.top_actors))
            figures[f"Net stance by actor and {column}"] = fig
    if opts.time_column:
        assert arts is not None
        table, undated = over_time_table(arts, opts.time_column, str(opts.time_freq), reps, seed)
        views["over_time"] = table
        outputs["over_time"] = write_table(table, out / f"over_time.{fmt}").name
        outputs["undated_articles"] = undated
        if undated:
            log.warning("%d article(s) without a %s value left out of over_time.%s", undated, opts.time_column, fmt)
        if len(table):
            name = freq_name(str(opts.time_freq))
            figures[f"Net stance by {name}"] = plot_net_stance_over_time(
                table, out / "stance_over_time.png", top_n=min(5, int(opts.top_actors)), period_name=name
            )
    if fmt == "csv" and str(opts.csv_flavour) == "excel":
        for name in ("mentions", "articles", "actors", *(k for k in outputs if k.startswith(("by_", "over_time")))):
            if (out / f"{name}.csv").exists():
                excel_csv(out / f"{name}.csv")
    outputs["figures"] = [p.name for p in figures.values()]
    if opts.report:
        meta = [c for c in columns if c]
        outputs["report"] = write_report(out, state, record, actors, views, figures, meta, int(opts.examples)).name
    return outputs
