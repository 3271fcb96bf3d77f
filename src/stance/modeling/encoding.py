"""Actor-aware model input: which actor a (sentence, actor) example is about, made visible.

Three formats (``model.input_format``):

* ``markers``: the target mention is wrapped in place with marker strings
  (``"... said << Trump >> on Monday"``), so the model learns stance toward the marked span only
  (several actors in one sentence give different inputs). Other actors' mentions stay unmarked,
  unless the model has ``other_markers``: then they are wrapped in those
  (``"<< Trump >> told { Putin } ..."``), so the model sees who else the sentence is about;
* ``pair``: (sentence, actor name) as a BERT sentence pair (the SPC-BERT set-up of NewsMTSC);
* ``both``: the marked sentence paired with the actor name.

Long sentences are cut to a token window centred on the target mention, so the mention is never
truncated away. The same functions serve training, evaluation and scoring.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from stance.config import InputFormat
from stance.errors import StanceError

log = logging.getLogger(__name__)

INPUT_FORMATS: tuple[str, ...] = tuple(f.value for f in InputFormat)

# Punctuation already in the BERT/MiniLM vocabulary ("<", ">"), so the markers start with trained
# embeddings (typed-entity-marker "punct" style) and are rare in news prose; new special tokens
# would start untrained. Recorded in the saved model's config ("stance" block).
DEFAULT_MARKERS: tuple[str, str] = ("<<", ">>")


@dataclass(frozen=True)
class Formatted:
    """One example as model text: ``text`` (+ ``text_pair``) and the target's span in ``text``."""

    text: str
    text_pair: str | None
    # character span of the (marked) target in ``text``: the window is centred on it
    start: int
    end: int


def _field(row: Mapping[str, Any], key: str, default: Any = None) -> Any:
    value = row.get(key, default)
    return default if value is None else value


def check_input_format(input_format: str) -> str:
    if input_format not in INPUT_FORMATS:
        raise StanceError(f"unknown model.input_format {input_format!r} (expected one of {', '.join(INPUT_FORMATS)})")
    return input_format


def _other_spans(row: Mapping[str, Any], start: int, end: int, length: int) -> list[tuple[int, int]]:
    """The row's ``other_mentions`` as sorted character spans, without those overlapping the target
    or an earlier one (nested mentions cannot both be wrapped) or falling outside the sentence."""
    spans: list[tuple[int, int]] = []
    for om in sorted(_field(row, "other_mentions", []), key=lambda om: (int(om["start"]), -int(om["end"]))):
        s, e = int(om["start"]), int(om["end"])
        if not 0 <= s < e <= length or (s < end and e > start) or (spans and s < spans[-1][1]):
            continue
        spans.append((s, e))
    return spans


def format_example(
    row: Mapping[str, Any],
    input_format: str = "markers",
    markers: Sequence[str] = DEFAULT_MARKERS,
    other_markers: Sequence[str] = (),
) -> Formatted:
    """Turn one dataset row (sentence, mention_start/end, actor_name ...) into model text.

    The span ``mention_start:mention_end`` of ``sentence`` is the target; for ``markers``/``both``
    it is wrapped as ``"<< mention >>"`` and, given ``other_markers``, each of ``other_mentions`` as
    ``"{ mention }"``. The pair segment is the actor's display name (the mention when the row has no
    name).
    """
    check_input_format(input_format)
    sentence = str(_field(row, "sentence", ""))
    start = int(_field(row, "mention_start", 0))
    end = int(_field(row, "mention_end", 0))
    if not (0 <= start <= end <= len(sentence)):
        raise StanceError(
            f"example {_field(row, 'example_id', '?')}: mention span {start}:{end} is outside its "
            f"sentence ({len(sentence)} characters)"
        )
    pair = None
    if input_format in ("pair", "both"):
        pair = str(_field(row, "actor_name", "") or _field(row, "mention", "") or sentence[start:end])
    if input_format == "pair":
        return Formatted(sentence, pair, start, end)
    open_, close = markers
    # Spaces around the markers keep them separate tokens whatever the mention's neighbours are.
    wraps = [(start, end, open_, close, True)]
    if other_markers:
        o_open, o_close = other_markers
        wraps += [(s, e, o_open, o_close, False) for s, e in _other_spans(row, start, end, len(sentence))]
    text, done, target = "", 0, (start, end)
    for s, e, o, c, is_target in sorted(wraps):  # disjoint spans, left to right
        text += sentence[done:s]
        wrapped = f"{o} {sentence[s:e]} {c}"
        if is_target:
            target = (len(text), len(text) + len(wrapped))
        text += wrapped
        done = e
    return Formatted(text + sentence[done:], pair, *target)


