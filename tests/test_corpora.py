"""NewsMTSC and generic labelled corpora in the dataset row schema."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from conftest import CONFIG_DIR
from stance.data.corpora import load_labelled, load_newsmtsc, normalise_name, resolve_files
from stance.data.dataset import build_dataset
from stance.errors import StanceError
from stance.labels import LABELS
from stance.text.actors import ActorRegistry


def compose_build(*overrides: str):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("build", overrides=list(overrides))


@pytest.fixture(scope="module")
def registry():
    return ActorRegistry.from_config(compose_build().actors)


def jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def mtsc(i: int, sentence: str, mention: str, polarity: int, target: str | None = None) -> dict:
    start = sentence.index(mention)
    return {
        "mention": mention, "polarity": polarity, "from": start, "to": start + len(mention),
        "sentence": sentence, "id": f"allsides_{i}_7_3_{target or mention}_{start}_{start + len(mention)}",
    }  # fmt: skip


ONLY_TRAIN = ("data.files.validation=''", "data.files.validation_mt=''")


# --- NewsMTSC ----------------------------------------------------------------------------------
@pytest.mark.newsmtsc
def test_newsmtsc_real_files(newsmtsc_dir, registry):
    data = compose_build("data=newsmtsc", f"data.source={newsmtsc_dir}").data
    dd = load_newsmtsc(data, registry)
    assert {s: len(ds) for s, ds in dd.items()} == {"train": 8739, "validation": 343, "validation_mt": 442}
    raw = [json.loads(line) for line in (newsmtsc_dir / "dev_rw.jsonl").read_text(encoding="utf-8").splitlines()]
    rows = dd["validation"].to_list()
    assert [r["example_id"] for r in rows] == [r["id"] for r in raw]
    polarity = {1: "supportive", -1: "critical", 0: "neutral"}
    assert [LABELS[r["label"]] for r in rows] == [polarity[r["polarity"]] for r in raw]
    for r in rows:
        assert r["sentence"][r["mention_start"] : r["mention_end"]] == r["mention"]
        assert 0 <= r["fold"] < 5
        # the other labelled targets of the sentence, as spans of it
        assert all(r["sentence"][o["start"] : o["end"]] == o["mention"] for o in r["other_mentions"])
    assert sum(bool(r["other_mentions"]) for r in rows) == 44  # dev_rw: mostly one target per sentence
    assert sum(bool(r["other_mentions"]) for r in dd["validation_mt"].to_list()) == 438  # dev_mt: of 442
    actors = Counter(dd["train"]["actor_id"])
    assert actors.most_common(1)[0][0] == "trump"  # "President Trump", "Trump's" ... resolve


def test_newsmtsc_small_local_corpus(tmp_path, registry):
    jsonl(tmp_path / "train.jsonl", [
        mtsc(1, "Critics say Trump failed the test again.", "Trump", -1),
        mtsc(2, "She said the new plan was a good one.", "She", 1, target="Jane Q. Doe"),
        mtsc(3, "Putin met officials on Monday.", "Putin", 0),
        mtsc(4, "Mr. Smith's plan won praise from all sides.", "Mr. Smith", 1),
    ])  # fmt: skip
    jsonl(tmp_path / "dev_rw.jsonl", [mtsc(5, "Trump spoke at length on Tuesday.", "Trump", 0)])
    jsonl(
        tmp_path / "dev_mt.jsonl", [mtsc(6, "Trump met Putin.", "Putin", -1), mtsc(6, "Trump met Putin.", "Trump", 0)]
    )
    dd = load_newsmtsc(compose_build("data=newsmtsc", f"data.source={tmp_path}").data, registry)
    train = dd["train"].to_list()
    assert [LABELS[r["label"]] for r in train] == ["critical", "supportive", "neutral", "supportive"]
    assert [r["actor_id"] for r in train] == ["trump", "jane_q._doe", "putin", "mr._smith"]
    assert train[1]["actor_name"] == "Jane Q. Doe" and train[1]["mention"] == "She"
    assert train[0]["article_id"] == "allsides_1_7" and train[0]["sentence_idx"] == 3
    assert (len(dd["validation"]), len(dd["validation_mt"])) == (1, 2)
    # NewsMTSC-mt: each target of a sentence carries the sentence's other targets (model.other_markers)
    assert [r["other_mentions"] for r in train] == [[]] * 4
    putin, trump = dd["validation_mt"].to_list()
    assert putin["other_mentions"] == [{"actor_id": "trump", "mention": "Trump", "start": 0, "end": 5}]
    assert trump["other_mentions"] == [{"actor_id": "putin", "mention": "Putin", "start": 10, "end": 15}]


@pytest.mark.parametrize(
    "row, message",
    [
        ({**mtsc(1, "Trump spoke.", "Trump", 0), "polarity": 2}, r"train\.jsonl:2: polarity 2 is not -1, 0 or 1"),
        (
            {**mtsc(1, "Trump spoke.", "Trump", 0), "from": 1},
            r"train\.jsonl:2: from/to \(1, 5\) do not span the mention 'Trump'",
        ),
    ],
)
def test_newsmtsc_bad_rows(tmp_path, registry, row, message):
    jsonl(tmp_path / "train.jsonl", [mtsc(0, "Putin spoke.", "Putin", 0), row])
    data = compose_build("data=newsmtsc", f"data.source={tmp_path}", *ONLY_TRAIN).data
    with pytest.raises(StanceError, match=message):
        load_newsmtsc(data, registry)


def test_newsmtsc_missing_file_and_field(tmp_path, registry):
    data = compose_build("data=newsmtsc", f"data.source={tmp_path}").data
    with pytest.raises(StanceError, match=r"train\.jsonl: no such file \(data\.files\.train"):
        load_newsmtsc(data, registry)
    jsonl(tmp_path / "train.jsonl", [{"sentence": "Trump spoke.", "polarity": 0}])
    data = compose_build("data=newsmtsc", f"data.source={tmp_path}", *ONLY_TRAIN).data
    with pytest.raises(StanceError, match=r"train\.jsonl: missing field\(s\) mention, from, to, id"):
        load_newsmtsc(data, registry)


def test_files_resolve_against_a_url_base():
    data = compose_build("data=newsmtsc", "data.source=https://example.org/newsmtsc/").data
    assert resolve_files(data) == {
        "train": "https://example.org/newsmtsc/train.jsonl",
        "validation": "https://example.org/newsmtsc/dev_rw.jsonl",
        "validation_mt": "https://example.org/newsmtsc/dev_mt.jsonl",
    }


def test_normalise_name():
    assert normalise_name("President Trump\u2019s") == "president_trump"
    assert normalise_name("  \u2019 Trump ") == "trump"


# --- generic labelled files --------------------------------------------------------------------
def labelled_csv(path: Path, n: int = 60) -> Path:
    lines = ["id,sentence,actor,stance"]
    raw = ["pos", "neg", "0"]
    for i in range(n):
        actor = ["Trump", "putin", "Jane Doe"][i % 3]
        name = {"putin": "President Putin"}.get(actor, actor)
        lines.append(f'r{i},"On day {i // 2}, {name} spoke about topic {i}.",{actor},{raw[(i // 3) % 3]}')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


LABELLED = ("data=labelled", "data.columns.actor=actor", "data.columns.mention=null", "data.columns.label=stance",
            "+data.label_map.pos=supportive", "+data.label_map.neg=critical", "+data.label_map.0=neutral")  # fmt: skip


def test_labelled_csv_with_label_map_is_split_by_group(tmp_path, registry):
    src = labelled_csv(tmp_path / "my.csv")
    data = compose_build(*LABELLED, f"+data.files.all={src}").data
    dd = load_labelled(data, registry)
    assert set(dd) == {"train", "validation", "test"} and sum(len(d) for d in dd.values()) == 60
    rows = [r for d in dd.values() for r in d.to_list()]
    r0 = next(r for r in rows if r["example_id"] == "r1")
    assert (r0["actor_id"], r0["mention"], LABELS[r0["label"]]) == ("putin", "President Putin", "supportive")
    assert r0["sentence"][r0["mention_start"] : r0["mention_end"]] == "President Putin"
    r2 = next(r for r in rows if r["example_id"] == "r2")
    assert (r2["actor_id"], r2["actor_name"]) == ("jane_doe", "Jane Doe")
    split_of = {}
    for s, d in dd.items():
        for g in d["group"]:
            assert split_of.setdefault(g, s) == s


def test_labelled_several_files_kept_as_given(tmp_path, registry):
    train = labelled_csv(tmp_path / "train.csv", 9)
    test = tmp_path / "test.jsonl"
    jsonl(test, [{"sentence": "Trump and Putin met.", "actor": "Putin", "stance": "neg", "s": 10, "e": 15}])
    data = compose_build(*LABELLED, f"+data.files.train={train}", f"+data.files.test={test}",
                         "data.columns.start=s", "data.columns.end=e").data  # fmt: skip
    with pytest.raises(StanceError, match=r"train\.csv:2: missing column 's' \(data\.columns\)"):
        load_labelled(data, registry)
    data = compose_build(*LABELLED, f"+data.files.train={train}", f"+data.files.test={test}").data
    dd = load_labelled(data, registry)
    assert {s: len(d) for s, d in dd.items()} == {"train": 9, "test": 1}
    assert dd["test"][0]["mention_start"] == 10


@pytest.mark.parametrize(
    "line, message",
    [
        ("x,Trump spoke.,Trump,great", r"my\.csv:2: label 'great' is not in data\.label_map \(pos, neg, 0\)"),
        ("x,Nobody spoke.,Trump,pos", r"my\.csv:2: actor 'Trump' is not mentioned in the sentence"),
        ("x,,Trump,pos", r"my\.csv:2: empty sentence"),
    ],
)
def test_labelled_bad_rows(tmp_path, registry, line, message):
    src = tmp_path / "my.csv"
    src.write_text("id,sentence,actor,stance\n" + line + "\n", encoding="utf-8")
    data = compose_build(*LABELLED, f"+data.files.all={src}").data
    with pytest.raises(StanceError, match=message):
        load_labelled(data, registry)


def test_labelled_mention_column_without_label_map(tmp_path, registry):
    src = jsonl(tmp_path / "m.jsonl", [
        {"id": "a", "sentence": "Critics said Trump failed.", "mention": "Trump", "label": "Critical"},
        {"id": "b", "sentence": "Critics said Trump failed.", "mention": "Biden", "label": "neutral"},
    ])  # fmt: skip
    data = compose_build("data=labelled", f"+data.files.all={src}").data
    with pytest.raises(StanceError, match=r"m\.jsonl:2: mention 'Biden' not found in the sentence"):
        load_labelled(data, registry)


@pytest.mark.newsmtsc
def test_build_dataset_dispatches_to_newsmtsc(newsmtsc_dir, tmp_path):
    dd, manifest = build_dataset(
        compose_build("data=newsmtsc", f"data.source={newsmtsc_dir}", f"output_dir={tmp_path}")
    )
    assert manifest["rows"] == {"train": 8739, "validation": 343, "validation_mt": 442}
    assert [Path(e["path"]).name for e in manifest["inputs"]] == ["train.jsonl", "dev_rw.jsonl", "dev_mt.jsonl"]
    assert sum(manifest["labels"]["train"].values()) == 8739


def test_newsmtsc_bad_json_and_empty_file(tmp_path, registry):
    data = compose_build("data=newsmtsc", f"data.source={tmp_path}", *ONLY_TRAIN).data
    (tmp_path / "train.jsonl").write_text("")
    with pytest.raises(StanceError, match=r"train\.jsonl: empty file$"):
        load_newsmtsc(data, registry)
    (tmp_path / "train.jsonl").write_text(json.dumps(mtsc(1, "Trump spoke.", "Trump", 0)) + "\n{broken\n")
    with pytest.raises(StanceError, match=r"train\.jsonl:2: not valid JSON \(Expecting property name"):
        load_newsmtsc(data, registry)
