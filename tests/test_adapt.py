"""Recipes: experiment configs compose; model.init_from adapts a trained model, keeping its label
maps and encoding block, and refuses a model that is not a stance model or predicts other labels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from conftest import CONFIG_DIR, make_tiny_model, make_toy_dataset, quick_train_cfg
from stance.errors import StanceError
from stance.modeling.finetune import init_model_dir
from stance.modeling.models import load_classifier
from stance.modeling.training import run_training

torch.set_num_threads(1)
EXPERIMENTS = sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml"))


cfg = quick_train_cfg


@pytest.fixture(scope="module")
def toy():
    return make_toy_dataset(45)


@pytest.fixture(scope="module")
def trained(tiny_model_dir, toy, tmp_path_factory) -> Path:
    """A run trained with non-default encoding (pair input, max_length 24)."""
    out = tmp_path_factory.mktemp("base")
    run_training(
        cfg(
            f"model.name_or_path={tiny_model_dir}",
            "model.input_format=pair",
            "model.max_length=24",
            "train.epochs=1",
            "train.batch_size=8",
        ),
        output_dir=out,
        data=toy,
    )
    return out


def test_every_experiment_composes():
    assert {"news", "news_sentiment", "adapt"} <= set(EXPERIMENTS)
    for name in EXPERIMENTS:
        c = cfg(f"+experiment={name}", "model.init_from=RUN/model") if name == "adapt" else cfg(f"+experiment={name}")
        assert c.train.epochs > 0
    assert cfg("+experiment=news").data.labels == "stance"
    assert cfg("+experiment=news_sentiment").data.labels == "corpus"


def test_adapt_keeps_label_maps_and_encoding(trained, toy, tmp_path):
    # the adapt recipe on the toy data, starting from the trained run (its run dir is accepted too)
    run_training(
        cfg(
            "+experiment=adapt",
            f"model.init_from={trained}",
            "model.input_format=markers",
            "model.max_length=64",
            "train.epochs=1",
            "train.batch_size=8",
        ),
        output_dir=tmp_path,
        data=toy,
    )
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["id2label"] == json.loads((trained / "model" / "config.json").read_text())["id2label"]
    assert config["stance"]["input_format"] == "pair" and config["stance"]["max_length"] == 24
    assert config["stance"]["init_from"] == str(trained / "model")
    assert load_classifier(tmp_path / "model").input_format == "pair"
    # the weights moved: adaptation trained the loaded model, not a fresh one
    a = load_classifier(trained / "model").model.state_dict()
    b = load_classifier(tmp_path / "model").model.state_dict()
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_init_from_refuses_other_labels(tmp_path):
    other = make_tiny_model(tmp_path / "other")
    config = json.loads((other / "config.json").read_text())
    config["id2label"] = {"0": "positive", "1": "negative", "2": "neutral"}
    config["label2id"] = {v: int(k) for k, v in config["id2label"].items()}
    config["stance"] = {"input_format": "markers", "max_length": 32, "markers": ["<<", ">>"]}
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(StanceError, match="label"):
        run_training(
            cfg("+experiment=adapt", f"model.init_from={other}", "train.epochs=1"),
            output_dir=tmp_path / "run",
            data=make_toy_dataset(30),
        )


def test_init_from_refuses_base_checkpoints_and_missing_folders(tiny_model_dir, tmp_path):
    with pytest.raises(StanceError, match="not a fine-tuned stance model"):
        init_model_dir(tiny_model_dir)
    with pytest.raises(StanceError, match="no config.json"):
        init_model_dir(tmp_path / "nowhere")
    assert init_model_dir(None) is None and init_model_dir("") is None


def test_adapt_without_init_from_is_one_line(toy, tmp_path):
    with pytest.raises(StanceError, match="model.init_from: missing"):
        run_training(cfg("+experiment=adapt", "train.epochs=1"), output_dir=tmp_path, data=toy)


def test_training_calibrates_and_the_temperature_travels_with_the_model(trained, toy, tmp_path):
    """The run fits a temperature on validation, stores it in config.json's stance block, reports
    ECE, draws the reliability diagram; a reload predicts the same calibrated probabilities."""
    import numpy as np

    metrics = json.loads((trained / "metrics.json").read_text())
    config = json.loads((trained / "model" / "config.json").read_text())
    assert metrics["temperature"] == config["stance"]["temperature"] > 0
    assert {"validation_ece", "validation_ece_uncalibrated", "test_ece"} <= set(metrics)
    assert (trained / "reliability.png").stat().st_size > 0
    clf = load_classifier(trained / "model")
    assert clf.temperature == config["stance"]["temperature"]
    rows = toy["test"].to_list()
    calibrated = clf.predict_proba(rows)
    clf.temperature = 1.0
    raw = clf.predict_proba(rows)
    assert (calibrated.argmax(1) == raw.argmax(1)).all()
    expected = np.exp(np.log(raw) / config["stance"]["temperature"])
    assert np.allclose(calibrated, expected / expected.sum(1, keepdims=True), atol=1e-5)


def test_calibration_can_be_turned_off(tiny_model_dir, toy, tmp_path):
    run_training(
        cfg(f"model.name_or_path={tiny_model_dir}", "train.epochs=1", "train.calibrate=false"),
        output_dir=tmp_path,
        data=toy,
    )
    assert "temperature" not in json.loads((tmp_path / "model" / "config.json").read_text())["stance"]


def test_mixed_recipe_adds_weighted_rows(tiny_model_dir, toy, tmp_path, monkeypatch):
    """+experiment=mixed: the mixed dataset's train rows join the run's own, weighted; validation
    and test stay the run's own."""
    from stance.modeling import training

    extra = make_toy_dataset(30, seed=7)
    built = []
    monkeypatch.setattr(training, "ensure_dataset", lambda c: built.append(c.data.name) or extra)
    mixed = training.add_mix(cfg("+experiment=mixed"), toy)
    assert built == ["newsmtsc-stance"]
    assert len(mixed["train"]) == len(toy["train"]) + len(extra["train"])
    assert mixed["train"]["sample_weight"] == [1.0] * len(toy["train"]) + [0.1] * len(extra["train"])
    assert len(mixed["validation"]) == len(toy["validation"])
    run_training(
        cfg(
            "+experiment=mixed",
            f"model.name_or_path={tiny_model_dir}",
            "model.max_length=32",
            "train.max_steps=2",
            "train.batch_size=8",
            "train.eval_steps=0",
        ),
        output_dir=tmp_path,
        data=toy,
    )
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["status"] == "completed" and record["counts"]["train"] == len(mixed["train"])
    with pytest.raises(StanceError, match="mix.weight must be positive"):
        training.add_mix(cfg("+experiment=mixed", "mix.weight=0"), toy)


