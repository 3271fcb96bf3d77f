"""build_dataset: annotation join, grouped stratified splits, folds, manifest, atomic output."""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter, defaultdict
from pathlib import Path

import datasets
import pytest
from hydra import compose, initialize_config_dir

import stance.data.dataset as dataset_mod
from conftest import CONFIG_DIR, SEED_DIR
from stance.config import InputConfig
from stance.data.dataset import (
    build,
    build_dataset,
    ensure_dataset,
    load_built,
    read_annotations,
    save_built,
)
from stance.data.rows import FEATURES
from stance.data.splits import assign_buckets, sentence_groups
from stance.data.userdata import TEMPLATE_COLUMNS
from stance.errors import StanceError
from stance.labels import LABELS
from stance.text.actors import ActorRegistry
from stance.text.articles import iter_articles
from stance.text.pairs import article_pairs, sentence_key

HEADER = ["article_id", "actor_id", "label", "sentence", "note"]


def compose_build(*overrides: str):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("build", overrides=list(overrides))


def fake_label(example_id: str) -> str:
    """A fixed pseudo-random label per pair (the tests need labels, not true ones)."""
    return LABELS[int(hashlib.md5(example_id.encode()).hexdigest(), 16) % 3]


def write_csv(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict:
    """Small articles (3 paragraphs each) cut from the seed's paragraphs + pseudo-labels for all their pairs."""
    root = tmp_path_factory.mktemp("corpus")
    lines = (SEED_DIR / "000_8c7c1d6cabef915e.txt").read_text(encoding="utf-8").splitlines()
    title, body = lines[0], [line for line in lines[2:] if line.strip()]
    articles = root / "articles"
    articles.mkdir()
    for i in range(0, len(body), 3):
        (articles / f"art{i // 3:02d}.txt").write_text(
            f"{title} part {i // 3}\n" + "\n".join(body[i : i + 3]) + "\n", encoding="utf-8"
        )
    cfg = compose_build()
    registry = ActorRegistry.from_config(cfg.actors)
    pairs = [r for a in iter_articles(InputConfig(paths=[str(articles)])) for r in article_pairs(a, registry, cfg.text)]
    ann = write_csv(
        root / "ann.csv",
        [[r["article_id"], r["actor_id"], fake_label(r["example_id"]), r["sentence"], ""] for r in pairs],
    )
    return {"root": root, "articles": articles, "pairs": pairs, "ann": ann}


def corpus_cfg(corpus: dict, out: Path, *overrides: str):
    return compose_build(
        f"data.input.paths=[{corpus['articles']}]",
        f"data.annotations=[{corpus['ann']}]",
        f"output_dir={out}",
        *overrides,
    )


def rows_of(dd: datasets.DatasetDict) -> list[dict]:
    return [{**r, "split": s} for s, ds in dd.items() for r in ds.to_list()]


@pytest.mark.parametrize("group_by", ["sentence", "article"])
def test_no_group_in_two_splits_or_folds(corpus, tmp_path, group_by):
    dd, manifest = build_dataset(corpus_cfg(corpus, tmp_path / "out", f"data.split.group_by={group_by}"))
    rows = rows_of(dd)
    assert len(rows) == len(corpus["pairs"]) == manifest["labelled"]
    assert all(len(dd[s]) > 0 for s in ("train", "validation", "test"))
    splits_of, folds_of = defaultdict(set), defaultdict(set)
    for r in rows:
        key = r["article_id"] if group_by == "article" else r["group"]
        assert r["group"] == key
        splits_of[key].add(r["split"])
        folds_of[key].add(r["fold"])
    assert all(len(v) == 1 for v in splits_of.values())
    assert all(len(v) == 1 for v in folds_of.values())
    # a sentence is never in two splits, whatever the grouping
    by_sentence = defaultdict(set)
    for r in rows:
        by_sentence[sentence_key(r["sentence"])].add(r["split"])
    assert all(len(v) == 1 for v in by_sentence.values())


def test_near_duplicate_sentences_share_a_group():
    sents = [
        "The deal under Trump would be more favorable to Russia.",
        "\u201cThe deal under Trump would be more favorable to Russia.",
        "For instance, Russia might keep the land, as Trump is tolerant of that.",
        "For instance, Russia might keep the land, as Trump is tolerant of that,\u201d he said.",
        "Trump said.",
        "Trump said. And then he left the room to the waiting reporters.",
    ]
    groups = sentence_groups(sents, ["a"] * len(sents))
    assert groups[0] == groups[1] and groups[2] == groups[3]
    assert groups[4] != groups[5]  # too short to merge into a longer sentence
    assert len({groups[0], groups[2], groups[4]}) == 3
    # across articles only identical (normalised) sentences are joined
    assert sentence_groups(sents[2:4], ["a", "b"])[0] != sentence_groups(sents[2:4], ["a", "b"])[1]


def test_stratified_split_sizes_and_label_shares(corpus, tmp_path):
    dd, _ = build_dataset(corpus_cfg(corpus, tmp_path / "out"))
    rows = rows_of(dd)
    n = len(rows)
    overall = Counter(r["label"] for r in rows)
    for split, ratio in (("train", 0.7), ("validation", 0.15), ("test", 0.15)):
        assert abs(len(dd[split]) / n - ratio) < 0.05, split
        share = Counter(dd[split]["label"])
        for label, total in overall.items():
            assert abs(share[label] / len(dd[split]) - total / n) < 0.12, (split, label)


def test_assign_buckets_is_grouped_deterministic_and_seeded():
    groups = [f"g{i // 3}" for i in range(300)]
    labels = [LABELS[(i * 7) % 3] for i in range(300)]
    a = assign_buckets(groups, labels, [0.2] * 5, seed=1)
    assert a == assign_buckets(groups, labels, [0.2] * 5, seed=1)
    assert a != assign_buckets(groups, labels, [0.2] * 5, seed=2)
    assert all(len({b for g2, b in zip(groups, a) if g2 == g}) == 1 for g in set(groups))
    sizes = Counter(a)
    assert sorted(sizes) == [0, 1, 2, 3, 4] and max(sizes.values()) - min(sizes.values()) <= 3


def test_features_and_folds(corpus, tmp_path):
    dd, manifest = build_dataset(corpus_cfg(corpus, tmp_path / "out", "data.split.folds=4"))
    ds = dd["train"]
    assert ds.features["label"].names == list(LABELS)
    assert set(FEATURES) <= set(ds.features)
    folds = Counter(f for s in dd.values() for f in s["fold"])
    assert sorted(folds) == [0, 1, 2, 3]
    assert sum(folds.values()) == manifest["labelled"]
    assert manifest["folds"] == {str(k): v for k, v in sorted(folds.items())}


def test_same_config_gives_identical_manifest_bytes(corpus, tmp_path):
    cfg1 = corpus_cfg(corpus, tmp_path / "one")
    cfg2 = corpus_cfg(corpus, tmp_path / "two")
    save_built(build(cfg1), tmp_path / "one")
    save_built(build(cfg2), tmp_path / "two")
    m1, m2 = (tmp_path / "one" / "manifest.json").read_bytes(), (tmp_path / "two" / "manifest.json").read_bytes()
    assert m1 == m2
    assert str(tmp_path) not in m1.decode().replace(str(corpus["root"]), "")
    d1, d2 = load_built(tmp_path / "one"), load_built(tmp_path / "two")
    assert all(d1[s].to_dict() == d2[s].to_dict() for s in d1)
    # another split seed gives another split
    d3, _ = build_dataset(corpus_cfg(corpus, tmp_path / "three", "data.split.seed=7"))
    assert d3["test"]["example_id"] != d1["test"]["example_id"]


def test_manifest_counts_and_hashes(corpus, tmp_path):
    path = save_built(build(corpus_cfg(corpus, tmp_path / "out")), tmp_path / "out")
    manifest = json.loads((path / "manifest.json").read_text())
    dd = load_built(path)
    for split, per_label in manifest["counts"].items():
        assert sum(sum(a.values()) for a in per_label.values()) == len(dd[split])
        assert sum(per_label["critical"].values()) == Counter(dd[split]["label"])[LABELS.index("critical")]
    assert len(manifest["inputs"]) == len(list(corpus["articles"].iterdir())) and all(
        len(e["sha256"]) == 64 for e in manifest["inputs"]
    )
    assert manifest["annotations"][0]["sha256"] == hashlib.sha256(corpus["ann"].read_bytes()).hexdigest()
    assert "output_dir" not in manifest["config"] and manifest["config"]["data"]["split"]["seed"] == 42
    preview = list(csv.DictReader((path / "preview.csv").read_text(encoding="utf-8").splitlines()))
    assert preview and set(preview[0]) == {"split", "example_id", "label", "actor_id", "mention", "sentence"}


# --- annotations -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def registry():
    return ActorRegistry.from_config(compose_build().actors)


def test_read_annotations_resolves_aliases_and_skips_empty_labels(tmp_path, registry):
    path = write_csv(tmp_path / "a.csv", [
        ["art", "Vladimir Putin", "Critical", "Putin  spoke.", ""],
        ["art", "putin", "critical", "Putin spoke.", "same label again: fine"],
        ["art", "trump", "", "Trump spoke.", "not annotated yet"],
    ])  # fmt: skip
    ann = read_annotations([str(path)], registry)
    assert list(ann.labels) == [("art", "putin", "Putin spoke.")]
    assert ann.labels[("art", "putin", "Putin spoke.")].label == "critical"
    assert ann.pending == 1


@pytest.mark.parametrize(
    "rows, header, message",
    [
        ([["art", "nobody", "critical", "Trump spoke.", ""]], HEADER,
         r"a\.csv:2: unknown actor 'nobody' \(not in the actor registry\)"),
        ([["art", "trump", "critical", "Trump spoke.", ""], ["art", "trump", "positive", "x", ""]], HEADER,
         r"a\.csv:3: unknown label 'positive' \(expected one of supportive, critical, neutral\)"),
        ([["art", "trump", "Trump spoke."]], ["article_id", "actor_id", "sentence"],
         r"a\.csv:1: missing column\(s\) label \(header: article_id,actor_id,sentence\)"),
        ([["art", "trump", "critical", "Trump spoke.", ""], ["art", "trump", "neutral", "Trump  spoke.", ""]], HEADER,
         r"a\.csv:3: trump in this sentence is labelled 'neutral' here and 'critical' at .*a\.csv:2$"),
        ([["", "trump", "critical", "Trump spoke.", ""]], HEADER, r"a\.csv:2: empty article_id"),
        ([["art", "trump", "critical"]], HEADER, r"a\.csv:2: 3 fields, the header has 5"),
    ],
)  # fmt: skip
def test_read_annotations_errors(tmp_path, registry, rows, header, message):
    path = write_csv(tmp_path / "a.csv", rows, header)
    with pytest.raises(StanceError, match=message):
        read_annotations([str(path)], registry)


def test_annotation_file_errors(tmp_path, registry):
    with pytest.raises(StanceError, match=r"missing\.csv: no such file"):
        read_annotations([str(tmp_path / "missing.csv")], registry)
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(StanceError, match=r"empty\.csv: empty file"):
        read_annotations([str(tmp_path / "empty.csv")], registry)
    (tmp_path / "bad.csv").write_bytes(b"article_id,actor_id,label,sentence\nart,trump,critical,Trump \xff\n")
    with pytest.raises(StanceError, match=r"bad\.csv: not UTF-8 text"):
        read_annotations([str(tmp_path / "bad.csv")], registry)


def test_unlabelled_and_stale_are_reported(corpus, tmp_path):
    pairs = corpus["pairs"]
    half = pairs[: len(pairs) // 2]
    rows = [[r["article_id"], r["actor_id"], fake_label(r["example_id"]), r["sentence"], ""] for r in half]
    rows.append(["art00", "trump", "critical", "A sentence that is in no article about Trump.", ""])
    ann = write_csv(tmp_path / "half.csv", rows)
    cfg = compose_build(f"data.input.paths=[{corpus['articles']}]", f"data.annotations=[{ann}]")
    result = build(cfg)
    m = result.manifest
    assert (m["pairs"], m["labelled"], m["unlabelled"], m["stale_annotations"]) == (
        len(pairs), len(half), len(pairs) - len(half), 1)  # fmt: skip
    assert sum(m["rows"].values()) == len(half)
    assert m["stale"][0]["where"].endswith("half.csv:" + str(len(rows) + 1))
    assert any(
        w.startswith(f"{len(pairs) - len(half)} of {len(pairs)} pairs have no annotation") for w in result.warnings
    )
    assert any("1 annotations match no pair" in w and "half.csv" in w for w in result.warnings)
    path = save_built(result, tmp_path / "out")
    template = list(csv.DictReader((path / "unlabelled.csv").read_text(encoding="utf-8").splitlines()))
    assert len(template) == len(pairs) - len(half)
    assert list(template[0]) == list(TEMPLATE_COLUMNS) and all(t["label"] == "" for t in template)
    labelled_ids = {(r["article_id"], r["actor_id"], r["sentence"]) for r in half}
    assert not labelled_ids & {(t["article_id"], t["actor_id"], t["sentence"]) for t in template}


# --- output ------------------------------------------------------------------------------------
def test_failing_write_leaves_no_folder_and_keeps_the_old_one(corpus, tmp_path, monkeypatch):
    out = tmp_path / "processed" / "seed"
    result = build(corpus_cfg(corpus, out))

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(dataset_mod, "_write_csv", boom)  # fails after save_to_disk has written
    with pytest.raises(OSError, match="disk full"):
        save_built(result, out)
    assert list((tmp_path / "processed").iterdir()) == []
    monkeypatch.undo()
    save_built(result, out)
    before = (out / "manifest.json").read_bytes()
    monkeypatch.setattr(dataset_mod, "_write_csv", boom)
    with pytest.raises(OSError):
        save_built(result, out)
    assert (out / "manifest.json").read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "processed").iterdir()) == ["seed"]


