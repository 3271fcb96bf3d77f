"""Stance by group (outlet, section ...) and over time, from the mention parts of a scoring run.

``by_<column>.<fmt>``: one row per (actor, value of a meta column); ``over_time.<fmt>``: one row
per (actor, period of ``score.time_column``). Each row has the counts and shares of every label,
net stance = (supportive - critical) / sentences and its bootstrap 95% CI with the group's
articles resampled (as ``actors.<fmt>`` does for the whole corpus). Dates are read as ISO 8601
(``2025-03-14``, ``2025-03-14T09:30:00Z``): a day-first or month-first date is ambiguous, so it is
refused rather than guessed (:func:`date_problem`, called per article while scoring).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from stance.labels import LABELS
from stance.scoring.state import ScoreState
from stance.scoring.tables import stance_summary

MISSING_VALUE = "(missing)"
_FREQ_NAMES = {"W": "week", "M": "month", "Q": "quarter"}


def parse_dates(values: Sequence[Any] | pd.Series) -> pd.Series:
    """ISO 8601 strings as naive UTC timestamps; NaT for empty or unparseable values."""
    text = pd.Series(values, dtype="object").fillna("").astype(str).str.strip()
    parsed = pd.to_datetime(text.where(text != ""), errors="coerce", utc=True, format="ISO8601")
    return parsed.dt.tz_convert(None)


def date_problem(value: Any, column: str) -> str | None:
    """Why ``value`` (an article's ``column``) is not a usable date, or None (an empty value is
    fine: the article is left out of ``over_time`` only)."""
    text = "" if value is None else str(value).strip()
    if not text or not pd.isna(parse_dates([text]).iloc[0]):
        return None
    return f"score.time_column={column}: {text!r} is not a date (expected ISO 8601, e.g. 2025-03-14)"


def article_counts(state: ScoreState, columns: Sequence[str]) -> pd.DataFrame:
    """One row per (article, actor) over all parts: ``columns`` (meta values of the article),
    n_sentences, n_<label>, n_low_confidence. One part is read at a time."""
    keys = ["article_id", "actor_id", "actor_name", *dict.fromkeys(c for c in columns if c)]
    frames = []
    for num in sorted(state.parts):
        df = pq.read_table(state.part_path(num), columns=[*keys, "label", "low_confidence"]).to_pandas()
        if not len(df):
            continue
        counts = pd.DataFrame({f"n_{lab}": (df["label"] == lab).astype("int64") for lab in LABELS})
        counts["n_low_confidence"] = df["low_confidence"].astype("int64")
        counts["n_sentences"] = 1
        frames.append(pd.concat([df[keys], counts], axis=1).groupby(keys, sort=False).sum().reset_index())
    if not frames:
        empty = {k: pd.Series(dtype=object) for k in keys}
        return pd.DataFrame(empty | {c: pd.Series(dtype="int64") for c in _COUNT_COLUMNS})
    return pd.concat(frames, ignore_index=True)


_COUNT_COLUMNS = ("n_sentences", *(f"n_{lab}" for lab in LABELS), "n_low_confidence")


def grouped_table(arts: pd.DataFrame, key: str, reps: int, seed: int) -> pd.DataFrame:
    """Per (actor, ``key`` value): n_articles, counts, shares, net stance and its bootstrap CI.

    Actors in order of their total sentences (most first), values in sorted order; an empty
    value is shown as ``(missing)``.
    """
    arts = arts.assign(**{key: arts[key].fillna("").astype(str).replace("", MISSING_VALUE)})
    rows = []
    for (actor_id, value), g in arts.groupby(["actor_id", key], sort=False):
        n = g["n_sentences"].to_numpy()
        diff = (g["n_supportive"] - g["n_critical"]).to_numpy()
        row: dict[str, Any] = {
            "actor_id": actor_id,
            "actor_name": g["actor_name"].iloc[0],
            key: value,
            "n_articles": int(g["article_id"].nunique()),
        }
        row.update({c: int(g[c].sum()) for c in _COUNT_COLUMNS})
        row.update(stance_summary(row, n, diff, reps, seed, cell=f"{actor_id}\0{value}"))
        rows.append(row)
    cols = [
        "actor_id",
        "actor_name",
        key,
        "n_articles",
        *_COUNT_COLUMNS,
        *(f"share_{lab}" for lab in LABELS),
        "net_stance",
        "net_stance_ci_low",
        "net_stance_ci_high",
    ]
    out = pd.DataFrame(rows, columns=cols)
    if not len(out):
        return out
    order = out.groupby("actor_id")["n_sentences"].sum()
    out["_total"] = out["actor_id"].map(order)
    out = out.sort_values(["_total", "actor_id", key], ascending=[False, True, True], kind="stable")
    return out.drop(columns="_total").reset_index(drop=True)


def over_time_table(arts: pd.DataFrame, column: str, freq: str, reps: int, seed: int) -> tuple[pd.DataFrame, int]:
    """Per (actor, period of ``column``): as :func:`grouped_table` with ``period`` (``2025-03``,
    ``2025Q1``, or the week's Monday) and ``period_start``; returns (table, undated articles)."""
    dates = parse_dates(arts[column])
    undated = int(arts.loc[dates.isna(), "article_id"].nunique())
    dated = arts.loc[dates.notna()].copy()
    periods = dates[dates.notna()].dt.to_period(str(freq))
    dated["period"] = periods.astype(str).to_numpy()
    table = grouped_table(dated, "period", reps, seed)
    starts = dict(zip(dated["period"], periods.dt.start_time))
    table.insert(3, "period_start", pd.to_datetime(table["period"].map(starts)))
    if str(freq) == "W":  # "2025-03-10/2025-03-16" -> the Monday, readable and sortable
        table["period"] = table["period_start"].dt.strftime("%Y-%m-%d")
    table = table.sort_values(["actor_id", "period_start"], kind="stable")
    order = table.groupby("actor_id")["n_sentences"].transform("sum")
    table = table.iloc[np.lexsort((table["period_start"].to_numpy(), table["actor_id"].to_numpy(), -order))]
    return table.reset_index(drop=True), undated


def freq_name(freq: str) -> str:
    return _FREQ_NAMES.get(str(freq), str(freq))