def test_mixed_cross_validation_folds_only_the_runs_own_rows(tiny_model_dir, toy, tmp_path, monkeypatch):
    """Bug: with +experiment=mixed eval.cv_folds=K the other corpus' rows were folded (and scored) with
    the run's own. Now every fold trains on its own rows plus all the mixed rows (weighted) and holds
    out only the run's own rows."""
    from stance.modeling import training

    extra = make_toy_dataset(30, seed=7)
    monkeypatch.setattr(training, "ensure_dataset", lambda c: extra)
    seen = []
    real_fit = training.fit_model

    def spy(c, train_rows, valid_rows, work_dir):
        seen.append((len(train_rows), sorted(set(train_rows["sample_weight"]))))
        return real_fit(c, train_rows, valid_rows, work_dir)

    monkeypatch.setattr(training, "fit_model", spy)
    run_training(
        cfg(
            "+experiment=mixed",
            f"model.name_or_path={tiny_model_dir}",
            "model.max_length=32",
            "train.max_steps=1",
            "train.batch_size=8",
            "train.eval_steps=0",
            "eval.cv_folds=3",
        ),
        output_dir=tmp_path,
        data=toy,
    )
    own = len(toy["train"]) + len(toy["validation"])
    oof = [json.loads(line) for line in (tmp_path / "cv_predictions.jsonl").read_text().splitlines()]
    assert len(oof) == own  # only the run's own rows are held out and scored
    folds = seen[:3]
    assert sum(n - len(extra["train"]) for n, _ in folds) == 2 * own  # each own row trains in 2 of 3 folds
    assert all(weights == [0.1, 1.0] for _, weights in folds)
    assert seen[3][0] == len(toy["train"]) + len(extra["train"])  # the final model: own train + mixed


def test_row_weights_in_the_loss():
    """Weights of 1 give the usual (class-weighted) mean; other weights change it as a weighted mean."""
    from types import SimpleNamespace

    from stance.modeling.finetune import _weighted_trainer

    logits = torch.tensor([[2.0, 0.1, -1.0], [0.3, 0.2, 0.1], [-1.0, 0.5, 2.0]])
    labels = torch.tensor([0, 1, 2])

    def loss(weights, rows):
        trainer = object.__new__(_weighted_trainer(weights, 0.0))
        inputs = {"labels": labels.clone(), **({"sample_weight": torch.tensor(rows)} if rows is not None else {})}
        return trainer.compute_loss(lambda **kw: SimpleNamespace(logits=logits), inputs)

    for w in (None, [0.5, 1.0, 2.0]):
        assert torch.isclose(loss(w, [1.0, 1.0, 1.0]), loss(w, None))
    per_row = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    assert torch.isclose(loss(None, [1.0, 0.0, 0.0]), per_row[0])


def test_paths_with_equals_signs_survive_as_overrides():
    """Run folders are named seed=N: a path override must be quoted (a bug of the transfer study)."""
    from stance.overrides import quote_override

    path = "/runs/news/seed=1/it's here,too/model"
    assert cfg("+experiment=adapt", f"model.init_from={quote_override(path)}").model.init_from == path
