"""Students and distillation (model.layers, model=minilm_l3, +experiment=distill): the student keeps
the teacher's chosen layers, embeddings, head, tokenizer and stance block and loads through
transformers.pipeline; training on a teacher's soft labels runs and records where they came from."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import make_toy_dataset, quick_train_cfg
from stance.errors import StanceError
from stance.modeling.distill import SOFT_LABELS, add_soft_labels, build_student, distill_loss, keep_layers
from stance.modeling.models import load_classifier
from stance.modeling.training import run_training

torch.set_num_threads(1)


cfg = quick_train_cfg


@pytest.fixture(scope="module")
def toy():
    return make_toy_dataset(45)


@pytest.fixture(scope="module")
def teacher(tiny_model_dir, toy, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("teacher")
    run_training(
        cfg(f"model.name_or_path={tiny_model_dir}", "model.max_length=32", "train.epochs=1", "train.batch_size=8"),
        output_dir=out,
        data=toy,
    )
    return out / "model"


def test_keep_layers_takes_alternate_layers():
    from transformers import BertConfig, BertForSequenceClassification

    model = BertForSequenceClassification(
        BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=6, num_attention_heads=2, intermediate_size=32)
    )
    layers = model.bert.encoder.layer
    student = keep_layers(model, [0, 2, 4])
    assert student.config.num_hidden_layers == 3
    assert [id(x) for x in student.bert.encoder.layer] == [id(layers[i]) for i in (0, 2, 4)]
    with pytest.raises(StanceError, match="model.layers"):
        keep_layers(student, [0, 5])


def test_student_builds_from_teacher_and_loads_in_pipeline(teacher, toy, tmp_path):
    from transformers import pipeline

    student_dir = build_student(teacher, [1], tmp_path / "student")
    config = json.loads((student_dir / "config.json").read_text())
    t_config = json.loads((teacher / "config.json").read_text())
    assert config["num_hidden_layers"] == 1 and t_config["num_hidden_layers"] == 2
    assert config["id2label"] == t_config["id2label"]
    assert config["stance"]["layers_kept"] == [1] and config["stance"]["teacher"] == str(teacher)
    assert config["stance"]["temperature"] == t_config["stance"]["temperature"]
    # the embeddings and head are the teacher's
    s, t = load_classifier(student_dir).model.state_dict(), load_classifier(teacher).model.state_dict()
    for key in ("bert.embeddings.word_embeddings.weight", "classifier.weight"):
        assert torch.equal(s[key], t[key])
    assert torch.equal(s["bert.encoder.layer.0.output.dense.weight"], t["bert.encoder.layer.1.output.dense.weight"])
    clf = pipeline("text-classification", model=str(student_dir), device=-1)
    out = clf("The mayor << praised >> the plan.")
    assert out[0]["label"] in {"supportive", "critical", "neutral"}
    probs = load_classifier(student_dir).predict_proba(toy["test"].to_list())
    assert probs.shape == (len(toy["test"]), 3) and np.allclose(probs.sum(1), 1, atol=1e-5)


def test_soft_labels_are_the_engines_probabilities_at_the_temperature(teacher, toy):
    rows = add_soft_labels(toy["train"], str(teacher), temperature=3.0)
    soft = np.asarray(rows[SOFT_LABELS])
    clf = load_classifier(teacher)
    clf.temperature = 3.0
    assert np.allclose(soft, clf.predict_proba(toy["train"].to_list()), atol=1e-6)


def test_an_ensemble_of_teachers_gives_the_mean_of_their_softened_probabilities(teacher, toy, tmp_path):
    # a second teacher: the first with its head changed, so the two disagree
    other = build_student(teacher, [0, 1], tmp_path / "other")
    clf = load_classifier(other)
    with torch.no_grad():
        clf.model.classifier.weight.mul_(-2.0)
    from stance.modeling.models import save_model

    save_model(clf, other)
    rows = toy["train"]
    soft = np.asarray(add_soft_labels(rows, [str(teacher), str(other)], temperature=2.0)[SOFT_LABELS])
    one = np.asarray(add_soft_labels(rows, str(teacher), temperature=2.0)[SOFT_LABELS])
    two = np.asarray(add_soft_labels(rows, str(other), temperature=2.0)[SOFT_LABELS])
    assert not np.allclose(one, two, atol=1e-3)
    assert np.allclose(soft, (one + two) / 2, atol=1e-6)


def test_news_ensemble_recipe_trains_a_full_size_student_of_several_teachers(teacher, tiny_model_dir, toy, tmp_path):
    second = tmp_path / "second"
    run_training(
        cfg(f"model.name_or_path={tiny_model_dir}", "model.max_length=32", "train.epochs=1", "seed=2"),
        output_dir=second,
        data=toy,
    )
    teachers = [str(teacher), str(second / "model")]
    listed = "[" + ",".join(f'"{t}"' for t in teachers) + "]"
    run_training(
        cfg(
            "+experiment=news_ensemble",
            f"train.distill_from={listed}",
            f"model.name_or_path={tiny_model_dir}",
            "model.max_length=32",
            "train.max_steps=2",
            "train.batch_size=8",
            "train.eval_steps=0",
            f"data.processed_dir={tmp_path / 'processed'}",
        ),
        output_dir=tmp_path / "student",
        data=toy,
    )
    config = json.loads((tmp_path / "student" / "model" / "config.json").read_text())
    assert config["stance"]["distilled_from"] == teachers
    assert len(list((tmp_path / "processed" / ".teacher-probs").glob("*.npy"))) == 2  # one cache file per teacher
    assert "init_from" not in config["stance"] and config["num_hidden_layers"] == 2  # from the base, full size
    with pytest.raises(StanceError, match="train.distill_from: missing"):
        run_training(cfg("+experiment=news_ensemble"), output_dir=tmp_path / "none", data=toy)


def test_teacher_probabilities_are_cached_by_weights_and_rows(teacher, toy, tmp_path, monkeypatch):
    import stance.modeling.distill as distill

    cache = tmp_path / "cache"
    first = np.asarray(add_soft_labels(toy["train"], str(teacher), 2.0, cache_dir=cache)[SOFT_LABELS])
    assert len(list(cache.glob("*.npy"))) == 1

    def no_teacher(*args, **kwargs):
        raise AssertionError("the teacher ran again despite the cache")

    monkeypatch.setattr(distill, "load_classifier", no_teacher)
    again = np.asarray(add_soft_labels(toy["train"], str(teacher), 2.0, cache_dir=cache)[SOFT_LABELS])
    assert np.array_equal(first, again)
    # other rows are another key: the teacher must run
    with pytest.raises(AssertionError, match="ran again"):
        add_soft_labels(toy["test"], str(teacher), 2.0, cache_dir=cache)


def test_distill_from_names_a_bad_teacher_in_one_line(tmp_path):
    from stance.modeling.distill import teacher_dirs

    with pytest.raises(StanceError, match=r"train.distill_from=.*nowhere: no config.json"):
        teacher_dirs([str(tmp_path / "nowhere")])
    with pytest.raises(StanceError, match="train.distill_from: empty"):
        teacher_dirs([])


def test_distill_loss_is_zero_only_for_the_teachers_distribution():
    logits = torch.tensor([[2.0, 0.0, -1.0]])
    same = torch.softmax(logits / 2, dim=-1)
    labels = torch.tensor([0])
    assert float(distill_loss(logits, labels, same, None, 0.0, 1.0, 2.0)) == pytest.approx(0.0, abs=1e-6)
    other = torch.tensor([[0.1, 0.1, 0.8]])
    assert float(distill_loss(logits, labels, other, None, 0.0, 1.0, 2.0)) > 0.1


def test_distillation_trains_a_student_on_soft_labels(teacher, toy, tmp_path):
    run_training(
        cfg(
            "+experiment=distill",
            f"train.distill_from={teacher.parent}",  # a run dir means its model/
            "model.layers=[0]",
            "train.epochs=1",
            "train.batch_size=8",
            "train.eval_steps=0",
            "train.distill_alpha=0.7",
            f"data.processed_dir={tmp_path / 'processed'}",  # the teacher cache stays out of the repository
        ),
        output_dir=tmp_path,
        data=toy,
    )
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["num_hidden_layers"] == 1
    assert config["stance"]["distilled_from"] == [str(teacher)]
    assert config["stance"]["init_from"] == str(teacher) and config["stance"]["layers_kept"] == [0]
    assert json.loads((tmp_path / "run.json").read_text())["status"] == "completed"
    # the student's weights moved from the teacher's layer 0
    s = load_classifier(tmp_path / "model").model.state_dict()
    t = load_classifier(teacher).model.state_dict()
    assert not torch.equal(s["classifier.weight"], t["classifier.weight"])


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("train.distill_alpha=0", "train.distill_alpha"),
        ("train.distill_temperature=0", "train.distill_temperature"),
    ],
)
def test_bad_distill_settings_are_one_line(teacher, toy, tmp_path, override, match):
    with pytest.raises(StanceError, match=match):
        run_training(
            cfg("+experiment=distill", f"train.distill_from={teacher}", "model.layers=[0]", override),
            output_dir=tmp_path,
            data=toy,
        )


def test_distill_recipe_needs_a_teacher(toy, tmp_path):
    with pytest.raises(StanceError, match="train.distill_from: missing"):
        run_training(cfg("+experiment=distill"), output_dir=tmp_path, data=toy)
