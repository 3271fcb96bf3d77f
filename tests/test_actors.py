"""The actor registry: configuration, validation and the mention finder's matching rules."""

from __future__ import annotations

import pytest

from conftest import CONFIG_DIR, SEED_DIR
from stance.errors import StanceError
from stance.text.actors import Actor, ActorRegistry, Mention

SMALL = {
    "trump": {
        "name": "Donald Trump",
        "kind": "person",
        "aliases": ["Trump", "President Trump", "President Donald Trump", "the US president"],
    },
    "putin": {"name": "Vladimir Putin", "kind": "person", "aliases": ["Putin", "Russian President Vladimir Putin"]},
    "russia": {"name": "Russia", "kind": "country", "aliases": ["Moscow", "Kremlin"]},
    "united_states": {"name": "United States", "kind": "country", "aliases": ["US", "U.S."]},
    "usaid": {"name": "USAID", "kind": "organisation", "aliases": []},
    "iran": {"name": "Iran", "kind": "country", "aliases": []},
    "krasheninnikov": {"name": "Fedor Krasheninnikov", "kind": "person", "aliases": ["Krasheninnikov"]},
}


@pytest.fixture(scope="module")
def reg() -> ActorRegistry:
    return ActorRegistry.from_config(SMALL)


@pytest.fixture(scope="module")
def default_registry() -> ActorRegistry:
    """The shipped registry, loaded as the entry points load it: Hydra composes `build`."""
    from hydra import compose, initialize_config_dir

    import stance.config  # noqa: F401  (registers the schemas)

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("build")
    return ActorRegistry.from_config(cfg.actors)


def found(reg: ActorRegistry, text: str) -> list[tuple[str, str]]:
    mentions = reg.find(text)
    for m in mentions:
        assert text[m.start : m.end] == m.text
    return [(m.actor_id, m.text) for m in mentions]


# --- configuration and look-up -------------------------------------------------------------------
def test_from_config_builds_actors_and_name_is_an_alias(reg: ActorRegistry) -> None:
    assert len(reg) == 7
    assert reg.ids[:3] == ("trump", "putin", "russia")
    trump = reg.get("trump")
    assert trump == Actor(
        "trump",
        "Donald Trump",
        "person",
        ("Donald Trump", "Trump", "President Trump", "President Donald Trump", "the US president"),
    )
    assert found(reg, "Donald Trump and Fedor Krasheninnikov") == [
        ("trump", "Donald Trump"),
        ("krasheninnikov", "Fedor Krasheninnikov"),
    ]
    assert "putin" in reg and "biden" not in reg


def test_resolve_by_id_name_or_alias_case_insensitive(reg: ActorRegistry) -> None:
    assert reg.resolve("trump").id == "trump"
    assert reg.resolve("DONALD TRUMP").id == "trump"
    assert reg.resolve("the us President").id == "trump"
    assert reg.resolve("kremlin").id == "russia"
    assert reg.resolve("the US").id == "united_states"
    assert reg.resolve("  Russian  President Vladimir Putin ").id == "putin"
    assert reg.resolve("Biden") is None
    assert reg.resolve("") is None


def test_get_unknown_id_raises(reg: ActorRegistry) -> None:
    with pytest.raises(StanceError, match=r"^unknown actor id 'biden' \(not in the actor registry\)$"):
        reg.get("biden")


def test_works_with_omegaconf_dictconfig() -> None:
    from omegaconf import OmegaConf

    reg = ActorRegistry.from_config(OmegaConf.create(SMALL))
    assert reg.ids == tuple(SMALL)
    assert found(reg, "Moscow") == [("russia", "Moscow")]


# --- validation ----------------------------------------------------------------------------------
def test_empty_registry_is_an_error() -> None:
    with pytest.raises(StanceError, match=r"^actors: the actor registry is empty \(configure at least one actor\)$"):
        ActorRegistry.from_config({})


def test_alias_claimed_by_two_actors_names_both() -> None:
    cfg = {
        "russia": {"name": "Russia", "kind": "country", "aliases": ["Moscow"]},
        "moscow_city": {"name": "Moscow", "kind": "city", "aliases": []},
    }
    with pytest.raises(
        StanceError, match=r"^actors: alias 'Moscow' of 'moscow_city' is also claimed by 'russia' \(as 'Moscow'\)$"
    ):
        ActorRegistry.from_config(cfg)


def test_lowercase_alias_clashes_with_its_capitalised_form() -> None:
    cfg = {
        "a": {"name": "The Hague", "kind": "city", "aliases": []},
        "b": {"name": "ICJ", "kind": "organisation", "aliases": ["the Hague"]},
    }
    with pytest.raises(StanceError, match=r"alias 'the Hague' of 'b' is also claimed by 'a' \(as 'The Hague'\)$"):
        ActorRegistry.from_config(cfg)


