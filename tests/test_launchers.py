"""Sweeps on a Hydra launcher: two tiny jobs in parallel (hydra-joblib-launcher), ranked by stance.compare."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from test_sweep_cli import _tiny_args, _train


def test_joblib_launcher_sweep_is_compared_like_a_basic_one(tiny_model_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher", reason="needs the [distributed] extra")
    sweep = tmp_path / "sweep"
    # two jobs at once, one torch thread each: jobs x threads never exceeds the cores
    args = ["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "model.input_format=markers,pair"]
    _train([*args, f"hydra.sweep.dir={sweep}", *_tiny_args(tiny_model_dir, tmp_path)], tmp_path)
    runs = sorted(p.parent.parent for p in sweep.rglob(".hydra/overrides.yaml"))
    assert len(runs) == 2
    for run in runs:
        assert json.loads((run / "run.json").read_text())["status"] == "completed"
        hydra_cfg = yaml.safe_load((run / ".hydra" / "hydra.yaml").read_text())["hydra"]
        assert hydra_cfg["runtime"]["choices"]["hydra/launcher"] == "joblib"
        assert yaml.safe_load((run / ".hydra" / "config.yaml").read_text())["threads"] == 1

    proc = subprocess.run(
        [sys.executable, "-m", "stance.compare", str(sweep), "--bootstrap", "200"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    with (sweep / "comparison.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(r["model.input_format"] for r in rows) == ["markers", "pair"]
    assert all(r["n_seeds"] == "1" for r in rows)
