"""Atomic file and folder writes, table output in the formats users ask for, CSV reading, URLs."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from stance.errors import StanceError

_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.I)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary sibling path; on success move it onto ``path`` in one rename.

    Works for files and folders: the caller writes to the yielded path. On error the
    temporary is removed and ``path`` is left as it was, so no reader ever sees half a file.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    target = tmp / final.name
    try:
        yield target
        if final.is_dir() and not final.is_symlink():
            old = final.with_name(f".{final.name}.old-{os.getpid()}")
            os.replace(final, old)
            os.replace(target, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(target, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


def write_jsonl(path: str | os.PathLike[str], rows: Iterable[dict[str, Any]]) -> None:
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_table(df: Any, path: str | os.PathLike[str]) -> Path:
    """Write a pandas DataFrame atomically; the format follows the suffix (.parquet/.csv/.jsonl)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix == ".parquet":
            df.to_parquet(tmp, index=False)
        elif path.suffix == ".csv":
            df.to_csv(tmp, index=False)
        elif path.suffix == ".jsonl":
            df.to_json(tmp, orient="records", lines=True, force_ascii=False)
        else:
            raise ValueError(f"unsupported table format: {path.suffix}")
    return path


def file_sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_csv_rows(path: Path, required: Sequence[str]) -> Iterable[tuple[int, dict[str, str]]]:
    """(line number, row) of a UTF-8 CSV with a header; one-line StanceError for bad files."""
    if not path.is_file():
        raise StanceError(f"{path}: no such file")
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise StanceError(f"{path}: empty file (expected a header: {','.join(required)})")
            header = [h.strip() for h in header]
            missing = [c for c in required if c not in header]
            if missing:
                raise StanceError(f"{path}:1: missing column(s) {', '.join(missing)} (header: {','.join(header)})")
            line = reader.line_num + 1
            for values in reader:
                start, line = line, reader.line_num + 1
                if not any(v.strip() for v in values):
                    continue
                if len(values) != len(header):
                    raise StanceError(f"{path}:{start}: {len(values)} fields, the header has {len(header)}")
                yield start, dict(zip(header, values))
    except UnicodeDecodeError as err:
        raise StanceError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except csv.Error as err:
        raise StanceError(f"{path}: malformed CSV ({err})") from None


def is_url(path: str) -> bool:
    """Whether ``path`` is a URL (``scheme://...``) rather than a local path."""
    return bool(_URL.match(str(path)))