def test_load_built_errors(tmp_path):
    with pytest.raises(StanceError, match=r"nowhere: no built dataset here \(run: python -m stance.build\)"):
        load_built(tmp_path / "nowhere")
    (tmp_path / "plain").mkdir()
    with pytest.raises(StanceError, match=r"plain: not a built dataset \(no dataset_dict.json\)"):
        load_built(tmp_path / "plain")


def test_ensure_dataset_reuses_then_rebuilds(corpus, tmp_path, monkeypatch, caplog):
    cfg = corpus_cfg(corpus, tmp_path / "out")
    first = ensure_dataset(cfg)
    monkeypatch.setattr(dataset_mod, "build", lambda cfg: pytest.fail("should have loaded"))
    again = ensure_dataset(cfg)
    assert again["train"]["example_id"] == first["train"]["example_id"]
    monkeypatch.undo()
    changed = corpus_cfg(corpus, tmp_path / "out", "data.split.seed=3")
    rebuilt = ensure_dataset(changed)
    assert "built from the same inputs with other settings: rebuilding" in caplog.text
    assert rebuilt["test"]["example_id"] == load_built(tmp_path / "out")["test"]["example_id"]


def test_a_dataset_built_by_older_code_is_rebuilt(corpus, tmp_path, caplog):
    # the bug: rows built before corpus rows carried their co-targets were reused as current
    cfg = corpus_cfg(corpus, tmp_path / "out")
    ensure_dataset(cfg)
    manifest = tmp_path / "out" / "manifest.json"
    old = json.loads(manifest.read_text())
    assert old["builder"] == dataset_mod.BUILDER
    del old["builder"]  # as the code before the builder version wrote it
    manifest.write_text(json.dumps(old))
    ensure_dataset(cfg)
    assert "built by an older version of stance (rows changed since): rebuilding" in caplog.text
    assert json.loads(manifest.read_text())["builder"] == dataset_mod.BUILDER


