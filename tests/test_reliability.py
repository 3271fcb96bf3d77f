"""Reliability (issue 13): one writer per scoring folder, no stale rows, every result-changing
setting in the resume fingerprint, interruptions recorded, settings and inputs refused at start-up
in one line, and the one-problem-per-file rule."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

import stance.scoring.engine as score
from conftest import CONFIG_DIR, REPO, SEED_DIR, make_tiny_model
from stance.config import InputConfig
from stance.errors import StanceError
from stance.modeling.settings import check_training
from stance.scoring.state import ScoreState, fingerprint, write_part
from stance.text.articles import iter_articles
from test_score import make_cfg, read_outputs, write_corpus

SEED_FILE = SEED_DIR / "000_8c7c1d6cabef915e.txt"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def cli(entry: str, *args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", f"stance.{entry}", *args],
        cwd=REPO,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _interactive_signals() -> None:
    """In the child: SIGINT as a terminal gives it. A command run in the background by a
    non-interactive shell (CI) inherits SIGINT *ignored*, and Python then never raises
    KeyboardInterrupt: the Ctrl-C test would pass or fail by how the suite was started."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_score(model: Path, inp: Path, out: Path, *extra: str) -> subprocess.Popen[str]:
    args = [f"model_dir={model}", f"input={inp}", f"output_dir={out}", "score.threads=1", "score.bootstrap=50"]
    return subprocess.Popen(
        [sys.executable, "-m", "stance.score", *args, *extra],
        cwd=REPO,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_interactive_signals,
    )


def wait_for(predicate, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


def running(out: Path, pid: int) -> bool:
    try:
        record = json.loads((out / "run.json").read_text())
    except (OSError, ValueError):
        return False
    return record.get("status") == "running" and record.get("pid") == pid


def files_under(out: Path) -> dict[str, int]:
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in out.rglob("*") if ".hydra-runs" not in p.parts}


# --- 1. one writer per output folder -----------------------------------------------------------
def test_a_second_writer_is_refused_and_the_first_is_unaffected(tiny_model_dir, tmp_path):
    """Two real processes: while A holds the folder (stopped mid-run), B gets one line and exit 2
    and writes nothing; A completes; B rerun afterwards adds its articles: 120 of 120."""
    a_in, b_in = tmp_path / "a", tmp_path / "b"
    write_corpus(a_in, 60)
    for i, p in enumerate(sorted(write_corpus(b_in, 60).iterdir())):
        p.rename(p.with_name(f"b{i:02d}.txt"))
    out = tmp_path / "out"
    a = start_score(tiny_model_dir, a_in, out, "score.chunk_articles=10")
    try:
        wait_for(lambda: running(out, a.pid) or a.poll() is not None)
        os.kill(a.pid, signal.SIGSTOP)  # A holds the lock, frozen mid-run
        before = files_under(out)
        b = cli("score", f"model_dir={tiny_model_dir}", f"input={b_in}", f"output_dir={out}", "score.chunk_articles=10")
        assert b.returncode == 2, b.stderr[-2000:]
        lines = b.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(
            f"stance.score: error: {out}: another stance.score (pid {a.pid} on "
        )
        assert "wait for it to finish or use another output_dir" in lines[0]
        assert files_under(out) == before  # B touched nothing
    finally:
        os.kill(a.pid, signal.SIGCONT)
    assert a.wait(timeout=300) == 0, a.stderr.read()[-2000:] if a.stderr else ""
    assert json.loads((out / "run.json").read_text())["counts"]["articles"] == 60
    # the folder holds the rows of the inputs of its last run: B's rerun names both corpora
    b = cli(
        "score",
        f"model_dir={tiny_model_dir}",
        f"input=[{a_in},{b_in}]",
        f"output_dir={out}",
        "score.chunk_articles=10",
        "score.threads=1",
    )
    assert b.returncode == 0, b.stderr[-2000:]
    record = json.loads((out / "run.json").read_text())
    assert record["counts"]["articles"] == 120 and record["counts"]["articles_scored_now"] == 60
    assert pd.read_parquet(out / "mentions")["article_id"].nunique() == record["counts"]["articles_with_actors"]


