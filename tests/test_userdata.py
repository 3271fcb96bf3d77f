"""A newcomer's own data: build writes a reusable data config and a starter annotation file with
context; training never rebuilds that dataset from other inputs; label spellings and tiny splits
are reported."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

import stance.data.userdata as userdata
from conftest import CONFIG_DIR, REPO
from stance.build import run_build
from stance.data.dataset import build, ensure_dataset, is_current, output_path
from stance.errors import StanceError

NEWS = REPO / "tests" / "data" / "news" / "articles.jsonl"
CRITICS = "Critics in Congress blamed Trump for making concessions to Russia without securing anything in return."


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A copy of configs/ (build writes into configs/data/) and a working directory of its own."""
    configs = tmp_path / "configs"
    shutil.copytree(CONFIG_DIR, configs)
    monkeypatch.setattr(userdata, "CONFIG_DIR", str(configs))
    monkeypatch.chdir(tmp_path)
    return configs


def compose_in(configs: Path, name: str, *overrides: str):
    with initialize_config_dir(config_dir=str(configs), version_base="1.3"):
        return compose(name, overrides=list(overrides))


def my_build_args(annotations: str = "[]") -> list[str]:
    return [
        "data.name=mine",
        f"data.input.paths=[{NEWS}]",
        "data.input.meta_columns=[outlet,date]",
        f"data.annotations={annotations}",
    ]


def test_build_writes_a_data_config_that_train_reuses(project, capsys):
    path, _ = run_build(compose_in(project, "build", *my_build_args()))
    assert (path / "unlabelled.csv").exists()
    data_config = project / "data" / "mine.yaml"
    assert data_config.read_text(encoding="utf-8").startswith(userdata.GENERATED)
    assert "python -m stance.train data=mine" in capsys.readouterr().out
    # stance.train data=mine: the same dataset, reused as built
    train_cfg = compose_in(project, "train", "data=mine")
    assert is_current(train_cfg, output_path(train_cfg))
    # stance.train data.name=mine (the seed's inputs under that name): refused, nothing deleted
    wrong = compose_in(project, "train", "data.name=mine")
    with pytest.raises(StanceError, match=r"built from other inputs .* train on it with data=mine .* rebuild=true"):
        ensure_dataset(wrong)
    assert (path / "unlabelled.csv").exists()
    # a shipped option is never overwritten
    seed_before = (project / "data" / "seed.yaml").read_text(encoding="utf-8")
    assert userdata.write_data_config(compose_in(project, "build")) is None
    assert (project / "data" / "seed.yaml").read_text(encoding="utf-8") == seed_before


def test_starter_annotation_file_has_context_and_is_kept(project, tmp_path):
    run_build(compose_in(project, "build", *my_build_args()))
    starter = tmp_path / "data" / "annotations" / "mine.todo.csv"
    rows = list(csv.DictReader(starter.open(encoding="utf-8")))
    assert list(rows[0]) == list(userdata.TEMPLATE_COLUMNS)
    row = next(r for r in rows if r["sentence"] == CRITICS and r["actor_id"] == "trump")
    assert row["mention"] == "Trump"
    assert row["previous_sentence"].startswith("The White House described")
    assert row["next_sentence"].startswith("Officials in Kyiv welcomed")
    first = next(r for r in rows if r["article_id"] == "gazette-2025-02-20")
    assert first["previous_sentence"] == "" or first["sentence"] != first["previous_sentence"]
    # filled in place, it is an annotation file; a rebuild never overwrites it
    row["label"] = "critical"
    with starter.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(userdata.TEMPLATE_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    result = build(compose_in(project, "build", *my_build_args(f"[{starter}]")))
    assert result.manifest["labelled"] == 1
    run_build(compose_in(project, "build", *my_build_args(f"[{starter}]")))
    assert "critical" in starter.read_text(encoding="utf-8")


def test_label_variants_and_tiny_splits_are_reported(project, tmp_path):
    ann = tmp_path / "mine.csv"
    with ann.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["article_id", "actor_id", "label", "sentence"])
        writer.writerow(["ledger-2025-03-18", "trump", "Critical ", CRITICS])
    result = build(compose_in(project, "build", *my_build_args(f"[{ann}]")))
    assert any("label 'Critical ' read as 'critical' (1 row(s), first at" in w for w in result.warnings)
    assert any("split train has only 1 row(s)" in w for w in result.warnings)


def test_a_key_added_with_plus_is_refused(project):
    from stance.config import check_keys

    for entry, key in (("train", "+train.epoch=2"), ("train", "+data.nme=x"), ("score", "+score.grp=1")):
        cfg = compose_in(project, entry, key)
        with pytest.raises(StanceError, match=rf"{key[1:].split('=')[0]}: no such setting"):
            check_keys(cfg)
    check_keys(compose_in(project, "train", "+experiment=news"))  # config groups are not keys


@pytest.mark.parametrize("entry", ["build", "train", "evaluate", "score"])
def test_help_starts_with_one_paragraph(entry):
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", f"stance.{entry}", "--help"], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert done.returncode == 0, done.stderr[-500:]
    assert done.stdout.startswith(f"python -m stance.{entry} ")
    assert "Main options:" in done.stdout.split("\n\n")[0]
    assert "aliases" not in done.stdout  # not the whole actor registry
