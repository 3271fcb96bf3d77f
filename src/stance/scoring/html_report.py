"""``report.html`` of a scoring run: one self-contained page a journalist can read to trust or doubt
the numbers.

No network and no script: styles inline, figures embedded as base64 PNG, every value escaped. The
page has the run summary, the per-actor table (net stance with its 95% CI, low-confidence share),
the outlet/time views when configured, and for each actor the highest-confidence sentences of every
label and the least confident ones, the target mention highlighted.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from stance.io import write_text
from stance.labels import LABELS
from stance.scoring.state import ScoreState

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:72rem;color:#222;padding:0 1rem}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}h3{font-size:1rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.85rem}th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:right}
th{background:#f4f4f4}td.l,th.l{text-align:left}img{max-width:100%;margin:.5rem 0}
mark{background:#ffe08a;padding:0 .1em}.s{color:#0072B2}.c{color:#D55E00}.n{color:#555}
li{margin:.3rem 0}.meta{color:#666;font-size:.8rem}.note{color:#555;font-size:.9rem}
"""
_CLASS = {"supportive": "s", "critical": "c", "neutral": "n"}


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _num(value: Any, signed: bool = True) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return ""
    return "" if math.isnan(v) else (f"{v:+.2f}" if signed else f"{v:.0%}")


def _ci(row: Any) -> str:
    lo, hi = _num(row.get("net_stance_ci_low")), _num(row.get("net_stance_ci_high"))
    return f"[{lo}, {hi}]" if lo and hi else "n/a (one article)"


def _image(path: Path, alt: str) -> str:
    if not path.exists():
        return ""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{_e(alt)}">'


def example_rows(state: ScoreState, k: int, extra: Sequence[str] = ()) -> pd.DataFrame:
    """Per actor: the ``k`` most confident rows of each predicted label and its ``k`` least confident
    rows (column ``kind``: the label, or ``low``). One part is read at a time; candidates are trimmed
    after each, so memory stays bounded."""
    cols = ["article_id", "actor_id", "sentence", "mention_start", "mention_end", "label", *extra]
    best: pd.DataFrame | None = None
    for num in sorted(state.parts):
        table = pq.read_table(state.part_path(num))
        if not table.num_rows:
            continue
        df = table.select(list(dict.fromkeys([*cols, *(f"prob_{lab}" for lab in LABELS)]))).to_pandas()
        df["confidence"] = df[[f"prob_{lab}" for lab in LABELS]].max(axis=1)
        best = _trim(df if best is None else pd.concat([best, df], ignore_index=True), k)
    if best is None:
        return pd.DataFrame(columns=[*cols, "confidence", "kind"])
    return best


def _trim(df: pd.DataFrame, k: int) -> pd.DataFrame:
    df = df.drop(columns="kind", errors="ignore").drop_duplicates(["article_id", "actor_id", "sentence"])
    top = df.sort_values("confidence", ascending=False, kind="stable").groupby(["actor_id", "label"]).head(k)
    low = df.sort_values("confidence", kind="stable").groupby("actor_id").head(k)
    return pd.concat([top.assign(kind=top["label"]), low.assign(kind="low")], ignore_index=True)


def _highlight(row: Any) -> str:
    s, a, b = str(row["sentence"]), int(row["mention_start"]), int(row["mention_end"])
    return f"{_e(s[:a])}<mark>{_e(s[a:b])}</mark>{_e(s[b:])}"


def _example_list(rows: pd.DataFrame, meta: Sequence[str]) -> str:
    items = []
    for _, row in rows.iterrows():
        where = ", ".join(_e(row[m]) for m in meta if str(row.get(m, "") or ""))
        source = f"{_e(row['article_id'])}{' · ' + where if where else ''}"
        label = str(row["label"])
        items.append(
            f'<li>{_highlight(row)} <span class="{_CLASS.get(label, "n")}">{_e(label)}</span> '
            f'<span class="meta">p={float(row["confidence"]):.2f} · {source}</span></li>'
        )
    return "<ul>" + "".join(items) + "</ul>" if items else '<p class="note">none</p>'