def _window_text(
    text: str,
    offsets: Sequence[tuple[int, int]],
    start: int,
    end: int,
    budget: int,
) -> str:
    """Cut ``text`` to at most ``budget`` tokens (given their char ``offsets``) around start:end.

    The window contains every token of the span and is centred on it; when the span alone is
    longer than the budget, it is kept from its beginning.
    """
    n = len(offsets)
    if n <= budget:
        return text
    first = next((i for i, (s, e) in enumerate(offsets) if e > start), n - 1)
    last = max((i for i, (s, e) in enumerate(offsets) if s < end), default=first)
    span = last - first + 1
    if span >= budget:
        lo, hi = first, first + budget
    else:
        spare = budget - span
        lo = max(0, first - spare // 2)
        hi = min(n, lo + budget)
        lo = max(0, hi - budget)
    # Cut at whole words: move the window's edges off word pieces ("##ing") that continue a word.
    while 0 < lo < first and offsets[lo][0] == offsets[lo - 1][1]:
        lo += 1
    while hi < n and hi > last + 1 and offsets[hi][0] == offsets[hi - 1][1]:
        hi -= 1
    return text[offsets[lo][0] : offsets[hi - 1][1]]


def encode(
    tokenizer: Any,
    rows: Iterable[Mapping[str, Any]] | Any,
    input_format: str = "markers",
    max_length: int = 128,
    markers: Sequence[str] = DEFAULT_MARKERS,
    other_markers: Sequence[str] = (),
) -> dict[str, list[list[int]]]:
    """Tokenize rows (a ``datasets.Dataset``, a dict of columns or dicts) into model features.

    Returns ``input_ids``, ``attention_mask`` (and ``token_type_ids`` where the tokenizer makes
    them), unpadded lists of at most ``max_length`` tokens each: pad per batch
    (``DataCollatorWithPadding``). A sentence longer than the budget is cut to a token window
    centred on the target mention, so the mention is always in the input.
    """
    check_input_format(input_format)
    if isinstance(rows, Mapping):  # a batch of columns, as in Dataset.map(batched=True)
        keys = list(rows)
        rows = [dict(zip(keys, values)) for values in zip(*(rows[k] for k in keys))]
    formatted = [format_example(row, input_format, markers, other_markers) for row in rows]
    if not formatted:
        return {"input_ids": [], "attention_mask": []}
    texts = [f.text for f in formatted]
    pairs = [f.text_pair or "" for f in formatted]
    has_pair = input_format in ("pair", "both")

    specials = tokenizer.num_special_tokens_to_add(pair=has_pair)
    pair_lens = [0] * len(formatted)
    if has_pair:
        # the actor name is short; cap it so the sentence always keeps most of the budget
        pair_ids = tokenizer(pairs, add_special_tokens=False)["input_ids"]
        pair_lens = [min(len(ids), max_length // 4) for ids in pair_ids]
        pairs = [
            p if len(ids) <= cap else tokenizer.decode(ids[:cap]) for p, ids, cap in zip(pairs, pair_ids, pair_lens)
        ]
    enc = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
    for i, (f, ids, offsets) in enumerate(zip(formatted, enc["input_ids"], enc["offset_mapping"])):
        budget = max_length - specials - pair_lens[i]
        if len(ids) > budget:
            # a margin of 2 tokens: re-tokenizing the cut text can split its first word differently
            texts[i] = _window_text(f.text, offsets, f.start, f.end, max(1, budget - 2))
    kwargs: dict[str, Any] = {"truncation": "only_first" if has_pair else True, "max_length": max_length}
    out = tokenizer(texts, pairs, **kwargs) if has_pair else tokenizer(texts, **kwargs)
    return {k: list(v) for k, v in out.items() if k in ("input_ids", "attention_mask", "token_type_ids")}


def encode_for(tokenizer: Any, rows: Any, encoding: Mapping[str, Any]) -> dict[str, list[list[int]]]:
    """``encode`` as a saved model's ``stance`` block says (``input_format``, ``max_length``,
    ``markers``, ``other_markers``): the one reading of the block for every inference path."""
    return encode(
        tokenizer,
        rows,
        encoding["input_format"],
        encoding["max_length"],
        encoding["markers"],
        encoding.get("other_markers") or (),
    )


def encode_dataset(
    dataset: Any,
    tokenizer: Any,
    input_format: str = "markers",
    max_length: int = 128,
    markers: Sequence[str] = DEFAULT_MARKERS,
    with_labels: bool = True,
    other_markers: Sequence[str] = (),
) -> Any:
    """``encode`` over a ``datasets.Dataset``: a new Dataset of features (+ ``labels``), same order."""

    def fn(batch: dict[str, list[Any]]) -> dict[str, Any]:
        feats = encode(tokenizer, batch, input_format, max_length, markers, other_markers)
        if with_labels:
            feats["labels"] = list(batch["label"])
        if "sample_weight" in batch:  # per-row loss weights (mixed datasets)
            feats["sample_weight"] = list(batch["sample_weight"])
        if "soft_labels" in batch:  # a teacher's probabilities (distillation)
            feats["soft_labels"] = list(batch["soft_labels"])
        return feats

    return dataset.map(
        fn,
        batched=True,
        batch_size=1000,
        remove_columns=dataset.column_names,
        desc="encoding",
        load_from_cache_file=False,
    )
