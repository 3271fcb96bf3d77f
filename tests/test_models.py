"""Model resolution and loading, the classifier wrapper, baselines, label-set checks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import make_tiny_model, make_toy_rows
from stance.errors import StanceError
from stance.labels import LABELS
from stance.modeling.models import (
    MajorityBaseline,
    TfidfLRBaseline,
    TransformerClassifier,
    context_window,
    load_classifier,
    load_transformer,
    resolve_model_path,
    save_baseline,
)

torch.set_num_threads(1)


def test_resolve_packaged_local_missing_and_hub(packaged_model_dir, tiny_model_dir, tmp_path):
    assert resolve_model_path("sentence-transformers/all-MiniLM-L6-v2") == str(packaged_model_dir)
    assert resolve_model_path(str(tiny_model_dir)) == str(tiny_model_dir)
    missing = tmp_path / "nope" / "model"
    with pytest.raises(StanceError, match=f"^model path {missing} does not exist$"):
        resolve_model_path(str(missing))
    with pytest.raises(StanceError, match=r"^model path \./runs/x does not exist$"):
        resolve_model_path("./runs/x")
    # not a path: a hub id, left to from_pretrained
    assert resolve_model_path("distilroberta-base") == "distilroberta-base"
    assert resolve_model_path("owner/some-model") == "owner/some-model"


def test_load_transformer_sets_label_maps(tiny_model_dir):
    model, tokenizer = load_transformer(str(tiny_model_dir))
    assert model.config.id2label == {0: "supportive", 1: "critical", 2: "neutral"}
    assert model.config.label2id == {"supportive": 0, "critical": 1, "neutral": 2}
    assert tokenizer("Trump")["input_ids"][0] == tokenizer.cls_token_id


def test_classifier_probabilities_in_input_order(tiny_model_dir):
    model, tokenizer = load_transformer(str(tiny_model_dir))
    clf = TransformerClassifier(model, tokenizer, "markers", 64, batch_size=4)
    rows = make_toy_rows(10)
    rows[3]["sentence"] += " " + "and more words " * 10  # lengths differ: batches are sorted
    probs = clf.predict_proba(rows)
    assert probs.shape == (10, len(LABELS))
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    one_by_one = np.vstack([clf.predict_proba([r]) for r in rows])
    assert np.allclose(probs, one_by_one, atol=1e-5)
    assert clf.predict_proba([]).shape == (0, len(LABELS))


def test_saved_transformer_round_trip(tiny_model_dir, tmp_path):
    model, tokenizer = load_transformer(str(tiny_model_dir))
    model.config.stance = {"input_format": "both", "max_length": 40, "markers": ["[[", "]]"]}
    model.save_pretrained(tmp_path / "m")
    tokenizer.save_pretrained(tmp_path / "m")
    clf = load_classifier(tmp_path / "m")
    assert (clf.input_format, clf.max_length, clf.markers) == ("both", 40, ("[[", "]]"))
    rows = make_toy_rows(4)
    expected = TransformerClassifier(model, tokenizer, "both", 40, ("[[", "]]")).predict_proba(rows)
    assert np.allclose(clf.predict_proba(rows), expected, atol=1e-6)


def test_label_set_mismatch(tmp_path):
    path = make_tiny_model(tmp_path / "m")
    cfg = json.loads((path / "config.json").read_text())
    cfg["id2label"] = {"0": "positive", "1": "negative", "2": "neutral"}
    cfg["label2id"] = {"positive": 0, "negative": 1, "neutral": 2}
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(
        StanceError,
        match=r"model labels \(positive, negative, neutral\) do not match the label set \(supportive, critical, neutral\)$",
    ):
        load_classifier(path)


def test_load_classifier_missing_and_not_a_model(tmp_path):
    with pytest.raises(StanceError, match=f"^model path {tmp_path / 'x'} does not exist$"):
        load_classifier(tmp_path / "x")
    with pytest.raises(StanceError, match=r"not a model folder \(no config.json or stance.json\)$"):
        load_classifier(tmp_path)


def test_majority_baseline(tmp_path):
    rows = make_toy_rows(9)
    labels = [1, 1, 1, 0, 2, 1, 0, 2, 1]
    clf = MajorityBaseline().fit(rows, labels)
    assert clf.predict_proba(rows).argmax(axis=1).tolist() == [1] * 9
    save_baseline(clf, tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "stance.json").read_text())
    assert meta == {"kind": "majority", "labels": list(LABELS), "majority_label": "critical"}
    assert np.array_equal(load_classifier(tmp_path / "m").predict_proba(rows), clf.predict_proba(rows))


def test_tfidf_baseline_learns_context_and_round_trips(tmp_path):
    rows = make_toy_rows(90)
    labels = [r["label"] for r in rows]
    clf = TfidfLRBaseline(context_chars=30, C=10.0).fit(rows[:60], labels[:60])
    acc = (clf.predict_proba(rows[60:]).argmax(axis=1) == np.array(labels[60:])).mean()
    assert acc > 0.9  # the verb next to the mention decides the label
    save_baseline(clf, tmp_path / "m")
    again = load_classifier(tmp_path / "m")
    assert np.allclose(again.predict_proba(rows[60:]), clf.predict_proba(rows[60:]))


def test_context_window_hides_the_actor():
    row = {"sentence": "Yesterday officials praised Trump for the deal.", "mention_start": 28, "mention_end": 33}
    assert context_window(row, 9) == " praised  TARGET  for the "


def test_baseline_label_mismatch(tmp_path):
    save_baseline(MajorityBaseline().fit([{}], [0]), tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "stance.json").read_text())
    meta["labels"] = ["pos", "neg"]
    (tmp_path / "m" / "stance.json").write_text(json.dumps(meta))
    with pytest.raises(StanceError, match=r"model labels \(pos, neg\) do not match the label set"):
        load_classifier(tmp_path / "m")


def test_packaged_id_loads_offline(packaged_model_dir):
    assert Path(resolve_model_path("sentence-transformers/all-MiniLM-L6-v2")).joinpath("config.json").is_file()
