"""The main job (`make run` = python -m stance.pipeline) end to end with the tiny model: the
news -> adapt -> evaluate -> score path on NewsMTSC, and the loud seed-only fallback without it."""

from __future__ import annotations

import json
import logging

import pytest

from stance import pipeline


def _tiny(model_dir) -> list[str]:
    return [
        f"model.name_or_path={model_dir}",
        "model.max_length=32",
        "train.max_steps=2",
        "train.batch_size=8",
        "train.eval_steps=0",
        "eval.bootstrap=20",
    ]


def test_pipeline_news_adapt_score(tiny_model_dir, newsmtsc_dir, tmp_path, capsys):
    out = tmp_path / "out"
    paths = pipeline.run_pipeline(out, threads=1, overrides=_tiny(tiny_model_dir))
    for name in ("news model", "adapted model", "evaluation", "scored"):
        assert paths[name].exists(), name
    adapted = json.loads((out / "adapted" / "model" / "config.json").read_text())
    assert adapted["stance"]["init_from"] == str(out / "news" / "model")
    metrics = json.loads((out / "adapted" / "metrics.json").read_text())
    assert {"cv_oof_macro_f1", "test_macro_f1"} <= set(metrics)
    assert json.loads((out / "scored" / "run.json").read_text())["status"] == "completed"
    printed = capsys.readouterr().out
    assert "Stance by actor" in printed and "Written:" in printed
    # a second run reuses the trained news model instead of training it again
    before = (out / "news" / "run.json").read_text()
    pipeline.run_pipeline(out, threads=1, overrides=_tiny(tiny_model_dir))
    assert (out / "news" / "run.json").read_text() == before


def test_pipeline_without_newsmtsc_falls_back_loudly(tiny_model_dir, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(pipeline, "newsmtsc_available", lambda: "data.source=auto: NewsMTSC not found")
    caplog.set_level(logging.WARNING, logger="stance.pipeline")
    paths = pipeline.run_pipeline(tmp_path / "out", threads=1, overrides=_tiny(tiny_model_dir))
    assert not (tmp_path / "out" / "news").exists() and paths["scored"].exists()
    assert "NewsMTSC is not available" in caplog.text and "seed pairs alone" in caplog.text


def test_pipeline_bad_input_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(pipeline, "newsmtsc_available", lambda: "absent")
    with pytest.raises(SystemExit) as err:
        pipeline.main(["--out", str(tmp_path), "model.name_or_path=/no/such/model"])
    assert err.value.code == 2
    assert capsys.readouterr().err.startswith("stance.pipeline: error: ")


def test_pipeline_config_typo_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(pipeline, "newsmtsc_available", lambda: "absent")
    with pytest.raises(SystemExit) as err:
        pipeline.main(["--out", str(tmp_path), "train.epoch=2"])
    assert err.value.code == 2
    message = capsys.readouterr().err
    assert message.startswith("stance.pipeline: error: ") and "train.epoch" in message and message.count("\n") == 1


def test_pipeline_checks_training_settings_first(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(pipeline, "newsmtsc_available", lambda: "absent")
    with pytest.raises(SystemExit) as err:
        pipeline.main(["--out", str(tmp_path / "out"), "train.learning_rate=-1"])
    assert err.value.code == 2 and "train.learning_rate" in capsys.readouterr().err