def test_part_names_never_collide(tmp_path):
    import pyarrow as pa

    state = ScoreState(tmp_path, {"x": 1})
    table = pa.table({"article_id": pa.array([], pa.string())})
    write_part(state, 0, table, {"articles": ["a"], "hashes": {}, "no_actor": [], "rows": 0})
    write_part(state, 0, table, {"articles": ["b"], "hashes": {}, "no_actor": [], "rows": 0})
    names = sorted(p.name for p in (tmp_path / "mentions").iterdir())
    assert len(names) == 2 and names[0] != names[1] and all(n.startswith("part-00000-") for n in names)
    assert ScoreState(tmp_path, {"x": 1}).done == {"a", "b"}


# --- 2. a rerun after the inputs changed -------------------------------------------------------
def test_rerun_rescores_edited_and_drops_deleted_articles(tiny_model_dir, tmp_path):
    corpus = write_corpus(tmp_path / "corpus", 20)
    out = tmp_path / "out"
    opts = ("score.chunk_articles=4",)
    score.run_scoring(make_cfg(tiny_model_dir, str(corpus), out, *opts))
    edited, deleted = corpus / "art03.txt", corpus / "art07.txt"
    edited.write_text("Trump praised Putin\nPutin called Trump on Monday about Ukraine.\n", encoding="utf-8")
    deleted.unlink()
    record = score.run_scoring(make_cfg(tiny_model_dir, str(corpus), out, *opts))
    c = record["counts"]
    assert (c["files"], c["articles"], c["articles_scored_now"], c["articles_already_scored"]) == (19, 19, 1, 18)
    assert (c["articles_changed"], c["articles_dropped"]) == (1, 1)
    # the same tables as a fresh run on the current inputs, and run.json agrees with them
    fresh = tmp_path / "fresh"
    score.run_scoring(make_cfg(tiny_model_dir, str(corpus), fresh, *opts))
    got, want = read_outputs(out), read_outputs(fresh)
    pd.testing.assert_frame_equal(got["mentions"], want["mentions"], check_exact=False, atol=1e-6)
    sort = ["article_id", "actor_id"]
    pd.testing.assert_frame_equal(
        got["articles"].sort_values(sort).reset_index(drop=True),
        want["articles"].sort_values(sort).reset_index(drop=True),
        check_exact=False,
        atol=1e-6,
    )
    mentions = got["mentions"]
    assert "art07" not in set(mentions["article_id"])
    assert set(mentions.loc[mentions["article_id"] == "art03", "sentence"]) == {
        "Trump praised Putin",
        "Putin called Trump on Monday about Ukraine.",
    }
    assert c["mentions"] == len(mentions) and c["articles_with_actors"] == mentions["article_id"].nunique()
    assert json.loads((out / "run.json").read_text())["counts"] == c


def test_a_copy_left_by_a_stopped_prune_counts_once(tiny_model_dir, tmp_path, monkeypatch):
    """A run stopped after writing an article's new rows but before removing the old ones leaves it
    in two parts; the later one counts and the next run removes the other."""
    corpus = write_corpus(tmp_path / "corpus", 4)
    out = tmp_path / "out"
    score.run_scoring(make_cfg(tiny_model_dir, str(corpus), out))
    (corpus / "art01.txt").write_text("Trump met Putin\nTrump praised Putin on Monday.\n", encoding="utf-8")
    monkeypatch.setattr(ScoreState, "prune", lambda self: None)
    score.run_scoring(make_cfg(tiny_model_dir, str(corpus), out))
    assert (pd.read_parquet(out / "mentions")["article_id"] == "art01").sum() > 2  # old and new rows
    monkeypatch.undo()
    record = score.run_scoring(make_cfg(tiny_model_dir, str(corpus), out))
    assert record["counts"]["articles_scored_now"] == 0
    rows = pd.read_parquet(out / "mentions")
    assert set(rows.loc[rows["article_id"] == "art01", "sentence"]) == {
        "Trump met Putin",
        "Trump praised Putin on Monday.",
    }


# --- 3. the resume fingerprint -----------------------------------------------------------------
CHANGES_ROWS = [
    "input.max_line_chars=100",
    "input.encoding=latin-1",
    "input.title_first_line=false",
    "input.id_column=key",
    "input.text_column=body",
    "input.title_column=headline",
    "input.meta_columns=[outlet]",
    "text.include_title=false",
    "text.clean.enabled=false",
    "text.clean.drop_short_lines_under_words=2",
    "text.clean.drop_line_patterns=[banner]",
    "text.segment.backend=regex",
    "text.segment.fix_titles=false",
    "actors.trump.aliases=[Trump]",
    "score.precision=int8",
    "score.backend=onnx",
    "score.threshold=0.7",
]
KEEPS_ROWS = [
    "score.batch_size=3",
    "score.sort_window=5",
    "score.threads=2",
    "score.chunk_articles=7",
    "score.format=csv",
    "score.bootstrap=10",
    "seed=7",
]


