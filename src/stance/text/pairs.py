"""One example per (sentence, actor) of an article: the unit that is labelled, trained and scored.

``article_pairs`` is shared by the dataset builder and the scorer, so it knows nothing about
labels, splits or groups: it cleans, segments, removes repeated sentences and finds mentions.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from stance.config import TextConfig
from stance.text.actors import ActorRegistry
from stance.text.articles import Article, clean_text
from stance.text.segment import split_sentences

_QUOTES = str.maketrans(
    {
        "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
        "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
        "\u00ab": '"', "\u00bb": '"',
    }
)  # fmt: skip
_SPACE = re.compile(r"\s+")


def sentence_key(text: str) -> str:
    """The comparison form of a sentence: NFKC, straight quotes, whitespace collapsed, stripped.

    Two sentences with the same key are the same sentence (for de-duplication, for joining
    annotations to pairs and for split groups). Case and punctuation are kept: a sentence quoted
    inside a longer quote (with its opening quote mark) is a different sentence.
    """
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES)
    return _SPACE.sub(" ", text).strip()


def article_sentences(article: Article, text_cfg: TextConfig) -> list[str]:
    """The article's cleaned, segmented sentences, repeats removed (first occurrence kept).

    With ``text_cfg.include_title`` the title is sentence 0 (not cleaned: a headline is short and
    has no final punctuation, which the line cleaner would take for a menu item).
    """
    texts: list[str] = []
    if text_cfg.include_title and article.title.strip():
        texts.append(_SPACE.sub(" ", article.title).strip())
    body = clean_text(article.text, text_cfg.clean)
    texts.extend(s.text for s in split_sentences(body, text_cfg.segment))
    seen: set[str] = set()
    unique: list[str] = []
    for text in texts:
        key = sentence_key(text)
        # pull quotes repeat a paragraph verbatim; a repeat would be scored (and labelled) twice
        if not key or key in seen:
            continue
        seen.add(key)
        unique.append(text)
    return unique


def article_pairs(article: Article, registry: ActorRegistry, text_cfg: TextConfig) -> list[dict[str, Any]]:
    """One row per (sentence, actor) of ``article`` in the dataset row schema, without labels.

    The actor's first mention in the sentence is the target (``mention``, ``mention_start``,
    ``mention_end``: a span of ``sentence``, end exclusive); every other mention in the sentence
    (other actors and further mentions of the same actor) goes to ``other_mentions``.
    ``sentence_idx`` indexes the cleaned, de-duplicated sentences. The article's meta values are
    added as string columns (they never replace a schema column).
    """
    meta = {k: "" if v is None else str(v) for k, v in article.meta.items()}
    rows: list[dict[str, Any]] = []
    for idx, sentence in enumerate(article_sentences(article, text_cfg)):
        mentions = registry.find(sentence)
        if not mentions:
            continue
        all_mentions = [{"actor_id": m.actor_id, "mention": m.text, "start": m.start, "end": m.end} for m in mentions]
        targets: dict[str, int] = {}
        for i, m in enumerate(mentions):
            targets.setdefault(m.actor_id, i)
        for actor_id, i in targets.items():
            m = mentions[i]
            rows.append(
                {
                    "example_id": f"{article.id}:{idx}:{actor_id}",
                    "article_id": article.id,
                    "sentence_idx": idx,
                    "sentence": sentence,
                    "actor_id": actor_id,
                    "actor_name": registry.get(actor_id).name,
                    "mention": m.text,
                    "mention_start": m.start,
                    "mention_end": m.end,
                    "other_mentions": [om for j, om in enumerate(all_mentions) if j != i],
                }
            )
            # meta columns follow the pair columns and never replace one (stance.data.rows.PAIR_COLUMNS)
            rows[-1].update((k, v) for k, v in meta.items() if k not in rows[-1])
    return rows
