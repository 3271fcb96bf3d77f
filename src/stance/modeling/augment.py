"""Training-row augmentation: target-name swap (``train.name_swap``).

A stance model should judge what a sentence says about its target, not who the target is: a corpus
where one politician is mostly criticised teaches a name prior that transfers badly to other news.
``swap_target_names`` replaces the target mention of a fraction of the training rows with the
mention of another actor drawn from the training rows (same label: the stance is in the words
around it), one of as many words ("Trump" for "Obama", "Angela Merkel" for "Boris Johnson"), so
"President Trump" does not become "President President Barack Obama". The number of rows stays the same, so training costs no more. Only training rows are
changed; validation, test and scoring see the text as it is.
"""

from __future__ import annotations

import random
from typing import Any

import datasets

# Mentions that are not names: swapping "he" for "Angela Merkel" (or the reverse) is no name
# swap, and a pronoun target in a sentence reads differently with a name in its place.
_NOT_NAMES = frozenset(
    [
        "he",
        "she",
        "him",
        "her",
        "his",
        "hers",
        "they",
        "them",
        "their",
        "theirs",
        "it",
        "its",
        "we",
        "us",
        "our",
        "i",
        "me",
        "my",
        "you",
        "your",
        "who",
        "whom",
    ]
)


def is_name(mention: str) -> bool:
    """A mention that reads as a name: capitalised, not a pronoun."""
    text = mention.strip()
    return bool(text) and text[0].isupper() and text.casefold() not in _NOT_NAMES


def swap_row(row: dict[str, Any], donor: dict[str, Any]) -> dict[str, Any]:
    """``row`` with its target mention replaced by ``donor``'s (the donor's actor id and name too);
    other mentions after the target move with the new length."""
    start, end = int(row["mention_start"]), int(row["mention_end"])
    new = str(donor["mention"])
    shift = len(new) - (end - start)
    others = [
        {**om, "start": int(om["start"]) + shift, "end": int(om["end"]) + shift} if int(om["start"]) >= end else om
        for om in row.get("other_mentions") or []
        if not (int(om["start"]) < end and int(om["end"]) > start)  # one overlapping the old target is gone
    ]
    sentence = str(row["sentence"])
    return {
        **row,
        "sentence": sentence[:start] + new + sentence[end:],
        "mention": new,
        "mention_end": start + len(new),
        "actor_id": donor["actor_id"],
        "actor_name": donor["actor_name"],
        "other_mentions": others,
    }


def swap_target_names(rows: Any, fraction: float, seed: int) -> Any:
    """A copy of ``rows`` (a ``datasets.Dataset`` in the row schema) where ``fraction`` of the rows
    whose target is a name have it replaced by another actor's name mention from ``rows``, drawn
    with ``seed`` (the same seed, the same swaps). Rows whose target is a pronoun stay as they are."""
    if fraction <= 0 or len(rows) == 0:
        return rows
    items = rows.to_list()
    words = {i: len(str(r["mention"]).split()) for i, r in enumerate(items) if is_name(str(r["mention"]))}
    donors: dict[int, list[dict[str, Any]]] = {}  # name mentions by word count
    for i, n in words.items():
        donors.setdefault(n, []).append(items[i])
    actors = {n: {d["actor_id"] for d in pool} for n, pool in donors.items()}
    # a row can swap when its word count has a donor of another actor
    swappable = [i for i, n in words.items() if actors[n] - {items[i]["actor_id"]}]
    rng = random.Random(seed)
    for i in sorted(rng.sample(swappable, round(fraction * len(swappable)))):
        pool = donors[words[i]]
        donor = rng.choice(pool)
        while donor["actor_id"] == items[i]["actor_id"]:
            donor = rng.choice(pool)
        items[i] = swap_row(items[i], donor)
    return datasets.Dataset.from_list(items, features=rows.features)
