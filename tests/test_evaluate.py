"""run_evaluation: built splits, labelled files (NewsMTSC and generic), the files it writes, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import datasets
import pytest
import torch
from hydra import compose, initialize_config_dir

from conftest import CONFIG_DIR, REPO, make_toy_dataset, make_toy_rows
from stance.errors import StanceError
from stance.labels import LABELS
from stance.modeling.evaluation import run_evaluation, select_split
from stance.modeling.models import MajorityBaseline, save_baseline

torch.set_num_threads(1)

OUTPUTS = {"metrics.json", "predictions.jsonl", "misclassified.jsonl", "confusion_matrix.png", "report.md"}


def eval_cfg(*overrides: str):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("evaluate", overrides=["threads=1", "eval.bootstrap=50", *overrides])


@pytest.fixture(scope="module")
def toy():
    return make_toy_dataset(30)


@pytest.fixture
def patched_data(monkeypatch, toy):
    import stance.modeling.evaluation

    monkeypatch.setattr(stance.modeling.evaluation, "ensure_dataset", lambda cfg: toy)
    return toy


def write_newsmtsc(path, rows):
    polarity = {"supportive": 1, "critical": -1, "neutral": 0}
    with path.open("w") as fh:
        for r in rows:
            rec = {
                "mention": r["mention"],
                "polarity": polarity[LABELS[r["label"]]],
                "from": r["mention_start"],
                "to": r["mention_end"],
                "sentence": r["sentence"],
                "id": f"synthetic_1_{r['sentence_idx']}_0_{r['actor_name']}_0_1",
            }
            fh.write(json.dumps(rec) + "\n")
    return path


def test_split_of_built_data(tiny_model_dir, patched_data, tmp_path):
    metrics = run_evaluation(eval_cfg(f"model_dir={tiny_model_dir}", "split=validation"), output_dir=tmp_path)
    assert {p.name for p in tmp_path.iterdir()} >= OUTPUTS
    assert metrics["validation_n"] == 6.0 and "validation_macro_f1_ci_low" in metrics
    assert json.loads((tmp_path / "metrics.json").read_text()) == metrics
    preds = (tmp_path / "predictions.jsonl").read_text().splitlines()
    assert len(preds) == 6


def test_all_splits(tiny_model_dir, patched_data, tmp_path):
    metrics = run_evaluation(eval_cfg(f"model_dir={tiny_model_dir}", "split=all"), output_dir=tmp_path)
    assert metrics["all_n"] == 30.0


def test_baseline_model_on_newsmtsc_format_file(tmp_path):
    save_baseline(MajorityBaseline().fit([{}], [2]), tmp_path / "model")
    path = write_newsmtsc(tmp_path / "dev.jsonl", make_toy_rows(12))
    metrics = run_evaluation(eval_cfg(f"model_dir={tmp_path / 'model'}", f"file={path}"), output_dir=tmp_path / "out")
    assert metrics["dev_n"] == 12.0
    assert metrics["dev_accuracy"] == pytest.approx(4 / 12)  # all neutral; a third of the rows are
    wrong = (tmp_path / "out" / "misclassified.jsonl").read_text().splitlines()
    assert len(wrong) == 8 and json.loads(wrong[0])["pred"] == "neutral"


def test_generic_labelled_file(tiny_model_dir, tmp_path):
    path = tmp_path / "mine.jsonl"
    with path.open("w") as fh:
        for r in make_toy_rows(9):
            fh.write(
                json.dumps(
                    {
                        "id": r["example_id"],
                        "sentence": r["sentence"],
                        "mention": r["mention"],
                        "label": LABELS[r["label"]],
                    }
                )
                + "\n"
            )
    metrics = run_evaluation(eval_cfg(f"model_dir={tiny_model_dir}", f"file={path}"), output_dir=tmp_path / "out")
    assert metrics["mine_n"] == 9.0
    first = json.loads((tmp_path / "out" / "predictions.jsonl").read_text().splitlines()[0])
    assert first["example_id"] == "a0:0:trump" and first["label"] == "supportive"


def test_file_without_labels(tiny_model_dir, tmp_path):
    path = tmp_path / "unlabelled.jsonl"
    path.write_text(json.dumps({"sentence": "Officials praised Trump.", "mention": "Trump"}) + "\n")
    with pytest.raises(
        StanceError, match=f"^{path}: dataset has no labels \\(no 'label' column; set data.columns.label\\)$"
    ):
        run_evaluation(eval_cfg(f"model_dir={tiny_model_dir}", f"file={path}"), output_dir=tmp_path / "out")


def test_missing_model_dir(tmp_path):
    with pytest.raises(
        StanceError,
        match=rf"^model_dir: {tmp_path / 'nope'}: no such folder \(expected a trained model, e\.g\. RUN/model\)$",
    ):
        run_evaluation(eval_cfg(f"model_dir={tmp_path / 'nope'}"), output_dir=tmp_path / "out")


def test_missing_file(tiny_model_dir, tmp_path):
    with pytest.raises(StanceError, match=f"^{tmp_path / 'x.jsonl'}: no such file$"):
        run_evaluation(
            eval_cfg(f"model_dir={tiny_model_dir}", f"file={tmp_path / 'x.jsonl'}"), output_dir=tmp_path / "out"
        )


def test_split_errors(toy):
    with pytest.raises(StanceError, match=r"^data/x: unknown split 'dev' \(available: train, validation, test, all\)$"):
        select_split(toy, "dev", "data/x")
    empty = datasets.DatasetDict({"train": toy["train"], "test": toy["test"].select([])})
    with pytest.raises(StanceError, match=r"^data/x: split 'test' is empty$"):
        select_split(empty, "test", "data/x")
    unlabelled = datasets.DatasetDict({"test": toy["test"].remove_columns("label")})
    with pytest.raises(StanceError, match=r"^data/x: dataset has no labels \(no 'label' column\)$"):
        select_split(unlabelled, "test", "data/x")
    other = toy["test"].cast_column("label", datasets.ClassLabel(names=["pos", "neg", "neu"]))
    with pytest.raises(
        StanceError,
        match=r"^data/x: data labels \(pos, neg, neu\) do not match the model's label set \(supportive, critical, neutral\)$",
    ):
        select_split(datasets.DatasetDict({"test": other}), "test", "data/x")


def test_cli_bad_split_is_one_line(tiny_model_dir, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "stance.evaluate",
            f"model_dir={tiny_model_dir}",
            "split=dev",
            "threads=1",
            f"data.processed_dir={tmp_path / 'processed'}",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        f"stance.evaluate: error: {tmp_path / 'processed' / 'seed'}: unknown split 'dev' (available: train, validation, test, all)"
    )


@pytest.mark.newsmtsc
def test_newsmtsc_dev_file(tiny_model_dir, newsmtsc_dir, tmp_path):
    metrics = run_evaluation(
        eval_cfg(f"model_dir={tiny_model_dir}", f"file={newsmtsc_dir / 'dev_rw.jsonl'}"), output_dir=tmp_path
    )
    assert metrics["dev_rw_n"] == 343.0
