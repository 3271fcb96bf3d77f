"""A non-editable install works outside the repository: configs/ ships inside the wheel."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import REPO


def _run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_wheel_installs_and_trains_config_outside_the_repository(tmp_path: Path) -> None:
    # build from a copy, so the checkout gets no build/ or egg-info folders
    src = tmp_path / "src-copy"
    for name in ("src", "configs"):
        shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, src / name)
    built = _run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", tmp_path / "dist", ".", cwd=src
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("stance-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in ("stance/configs/train.yaml", "stance/configs/model/minilm.yaml", "stance/modeling/inference.py"):
        assert path in names, f"{path} is not in the wheel"

    # into a target folder put first on sys.path: torch & co. come from this environment
    site = tmp_path / "site"
    installed = _run(
        sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target", site, wheel, cwd=tmp_path
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "HF_HUB_OFFLINE": "1"}
    where = _run(
        sys.executable,
        "-c",
        "import stance.config as c; print(c.__file__); print(c.CONFIG_DIR)",
        cwd=elsewhere,
        env=env,
    )
    assert where.returncode == 0, where.stderr[-3000:]
    module, configs = where.stdout.split()
    assert Path(module).is_relative_to(site) and Path(configs) == site / "stance" / "configs"
    job = _run(sys.executable, "-m", "stance.train", "--cfg", "job", cwd=elsewhere, env=env)
    assert job.returncode == 0, job.stderr[-3000:]
    assert "kind: transformer" in job.stdout and "name_or_path: sentence-transformers/all-MiniLM-L6-v2" in job.stdout