def test_empty_alias_is_an_error() -> None:
    cfg = {"trump": {"name": "Donald Trump", "kind": "person", "aliases": ["Trump", "  "]}}
    with pytest.raises(StanceError, match=r"^actors\.trump: empty alias$"):
        ActorRegistry.from_config(cfg)


def test_missing_name_and_bad_aliases_are_errors() -> None:
    with pytest.raises(StanceError, match=r"^actors\.x: missing name$"):
        ActorRegistry.from_config({"x": {"kind": "person", "aliases": ["X"]}})
    with pytest.raises(StanceError, match=r"^actors\.x: missing kind$"):
        ActorRegistry.from_config({"x": {"name": "X"}})
    with pytest.raises(StanceError, match=r"^actors\.x: aliases must be a list of strings$"):
        ActorRegistry.from_config({"x": {"name": "X", "kind": "person", "aliases": "X"}})
    with pytest.raises(StanceError, match=r"^actors: invalid actor id 'a:b' \(no spaces or ':'\)$"):
        ActorRegistry.from_config({"a:b": {"name": "X", "kind": "person"}})


def test_from_yaml_names_the_file(tmp_path) -> None:
    path = tmp_path / "actors.yaml"
    path.write_text("x:\n  name: X\n  kind: person\n  aliases: ['']\n", encoding="utf-8")
    with pytest.raises(StanceError, match=rf"^{path}\.x: empty alias$"):
        ActorRegistry.from_yaml(path)
    with pytest.raises(StanceError, match=r"actor registry file not found$"):
        ActorRegistry.from_yaml(tmp_path / "missing.yaml")


# --- matching ------------------------------------------------------------------------------------
def test_word_boundaries(reg: ActorRegistry) -> None:
    assert found(reg, "Iranian officials") == []
    assert found(reg, "USAID programs") == [("usaid", "USAID")]
    assert found(reg, "US-Russia relations") == [("united_states", "US"), ("russia", "Russia")]
    assert found(reg, "a Trump-Putin call") == [("trump", "Trump"), ("putin", "Putin")]
    assert found(reg, "Trumpism and Trumps, anti-Trump") == [("trump", "Trump")]
    assert found(reg, "the U.S. and us") == [("united_states", "U.S.")]
    assert found(reg, "Iran.") == [("iran", "Iran")]
    # A word character before the alias blocks it too, without hiding a mention inside it.
    assert found(reg, "AUS, SuperTrump, ExPresident Trump") == [("trump", "Trump")]


def test_possessives_straight_and_curly_span_is_the_name(reg: ActorRegistry) -> None:
    text = "Trump's plan, Trump\u2019s claims and the Kremlins' view, Putin' aides"
    mentions = reg.find(text)
    assert [(m.actor_id, m.text) for m in mentions] == [("trump", "Trump"), ("trump", "Trump"), ("putin", "Putin")]
    assert mentions[1] == Mention("trump", "Trump", 14, 19)
    assert text[mentions[1].end] == "\u2019"


def test_longest_match_and_no_overlaps(reg: ActorRegistry) -> None:
    assert found(reg, "President Donald Trump said") == [("trump", "President Donald Trump")]
    assert found(reg, "Russian President Vladimir Putin") == [("putin", "Russian President Vladimir Putin")]
    assert found(reg, "Russian political analyst and commentator Fedor Krasheninnikov") == [
        ("krasheninnikov", "Fedor Krasheninnikov")
    ]
    assert found(reg, "the US president met Putin") == [("trump", "the US president"), ("putin", "Putin")]
    mentions = reg.find("President Trump, Trump, President Donald Trump")
    for a, b in zip(mentions, mentions[1:]):
        assert a.end <= b.start


def test_spans_are_exact(reg: ActorRegistry) -> None:
    text = "With no confirmation of a Trump-Putin call, Moscow said US pressure on Iran grows."
    mentions = reg.find(text)
    assert [m.start for m in mentions] == sorted(m.start for m in mentions)
    assert [(m.text, m.start, m.end) for m in mentions] == [
        ("Trump", 26, 31),
        ("Putin", 32, 37),
        ("Moscow", 44, 50),
        ("US", 56, 58),
        ("Iran", 71, 75),
    ]


def test_case_rules(reg: ActorRegistry) -> None:
    # Proper names are case-sensitive.
    assert found(reg, "trump cards and the putin") == []
    assert found(reg, "MOSCOW") == []
    # Lower-case descriptions also match with a capital first letter (sentence starts).
    assert found(reg, "The US president said") == [("trump", "The US president")]
    assert found(reg, "the US president said") == [("trump", "the US president")]
    assert found(reg, "THE US PRESIDENT") == [("united_states", "US")]
    # The rest of a description keeps its case: "the US President" is not the alias.
    assert found(reg, "the US President") == [("united_states", "US")]


