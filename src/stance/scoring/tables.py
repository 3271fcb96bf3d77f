"""The output tables of a scoring run: mention parts, per-article and per-actor aggregates.

Aggregates are always recomputed from all parts (one part in memory at a time), so a resumed run
ends with the same outputs as an uninterrupted one; the per-actor net stance gets a bootstrap 95%
CI with articles resampled.
"""

from __future__ import annotations

import contextlib
import json
import math
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from stance.data.rows import mention_schema
from stance.io import atomic_path
from stance.labels import LABELS
from stance.scoring.state import ScoreState


def mention_table(
    rows: list[dict[str, Any]], probs: np.ndarray, labels: Sequence[str], meta_columns: Sequence[str], threshold: float
) -> Any:
    schema = mention_schema(meta_columns, labels)
    top = probs.argmax(axis=1) if len(rows) else np.zeros(0, dtype=int)
    cols: dict[str, Any] = {}
    for name in schema.names:
        if name == "label":
            cols[name] = [labels[i] for i in top]
        elif name.startswith("prob_") and name[5:] in labels:
            cols[name] = probs[:, labels.index(name[5:])]
        elif name == "low_confidence":
            cols[name] = probs.max(axis=1) < threshold if len(rows) else np.zeros(0, dtype=bool)
        else:
            cols[name] = [row.get(name, "") for row in rows]
    return pa.table(cols, schema=schema)


def _counts_frame(df: Any, keys: list[str]) -> Any:
    """Per group of ``keys`` (in order of appearance): n_sentences, n_<label>, n_low_confidence,
    share_<label> and net_stance = (n_supportive - n_critical) / n_sentences."""
    counts = pd.DataFrame({f"n_{lab}": (df["label"] == lab).astype("int64") for lab in LABELS})
    counts["n_low_confidence"] = df["low_confidence"].astype("int64")
    counts["n_sentences"] = 1
    out = pd.concat([df[keys], counts], axis=1).groupby(keys, sort=False, dropna=False).sum().reset_index()
    for lab in LABELS:
        out[f"share_{lab}"] = out[f"n_{lab}"] / out["n_sentences"]
    out["net_stance"] = (out["n_supportive"] - out["n_critical"]) / out["n_sentences"]
    return out


