"""Read articles from files, folders and globs; remove web boilerplate from their text.

Formats (by suffix):

* ``.txt`` / ``.md``: one article per file; id = file stem; the first non-empty line is the title
  when ``input.title_first_line`` (the text excludes it).
* ``.jsonl``: one JSON object per line with ``input.id_column`` / ``text_column`` /
  ``title_column`` / ``meta_columns``.
* ``.csv``: the same columns, read with the ``csv`` module (streaming, BOM-aware, large fields).

Reading streams: files are read line by line with a bounded line length, so scoring 20,000
articles keeps memory flat. Bad input becomes a :class:`Problem` (one line naming the file and
line). Without an ``on_problem`` callback the first problem raises ``StanceError``; with one, the
problem is passed on and reading continues with the next row or file.
"""

from __future__ import annotations

import csv
import glob
import json
import logging
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO

from stance.config import CleanConfig, InputConfig
from stance.errors import StanceError

log = logging.getLogger(__name__)

SUFFIXES: tuple[str, ...] = (".txt", ".md", ".jsonl", ".csv")
_GLOB_CHARS = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class Article:
    """One article. ``text`` excludes the title; ``meta`` holds the configured meta columns."""

    id: str
    title: str
    text: str
    source: str
    meta: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Problem:
    """A bad file or row: ``str()`` is ``path:line: message`` (or ``path: message``)."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.message}"


# --- finding files -----------------------------------------------------------------------------
def _walk(folder: Path) -> list[Path]:
    """Supported files under ``folder``, recursively, skipping hidden files and folders."""
    found = []
    for path in folder.rglob("*"):
        rel = path.relative_to(folder).parts
        if any(part.startswith(".") for part in rel):
            continue
        if path.is_file() and path.suffix.lower() in SUFFIXES:
            found.append(path)
    return found


def input_files(paths: list[str]) -> list[Path]:
    """Expand files, folders (recursive) and globs into a sorted, de-duplicated list of files.

    Folders and globs contribute only supported files (.txt .md .jsonl .csv). Raises StanceError
    for a path that does not exist, a glob or folder that yields no supported file, or a file
    given explicitly whose suffix is not supported.
    """
    if not paths:
        raise StanceError("input.paths: no input paths given")
    files: set[Path] = set()
    for raw in paths:
        raw = str(raw)
        if _GLOB_CHARS.search(raw) and not Path(raw).exists():
            matches = [Path(m) for m in glob.glob(raw, recursive=True)]
            found: list[Path] = []
            for match in matches:
                if match.is_dir():
                    found.extend(_walk(match))
                elif match.suffix.lower() in SUFFIXES:
                    found.append(match)
            if not found:
                raise StanceError(f"{raw}: no {'/'.join(SUFFIXES)} files match this pattern")
            files.update(found)
            continue
        path = Path(raw)
        if path.is_dir():
            found = _walk(path)
            if not found:
                raise StanceError(f"{raw}: folder holds no {'/'.join(SUFFIXES)} files")
            files.update(found)
        elif path.is_file():
            if path.suffix.lower() not in SUFFIXES:
                raise StanceError(
                    f"{raw}: unsupported file type {path.suffix or '(none)'!r} (expected one of {', '.join(SUFFIXES)})"
                )
            files.add(path)
        else:
            raise StanceError(f"{raw}: no such file or folder")
    return sorted(files)


# --- reading lines with bounded length and exact decode errors ---------------------------------
class _LineReader:
    """Decoded lines of one file, read in binary with a bounded line length.

    Bad lines (undecodable, too long) are reported through ``report`` and yielded as ``""`` so a
    caller can tell which rows they spoil (``bad_lines``); a line is never held in memory beyond
    about ``4 * max_line_chars`` bytes. A file is one problem, not one per line, when it is binary
    (a NUL byte, in an 8-bit encoding) or ``whole_file`` (one article per file: its first bad line
    spoils it); reading stops there.
    """

    def __init__(self, path: Path, spec: InputConfig, report: Callable[[Problem], None], whole_file: bool = False):
        self.path = path
        self.whole_file = whole_file
        # NUL is a character of UTF-16/32 text, never of text in an 8-bit encoding
        self.nul_is_binary = "16" not in spec.encoding and "32" not in spec.encoding
        self.name = str(path)
        self.encoding = spec.encoding
        self.max_chars = spec.max_line_chars
        self.report = report
        self.bad_lines: set[int] = set()
        self.line_no = 0
        self.nonblank = False

    def _skip_rest(self, fh: BinaryIO, limit: int) -> None:
        while True:
            chunk = fh.readline(limit)
            if not chunk or chunk.endswith(b"\n"):
                return

    def __iter__(self) -> Iterator[str]:
        # A UTF-8 character is at most 4 bytes: a line of max_chars characters always fits.
        limit = 4 * self.max_chars + 2
        offset = 0
        with open(self.path, "rb") as fh:
            while True:
                raw = fh.readline(limit)
                if not raw:
                    return
                self.line_no += 1
                start = offset
                offset += len(raw)
                if len(raw) == limit and not raw.endswith(b"\n"):
                    self._skip_rest(fh, limit)
                    self._bad(f"line longer than {self.max_chars} characters (input.max_line_chars): not article text")
                    if self.whole_file:
                        return
                    yield ""
                    continue
                if self.nul_is_binary and b"\x00" in raw:
                    nul = start + raw.index(b"\x00")
                    self._bad(f"binary data (NUL byte at byte offset {nul}): not a text file")
                    return
                if (
                    self.line_no == 1
                    and raw.startswith(b"\xef\xbb\xbf")
                    and self.encoding.lower().replace("_", "-") in ("utf-8", "utf8", "utf-8-sig")
                ):
                    raw, start = raw[3:], start + 3
                try:
                    text = raw.decode(self.encoding)
                except UnicodeDecodeError as err:
                    self._bad(
                        f"cannot decode byte 0x{raw[err.start]:02x} at byte offset "
                        f"{start + err.start} as {self.encoding} (input.encoding)"
                    )
                    if self.whole_file:
                        return
                    yield ""
                    continue
                except LookupError:
                    raise StanceError(f"input.encoding: unknown encoding {self.encoding!r}") from None
                text = text.rstrip("\r\n")
                if len(text) > self.max_chars:
                    self._bad(
                        f"line of {len(text)} characters is longer than {self.max_chars} "
                        "(input.max_line_chars): not article text"
                    )
                    if self.whole_file:
                        return
                    yield ""
                    continue
                if text.strip():
                    self.nonblank = True
                yield text + "\n"

    def _bad(self, message: str) -> None:
        self.bad_lines.add(self.line_no)
        self.report(Problem(self.name, self.line_no, message))


# --- readers -----------------------------------------------------------------------------------
def _normalise(text: str) -> str:
    """Unix line ends, no surrounding blank space."""
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def _read_plain(
    path: Path, spec: InputConfig, report: Callable[[Problem], None]
) -> Iterator[tuple[int | None, Article]]:
    reader = _LineReader(path, spec, report, whole_file=True)
    lines = list(reader)  # one article per file: the article itself must be held anyway
    if reader.bad_lines:
        return  # already reported; a partial article would be wrong
    if not reader.nonblank:
        report(Problem(str(path), None, "empty file"))
        return
    body = [line.rstrip("\n") for line in lines]
    title = ""
    if spec.title_first_line:
        first = next(i for i, line in enumerate(body) if line.strip())
        title = body[first].strip()
        body = body[first + 1 :]
    text = _normalise("\n".join(body))
    if not text:
        report(Problem(str(path), None, "no text after the title line"))
        return
    meta = {col: "" for col in spec.meta_columns}
    yield None, Article(id=path.stem, title=title, text=text, source=str(path), meta=meta)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _row_article(
    row: dict[str, Any], path: Path, line: int, row_no: int, spec: InputConfig, report: Callable[[Problem], None]
) -> Article | None:
    """An Article from one CSV/JSONL row, or None after reporting why not."""
    col = spec.text_column
    if col not in row or row[col] is None:
        report(Problem(str(path), line, f"row has no text (column {col!r} missing)"))
        return None
    if not isinstance(row[col], str):
        report(Problem(str(path), line, f"text in column {col!r} is not a string"))
        return None
    text = _normalise(row[col])
    if not text:
        report(Problem(str(path), line, f"empty text in column {col!r}"))
        return None
    raw_id = _cell(row.get(spec.id_column)).strip() if spec.id_column else ""
    art_id = raw_id or f"{path.stem}-{row_no}"
    title = _cell(row.get(spec.title_column)).strip() if spec.title_column else ""
    meta = {m: _cell(row.get(m)) for m in spec.meta_columns}
    return Article(id=art_id, title=title, text=text, source=str(path), meta=meta)


def _read_jsonl(
    path: Path, spec: InputConfig, report: Callable[[Problem], None]
) -> Iterator[tuple[int | None, Article]]:
    reader = _LineReader(path, spec, report)
    row_no = 0
    for text in reader:
        if not text.strip():
            continue
        row_no += 1
        line = reader.line_no
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as err:
            report(Problem(str(path), line, f"invalid JSON: {err.msg} (column {err.colno})"))
            continue
        if not isinstance(obj, dict):
            report(Problem(str(path), line, f"expected a JSON object, got {type(obj).__name__}"))
            continue
        art = _row_article(obj, path, line, row_no, spec, report)
        if art is not None:
            yield line, art
    if not reader.nonblank and not reader.bad_lines:
        report(Problem(str(path), None, "empty file"))


def _raise_csv_field_limit() -> None:
    # Article bodies can exceed the csv module's 128 KiB default field size.
    limit = sys.maxsize
    while True:
        try:
            csv.field_size_limit(limit)
            return
        except OverflowError:
            limit //= 10


def _read_csv(path: Path, spec: InputConfig, report: Callable[[Problem], None]) -> Iterator[tuple[int | None, Article]]:
    _raise_csv_field_limit()
    lines = _LineReader(path, spec, report)
    reader = csv.reader(lines)
    header: list[str] | None = None
    row_no = 0
    prev_end = 0
    try:
        for cells in reader:
            first, prev_end = prev_end + 1, reader.line_num
            if any(first <= n <= prev_end for n in lines.bad_lines):
                continue  # a spoilt line in this row: reported already
            if not cells or not any(c.strip() for c in cells):
                continue
            if header is None:
                header = [c.strip() for c in cells]
                if spec.text_column not in header:
                    report(
                        Problem(
                            str(path),
                            first,
                            f"no column {spec.text_column!r} in the CSV header (columns: {', '.join(header)})",
                        )
                    )
                    return
                continue
            row_no += 1
            row = dict(zip(header, cells))
            if len(cells) < len(header) and spec.text_column not in row:
                row[spec.text_column] = None  # type: ignore[assignment]
            art = _row_article(row, path, first, row_no, spec, report)
            if art is not None:
                yield first, art
    except csv.Error as err:
        report(Problem(str(path), reader.line_num, f"malformed CSV: {err}"))
        return
    if header is None and not lines.bad_lines:
        report(Problem(str(path), None, "empty file"))


_READERS = {".txt": _read_plain, ".md": _read_plain, ".jsonl": _read_jsonl, ".csv": _read_csv}


def iter_articles(spec: InputConfig, on_problem: Callable[[Problem], None] | None = None) -> Iterator[Article]:
    """Stream the articles of ``spec.paths`` in file order (see :func:`input_files`).

    ``on_problem=None``: the first problem raises ``StanceError(str(problem))``. Otherwise each
    problem is passed to ``on_problem`` and reading goes on with the next row or file. Article ids
    must be unique across all files; a repeated id is a problem and the later article is skipped.
    """

    def report(problem: Problem) -> None:
        if on_problem is None:
            raise StanceError(str(problem))
        on_problem(problem)

    files = input_files(list(spec.paths))
    log.info("reading articles from %d file(s)", len(files))
    seen: dict[str, str] = {}
    for path in files:
        for line, art in _READERS[path.suffix.lower()](path, spec, report):
            if art.id in seen:
                report(Problem(str(path), line, f"duplicate article id {art.id!r} (first in {seen[art.id]})"))
                continue
            seen[art.id] = f"{path}:{line}" if line is not None else str(path)
            yield art


# --- cleaning ----------------------------------------------------------------------------------
_MD_IMAGE = re.compile(r"!\[[^\]\n]*\]\([^)\n]*\)")
_EMPTY_LINK = re.compile(r"\[\s*\]\([^)\n]*\)")  # what is left of [![alt](img)](href)
# Sentence-final punctuation, optionally followed by closing quotes or brackets.
_FINAL = re.compile(r"[.!?…][\"'”’)\]]*$")


@lru_cache(maxsize=32)
def _patterns(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    compiled = []
    for pat in patterns:
        try:
            compiled.append(re.compile(pat, re.IGNORECASE))
        except re.error as err:
            raise StanceError(f"text.clean.drop_line_patterns: invalid regular expression {pat!r}: {err}") from None
    return tuple(compiled)


def clean_text(text: str, cfg: CleanConfig) -> str:
    """Drop web boilerplate line by line; keep every other line (paragraph) as it is.

    Removed: markdown images ``![alt](url)`` (the whole line when nothing else remains), lines
    matching any of ``cfg.drop_line_patterns`` (case-insensitive ``re.search``), lines of fewer
    than ``cfg.drop_short_lines_under_words`` words that do not end a sentence (banner slogans,
    menu items) and empty lines. Returns the kept lines joined by ``\\n``.
    """
    if not cfg.enabled:
        return text
    patterns = _patterns(tuple(cfg.drop_line_patterns))
    kept: list[str] = []
    for line in text.splitlines():
        if cfg.drop_markdown_images:
            line = _EMPTY_LINK.sub("", _MD_IMAGE.sub("", line))
        line = line.strip()
        if not line:
            continue
        if any(p.search(line) for p in patterns):
            continue
        if len(line.split()) < cfg.drop_short_lines_under_words and not _FINAL.search(line):
            continue
        kept.append(line)
    return "\n".join(kept)
