"""``python -m stance.build`` end to end through a subprocess: outputs, bad input, exit status."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

PYTHON = REPO / ".venv" / "bin" / "python"


def run_build(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    exe = str(PYTHON) if PYTHON.exists() else sys.executable
    cmd = [exe, "-m", "stance.build", f"hydra.run.dir={tmp_path / 'hydra'}", *overrides]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)


def error_lines(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.startswith("stance.build: error:")]


def test_default_build_writes_the_seed_dataset(tmp_path):
    proc = run_build(tmp_path, f"data.processed_dir={tmp_path / 'processed'}")
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "processed" / "seed"
    assert f"wrote {out}" in proc.stdout
    assert "1 articles, 204 (sentence, actor) pairs, 204 labelled, 0 unlabelled, 0 stale annotations" in proc.stdout
    header = next(line for line in proc.stdout.splitlines() if line.startswith("split"))
    assert header.split() == ["split", "supportive", "critical", "neutral", "total"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert sum(manifest["rows"].values()) == 204
    assert set(manifest["rows"]) == {"train", "validation", "test"}
    assert not (out / "unlabelled.csv").exists()
    assert "warning" not in proc.stderr


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("bad")
    (d / "empty.txt").write_text("")
    (d / "undecodable.txt").write_bytes(b"Title\nTrump said \xff\xfe things.\n")
    (d / "long.txt").write_text("Title\nTrump " + "x" * 50000 + "\n")
    (d / "notext.csv").write_text("id,title,text\na1,About Trump,\n")
    header = "article_id,actor_id,label,sentence,note\n"
    (d / "unknown_actor.csv").write_text(header + "000_8c7c1d6cabef915e,nobody,critical,Trump spoke.,\n")
    (d / "unknown_label.csv").write_text(header + "000_8c7c1d6cabef915e,trump,angry,Trump spoke.,\n")
    return d


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["data.input.paths=[{d}/missing.txt]"], r"{d}/missing.txt: no such file or folder"),
        (["data.input.paths=[{d}/empty.txt]"], r"{d}/empty.txt: empty file"),
        (["data.input.paths=[{d}/undecodable.txt]"], r"{d}/undecodable.txt:2: cannot decode byte 0xff"),
        (["data.input.paths=[{d}/long.txt]"], r"{d}/long.txt:2: line of 50006 characters is longer than 20000"),
        (["data.input.paths=[{d}/notext.csv]"], r"{d}/notext.csv:2: empty text in column 'text'"),
        (["data.annotations=[{d}/unknown_actor.csv]"], r"{d}/unknown_actor.csv:2: unknown actor 'nobody'"),
        (["data.annotations=[{d}/unknown_label.csv]"], r"{d}/unknown_label.csv:2: unknown label 'angry'"),
        (["data.annotations=[{d}/missing.csv]"], r"{d}/missing.csv: no such file"),
    ],
)
def test_bad_input_is_one_clear_line_and_no_output(tmp_path, bad_inputs, overrides, message):
    out = tmp_path / "out"
    proc = run_build(tmp_path, f"output_dir={out}", *(o.format(d=bad_inputs) for o in overrides))
    assert proc.returncode == 2
    lines = error_lines(proc)
    assert len(lines) == 1, proc.stderr
    assert message.format(d=bad_inputs) in lines[0]
    assert "Traceback" not in proc.stderr
    assert not out.exists() and not any(p.name.startswith(".out") for p in tmp_path.iterdir())


def test_config_typo_names_the_key(tmp_path):
    out = tmp_path / "out"
    proc = run_build(tmp_path, "data.splt.seed=1", f"output_dir={out}")
    assert proc.returncode != 0
    assert "splt" in proc.stderr
    assert not out.exists()
