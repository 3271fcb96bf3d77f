"""score.engine=ray: same rows and tables as the local engine, resumption, a killed worker, bad input.

One Ray instance for the module (2 CPUs, no dashboard); the tiny model; a few small articles.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import stance.scoring.engine as score
import stance.scoring.ray_engine as ray_engine
from stance.errors import StanceError
from stance.labels import LABELS
from test_score import make_cfg, read_outputs, seed_paragraphs, write_corpus

ray = pytest.importorskip("ray", reason="needs the [distributed] extra")

PROB_COLS = [f"prob_{lab}" for lab in LABELS]
RAY = ("score.engine=ray", "score.ray.batch_size=2")


@pytest.fixture(scope="module", autouse=True)
def ray_instance():
    """One local instance for every test here: the engine joins it instead of starting its own."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("ray-corpus"), 7)


@pytest.fixture(scope="module")
def local_run(tiny_model_dir: Path, corpus: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("ray-local") / "out"
    record = score.run_scoring(make_cfg(tiny_model_dir, str(corpus), out, "score.chunk_articles=3"))
    return out, record


def assert_same_outputs(local: Path, other: Path) -> None:
    """Same rows by example_id, probabilities within 1e-5, same labels; identical aggregates."""
    a, b = read_outputs(local), read_outputs(other)
    assert list(a["mentions"]["example_id"]) == list(b["mentions"]["example_id"])
    np.testing.assert_allclose(a["mentions"][PROB_COLS], b["mentions"][PROB_COLS], atol=1e-5, rtol=0)
    rest = [c for c in a["mentions"].columns if c not in PROB_COLS]
    pd.testing.assert_frame_equal(a["mentions"][rest], b["mentions"][rest])
    pd.testing.assert_frame_equal(a["articles"], b["articles"])
    pd.testing.assert_frame_equal(a["actors"], b["actors"])


def test_ray_engine_equals_the_local_engine(tiny_model_dir, corpus, local_run, tmp_path):
    out = tmp_path / "ray"
    # parts of 3 articles: cut exactly as in the local run (one window: each window restarts the
    # workers, seconds each, so the test keeps to one)
    record = score.run_scoring(make_cfg(tiny_model_dir, str(corpus), out, "score.chunk_articles=3", *RAY))
    local_out, local_record = local_run
    assert_same_outputs(local_out, out)
    assert len(list((out / "mentions").glob("part-*.parquet"))) == 3  # parts of 3, 3 and 1 articles
    for key in ("articles", "mentions", "labels", "articles_no_actor", "actors", "problems"):
        assert record["counts"][key] == local_record["counts"][key]
    engine = json.loads((out / "run.json").read_text())["engine"]
    assert engine["name"] == "ray" and engine["concurrency"] == 2 and not engine["started_here"]
    assert record["status"] == "completed" and (out / "stance_by_actor.png").is_file()


def test_interrupted_ray_run_resumes_to_the_same_outputs(tiny_model_dir, corpus, local_run, tmp_path, monkeypatch):
    out = tmp_path / "ray"
    opts = ("score.chunk_articles=3", "score.ray.concurrency=1", *RAY)
    real_write = score.write_part
    calls: list[int] = []

    def interrupted(*args, **kwargs):
        if calls:
            raise KeyboardInterrupt("interrupted after the first part")
        calls.append(1)
        return real_write(*args, **kwargs)

    monkeypatch.setattr(score, "write_part", interrupted)
    with pytest.raises(KeyboardInterrupt):
        score.run_scoring(make_cfg(tiny_model_dir, str(corpus), out, *opts))
    assert json.loads((out / "run.json").read_text())["status"] == "interrupted"
    assert len(list((out / "mentions").glob("part-*.parquet"))) == 1
    monkeypatch.setattr(score, "write_part", real_write)

    record = score.run_scoring(make_cfg(tiny_model_dir, str(corpus), out, *opts))
    assert (record["counts"]["articles_already_scored"], record["counts"]["articles_scored_now"]) == (3, 4)
    assert_same_outputs(local_run[0], out)


def test_a_killed_worker_loses_and_duplicates_no_rows(tiny_model_dir, corpus, local_run, tmp_path, monkeypatch):
    marker = tmp_path / "killed"

    class KilledOnce(ray_engine.Scorer):
        """Kills its own worker process (SIGKILL) in the middle of its first batch, once per test."""

        def __call__(self, batch):
            if not marker.exists():
                marker.write_text(str(os.getpid()))
                os.kill(os.getpid(), signal.SIGKILL)
            return super().__call__(batch)

    # a class defined here is pickled by value: the workers get it without importing this file
    monkeypatch.setattr(ray_engine, "Scorer", KilledOnce)
    out = tmp_path / "ray"
    record = score.run_scoring(make_cfg(tiny_model_dir, str(corpus), out, "score.chunk_articles=3", *RAY))
    assert marker.exists()  # a worker did die mid-batch
    assert record["status"] == "completed"
    assert_same_outputs(local_run[0], out)
    mentions = pd.read_parquet(out / "mentions")
    assert mentions["example_id"].is_unique


def test_bad_input_is_skipped_and_counted_as_locally(tiny_model_dir, tmp_path):
    title, paras = seed_paragraphs()
    src = tmp_path / "in"
    src.mkdir()
    (src / "a_good.txt").write_text(f"{title}\n{paras[1]}\n", encoding="utf-8")
    (src / "b_empty.txt").write_text("\n  \n", encoding="utf-8")
    (src / "c_undecodable.txt").write_bytes(b"Title\nTrump said \xff\xfe hello.\n")
    (src / "d_no_actor.txt").write_text("Weather report\nIt will rain on Sunday across the region.\n", encoding="utf-8")
    (src / "e_rows.jsonl").write_text(
        json.dumps({"id": "a_good", "text": paras[2]}) + "\n{not json\n" + json.dumps({"id": "j1", "text": paras[1]}),
        encoding="utf-8",
    )
    records = {}
    for engine in ("local", "ray"):
        extra = ("score.engine=ray", "score.ray.concurrency=1") if engine == "ray" else ()
        records[engine] = score.run_scoring(make_cfg(tiny_model_dir, str(src), tmp_path / engine, *extra))
    assert records["ray"]["skipped"] == records["local"]["skipped"]
    assert records["ray"]["counts"] == records["local"]["counts"]
    reasons = sorted(s["reason"].split(" ")[0] for s in records["ray"]["skipped"])
    assert reasons == ["cannot", "duplicate", "empty", "invalid", "no"]
    assert records["ray"]["counts"]["problems"] == 4
    assert set(pd.read_parquet(tmp_path / "ray" / "mentions")["article_id"]) == {"a_good", "j1"}


def test_bad_ray_settings_fail_at_start(tiny_model_dir, corpus, tmp_path):
    with pytest.raises(StanceError, match=r"^score\.ray\.concurrency: must be at least 1, got 0$"):
        score.run_scoring(
            make_cfg(tiny_model_dir, str(corpus), tmp_path / "o", "score.engine=ray", "score.ray.concurrency=0")
        )
