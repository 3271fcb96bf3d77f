"""Sweeps: job folder names, and a real ``stance.train -m`` sweep ranked by ``stance.compare``."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from stance.overrides import job_dirname

REPO = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO / "configs"


def test_job_dirname_is_always_one_relative_component() -> None:
    assert job_dirname("") == "default"
    assert job_dirname("model=tfidf_lr") == "model=tfidf_lr"
    assert job_dirname("model.name_or_path=/tmp/a/../b") == "model.name_or_path=%2Ftmp%2Fa%2F..%2Fb"
    long = job_dirname("x=" + "y" * 400)
    assert len(long) <= 240 and "/" not in long
    assert long != job_dirname("x=" + "y" * 399)  # truncated names stay distinct


def _subdir(overrides: list[str]) -> str:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    return str(OmegaConf.select(cfg, "hydra.sweep.subdir"))


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["seed=3"], "default/seed=3"),  # a seed-only sweep: relative, not "/seed=3"
        (["model=tfidf_lr", "seed=1"], "model=tfidf_lr/seed=1"),
        (
            ["model.input_format=pair", "model.name_or_path=/m/tiny", "seed=2"],
            "model.input_format=pair,model.name_or_path=%2Fm%2Ftiny/seed=2",
        ),
    ],
)
def test_sweep_subdir_groups_seeds_under_the_configuration(overrides: list[str], expected: str) -> None:
    subdir = _subdir(overrides)
    assert subdir == expected
    assert not os.path.isabs(subdir) and ".." not in Path(subdir).parts


def _train(args: list[str], tmp_path: Path, timeout: int = 240) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "stance.train", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _tiny_args(tiny_model_dir: Path, tmp_path: Path) -> list[str]:
    return [
        f"model.name_or_path={tiny_model_dir}",
        "train.max_steps=2",
        "train.batch_size=8",
        "eval.bootstrap=0",
        "threads=1",
        f"data.processed_dir={tmp_path / 'processed'}",
        f"data.input.paths=[{REPO / 'seeds'}]",
        f"data.annotations=[{REPO / 'data' / 'annotations' / 'seed.csv'}]",
    ]


def test_sweep_2x2_then_compare(tiny_model_dir: Path, tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    _train(
        ["-m", "model.input_format=markers,pair", "seed=1,2", f"hydra.sweep.dir={sweep}"]
        + _tiny_args(tiny_model_dir, tmp_path),
        tmp_path,
    )
    runs = sorted(p.parent.parent for p in sweep.rglob(".hydra/overrides.yaml"))
    assert len(runs) == 4
    # one folder per configuration (seed excluded from its name), one subfolder per seed
    assert sorted(r.name for r in runs) == ["seed=1", "seed=1", "seed=2", "seed=2"]
    configs = sorted({r.parent for r in runs})
    assert [("model.input_format=markers" in c.name, "model.input_format=pair" in c.name) for c in configs] == [
        (True, False),
        (False, True),
    ]
    assert all(c.parent == sweep and not re.search(r"(^|,)seed=", c.name) for c in configs)
    for run in runs:
        assert (run / "metrics.json").is_file() and (run / "predictions.jsonl").is_file()
        assert json.loads((run / "run.json").read_text())["status"] == "completed"
        assert any(o.startswith("seed=") for o in yaml.safe_load((run / ".hydra" / "overrides.yaml").read_text()))

    proc = subprocess.run(
        [sys.executable, "-m", "stance.compare", str(sweep), "--bootstrap", "200"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert lines[0].split()[:4] == ["rank", "model.input_format", "status", "seeds"]
    assert len(lines) == 4  # header, rule, markers, pair
    with (sweep / "comparison.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(r["model.input_format"] for r in rows) == ["markers", "pair"]
    for row in rows:
        assert row["n_seeds"] == "2" and row["seeds"] == "1 2"
        metrics = [
            json.loads((sweep / run / "metrics.json").read_text())["test_macro_f1"] for run in row["runs"].split()
        ]
        assert float(row["test_macro_f1_mean"]) == pytest.approx(sum(metrics) / 2)
    assert (sweep / "comparison.md").is_file() and (sweep / "comparison.png").is_file()


def test_optuna_sweep_maximises_validation_macro_f1(tiny_model_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper.optuna_sweeper", reason="needs the [sweep] extra")
    sweep = tmp_path / "optuna"
    _train(
        [
            "-m",
            "+hparams_search=optuna",
            "hydra.sweeper.n_trials=2",
            f"hydra.sweep.dir={sweep}",
            *_tiny_args(tiny_model_dir, tmp_path),
        ],
        tmp_path,
    )
    result = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    scores = [json.loads(p.read_text())["validation_macro_f1"] for p in sweep.rglob("metrics.json")]
    assert len(scores) == 2
    assert result["best_value"] == pytest.approx(max(scores))
    assert set(result["best_params"]) == {
        "train.learning_rate",
        "train.epochs",
        "train.weight_decay",
        "model.input_format",
    }