def test_meta_columns_are_string_columns(tmp_path):
    src = tmp_path / "a.jsonl"
    src.write_text(
        json.dumps(
            {
                "id": "x1",
                "title": "Putin speaks",
                "text": "Trump praised Putin on Friday.",
                "outlet": "Post",
                "year": 2025,
            }
        )
        + "\n"
    )
    ann = write_csv(tmp_path / "ann.csv", [["x1", "trump", "supportive", "Trump praised Putin on Friday.", ""]])
    cfg = compose_build(
        f"data.input.paths=[{src}]", f"data.annotations=[{ann}]", "data.input.meta_columns=[outlet,year]"
    )
    dd, m = build_dataset(cfg)
    rows = rows_of(dd)
    assert [(r["actor_id"], r["outlet"], r["year"]) for r in rows] == [("trump", "Post", "2025")]
    assert m["unlabelled"] == 2  # Putin in the title and in the sentence


def test_seed_by_article_warns_about_empty_splits(tmp_path):
    result = build(compose_build("data.split.group_by=article", f"output_dir={tmp_path}"))
    assert result.manifest["rows"] == {"train": result.manifest["labelled"], "validation": 0, "test": 0}
    assert "split(s) validation, test empty: 1 group(s)" in result.warnings[0]
    assert result.warnings[1] == "1 group(s) for 5 folds: some folds are empty"
