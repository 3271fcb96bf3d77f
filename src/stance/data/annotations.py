"""Labels stored by reference: (corpus, split, id, label, note) rows joined to a corpus at load time.

NewsMTSC's sentences may not be copied into this repository, but the project's own labels for
them (``data/annotations/newsmtsc-stance.csv``, made under ``docs/annotation-guidelines.md``) may:
each row names a corpus row by its id and gives the label this project's stance definition
assigns. ``data.labels`` chooses how they combine with the corpus's own labels:

- ``corpus``: the corpus's own labels (NewsMTSC: target-dependent sentiment), as published;
- ``stance``: only the rows the label files cover, with their labels;
- ``mixed``: the label files' labels where they exist, the corpus's own labels elsewhere.

Every id must exist in the corpus split the row names (a typo or a different corpus version
would otherwise silently shrink the data); an id twice, a label outside the label set or a row
of another corpus is an error naming the file and line.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stance.errors import StanceError
from stance.io import read_csv_rows
from stance.labels import check_label

REFERENCE_COLUMNS: tuple[str, ...] = ("corpus", "split", "id", "label")  # + optional "note"
LABEL_SOURCES: tuple[str, ...] = ("corpus", "stance", "mixed")


@dataclass(frozen=True)
class ReferenceLabel:
    corpus: str
    split: str  # the corpus's own split name (NewsMTSC: the file stem, train / dev_rw / dev_mt)
    id: str
    label: str
    note: str
    where: str  # file:line, for error messages


def read_reference_labels(paths: Iterable[str | Path], corpus: str) -> dict[str, ReferenceLabel]:
    """{id: label} from by-reference label files; StanceError ``file:line: ...`` for a bad row."""
    out: dict[str, ReferenceLabel] = {}
    for path in paths:
        for line, row in read_csv_rows(Path(path), REFERENCE_COLUMNS):
            where = f"{path}:{line}"
            if row["corpus"].strip() != corpus:
                raise StanceError(f"{where}: corpus {row['corpus']!r}, expected {corpus!r}")
            ex_id = row["id"].strip()
            if not ex_id:
                raise StanceError(f"{where}: empty id")
            if ex_id in out:
                raise StanceError(f"{where}: id {ex_id!r} labelled twice (first at {out[ex_id].where})")
            out[ex_id] = ReferenceLabel(
                corpus,
                row["split"].strip(),
                ex_id,
                check_label(row["label"], where),
                (row.get("note") or "").strip(),
                where,
            )
    return out


def apply_reference_labels(
    splits: dict[str, list[dict[str, Any]]],
    origins: dict[str, str],
    labels: dict[str, ReferenceLabel],
    mode: str,
    corpus: str = "newsmtsc",
) -> dict[str, list[dict[str, Any]]]:
    """Join ``labels`` onto corpus rows (``example_id`` = the corpus id) per ``mode``.

    ``origins`` maps each loaded split to the corpus split it was read from (``validation`` ->
    ``dev_rw``). Labels of corpus splits that were not loaded are ignored; an id of a loaded split
    that the split lacks is an error. With ``stance``, a loaded split no label covers is dropped.
    """
    if mode not in LABEL_SOURCES:
        raise StanceError(f"data.labels={mode!r}: expected one of {', '.join(LABEL_SOURCES)}")
    if mode == "corpus":
        return splits
    loaded = set(origins.values())
    ids_by_origin: dict[str, set[str]] = {o: set() for o in loaded}
    for split, rows in splits.items():
        ids_by_origin[origins[split]].update(r["example_id"] for r in rows)
    for ref in labels.values():
        if ref.split in loaded and ref.id not in ids_by_origin[ref.split]:
            raise StanceError(
                f"{ref.where}: id {ref.id!r} is not in {corpus} {ref.split} (wrong id or another version of the corpus)"
            )
        if (
            ref.split not in loaded
            and not any(ref.id in ids for ids in ids_by_origin.values())
            and not _known_split(ref.split, corpus)
        ):
            raise StanceError(f"{ref.where}: unknown {corpus} split {ref.split!r}")
    out: dict[str, list[dict[str, Any]]] = {}
    for split, rows in splits.items():
        kept = []
        for row in rows:
            found = labels.get(row["example_id"])
            if found is not None:
                kept.append({**row, "label": found.label})
            elif mode == "mixed":
                kept.append(row)
        if kept:
            out[split] = kept
    if "train" in splits and "train" not in out:
        raise StanceError(f"data.labels=stance: no {corpus} train row has a label in the label files")
    return out


def _known_split(name: str, corpus: str) -> bool:
    # NewsMTSC publishes train, dev and test splits; the test splits are held out here but their
    # labels could legitimately be listed by a user who has them.
    return corpus != "newsmtsc" or name in {"train", "dev_rw", "dev_mt", "test_rw", "test_mt"}
