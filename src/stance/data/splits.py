"""Split groups, grouped stratified splits and folds.

Grouping: rows of one group never sit in two splits (or two folds). ``group_by: article`` groups by
article id; ``group_by: sentence`` groups by normalised sentence text, and also joins, within an
article, a sentence with a longer one that contains it (a pull quote repeated inside a quote), so
near-duplicates cannot leak from train into test.
"""

from __future__ import annotations

import random
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

import datasets

from stance.config import GroupBy
from stance.data.rows import make_features, to_dataset
from stance.errors import StanceError
from stance.text.pairs import sentence_key

SPLITS: tuple[str, ...] = ("train", "validation", "test")


# a sentence shorter than this (normalised) is never merged into a longer one's group
_MIN_CONTAINED_CHARS = 30


_EDGE = re.compile(r"^\W+|\W+$")


def loose_key(sentence: str) -> str:
    """sentence_key, case-folded, with quote marks and punctuation stripped at both ends."""
    return _EDGE.sub("", sentence_key(sentence).casefold())


def sentence_groups(sentences: Sequence[str], articles: Sequence[str | None] | None = None) -> list[str]:
    """The split group of each sentence (``group_by: sentence``).

    Sentences with the same :func:`loose_key` share a group anywhere in the data; within one article
    a sentence whose loose key (at least 30 characters) is contained in another's joins its group.
    A group is named by the smallest loose key in it, so names do not depend on row order.
    Rows whose article is None or "" are only grouped by equal keys.
    """
    keys = [loose_key(s) for s in sentences]
    parent: dict[str, str] = {k: k for k in keys}

    def find(k: str) -> str:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            lo, hi = sorted((ra, rb))
            parent[hi] = lo

    if articles is not None:
        by_article: dict[str, set[str]] = defaultdict(set)
        for key, art in zip(keys, articles):
            if art:
                by_article[art].add(key)
        for members in by_article.values():
            ordered = sorted(members, key=lambda k: (len(k), k))
            for i, short in enumerate(ordered):
                if len(short) < _MIN_CONTAINED_CHARS:
                    continue
                for longer in ordered[i + 1 :]:
                    if short in longer:
                        union(short, longer)
    return [find(k) for k in keys]


def assign_buckets(groups: Sequence[str], labels: Sequence[str], ratios: Sequence[float], seed: int) -> list[int]:
    """A bucket index per row: a group's rows share one bucket; label counts follow ``ratios``.

    Greedy stratified assignment: groups go largest first (ties in a seeded random order) to the
    bucket whose label counts fall furthest short of ``ratio * total``, each label weighted by its
    rarity. Deterministic given the rows and ``seed``.
    """
    per_group: dict[str, Counter[str]] = defaultdict(Counter)
    for g, y in zip(groups, labels):
        per_group[g][y] += 1
    totals: Counter[str] = Counter(labels)
    n = len(labels)
    names = sorted(per_group)
    random.Random(seed).shuffle(names)
    names.sort(key=lambda g: -sum(per_group[g].values()))  # stable: ties keep the shuffled order
    active = [b for b, r in enumerate(ratios) if r > 0]
    count: list[Counter[str]] = [Counter() for _ in ratios]
    size = [0] * len(ratios)
    where: dict[str, int] = {}
    for g in names:
        c = per_group[g]
        g_size = sum(c.values())

        def cost(b: int, c: Counter[str] = c, g_size: int = g_size) -> float:
            # increase of sum((count - target)^2 / total) over labels, plus the same for sizes
            delta = sum(k * (2 * (count[b][y] - ratios[b] * totals[y]) + k) / totals[y] for y, k in c.items())
            return delta + g_size * (2 * (size[b] - ratios[b] * n) + g_size) / n

        best = min(active, key=lambda b: (cost(b), b))
        where[g] = best
        count[best].update(c)
        size[best] += g_size
    return [where[g] for g in groups]


def check_split_config(split: Any) -> None:
    """Raise StanceError for split ratios that are negative or do not sum to 1, or a bad group_by."""
    ratios = [float(getattr(split, s)) for s in SPLITS]
    if any(r < 0 for r in ratios) or abs(sum(ratios) - 1.0) > 1e-6 or ratios[0] <= 0:
        raise StanceError(
            "data.split: train/validation/test must be >= 0, train > 0, and sum to 1 "
            f"(got {ratios[0]}/{ratios[1]}/{ratios[2]})"
        )
    if split.group_by not in tuple(GroupBy):
        raise StanceError(f"data.split.group_by: {split.group_by!r} is not 'sentence' or 'article'")
    if split.folds < 2:
        raise StanceError(f"data.split.folds: {split.folds} (need at least 2)")


def add_groups(rows: list[dict[str, Any]], group_by: str) -> None:
    """Set each row's ``group`` (article id, or the sentence group) in place."""
    if group_by == "article":
        for r in rows:
            r["group"] = r["article_id"]
        return
    groups = sentence_groups([r["sentence"] for r in rows], [r["article_id"] for r in rows])
    for r, g in zip(rows, groups):
        r["group"] = g


def add_folds(rows: list[dict[str, Any]], folds: int, seed: int) -> None:
    """Set each row's ``fold`` in place: grouped, stratified by label, ``folds`` buckets."""
    buckets = assign_buckets([r["group"] for r in rows], [r["label"] for r in rows], [1.0 / folds] * folds, seed)
    for r, b in zip(rows, buckets):
        r["fold"] = b


def split_rows(rows: list[dict[str, Any]], split: Any) -> dict[str, list[dict[str, Any]]]:
    """Rows (with ``group`` and ``label``) -> {split name: rows}, grouped and stratified.

    Splits with ratio 0 are left out. Row order within a split follows the input order.
    """
    ratios = [float(getattr(split, s)) for s in SPLITS]
    buckets = assign_buckets([r["group"] for r in rows], [r["label"] for r in rows], ratios, split.seed)
    out: dict[str, list[dict[str, Any]]] = {s: [] for s, r in zip(SPLITS, ratios) if r > 0}
    for r, b in zip(rows, buckets):
        out[SPLITS[b]].append(r)
    return out


def finish_splits(splits: dict[str, list[dict[str, Any]]], folds: int, seed: int) -> datasets.DatasetDict:
    """Add groups (by sentence, unless set) and folds over all rows of all splits; build the DatasetDict."""
    everything = [r for rows in splits.values() for r in rows]
    if any("group" not in r for r in everything):
        add_groups(everything, "sentence")
    add_folds(everything, folds, seed)
    features = make_features()
    return datasets.DatasetDict({s: to_dataset(rows, features) for s, rows in splits.items()})