def test_whitespace_and_apostrophe_variants() -> None:
    reg = ActorRegistry.from_config(
        {"prc": {"name": "People's Republic of China", "kind": "country", "aliases": ["China"]}}
    )
    assert found(reg, "the People\u2019s Republic\nof  China") == [("prc", "People\u2019s Republic\nof  China")]


def test_find_scales_linearly_on_long_text(default_registry: ActorRegistry) -> None:
    import time

    text = (SEED_DIR / "000_8c7c1d6cabef915e.txt").read_text(encoding="utf-8") * 40  # ~0.5 MB
    t0 = time.perf_counter()
    mentions = default_registry.find(text)
    elapsed = time.perf_counter() - t0
    assert len(mentions) > 8000
    # ~0.05 s measured on a shared laptop-class CPU; generous bound for slow CI machines.
    assert elapsed < 2.0


# --- the shipped registry on the seed article ----------------------------------------------------
REQUIRED = [
    "trump",
    "putin",
    "zelenskyy",
    "biden",
    "obama",
    "russia",
    "ukraine",
    "united_states",
    "europe",
    "iran",
    "israel",
    "hezbollah",
    "syria",
    "china",
    "usaid",
    "benjamin_miller",
    "fedor_krasheninnikov",
]


def test_default_registry_finds_every_actor_of_the_seed(default_registry: ActorRegistry) -> None:
    text = (SEED_DIR / "000_8c7c1d6cabef915e.txt").read_text(encoding="utf-8")
    mentions = default_registry.find(text)
    assert all(text[m.start : m.end] == m.text for m in mentions)
    seen = {m.actor_id for m in mentions}
    assert set(REQUIRED) <= seen, sorted(set(REQUIRED) - seen)
    assert set(REQUIRED) <= set(default_registry.ids)
    for actor in default_registry:
        assert actor.name in actor.aliases and actor.kind


def test_default_registry_aliases_on_seed_phrases(default_registry: ActorRegistry) -> None:
    cases = {
        "President Donald Trump claims": [("trump", "President Donald Trump")],
        "with Russian President Vladimir Putin": [("putin", "Russian President Vladimir Putin")],
        "to [Ukrainian President Volodymyr] Zelenskyy and say": [("zelenskyy", "Zelenskyy")],
        "compared to former President Joe Biden.": [("biden", "former President Joe Biden")],
        "brokered by then-President Barack Obama.": [("obama", "President Barack Obama")],
        "The US president also reiterated": [("trump", "The US president")],
        "with the current US president": [("trump", "the current US president")],
        "the American president\u2019s strategy": [("trump", "the American president")],
        "improved US-Russia relations": [("united_states", "US"), ("russia", "Russia")],
        "The Russian military is slowly advancing": [("russia", "Russian military")],
        "let European nations handle it": [("europe", "European nations")],
        "could embolden European populists": [],
        "halting funding for Ukrainian programs": [],
        "the sudden halt of USAID programs": [("usaid", "USAID")],
        "a Washington-brokered peace deal": [("united_states", "Washington")],
        "prove that \u2018America is first\u2019": [("united_states", "America")],
        "the Kremlin said Kyiv and Kiev": [("russia", "Kremlin"), ("ukraine", "Kyiv"), ("ukraine", "Kiev")],
    }
    for text, expected in cases.items():
        assert found(default_registry, text) == expected, text


def test_seed_annotations_name_actors_the_registry_finds_in_their_sentence(default_registry: ActorRegistry) -> None:
    """Every gold row's actor resolves and is found in its sentence: an alias edit that drops a
    labelled mention fails here, not silently in the dataset build."""
    import csv

    from stance.labels import LABELS

    path = CONFIG_DIR.parent / "data" / "annotations" / "seed.csv"
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["article_id", "actor_id", "label", "sentence", "note"]
    assert len(rows) >= 150
    keys = set()
    for i, row in enumerate(rows, start=2):
        actor = default_registry.resolve(row["actor_id"])
        assert actor is not None and actor.id == row["actor_id"], (i, row["actor_id"])
        assert row["label"] in LABELS, (i, row["label"])
        assert actor.id in {m.actor_id for m in default_registry.find(row["sentence"])}, (i, row["sentence"])
        key = (row["article_id"], actor.id, row["sentence"])
        assert key not in keys, (i, "duplicate")
        keys.add(key)
    assert {r["label"] for r in rows} == set(LABELS)
