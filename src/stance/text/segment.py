"""Sentence splitting with exact character offsets.

Text is split into lines (paragraphs) first, so a sentence never crosses a newline; a backend then
splits each paragraph:

* ``pysbd``: rule-based (Golden Rules) — best on ``tests/data/segmentation_cases.jsonl``
  (see ``benchmarks/segmenters.py``);
* ``syntok``: rule-based tokenizer + segmenter;
* ``blingfire``: Microsoft's fast finite-state splitter, the default (``SegmentConfig.backend``);
* ``regex``: a naive baseline (split after . ! ? … and closing quotes, before a capital or quote).

Every backend's output is mapped back onto the original text, so ``text[s.start:s.end] == s.text``
always holds and sentences carry no surrounding whitespace. With ``text.segment.fix_titles`` (on by
default) a small post-fix corrects every backend around title abbreviations (``Lt.``, ``Rep.``,
``Sgt.`` ...), which all of them get wrong somewhere.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from stance.config import SegmentBackend, SegmentConfig
from stance.errors import StanceError

BACKENDS: tuple[str, ...] = tuple(b.value for b in SegmentBackend)


@dataclass(frozen=True)
class Sentence:
    """A sentence: ``index`` in the text, ``start``/``end`` character offsets (end exclusive)."""

    index: int
    text: str
    start: int
    end: int


# --- backends: paragraph -> list of (start, end) spans in the paragraph -------------------------
Spans = list[tuple[int, int]]


def _align(paragraph: str, pieces: list[str]) -> Spans:
    """Map sentence strings that a backend returned back onto ``paragraph``.

    Matches non-whitespace characters in order, so a backend that changes whitespace still
    yields exact offsets. A backend that changed other characters is a bug: raise.
    """
    spans: Spans = []
    pos = 0
    n = len(paragraph)
    for piece in pieces:
        piece = piece.strip()
        # fast path: the piece is verbatim in the paragraph after some whitespace
        idx = paragraph.find(piece, pos)
        if piece and idx >= pos and not paragraph[pos:idx].strip():
            spans.append((idx, idx + len(piece)))
            pos = idx + len(piece)
            continue
        chars = [c for c in piece if not c.isspace()]
        if not chars:
            continue
        while pos < n and paragraph[pos].isspace():
            pos += 1
        start = pos
        for ch in chars:
            while pos < n and paragraph[pos].isspace():
                pos += 1
            if pos >= n or paragraph[pos] != ch:
                raise RuntimeError(f"segmenter output does not match its input near {piece!r}")
            pos += 1
        spans.append((start, pos))
    return spans


@lru_cache(maxsize=4)
def _pysbd(language: str) -> Any:
    import pysbd

    # clean=False keeps the text as given (clean=True rewrites it, breaking offsets).
    return pysbd.Segmenter(language=language, clean=False)


def _split_pysbd(paragraph: str, language: str) -> Spans:
    return _align(paragraph, _pysbd(language).segment(paragraph))


def _split_syntok(paragraph: str, language: str) -> Spans:
    from syntok import segmenter

    spans: Spans = []
    for para in segmenter.analyze(paragraph):
        for sent in para:
            first, last = sent[0], sent[-1]
            spans.append((first.offset, last.offset + len(last.value)))
    return spans


def _split_blingfire(paragraph: str, language: str) -> Spans:
    import blingfire

    # text_to_sentences_and_offsets maps byte offsets in a Python loop (4x slower): align instead
    return _align(paragraph, blingfire.text_to_sentences(paragraph).split("\n"))


# A boundary: sentence-final punctuation, optional closing quotes/brackets, whitespace, then an
# upper-case letter, a digit or an opening quote/bracket.
_REGEX_BOUNDARY = re.compile(r"(?<=[.!?…])[\"'”’)\]]*\s+(?=[\"'“‘(\[]?[A-Z0-9])")


def _split_regex(paragraph: str, language: str) -> Spans:
    spans: Spans = []
    start = 0
    for m in _REGEX_BOUNDARY.finditer(paragraph):
        end = m.start() + len(m.group(0).rstrip())
        spans.append((start, end))
        start = m.end()
    spans.append((start, len(paragraph)))
    return spans


_SPLITTERS: dict[str, Callable[[str, str], Spans]] = {
    "pysbd": _split_pysbd,
    "syntok": _split_syntok,
    "blingfire": _split_blingfire,
    "regex": _split_regex,
}


# Titles that precede a name and (almost) never end a sentence. Backends disagree on them: they
# split after "Lt." or "Rep.", or miss a boundary before "Sgt. Smith" (see the hard cases).
_TITLES = (
    r"(?:Mr|Mrs|Ms|Dr|Prof|Gen|Lt|Col|Maj|Capt|Cpt|Sgt|Cpl|Adm|Cmdr|Gov|Sen|Rep|Rev|Pres|"
    r"Amb|Hon|Fr|Sr|Supt|Insp)"
)
_ENDS_WITH_TITLE = re.compile(r"(?:^|[\s(\[“\"‘'])" + _TITLES + r"\.$")
_STARTS_UPPER = re.compile(r"[\"'“‘(\[]?[A-Z]")
# "... left early. Sgt. Smith": a lower-case word ending a sentence, then a title and a name.
_BOUNDARY_BEFORE_TITLE = re.compile(rf"(?<=\w[.!?])[\"'”’)\]]*\s+(?={_TITLES}\.\s+[A-Z])")
# Words before which a period is not a sentence end.
_NOT_FINAL = frozenset(
    {
        "vs",
        "No",
        "no",
        "approx",
        "ca",
        "cf",
        "Jan",
        "Feb",
        "Mar",
        "Apr",
        "Jun",
        "Jul",
        "Aug",
        "Sep",
        "Sept",
        "Oct",
        "Nov",
        "Dec",
    }
)


def _fix_titles(paragraph: str, spans: Spans) -> Spans:
    """Post-fix on any backend: re-join a split after a title abbreviation ("Lt." | "Col. Vindman")
    and split before a title that starts a sentence ("left early." | "Sgt. Smith stayed")."""
    joined: Spans = []
    for start, end in spans:
        if (
            joined
            and _ENDS_WITH_TITLE.search(paragraph[joined[-1][0] : joined[-1][1]].rstrip())
            and _STARTS_UPPER.match(paragraph, start)
        ):
            joined[-1] = (joined[-1][0], end)
        else:
            joined.append((start, end))
    fixed: Spans = []
    for start, end in joined:
        for m in _BOUNDARY_BEFORE_TITLE.finditer(paragraph, start, end):
            # the word before must be an ordinary word, not "Maj." (stacked titles) or "U.S."
            word = paragraph[start : m.start()].split()[-1][:-1]
            if not word.isalnum() or word in _NOT_FINAL or _ENDS_WITH_TITLE.search(word + "."):
                continue
            fixed.append((start, m.start() + len(m.group(0).rstrip())))
            start = m.end()
        fixed.append((start, end))
    return fixed


def _cover(paragraph: str, spans: Spans) -> Spans:
    """Keep text a backend dropped (blingfire returns nothing on an internal error): a gap with
    non-whitespace between or after the spans becomes a sentence of its own."""
    out: Spans = []
    pos = 0
    for start, end in spans:
        if paragraph[pos:start].strip():
            out.append((pos, start))
        out.append((start, end))
        pos = max(pos, end)
    if paragraph[pos:].strip():
        out.append((pos, len(paragraph)))
    return out


def _paragraphs(text: str) -> Iterator[tuple[int, str]]:
    """(offset, line) for each line of ``text`` that is not blank."""
    pos = 0
    for line in text.splitlines(keepends=True):
        if line.strip():
            yield pos, line
        pos += len(line)


def split_sentences(text: str, cfg: SegmentConfig) -> list[Sentence]:
    """Split ``text`` into sentences with exact offsets into ``text``.

    Lines are split independently (a sentence never crosses a newline); within a line the
    backend ``cfg.backend`` decides. Each sentence is stripped of surrounding whitespace and
    ``text[s.start:s.end] == s.text``. Raises StanceError for an unknown backend.
    """
    try:
        splitter = _SPLITTERS[cfg.backend]
    except KeyError:
        raise StanceError(
            f"text.segment.backend: unknown backend {cfg.backend!r} (expected one of {', '.join(BACKENDS)})"
        ) from None
    sentences: list[Sentence] = []
    for offset, line in _paragraphs(text):
        spans = _cover(line, splitter(line, cfg.language))
        if cfg.fix_titles:
            spans = _fix_titles(line, spans)
        for start, end in spans:
            piece = line[start:end]
            # strip surrounding whitespace, keeping the offsets exact
            start += len(piece) - len(piece.lstrip())
            end -= len(piece) - len(piece.rstrip())
            if end <= start:
                continue
            sentences.append(
                Sentence(len(sentences), text[offset + start : offset + end], offset + start, offset + end)
            )
    return sentences