def bootstrap_net_ci(n: np.ndarray, diff: np.ndarray, reps: int, seed: int, level: float = 0.95) -> tuple[float, float]:
    """Percentile CI of the pooled net stance sum(diff)/sum(n), resampling articles (clusters).

    ``n``: sentences per article, ``diff``: supportive - critical per article. NaN for fewer
    than two articles (a CI over one article says nothing). Resamples in blocks so memory stays
    bounded for large corpora.
    """
    m = len(n)
    if m < 2 or reps < 1:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    block = max(1, min(reps, 2_000_000 // m))
    stats = np.empty(reps, dtype=np.float64)
    n = n.astype(np.float64)
    diff = diff.astype(np.float64)
    for b0 in range(0, reps, block):
        k = min(block, reps - b0)
        idx = rng.integers(0, m, size=(k, m))
        stats[b0 : b0 + k] = diff[idx].sum(axis=1) / n[idx].sum(axis=1)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(stats, [alpha, 1.0 - alpha])
    return (float(lo), float(hi))


class _TableWriter:
    """Append DataFrames to one table file (parquet/csv/jsonl), e.g. an atomic temporary path."""

    def __init__(self, path: Path, fmt: str):
        self.path, self.fmt = path, fmt
        self.writer: Any = None  # pyarrow ParquetWriter
        self.fh: Any = None
        self.schema: Any = None

    def write(self, df: Any) -> None:
        if self.fmt == "parquet":
            table = pa.Table.from_pandas(df, preserve_index=False)
            if self.writer is None:
                self.schema = table.schema
                self.writer = pq.ParquetWriter(self.path, self.schema)
            self.writer.write_table(table.cast(self.schema))
            return
        header = self.fh is None
        if self.fh is None:
            self.fh = self.path.open("w", encoding="utf-8", newline="")
        if "other_mentions" in df.columns:
            conv = _json_list if self.fmt == "csv" else _plain_list
            df = df.assign(other_mentions=[conv(v) for v in df["other_mentions"]])
        if self.fmt == "csv":
            df.to_csv(self.fh, index=False, header=header)
        else:
            for rec in df.to_dict(orient="records"):
                self.fh.write(json.dumps(rec, ensure_ascii=False, default=_json_default) + "\n")

    def close(self, empty: Any) -> None:
        """Finish the file; ``empty`` (a DataFrame with the columns) is written when nothing was."""
        if self.writer is None and self.fh is None:
            self.write(empty)
        if self.writer is not None:
            self.writer.close()
        if self.fh is not None:
            self.fh.close()


def _plain_list(value: Any) -> list[dict[str, Any]]:
    return [dict(v) for v in value] if value is not None else []


def _json_list(value: Any) -> str:
    return json.dumps(_plain_list(value), ensure_ascii=False, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(type(value).__name__)


def _write_table(df: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        writer = _TableWriter(tmp, path.suffix.lstrip("."))
        writer.write(df)
        writer.close(df)


ARTICLE_COUNT_COLUMNS: tuple[str, ...] = (
    "n_sentences",
    *(f"n_{lab}" for lab in LABELS),
    "n_low_confidence",
    *(f"share_{lab}" for lab in LABELS),
    "net_stance",
)


def aggregate(
    out: Path, state: ScoreState, labels: Sequence[str], meta_columns: Sequence[str], fmt: str, reps: int, seed: int
) -> dict[str, Any]:
    """Write ``articles.<fmt>``, ``actors.<fmt>`` (and ``mentions.<fmt>`` for csv/jsonl) from all parts.

    Reads one part at a time: an article's rows are all in one part, so its per-actor counts are
    final there; the corpus totals keep two numbers per (article, actor) for the bootstrap.
    Returns ``{"mentions": row count, "actors": the actors DataFrame}``.
    """
    article_cols = ["article_id", *meta_columns, "actor_id", "actor_name"]
    empty_articles = pd.DataFrame(
        {c: pd.Series(dtype=object) for c in article_cols}
        | {c: pd.Series(dtype="float64" if c.startswith(("share", "net")) else "int64") for c in ARTICLE_COUNT_COLUMNS}
    )
    per_actor: dict[str, dict[str, Any]] = {}
    n_rows = 0
    export = fmt != "parquet"  # parquet: the mentions/ folder is the output
    with (
        atomic_path(out / f"articles.{fmt}") as art_tmp,
        _maybe_atomic(out / f"mentions.{fmt}" if export else None) as men_tmp,
    ):
        art_writer = _TableWriter(art_tmp, fmt)
        men_writer = _TableWriter(men_tmp, fmt) if export else None
        for num in sorted(state.parts):
            table = pq.read_table(state.part_path(num))
            n_rows += table.num_rows
            if men_writer is not None and table.num_rows:
                men_writer.write(table.to_pandas())
            if table.num_rows == 0:
                continue
            df = table.select([*article_cols, "label", "low_confidence"]).to_pandas()
            arts = _counts_frame(df, article_cols)[[*article_cols, *ARTICLE_COUNT_COLUMNS]]
            art_writer.write(arts)
            for actor_id, g in arts.groupby("actor_id", sort=False):
                acc = per_actor.setdefault(
                    actor_id,
                    {
                        "actor_name": g["actor_name"].iloc[0],
                        "n": [],
                        "diff": [],
                        "counts": np.zeros(len(LABELS) + 1, int),
                    },
                )
                acc["n"].append(g["n_sentences"].to_numpy())
                acc["diff"].append((g["n_supportive"] - g["n_critical"]).to_numpy())
                acc["counts"] += g[[*(f"n_{lab}" for lab in LABELS), "n_low_confidence"]].to_numpy().sum(axis=0)
        art_writer.close(empty_articles)
        if men_writer is not None:
            men_writer.close(mention_schema(meta_columns, labels).empty_table().to_pandas())

    actors = _actor_table(per_actor, reps, seed)
    _write_table(actors, out / f"actors.{fmt}")
    return {"mentions": n_rows, "actors": actors}


def _maybe_atomic(path: Path | None) -> Any:
    return atomic_path(path) if path is not None else contextlib.nullcontext()


def stance_summary(
    counts: dict[str, Any], n: np.ndarray, diff: np.ndarray, reps: int, seed: int, cell: str
) -> dict[str, float]:
    """Label shares, net stance and its bootstrap CI of one table cell (an actor, or an actor and a
    group value): ``counts`` holds its ``n_<label>``, ``n``/``diff`` its articles' sentence counts
    and supportive - critical counts. The CI is seeded by the cell's name, not its position, so a
    cell's CI does not depend on the other cells."""
    total = int(n.sum())
    lo, hi = bootstrap_net_ci(n, diff, reps, seed=(seed * 1_000_003 + zlib.crc32(cell.encode())) % 2**32)
    return {
        **{f"share_{lab}": counts[f"n_{lab}"] / total for lab in LABELS},
        "net_stance": float(diff.sum() / total),
        "net_stance_ci_low": lo,
        "net_stance_ci_high": hi,
    }


def _actor_table(per_actor: dict[str, dict[str, Any]], reps: int, seed: int) -> pd.DataFrame:
    """One row per actor over the corpus (most sentences first), with the bootstrap CI of net stance."""
    actor_rows = []
    for actor_id, acc in per_actor.items():
        n = np.concatenate(acc["n"])
        diff = np.concatenate(acc["diff"])
        row: dict[str, Any] = {
            "actor_id": actor_id,
            "actor_name": acc["actor_name"],
            "n_articles": len(n),
            "n_sentences": int(n.sum()),
        }
        row.update({f"n_{lab}": int(c) for lab, c in zip(LABELS, acc["counts"])})
        row["n_low_confidence"] = int(acc["counts"][-1])
        row.update(stance_summary(row, n, diff, reps, seed, cell=actor_id))
        actor_rows.append(row)
    actor_cols = [
        "actor_id",
        "actor_name",
        "n_articles",
        *ARTICLE_COUNT_COLUMNS,
        "net_stance_ci_low",
        "net_stance_ci_high",
    ]
    actors = pd.DataFrame(actor_rows, columns=actor_cols)
    actors = actors.sort_values(["n_sentences", "actor_id"], ascending=[False, True], kind="stable")
    return actors.reset_index(drop=True)