def _actor_table(actors: pd.DataFrame) -> str:
    head = (
        "<tr><th class=l>actor</th><th>articles</th><th>sentences</th>"
        + "".join(f"<th>{_e(lab)}</th>" for lab in LABELS)
        + "<th>net stance</th><th>95% CI</th><th>low confidence</th></tr>"
    )
    body = []
    for _, r in actors.iterrows():
        n = int(r["n_sentences"])
        low = int(r["n_low_confidence"]) / n if n else float("nan")
        body.append(
            f'<tr><td class=l><a href="#actor-{_e(r["actor_id"])}">{_e(r["actor_name"])}</a></td>'
            f"<td>{int(r['n_articles'])}</td><td>{n}</td>"
            + "".join(f"<td>{_num(r[f'share_{lab}'], signed=False)}</td>" for lab in LABELS)
            + f"<td>{_num(r['net_stance'])}</td><td>{_ci(r)}</td><td>{_num(low, signed=False)}</td></tr>"
        )
    return f"<table>{head}{''.join(body)}</table>"


def _group_table(df: pd.DataFrame, key: str) -> str:
    head = f"<tr><th class=l>actor</th><th class=l>{_e(key)}</th><th>articles</th><th>sentences</th><th>net stance</th><th>95% CI</th></tr>"
    body = "".join(
        f"<tr><td class=l>{_e(r['actor_name'])}</td><td class=l>{_e(r[key])}</td><td>{int(r['n_articles'])}</td>"
        f"<td>{int(r['n_sentences'])}</td><td>{_num(r['net_stance'])}</td><td>{_ci(r)}</td></tr>"
        for _, r in df.iterrows()
    )
    return f"<table>{head}{body}</table>"


def render(
    record: dict[str, Any],
    actors: pd.DataFrame,
    examples: pd.DataFrame,
    views: dict[str, pd.DataFrame],
    figures: dict[str, Path],
    meta: Sequence[str] = (),
) -> str:
    """The page as a string (see the module docstring). ``views``: table name (``by_outlet``,
    ``over_time``) -> DataFrame; ``figures``: caption -> PNG path (missing files are left out)."""
    counts = record.get("counts", {})
    model = record.get("model", {})
    mentions, low = int(counts.get("mentions") or 0), int(counts.get("low_confidence") or 0)
    low_share = f"{low / mentions:.0%}" if mentions else "n/a"
    parts = [
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>",
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        f"<title>Stance report: {_e(Path(str(model.get('dir', 'model'))).name)}</title><style>{_CSS}</style></head><body>",
        "<h1>Stance report</h1>",
        f'<p class="note">Model <code>{_e(model.get("dir"))}</code> · {int(counts.get("articles") or 0)} articles · '
        f"{mentions} mentions of {len(actors)} actors · {low} low-confidence mentions ({low_share}, top probability "
        f"below {_e(record.get('config', {}).get('score', {}).get('threshold', ''))}) · "
        f"{int(counts.get('problems') or 0)} input problems (listed in run.json).</p>",
        '<p class="note">Net stance = (supportive − critical) / sentences, from −1 to +1; the 95% CI resamples '
        "articles. The examples below are what the numbers are made of: read them before quoting a number.</p>",
        "<h2>Actors</h2>",
        _actor_table(actors),
    ]
    for caption, path in figures.items():
        if path.exists():
            parts.append(f"<h3>{_e(caption)}</h3>{_image(path, caption)}")
    for name, df in views.items():
        key = "period" if name == "over_time" else name.removeprefix("by_")
        parts.append(f"<h2>{_e(name.replace('_', ' '))}</h2>{_group_table(df, key)}")
    parts.append("<h2>Examples per actor</h2>")
    for _, actor in actors.iterrows():
        rows = examples[examples["actor_id"] == actor["actor_id"]]
        parts.append(f'<section id="actor-{_e(actor["actor_id"])}"><h3>{_e(actor["actor_name"])}</h3>')
        for kind in (*LABELS, "low"):
            sel = rows[rows["kind"] == kind]
            if kind == "low":
                title = "least confident (check these)"
                sel = sel.sort_values("confidence", kind="stable")
            else:
                title = f"most confident {kind}"
                sel = sel.sort_values("confidence", ascending=False, kind="stable")
            parts.append(f"<h4>{_e(title)}</h4>{_example_list(sel, meta)}")
        parts.append("</section>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_report(
    out: Path,
    state: ScoreState,
    record: dict[str, Any],
    actors: pd.DataFrame,
    views: dict[str, pd.DataFrame],
    figures: dict[str, Path],
    meta: Sequence[str] = (),
    k: int = 3,
) -> Path:
    """Write ``out/report.html`` atomically; returns its path."""
    examples = example_rows(state, max(int(k), 0), extra=meta)
    page = render(record, actors, examples, views, figures, meta)
    path = out / "report.html"
    write_text(path, page)
    return path
