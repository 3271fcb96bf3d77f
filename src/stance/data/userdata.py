"""What ``stance.build`` leaves for the person labelling and training on their own data.

* the annotation template rows (``unlabelled.csv`` and a starter file outside ``data/processed/``)
  with the mention and the neighbouring sentences, so a pair can be labelled without the article;
* a reusable data config ``configs/data/<name>.yaml``: ``python -m stance.train data=<name>`` then
  trains on exactly the built dataset (and never rebuilds it from other inputs);
* warnings for splits too small to give readable metrics.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from stance.config import CONFIG_DIR
from stance.io import atomic_path, write_text

log = logging.getLogger(__name__)

# the annotation template (unlabelled.csv, the starter file) adds what an annotator needs to decide:
# the target mention and the neighbouring sentences (read_annotations ignores these columns)
TEMPLATE_COLUMNS: tuple[str, ...] = (
    "article_id",
    "actor_id",
    "label",
    "mention",
    "previous_sentence",
    "sentence",
    "next_sentence",
    "note",
)
# a split with fewer rows gives metrics too noisy to read (macro-F1 on 1 row is 0.333 or 1.0)
SMALL_SPLIT = 20


def template_row(row: dict[str, Any], sentences: list[str]) -> dict[str, str]:
    """One row of the annotation template: the pair, its mention and the sentences around it."""
    idx = int(row["sentence_idx"])
    return {
        "article_id": row["article_id"],
        "actor_id": row["actor_id"],
        "label": "",
        "mention": row["mention"],
        "previous_sentence": sentences[idx - 1] if 0 < idx <= len(sentences) else "",
        "sentence": row["sentence"],
        "next_sentence": sentences[idx + 1] if idx + 1 < len(sentences) else "",
        "note": "",
    }


def small_split_warnings(sizes: dict[str, int]) -> list[str]:
    """A warning per split with fewer than SMALL_SPLIT rows: its metrics are mostly noise."""
    return [
        f"split {name} has only {n} row(s): its metrics are too noisy to read (label more, or "
        f"evaluate with cross-validation: eval.cv_folds=5)"
        for name, n in sizes.items()
        if n < SMALL_SPLIT
    ]


# the first line of a data config stance.build wrote: such a file may be rewritten, no other
GENERATED = "# written by python -m stance.build"


def write_data_config(cfg: Any, config_dir: str | Path | None = None) -> Path | None:
    """Write ``<config_dir>/data/<data.name>.yaml`` (the resolved ``data`` settings) so that
    ``data=<name>`` reloads the dataset as built. Returns the path, or None (with the reason logged)
    when a hand-written option of that name exists or the folder is not writable."""
    name = str(cfg.data.name)
    path = Path(config_dir or CONFIG_DIR) / "data" / f"{name}.yaml"
    if path.exists() and not path.read_text(encoding="utf-8").startswith(GENERATED):
        return None  # a shipped or hand-written option (seed, newsmtsc ...): it is the source already
    body = OmegaConf.to_yaml(cfg.data)
    text = (
        f"{GENERATED} (data.name={name}); train on it: python -m stance.train data={name}\n"
        "# Edit the inputs here and rerun python -m stance.build data=" + name + " to rebuild.\n" + body
    )
    try:
        write_text(path, text)
    except OSError as err:
        log.warning("cannot write %s (%s): train with the same data.* overrides as the build", path, err)
        return None
    return path


def write_starter(rows: list[dict[str, str]], annotations: list[str], name: str) -> Path | None:
    """The starter annotation file ``<folder of the first annotation file>/<name>.todo.csv``
    (``data/annotations/`` without one): the unlabelled pairs to fill in place. An existing file
    is never overwritten (it may hold labels); returns None then, or when there is nothing to label."""
    if not rows:
        return None
    folder = Path(annotations[0]).parent if annotations else Path("data/annotations")
    path = folder / f"{name}.todo.csv"
    if path.exists():
        return None
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(TEMPLATE_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    return path
