"""Resumable state of a scoring run: the settings fingerprint, the written parts and their done-lists.

``.score-state/part-NNNNN.json`` lists the article ids of each written part (written after the
part, so a part without its list is an interrupted write and is discarded). A rerun on the same
``output_dir`` skips those articles; a rerun with settings that change the mention rows is refused.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from omegaconf import DictConfig, ListConfig, OmegaConf

from stance.config import InputConfig
from stance.errors import StanceError
from stance.io import atomic_path, write_json

log = logging.getLogger("stance.score")


STATE_DIR = ".score-state"


MENTIONS_DIR = "mentions"


def fingerprint(cfg: Any, spec: InputConfig, model_hash: str) -> dict[str, Any]:
    """What must not change between a run and its resumption (it changes the mention rows)."""
    text = plain(cfg.text)
    actors = plain(cfg.actors)
    return {
        "model_sha256": model_hash,
        "precision": cfg.score.precision,
        "threshold": float(cfg.score.threshold),
        "text": json.loads(json.dumps(text, default=str)),
        "actors": json.loads(json.dumps(actors, default=str)),
        "meta_columns": list(spec.meta_columns),
        "reading": {
            k: getattr(spec, k) for k in ("id_column", "text_column", "title_column", "title_first_line", "encoding")
        },
    }


class ScoreState:
    """The parts already written to ``output_dir`` and the article ids they cover."""

    def __init__(self, out: Path, fingerprint: dict[str, Any]):
        self.out = out
        self.state = out / STATE_DIR
        self.mentions = out / MENTIONS_DIR
        self.done: set[str] = set()
        self.parts: list[int] = []
        fp_path = self.state / "fingerprint.json"
        has_parts = any(self.state.glob("part-*.json")) if self.state.exists() else False
        if fp_path.exists() and has_parts:
            old = json.loads(fp_path.read_text(encoding="utf-8"))
            if old != fingerprint:
                changed = sorted(k for k in set(old) | set(fingerprint) if old.get(k) != fingerprint.get(k))
                raise StanceError(
                    f"{out}: holds a scoring run with a different {', '.join(changed)}; "
                    "use a new output_dir (or delete this one) to score with these settings"
                )
        else:
            write_json(fp_path, fingerprint)
        for manifest in sorted(self.state.glob("part-*.json")):
            num = int(manifest.stem.split("-")[1])
            if not self.part_path(num).exists():
                log.warning("%s has no part file: discarding it", manifest)
                manifest.unlink()
                continue
            self.parts.append(num)
            self.done.update(json.loads(manifest.read_text(encoding="utf-8"))["articles"])
        # a part without its done-list is an interrupted write (never the case with atomic writes
        # unless the process died between the two renames): its articles are scored again
        listed = set(self.parts)
        for part in self.mentions.glob("part-*.parquet") if self.mentions.exists() else []:
            if int(part.stem.split("-")[1]) not in listed:
                log.warning("discarding %s (its done-list was never written)", part)
                part.unlink()
        # temporaries of writes killed mid-way (kill -9): never read, removed here
        for folder in (self.mentions, self.state, self.out):
            for tmp in folder.glob(".*.tmp") if folder.exists() else []:
                shutil.rmtree(tmp, ignore_errors=True)
        if self.parts:
            log.info("resuming: %d part(s), %d article(s) already scored", len(self.parts), len(self.done))

    def part_path(self, num: int) -> Path:
        return self.mentions / f"part-{num:05d}.parquet"

    def manifest_path(self, num: int) -> Path:
        return self.state / f"part-{num:05d}.json"

    def next_part(self) -> int:
        return max(self.parts, default=-1) + 1

    def manifests(self) -> Iterator[tuple[int, dict[str, Any]]]:
        for num in sorted(self.parts):
            yield num, json.loads(self.manifest_path(num).read_text(encoding="utf-8"))


def write_part(state: ScoreState, num: int, table: Any, manifest: dict[str, Any]) -> None:
    """Write one part: the mention rows first, then its done-list (each atomically)."""
    with atomic_path(state.part_path(num)) as tmp:
        pq.write_table(table, tmp)
    write_json(state.manifest_path(num), manifest)
    state.parts.append(num)


def plain(obj: Any) -> Any:
    """Dataclasses and OmegaConf containers as plain dicts and lists (for JSON records)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, (DictConfig, ListConfig)):
        return OmegaConf.to_container(obj, resolve=True)
    return obj
