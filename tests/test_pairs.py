"""article_pairs: cleaned, de-duplicated sentences x actors with exact spans (on the seed)."""

from __future__ import annotations

from collections import Counter

import pytest
from hydra import compose, initialize_config_dir

from conftest import CONFIG_DIR, SEED_DIR
from stance.config import InputConfig, TextConfig
from stance.data.rows import PAIR_COLUMNS
from stance.text.actors import ActorRegistry
from stance.text.articles import Article, iter_articles
from stance.text.pairs import article_pairs, article_sentences, sentence_key


@pytest.fixture(scope="module")
def cfg():
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("build")


@pytest.fixture(scope="module")
def registry(cfg):
    return ActorRegistry.from_config(cfg.actors)


@pytest.fixture(scope="module")
def seed_article(cfg):
    (article,) = list(iter_articles(InputConfig(paths=[str(SEED_DIR)])))
    return article


@pytest.fixture(scope="module")
def seed_pairs(seed_article, registry, cfg):
    return article_pairs(seed_article, registry, cfg.text)


def test_sentence_key_normalises_quotes_space_and_width():
    assert sentence_key("  \u201cTrump\u2019s  plan,\u201d\n he said. ") == '"Trump\'s plan," he said.'
    assert sentence_key("\uff34rump") == "Trump"  # NFKC: full-width letters
    assert sentence_key("Trump said.") != sentence_key("trump said.")  # case is kept


def test_seed_has_no_boilerplate_and_no_repeated_sentence(seed_article, cfg):
    sentences = article_sentences(seed_article, cfg.text)
    keys = [sentence_key(s) for s in sentences]
    assert len(keys) == len(set(keys))
    text = "\n".join(sentences)
    for boilerplate in ("give to:", "intrepid correspondents", "donate-banner", "We see it.", "![The Media Line]"):
        assert boilerplate not in text
    assert sentences[0] == "Questions Mount Over Trump’s Claims of Private Talks With Putin on Ukraine War"
    # a pull quote repeated verbatim inside a later quote is kept once ...
    assert sum("The sudden halt of USAID programs was already" in s for s in sentences) == 1
    # ... while the same words opening a quote ("“The deal ...") are a different sentence
    assert "The deal under Trump would be more favorable to Russia." in sentences
    assert "“The deal under Trump would be more favorable to Russia." in sentences


def test_seed_pairs_schema_and_exact_spans(seed_pairs, seed_article):
    assert seed_pairs
    ids = [r["example_id"] for r in seed_pairs]
    assert len(ids) == len(set(ids))
    for r in seed_pairs:
        assert set(PAIR_COLUMNS) <= set(r)
        assert r["article_id"] == seed_article.id
        assert r["example_id"] == f"{r['article_id']}:{r['sentence_idx']}:{r['actor_id']}"
        s = r["sentence"]
        assert s[r["mention_start"] : r["mention_end"]] == r["mention"]
        for m in r["other_mentions"]:
            assert s[m["start"] : m["end"]] == m["mention"]
            # the target is the actor's FIRST mention: a later one of the same actor starts after it
            if m["actor_id"] == r["actor_id"]:
                assert m["start"] > r["mention_start"]
    pairs_per_sentence = Counter(r["sentence_idx"] for r in seed_pairs)
    # every mention of a sentence is either a row's target or in its other_mentions
    for r in seed_pairs:
        assert len(r["other_mentions"]) + 1 >= pairs_per_sentence[r["sentence_idx"]]


def test_repeated_actor_mention_goes_to_other_mentions(registry, cfg):
    article = Article(
        id="a1",
        title="",
        text="Trump met Putin, and Trump later praised Putin for the talks.\n",
        source="mem",
        meta={"outlet": "Example Post", "date": None},
    )
    rows = article_pairs(article, registry, cfg.text)
    by_actor = {r["actor_id"]: r for r in rows}
    assert set(by_actor) == {"trump", "putin"}
    trump = by_actor["trump"]
    assert (trump["mention"], trump["mention_start"], trump["mention_end"]) == ("Trump", 0, 5)
    assert [(m["actor_id"], m["start"]) for m in trump["other_mentions"]] == [
        ("putin", 10),
        ("trump", 21),
        ("putin", 41),
    ]
    assert trump["outlet"] == "Example Post" and trump["date"] == ""


def test_dedupe_keeps_first_and_title_switch(registry):
    text = "Putin spoke on Friday.\nPutin  spoke on Friday.\n\u201cPutin spoke on Friday.\u201d\n"
    article = Article(id="a2", title="Putin speaks", text=text, source="mem")
    with_title = article_sentences(article, TextConfig())
    assert with_title == ["Putin speaks", "Putin spoke on Friday.", "\u201cPutin spoke on Friday.\u201d"]
    no_title = TextConfig(include_title=False)
    assert article_sentences(article, no_title)[0] == "Putin spoke on Friday."
    rows = article_pairs(article, registry, no_title)
    assert [r["sentence_idx"] for r in rows] == [0, 1]