def _fingerprint(*overrides: str, model: str = "m0") -> dict:
    cfg = make_cfg(Path("/m"), str(SEED_FILE), Path("/o"), *overrides)
    return fingerprint(cfg, score.input_spec(cfg.input), model)


@pytest.mark.parametrize("override", CHANGES_ROWS)
def test_every_result_changing_setting_is_in_the_fingerprint(override):
    assert _fingerprint(override) != _fingerprint()


@pytest.mark.parametrize("override", KEEPS_ROWS)
def test_settings_that_keep_the_rows_are_not(override):
    assert _fingerprint(override) == _fingerprint()


def test_another_model_is_in_the_fingerprint():
    assert _fingerprint(model="m1") != _fingerprint()


def test_a_rerun_with_another_max_line_chars_is_refused(tiny_model_dir, tmp_path):
    out = tmp_path / "out"
    score.run_scoring(make_cfg(tiny_model_dir, str(SEED_FILE), out))
    with pytest.raises(StanceError, match=rf"^{out}: holds a scoring run with a different input\.max_line_chars; "):
        score.run_scoring(make_cfg(tiny_model_dir, str(SEED_FILE), out, "input.max_line_chars=100"))
    other = make_tiny_model(tmp_path / "other", seed=1)
    with pytest.raises(StanceError, match=r"with a different model_sha256; "):
        score.run_scoring(make_cfg(other, str(SEED_FILE), out))


# --- 8. interruptions --------------------------------------------------------------------------
@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_scoring_in_one_line_and_is_recorded(tiny_model_dir, tmp_path, signum, status):
    corpus = write_corpus(tmp_path / "corpus", 300)
    out = tmp_path / "out"
    proc = start_score(tiny_model_dir, corpus, out, "score.chunk_articles=5")
    wait_for(lambda: running(out, proc.pid) or proc.poll() is not None)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == status, err[-2000:]
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == "stance.score: interrupted; rerun the same command to resume"
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "interrupted"
    assert (record["pid"], record["host"]) == (proc.pid, socket.gethostname())
    # the rerun resumes and completes
    done = score.run_scoring(make_cfg(tiny_model_dir, str(corpus), out, "score.chunk_articles=5"))
    assert done["status"] == "completed" and done["counts"]["articles"] == 300


# --- 13. leftovers -----------------------------------------------------------------------------
def test_another_format_replaces_the_old_tables(tiny_model_dir, tmp_path):
    out = tmp_path / "out"
    score.run_scoring(make_cfg(tiny_model_dir, str(SEED_FILE), out))
    assert (out / "articles.parquet").exists()
    score.run_scoring(make_cfg(tiny_model_dir, str(SEED_FILE), out, "score.format=csv"))
    assert not (out / "articles.parquet").exists() and not (out / "actors.parquet").exists()
    assert (out / "articles.csv").exists() and (out / "mentions.csv").exists() and (out / "mentions").is_dir()


def test_a_refused_run_leaves_no_folder(tmp_path):
    out = tmp_path / "out"
    proc = cli("score", "model_dir=/nonexistent/model", f"input={SEED_FILE}", f"output_dir={out}")
    assert proc.returncode == 2
    assert not out.exists()


# --- 9. configuration errors -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("entry", "args", "first"),
    [
        ("score", ["score.batchsize=3"], "stance.score: error: score.batchsize: no such setting"),
        ("score", ["score.batch_size=abc"], "stance.score: error: score.batch_size: Value 'abc'"),
        ("train", ["train.epochs=many"], "stance.train: error: train.epochs: Value 'many'"),
        ("build", ["data=nosuch"], "stance.build: error: data: no option 'nosuch' (available: "),
        ("evaluate", ["model_dir=x", "splt=test"], "stance.evaluate: error: splt: no such setting"),
    ],
)
def test_config_errors_are_one_line_naming_the_key(tmp_path, entry, args, first):
    proc = cli(entry, f"hydra.run.dir={tmp_path / 'h'}", *args)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(first), proc.stderr


