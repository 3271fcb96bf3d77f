"""run_training on toy data with a tiny random BERT: artifacts, reload, reproducibility, baselines, CV."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir

from conftest import CONFIG_DIR, REPO, make_toy_dataset
from stance.analysis.report import evaluate_rows, examples_hash
from stance.errors import StanceError
from stance.labels import LABELS
from stance.modeling.finetune import class_weights
from stance.modeling.models import load_classifier
from stance.modeling.training import cv_folds, run_training

torch.set_num_threads(1)

ARTIFACTS = {
    "model",
    "metrics.json",
    "predictions.jsonl",
    "misclassified.jsonl",
    "confusion_matrix.png",
    "report.md",
    "run.json",
}


def train_cfg(*overrides: str):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=["threads=1", "eval.bootstrap=50", *overrides])


def tiny_cfg(model_dir: Path, *overrides: str):
    return train_cfg(
        f"model.name_or_path={model_dir}",
        "model.max_length=32",
        "train.epochs=2",
        "train.batch_size=8",
        "train.learning_rate=1e-3",
        "train.logging_steps=2",
        *overrides,
    )


@pytest.fixture(scope="module")
def toy():
    return make_toy_dataset(60)


@pytest.fixture(scope="module")
def tiny_run(tiny_model_dir, toy, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    value = run_training(tiny_cfg(tiny_model_dir), output_dir=out, data=toy)
    return out, value


def test_artifacts_and_run_record(tiny_run, toy):
    out, value = tiny_run
    assert {p.name for p in out.iterdir()} >= ARTIFACTS
    assert not [p for p in out.iterdir() if p.name.startswith(".checkpoints")]  # temp checkpoints removed
    metrics = json.loads((out / "metrics.json").read_text())
    assert value == metrics["validation_macro_f1"]  # validation, never test, is returned
    assert {"test_macro_f1", "test_critical_recall", "test_macro_f1_ci_low", "validation_f1_pn"} <= set(metrics)
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "completed"
    assert run["primary_metric"] == {"name": "validation_macro_f1", "value": value}
    assert run["test_data_hash"] == examples_hash(toy["test"].to_list())
    assert run["counts"] == {"train": 36, "validation": 12, "test": 12}
    assert run["train_examples_per_s"] > 0 and run["timings"]["train_s"] > 0
    preds = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(preds) == 12 and {"example_id", "label", "pred", *(f"prob_{x}" for x in LABELS)} <= set(preds[0])
    wrong = (out / "misclassified.jsonl").read_text().splitlines()
    assert len(wrong) == sum(p["label"] != p["pred"] for p in preds)
    assert "| test |" in (out / "report.md").read_text()


def test_saved_model_reloads_and_evaluates_the_same(tiny_run, toy):
    out, _ = tiny_run
    clf = load_classifier(out / "model")
    assert clf.input_format == "markers" and clf.max_length == 32
    metrics, probs = evaluate_rows(clf, toy["test"].to_list(), prefix="test", bootstrap=50, seed=42)
    saved = json.loads((out / "metrics.json").read_text())
    assert metrics["test_macro_f1"] == pytest.approx(saved["test_macro_f1"])
    preds = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert np.allclose(probs[:, 0], [p["prob_supportive"] for p in preds], atol=1e-5)


def test_saved_model_loads_in_a_transformers_pipeline(tiny_run):
    from transformers import pipeline

    out, _ = tiny_run
    config = json.loads((out / "model" / "config.json").read_text())
    assert config["stance"]["markers"] == ["<<", ">>"] and config["stance"]["input_format"] == "markers"
    clf = pipeline("text-classification", model=str(out / "model"), device="cpu")
    result = clf("Officials praised << Trump >> on day 1 while Tehran watched.", top_k=None)
    assert sorted(r["label"] for r in result) == sorted(LABELS)


def test_same_seed_same_metrics(tiny_model_dir, toy, tmp_path):
    cfg = tiny_cfg(tiny_model_dir, "train.epochs=1")
    run_training(cfg, output_dir=tmp_path / "a", data=toy)
    run_training(cfg, output_dir=tmp_path / "b", data=toy)
    a = json.loads((tmp_path / "a" / "metrics.json").read_text())
    b = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert a == b
    pa = (tmp_path / "a" / "predictions.jsonl").read_text()
    assert pa == (tmp_path / "b" / "predictions.jsonl").read_text()


def test_seed_changes_the_model(tiny_model_dir, toy, tmp_path):
    run_training(tiny_cfg(tiny_model_dir, "train.epochs=1", "seed=1"), output_dir=tmp_path / "a", data=toy)
    run_training(tiny_cfg(tiny_model_dir, "train.epochs=1", "seed=2"), output_dir=tmp_path / "b", data=toy)
    pa = (tmp_path / "a" / "predictions.jsonl").read_text()
    assert pa != (tmp_path / "b" / "predictions.jsonl").read_text()


def test_weighted_smoothed_loss_and_pair_input(tiny_model_dir, toy, tmp_path):
    cfg = tiny_cfg(
        tiny_model_dir,
        "train.max_steps=3",
        "train.class_weights=true",
        "train.label_smoothing=0.1",
        "model.input_format=pair",
    )
    value = run_training(cfg, output_dir=tmp_path, data=toy)
    assert 0.0 <= value <= 1.0
    assert load_classifier(tmp_path / "model").input_format == "pair"


def test_other_markers_are_saved_and_used_at_inference(tiny_model_dir, toy, tmp_path):
    run_training(
        tiny_cfg(tiny_model_dir, "train.max_steps=2", "model.other_markers=['{','}']"), output_dir=tmp_path, data=toy
    )
    clf = load_classifier(tmp_path / "model")
    assert json.loads((tmp_path / "model" / "config.json").read_text())["stance"]["other_markers"] == ["{", "}"]
    assert clf.encoding["other_markers"] == ("{", "}")
    row = {
        "example_id": "x", "sentence": "Trump met Putin.", "mention_start": 0, "mention_end": 5,
        "other_mentions": [{"actor_id": "putin", "mention": "Putin", "start": 10, "end": 15}],
    }  # fmt: skip
    marked = clf.tokenizer.convert_ids_to_tokens(clf.encode([row])["input_ids"][0])
    assert marked.count("{") == 1 and marked.count("}") == 1
    with pytest.raises(StanceError, match=r"model.other_markers must be empty or two non-empty strings unlike"):
        run_training(tiny_cfg(tiny_model_dir, "model.other_markers=['<<','>>']"), output_dir=tmp_path / "bad", data=toy)


def test_rdrop_and_name_swap_reach_training(tiny_model_dir, toy, tmp_path):
    key = "classifier.weight"
    weights = {}
    for name, extra in (("plain", []), ("rdrop", ["train.rdrop_alpha=1.0"]), ("swap", ["train.name_swap=1.0"])):
        run_training(tiny_cfg(tiny_model_dir, "train.max_steps=3", *extra), output_dir=tmp_path / name, data=toy)
        weights[name] = load_classifier(tmp_path / name / "model").model.state_dict()[key]
    assert not torch.allclose(weights["plain"], weights["rdrop"])
    assert not torch.allclose(weights["plain"], weights["swap"])
    for bad, message in (("train.rdrop_alpha=-1", "train.rdrop_alpha"), ("train.name_swap=2", "train.name_swap")):
        with pytest.raises(StanceError, match=message):
            run_training(tiny_cfg(tiny_model_dir, bad), output_dir=tmp_path / "bad", data=toy)


def test_layerwise_groups_decay_the_learning_rate_towards_the_embeddings():
    from transformers import BertConfig, BertForSequenceClassification

    from stance.modeling.finetune import layerwise_groups

    model = BertForSequenceClassification(
        BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=3, num_attention_heads=2, intermediate_size=32)
    )
    groups = layerwise_groups(model, lr=1e-3, decay=0.5, weight_decay=0.01)
    lr_of = {id(p): g["lr"] for g in groups for p in g["params"]}
    wd_of = {id(p): g["weight_decay"] for g in groups for p in g["params"]}
    params = dict(model.named_parameters())
    assert len(lr_of) == len(params)  # every parameter in exactly one group
    assert lr_of[id(params["classifier.weight"])] == pytest.approx(1e-3)
    assert lr_of[id(params["bert.encoder.layer.2.output.dense.weight"])] == pytest.approx(5e-4)
    assert lr_of[id(params["bert.encoder.layer.0.output.dense.weight"])] == pytest.approx(1.25e-4)
    assert lr_of[id(params["bert.embeddings.word_embeddings.weight"])] == pytest.approx(6.25e-5)
    assert wd_of[id(params["bert.encoder.layer.0.output.dense.bias"])] == 0.0
    assert wd_of[id(params["bert.encoder.layer.0.output.LayerNorm.weight"])] == 0.0
    assert wd_of[id(params["bert.encoder.layer.0.output.dense.weight"])] == 0.01


def test_layer_lr_decay_reaches_the_optimizer(tiny_model_dir, toy, tmp_path):
    # a tiny decay all but freezes the embeddings while the head still trains; without it they move
    key = "bert.embeddings.word_embeddings.weight"
    base = load_classifier(tiny_model_dir).model.state_dict()[key]
    for decay, moved in (("1e-4", False), ("1.0", True)):
        out = tmp_path / decay
        run_training(
            tiny_cfg(tiny_model_dir, "train.max_steps=4", f"train.layer_lr_decay={decay}"), output_dir=out, data=toy
        )
        weights = load_classifier(out / "model").model.state_dict()[key]
        assert (not torch.allclose(weights, base, atol=1e-6)) == moved, decay
    with pytest.raises(StanceError, match="train.layer_lr_decay"):
        run_training(tiny_cfg(tiny_model_dir, "train.layer_lr_decay=0"), output_dir=tmp_path / "bad", data=toy)


def test_class_weights():
    assert class_weights([0, 0, 1, 2]) == pytest.approx([4 / 6, 4 / 3, 4 / 3])
    assert class_weights([0, 1]) == pytest.approx([1.0, 1.0, 0.0])


@pytest.mark.parametrize("kind", ["majority", "tfidf_lr"])
def test_baselines_write_the_same_artifacts(kind, toy, tmp_path):
    value = run_training(train_cfg(f"model={kind}"), output_dir=tmp_path, data=toy)
    assert {p.name for p in tmp_path.iterdir()} >= ARTIFACTS
    assert (tmp_path / "model" / "model.joblib").is_file()
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["model"]["kind"] == kind and run["status"] == "completed"
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    if kind == "majority":
        assert metrics["test_accuracy"] == pytest.approx(1 / 3) and value == pytest.approx(1 / 6)
    else:
        assert value > 0.9  # the toy labels are decided by the verb next to the mention


def test_cross_validation(toy, tmp_path):
    value = run_training(train_cfg("model=tfidf_lr", "eval.cv_folds=3"), output_dir=tmp_path, data=toy)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert value == metrics["cv_macro_f1_mean"]
    assert {"cv_macro_f1_std", "cv_accuracy_mean", "cv_oof_macro_f1", "test_macro_f1"} <= set(metrics)
    oof = [json.loads(line) for line in (tmp_path / "cv_predictions.jsonl").read_text().splitlines()]
    assert len(oof) == 48  # train + validation; test is never part of CV
    assert {r["fold"] for r in oof} == {0, 1, 2}


def test_cross_validation_transformer(tiny_model_dir, toy, tmp_path):
    value = run_training(
        tiny_cfg(tiny_model_dir, "eval.cv_folds=2", "train.max_steps=2"), output_dir=tmp_path, data=toy
    )
    assert value == json.loads((tmp_path / "metrics.json").read_text())["cv_macro_f1_mean"]


def test_cv_folds_use_the_fold_column_or_groups(toy):
    pool = datasets.concatenate_datasets([toy["train"], toy["validation"]])
    assert cv_folds(pool, 5, 0).tolist() == pool["fold"]
    folds = cv_folds(pool, 3, 0)
    for g in set(pool["group"]):
        assert len({f for f, gg in zip(folds, pool["group"]) if gg == g}) == 1
    with pytest.raises(StanceError, match="eval.cv_folds=100 but the data has only 48 groups"):
        cv_folds(pool, 100, 0)


def test_empty_train_split_fails_and_is_recorded(toy, tmp_path):
    data = datasets.DatasetDict({"train": toy["train"].select([]), "test": toy["test"]})
    with pytest.raises(StanceError, match=r"dataset seed: no training examples \(split 'train' is missing or empty\)"):
        run_training(train_cfg("model=majority"), output_dir=tmp_path, data=data)
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["status"] == "failed" and "no training examples" in run["error"]


def test_bad_cv_folds(toy, tmp_path):
    with pytest.raises(StanceError, match=r"eval.cv_folds: must be 0 \(off\) or at least 2, got 1"):
        run_training(train_cfg("model=majority", "eval.cv_folds=1"), output_dir=tmp_path, data=toy)


def test_cli_reports_bad_model_path_in_one_line(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "stance.train",
            f"model.name_or_path={tmp_path}/missing/model",
            f"hydra.run.dir={tmp_path}/run",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    assert (
        proc.stderr.strip().splitlines()[-1]
        == f"stance.train: error: model path {tmp_path}/missing/model does not exist"
    )


@pytest.mark.integration
def test_cli_default_model_on_the_seed(tmp_path):
    """The packaged MiniLM, end to end through the CLI on the seed dataset (short)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "stance.train", "train.epochs=1", "eval.bootstrap=100", f"hydra.run.dir={tmp_path}"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert ARTIFACTS | {".hydra"} <= {p.name for p in tmp_path.iterdir()}
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["status"] == "completed" and run["counts"]["train"] > 100
    assert "validation: macro-F1" in proc.stderr + proc.stdout
    assert load_classifier(tmp_path / "model").predict_proba(
        [{"sentence": "Critics blamed Trump.", "mention_start": 15, "mention_end": 20, "actor_name": "Donald Trump"}]
    ).shape == (1, 3)
