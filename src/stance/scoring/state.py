"""Resumable state of a scoring run: the settings fingerprint, the written parts and their done-lists,
and the lock that keeps a second writer out.

``.score-state/part-NNNNN-<random>.json`` lists the article ids of each written part with a hash of
each article's content (written after the part, so a part without its list is an interrupted write
and is discarded). A rerun on the same ``output_dir`` skips the articles whose content is unchanged,
rescores changed ones and, once every input has been read, drops the rows of articles no longer in
the input (:meth:`ScoreState.prune`); a rerun with settings that change the mention rows is
refused. An article listed in two parts (a run stopped between writing its new rows and removing
the old ones) counts in the later part only, and the earlier copy is removed by the next prune.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from omegaconf import DictConfig, ListConfig, OmegaConf

from stance.config import InputConfig
from stance.errors import StanceError
from stance.io import atomic_path, write_json

log = logging.getLogger("stance.score")


STATE_DIR = ".score-state"


MENTIONS_DIR = "mentions"


LOCK_FILE = "lock"


# InputConfig fields that change which articles are read and what they contain (``paths`` is not
# one: inputs may grow or shrink between runs; per-article hashes track their content)
READING_KEYS: tuple[str, ...] = (
    "id_column",
    "text_column",
    "title_column",
    "title_first_line",
    "encoding",
    "max_line_chars",
)


def fingerprint(cfg: Any, spec: InputConfig, model_hash: str) -> dict[str, Any]:
    """Every setting that can change a mention row; a resumption must share all of them.

    Not in it: ``score.batch_size``, ``sort_window`` and ``threads`` (they change how rows are
    batched, which moves probabilities by float rounding only, about 1e-8), ``chunk_articles``,
    ``format``, ``bootstrap`` and ``seed`` (the aggregates are recomputed from all parts every run).
    """
    return {
        "model_sha256": model_hash,
        "precision": str(cfg.score.precision),
        "backend": str(cfg.score.backend),
        "threshold": float(cfg.score.threshold),
        "text": json.loads(json.dumps(plain(cfg.text), default=str)),
        "actors": json.loads(json.dumps(plain(cfg.actors), default=str)),
        "meta_columns": list(spec.meta_columns),
        "reading": {k: getattr(spec, k) for k in READING_KEYS},
    }


def article_hash(article: Any) -> str:
    """A hash of everything of an article that reaches its rows: title, text and meta values."""
    payload = json.dumps([article.title, article.text, article.meta], ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]


@contextlib.contextmanager
def lock_output(out: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``out`` (``.score-state/lock``, flock) for the block.

    A second writer gets StanceError at once and touches nothing. The kernel releases the lock
    when the process ends, however it ends, so a killed run never leaves a stale lock. The file
    stays (removing it would let two processes lock two different files).
    """
    state = out / STATE_DIR
    state.mkdir(parents=True, exist_ok=True)
    fd = os.open(state / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode("utf-8", "replace").strip() or "another process"
            raise StanceError(
                f"{out}: another stance.score ({holder}) is writing to this output_dir; "
                "wait for it to finish or use another output_dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _part_key(pid: str) -> tuple[int, str]:
    num, _, rest = pid.partition("-")
    return int(num), rest


class ScoreState:
    """The parts already written to ``output_dir`` and the articles (ids, content hashes) they cover.

    A part is named by an id ``NNNNN-<random hex>``: the number orders parts, the random part makes
    names that two writers (or a writer and a stale temporary) can never share.
    """

    def __init__(self, out: Path, fingerprint: dict[str, Any]):
        self.out = out
        self.state = out / STATE_DIR
        self.mentions = out / MENTIONS_DIR
        self.parts: list[str] = []
        self.hashes: dict[str, str | None] = {}  # article id -> content hash (None: unknown, old state)
        self.owner: dict[str, str] = {}  # article id -> the part holding its current rows
        self.stale: dict[str, set[str]] = {}  # part -> article ids whose rows there are to be removed
        self._check_fingerprint(fingerprint)
        for manifest in sorted(self.state.glob("part-*.json"), key=lambda p: _part_key(p.stem[5:])):
            pid = manifest.stem[5:]
            if not self.part_path(pid).exists():
                log.warning("%s has no part file: discarding it", manifest)
                manifest.unlink()
                continue
            self._register(pid, json.loads(manifest.read_text(encoding="utf-8")))
        self._discard_orphans()
        if self.parts:
            log.info("resuming: %d part(s), %d article(s) already scored", len(self.parts), len(self.owner))

    def _check_fingerprint(self, fingerprint: dict[str, Any]) -> None:
        fp_path = self.state / "fingerprint.json"
        has_parts = any(self.state.glob("part-*.json")) if self.state.exists() else False
        if fp_path.exists() and has_parts:
            old = json.loads(fp_path.read_text(encoding="utf-8"))
            if old != fingerprint:
                changed = sorted(_changed_keys(old, fingerprint))
                raise StanceError(
                    f"{self.out}: holds a scoring run with a different {', '.join(changed)}; "
                    "use a new output_dir (or delete this one) to score with these settings"
                )
        else:
            write_json(fp_path, fingerprint)

    def _discard_orphans(self) -> None:
        # a part without its done-list is an interrupted write (never the case with atomic writes
        # unless the process died between the two renames): its articles are scored again
        listed = set(self.parts)
        for part in self.mentions.glob("part-*.parquet") if self.mentions.exists() else []:
            if part.stem[5:] not in listed:
                log.warning("discarding %s (its done-list was never written)", part)
                part.unlink()
        # temporaries of writes killed mid-way (kill -9): never read, removed here
        for folder in (self.mentions, self.state, self.out):
            for tmp in folder.glob(".*.tmp") if folder.exists() else []:
                shutil.rmtree(tmp, ignore_errors=True)

    def _register(self, pid: str, manifest: dict[str, Any]) -> None:
        """Count a part's articles; an article listed earlier now lives here (its old rows are stale)."""
        self.parts.append(pid)
        hashes = manifest.get("hashes") or {}
        for article_id in manifest["articles"]:
            if article_id in self.owner:
                self.stale.setdefault(self.owner[article_id], set()).add(article_id)
            self.owner[article_id] = pid
            self.hashes[article_id] = hashes.get(article_id)

    @property
    def done(self) -> set[str]:
        """Ids of the articles with rows in some part."""
        return set(self.owner)

    def is_current(self, article_id: str, digest: str) -> bool:
        """Whether ``article_id`` has rows scored from exactly this content."""
        return article_id in self.owner and self.hashes.get(article_id) == digest

    def part_path(self, pid: str | int) -> Path:
        return self.mentions / f"part-{_pid(pid)}.parquet"

    def manifest_path(self, pid: str | int) -> Path:
        return self.state / f"part-{_pid(pid)}.json"

    def next_part(self) -> int:
        return max((_part_key(p)[0] for p in self.parts), default=-1) + 1

    def manifests(self) -> Iterator[tuple[str, dict[str, Any]]]:
        for pid in sorted(self.parts, key=_part_key):
            yield pid, json.loads(self.manifest_path(pid).read_text(encoding="utf-8"))

    def drop_missing(self, seen: set[str]) -> list[str]:
        """Mark the rows of articles not in ``seen`` (their input is gone) for removal; their ids."""
        gone = sorted(a for a in self.owner if a not in seen)
        for article_id in gone:
            self.stale.setdefault(self.owner.pop(article_id), set()).add(article_id)
            self.hashes.pop(article_id, None)
        return gone

    def prune(self) -> None:
        """Rewrite the parts holding stale rows without them (a part left empty is removed).

        Each part is rewritten atomically, then its done-list: a run stopped in between leaves a
        done-list naming rows that are gone, which the next prune removes again (idempotent).
        """
        for pid, ids in sorted(self.stale.items()):
            manifest = json.loads(self.manifest_path(pid).read_text(encoding="utf-8"))
            keep = [a for a in manifest["articles"] if a not in ids]
            if not keep:
                self.manifest_path(pid).unlink()
                self.part_path(pid).unlink()
                self.parts.remove(pid)
                continue
            table = pq.read_table(self.part_path(pid))
            table = table.filter(pc.invert(pc.is_in(table["article_id"], value_set=pa.array(sorted(ids)))))
            with atomic_path(self.part_path(pid)) as tmp:
                pq.write_table(table, tmp)
            manifest["articles"] = keep
            manifest["hashes"] = {a: h for a, h in (manifest.get("hashes") or {}).items() if a not in ids}
            manifest["no_actor"] = [d for d in manifest["no_actor"] if d["article_id"] not in ids]
            manifest["rows"] = table.num_rows
            write_json(self.manifest_path(pid), manifest)
        self.stale.clear()


def _pid(pid: str | int) -> str:
    return f"{pid:05d}" if isinstance(pid, int) else pid


def _changed_keys(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Dotted names of the fingerprint entries that differ (``reading.max_line_chars``, ``text``)."""
    keys = []
    for k in set(old) | set(new):
        a, b = old.get(k), new.get(k)
        if a == b:
            continue
        if k == "reading" and isinstance(a, dict) and isinstance(b, dict):
            keys += [f"input.{r}" for r in set(a) | set(b) if a.get(r) != b.get(r)]
        else:
            keys.append(k)
    return keys


def write_part(state: ScoreState, num: int, table: Any, manifest: dict[str, Any]) -> None:
    """Write part ``num``: the mention rows first, then its done-list (each atomically).

    The name gets a random suffix, so no two writes ever target one file.
    """
    pid = f"{num:05d}-{uuid.uuid4().hex[:8]}"
    with atomic_path(state.part_path(pid)) as tmp:
        pq.write_table(table, tmp)
    write_json(state.manifest_path(pid), manifest)
    state._register(pid, manifest)


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