# --- 4. training settings ----------------------------------------------------------------------
def train_cfg(*overrides: str):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=list(overrides))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.epochs=0", "train.epochs: must be positive, got 0"),
        ("train.epochs=-1", "train.epochs: must be positive, got -1"),
        ("train.max_steps=0", "train.max_steps: must be at least 1, or -1 (use train.epochs), got 0"),
        ("train.learning_rate=-1", "train.learning_rate: must be positive, got -1"),
        ("train.learning_rate=0", "train.learning_rate: must be positive, got 0"),
        ("train.batch_size=0", "train.batch_size: must be at least 1, got 0"),
        ("train.eval_batch_size=0", "train.eval_batch_size: must be at least 1, got 0"),
        ("train.warmup_ratio=1.5", "train.warmup_ratio: must be in [0, 1), got 1.5"),
        ("eval.cv_folds=1", "eval.cv_folds: must be 0 (off) or at least 2, got 1"),
    ],
)
def test_training_settings_that_cannot_train_are_refused(override, message):
    with pytest.raises(StanceError, match=f"^{re.escape(message)}$"):
        check_training(train_cfg(override))


def test_training_defaults_and_max_steps_instead_of_epochs_pass():
    check_training(train_cfg())
    check_training(train_cfg("train.epochs=0", "train.max_steps=5"))


def test_train_cli_refuses_a_negative_learning_rate_before_loading(tmp_path):
    t0 = time.perf_counter()
    proc = cli("train", f"hydra.run.dir={tmp_path / 'h'}", "train.learning_rate=-1")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["stance.train: error: train.learning_rate: must be positive, got -1"]
    assert not (tmp_path / "h" / "run.json").exists()
    assert time.perf_counter() - t0 < 60


# --- 5. a build without pairs ------------------------------------------------------------------
def build_cfg(*overrides: str):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("build", overrides=list(overrides))


def test_a_build_without_actors_is_refused(tmp_path):
    from stance.build import run_build

    src = tmp_path / "in"
    src.mkdir()
    (src / "a.txt").write_text("Weather\nIt will rain on Sunday across the region.\n", encoding="utf-8")
    (src / "b.txt").write_text("Sport\nThe match ended in a draw after extra time.\n", encoding="utf-8")
    out = tmp_path / "out"
    with pytest.raises(StanceError, match=r"no actor of the registry \(\d+ actors\) is mentioned in 2 article\(s\)"):
        run_build(build_cfg(f"data.input.paths=[{src}]", "data.annotations=[]", f"output_dir={out}"))
    header_only = tmp_path / "h.csv"
    header_only.write_text("id,title,text\n", encoding="utf-8")
    with pytest.raises(StanceError, match=r"no article in the input \(a CSV with only its header, or no rows\)"):
        run_build(build_cfg(f"data.input.paths=[{header_only}]", "data.annotations=[]", f"output_dir={out}"))
    assert not out.exists()


# --- 6, 7. evaluate's messages -----------------------------------------------------------------
def eval_cfg(*overrides: str):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("evaluate", overrides=["threads=1", "eval.bootstrap=20", *overrides])


NEWSMTSC_ROW = {
    "mention": "Trump",
    "polarity": -1,
    "from": 10,
    "to": 15,
    "sentence": "Officials Trump blamed.",
    "id": "x_1_0_0_Trump_0_1",
}


@pytest.mark.parametrize("bad_line", [1, 3])
@pytest.mark.parametrize("field", ["from", "sentence"])
def test_a_newsmtsc_row_without_a_field_is_named(tiny_model_dir, tmp_path, bad_line, field):
    from stance.modeling.evaluation import run_evaluation

    path = tmp_path / "train.jsonl"
    rows = [dict(NEWSMTSC_ROW) for _ in range(3)]
    del rows[bad_line - 1][field]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(StanceError, match=rf"^{path}:{bad_line}: missing field\(s\) {field} \(a NewsMTSC row has "):
        run_evaluation(eval_cfg(f"model_dir={tiny_model_dir}", f"file={path}"), output_dir=tmp_path / "o")
    if bad_line == 3:  # stance.build data=newsmtsc reads the same rows
        from stance.data.dataset import build

        for name in ("dev_rw.jsonl", "dev_mt.jsonl"):
            (tmp_path / name).write_text(json.dumps(NEWSMTSC_ROW) + "\n", encoding="utf-8")
        cfg = build_cfg("data=newsmtsc", f"data.source={tmp_path}")
        with pytest.raises(StanceError, match=rf"^{path}:3: missing field\(s\) {field} "):
            build(cfg)


def test_evaluate_without_model_dir_is_one_line(tmp_path):
    proc = cli("evaluate", f"hydra.run.dir={tmp_path / 'h'}")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "stance.evaluate: error: model_dir: no model given (model_dir=RUN/model)"
    ]


# --- 10. one problem per bad file --------------------------------------------------------------
def test_a_binary_file_is_one_problem(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    noise = bytes(range(256)) * 8 + b"\n" + bytes(range(255, -1, -1)) * 8 + b"\n"
    for name in ("blob.txt", "blob.md", "blob.jsonl", "blob.csv"):
        (src / name).write_bytes(noise * 9)  # 18 lines, NUL bytes in each
    (src / "latin.txt").write_bytes(b"Title\n" + "caf\xe9 na\xefve\n".encode("latin-1") * 17)
    problems: list = []
    assert list(iter_articles(InputConfig(paths=[str(src)]), on_problem=problems.append)) == []
    assert sorted((Path(p.path).name, p.line) for p in problems) == [
        ("blob.csv", 1),
        ("blob.jsonl", 1),
        ("blob.md", 1),
        ("blob.txt", 1),
        ("latin.txt", 2),
    ]
    assert problems[0].message.startswith("binary data (NUL byte at byte offset 0)")


# --- 8, 11, 12. the compare --------------------------------------------------------------------
def test_a_running_run_whose_process_is_gone_shows_as_interrupted(tmp_path):
    from stance.analysis.comparison import compare_runs, table
    from test_compare import gold_rows, make_run, noisy

    gold = gold_rows()
    make_run(tmp_path, ["model=a"], 1, noisy(gold, 4), gold)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    for name, pid, host in [("model=b", gone.pid, socket.gethostname()), ("model=c", os.getpid(), None)]:
        run = make_run(tmp_path, [name], 1, status="running")
        info = json.loads((run / "run.json").read_text())
        (run / "run.json").write_text(json.dumps({**info, "pid": pid, **({"host": host} if host else {})}))
    header, body = table(compare_runs([tmp_path], bootstrap=0))
    status = {row[header.index("model")]: row[header.index("status")] for row in body}
    assert status == {"a": "completed", "b": "interrupted (process gone)", "c": "running"}


def test_few_shared_rows_refuse_the_paired_test(tmp_path):
    from stance.analysis.comparison import MIN_SHARED_ROWS, compare_runs, table
    from test_compare import HASH_B, gold_rows, make_run, noisy

    gold = gold_rows(60)
    make_run(tmp_path, ["model=a"], 1, noisy(gold, 5), gold)
    other = gold[:4] + [(f"other{i}", lab) for i, (_, lab) in enumerate(gold[4:])]
    make_run(tmp_path, ["model=b"], 1, noisy(other, 3), other, test_hash=HASH_B)
    make_run(tmp_path, ["model=c"], 1, noisy(gold, 3), gold)
    header, body = table(compare_runs([tmp_path], allow_mixed_test_data=True, bootstrap=200))
    cells = {row[header.index("model")]: row for row in body}
    delta, p, shared = header.index("Δ macro-F1 vs best [95% CI]"), header.index("p"), header.index("shared rows")
    assert (cells["b"][delta], cells["b"][p], cells["b"][shared]) == ("n/a (4 shared rows)", "", "4")
    assert cells["c"][shared] == "60" and cells["c"][delta].startswith(("+", "-")) and MIN_SHARED_ROWS == 30


def test_a_nan_metric_is_shown(tmp_path):
    from stance.analysis.comparison import compare_runs, table
    from test_compare import gold_rows, make_run, noisy

    gold = gold_rows()
    for seed in (1, 2, 3):
        run = make_run(tmp_path, ["model=a"], seed, noisy(gold, 4, seed), gold)
        if seed == 3:
            metrics = json.loads((run / "metrics.json").read_text())
            (run / "metrics.json").write_text(json.dumps({**metrics, "test_macro_f1": float("nan")}))
    header, body = table(compare_runs([tmp_path], bootstrap=0))
    cell = body[0][header.index("test_macro_f1")]
    assert cell.endswith(" (1 of 3 NaN)") and " ± " in cell
    assert body[0][header.index("seeds")] == "3 (1,2,3)"
