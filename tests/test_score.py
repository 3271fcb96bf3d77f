"""stance.score: end to end on the seed article, aggregates, resumption, bad input, errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

import stance.scoring.engine as score
from conftest import CONFIG_DIR, REPO, SEED_DIR
from stance.errors import StanceError
from stance.labels import LABELS
from stance.overrides import input_shorthand
from stance.scoring.tables import bootstrap_net_ci

SEED_FILE = SEED_DIR / "000_8c7c1d6cabef915e.txt"
PROB_COLS = [f"prob_{lab}" for lab in LABELS]


def make_cfg(model_dir: Path, inp: str | None, out: Path | None, *extra: str):
    """The composed score config, as ``python -m stance.score`` builds it."""
    overrides = [f"model_dir={model_dir}", "score.threads=1", "score.bootstrap=200", *extra]
    if inp is not None:
        overrides.append(f"input={inp}")
    if out is not None:
        overrides.append(f"output_dir={out}")
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("score", overrides=input_shorthand(overrides))


def seed_paragraphs() -> tuple[str, list[str]]:
    lines = [ln.strip() for ln in SEED_FILE.read_text(encoding="utf-8").splitlines() if ln.strip()]
    return lines[0], lines[1:]


def write_corpus(folder: Path, n: int) -> Path:
    """``n`` short .txt articles made of seed paragraphs (some with actors, varied lengths)."""
    title, paras = seed_paragraphs()
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        body = [paras[(i * 3 + k) % len(paras)] for k in range(1 + i % 3)]
        (folder / f"art{i:02d}.txt").write_text(f"{title} part {i}\n" + "\n".join(body) + "\n", encoding="utf-8")
    return folder


def read_outputs(out: Path) -> dict[str, pd.DataFrame]:
    mentions = pd.read_parquet(out / "mentions").sort_values("example_id").reset_index(drop=True)
    return {
        "mentions": mentions,
        "articles": pd.read_parquet(out / "articles.parquet"),
        "actors": pd.read_parquet(out / "actors.parquet"),
    }


@pytest.fixture(scope="module")
def seed_run(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("score-seed") / "out"
    cfg = make_cfg(tiny_model_dir, str(SEED_FILE), out)
    record = score.run_scoring(cfg)
    return cfg, out, record


def test_seed_rows_match_article_pairs_and_training_encoding(seed_run, tiny_model_dir):
    from stance.modeling.models import load_classifier
    from stance.text.actors import ActorRegistry
    from stance.text.articles import iter_articles
    from stance.text.pairs import article_pairs

    cfg, out, record = seed_run
    (article,) = list(iter_articles(score.input_spec(cfg.input)))
    pairs = article_pairs(article, ActorRegistry.from_config(cfg.actors), cfg.text)
    got = pd.read_parquet(out / "mentions")
    assert len(pairs) > 20
    assert len(got) == len(pairs) == record["counts"]["mentions"]
    assert list(got["example_id"]) == [p["example_id"] for p in pairs]
    assert list(got["mention_start"]) == [p["mention_start"] for p in pairs]
    probs = got[PROB_COLS].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert list(got["label"]) == [LABELS[i] for i in probs.argmax(axis=1)]
    assert (got["low_confidence"] == (probs.max(axis=1) < 0.5)).all()
    # the same inputs as training/evaluation: the trainer's own predict_proba gives the same numbers
    reference = load_classifier(tiny_model_dir).predict_proba(pairs)
    np.testing.assert_allclose(probs, reference, atol=1e-5)


def test_aggregates_agree_with_mention_rows(seed_run):
    _, out, record = seed_run
    got = read_outputs(out)
    m = got["mentions"]
    arts = got["articles"].set_index(["article_id", "actor_id"])
    for (art, actor), g in m.groupby(["article_id", "actor_id"]):
        row = arts.loc[(art, actor)]
        assert row["n_sentences"] == len(g)
        for lab in LABELS:
            assert row[f"n_{lab}"] == (g["label"] == lab).sum()
            assert row[f"share_{lab}"] == pytest.approx((g["label"] == lab).mean())
        assert row["net_stance"] == pytest.approx(
            ((g["label"] == "supportive").sum() - (g["label"] == "critical").sum()) / len(g)
        )
    actors = got["actors"].set_index("actor_id")
    assert len(arts) == m.groupby(["article_id", "actor_id"]).ngroups
    assert actors["n_sentences"].sum() == len(m)
    assert list(got["actors"]["n_sentences"]) == sorted(got["actors"]["n_sentences"], reverse=True)
    assert actors.loc["trump", "n_articles"] == 1
    assert np.isnan(actors.loc["trump", "net_stance_ci_low"])  # one article: no CI
    assert (out / "stance_by_actor.png").stat().st_size > 10_000
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "completed"
    assert run["counts"]["articles"] == 1 and run["counts"]["actors"] == len(actors)
    assert run["inputs"][0]["path"] == str(SEED_FILE) and len(run["inputs"][0]["sha256"]) == 64
    assert sum(run["counts"]["labels"].values()) == len(m)


def test_bootstrap_ci_resamples_articles():
    n = np.array([10, 10, 10, 10])
    lo, hi = bootstrap_net_ci(n, np.array([5, 5, 5, 5]), reps=500, seed=1)
    assert lo == pytest.approx(0.5) and hi == pytest.approx(0.5)  # identical articles: no spread
    lo, hi = bootstrap_net_ci(n, np.array([10, -10, 10, -10]), reps=2000, seed=1)
    assert -1.0 <= lo < 0.0 < hi <= 1.0
    assert bootstrap_net_ci(n, np.array([10, -10, 10, -10]), reps=2000, seed=1) == (lo, hi)
    assert all(np.isnan(bootstrap_net_ci(np.array([3]), np.array([1]), reps=100, seed=1)))


def test_resumed_run_equals_clean_run(tiny_model_dir, tmp_path, monkeypatch):
    corpus = write_corpus(tmp_path / "corpus", 7)
    opts = ("score.chunk_articles=2",)
    clean = tmp_path / "clean"
    score.run_scoring(make_cfg(tiny_model_dir, str(corpus), clean, *opts))

    resumed = tmp_path / "resumed"
    real_write = score.write_part
    calls = []

    def interrupted(*args, **kwargs):
        if calls:
            raise KeyboardInterrupt("interrupted after the first chunk")
        calls.append(1)
        return real_write(*args, **kwargs)

    monkeypatch.setattr(score, "write_part", interrupted)
    with pytest.raises(KeyboardInterrupt):
        score.run_scoring(make_cfg(tiny_model_dir, str(corpus), resumed, *opts))
    # what the interrupted run left is valid: one complete part and its done-list
    assert json.loads((resumed / "run.json").read_text())["status"] == "interrupted"
    parts = [p.name for p in (resumed / "mentions").iterdir()]
    assert len(parts) == 1 and re.fullmatch(r"part-00000-[0-9a-f]{8}\.parquet", parts[0])
    manifest = resumed / ".score-state" / parts[0].replace(".parquet", ".json")
    assert len(json.loads(manifest.read_text())["articles"]) == 2
    monkeypatch.setattr(score, "write_part", real_write)
    # a write killed mid-way (kill -9) leaves a hidden temporary: never read, cleaned up on resume
    (resumed / "mentions" / ".part-00001.parquet.abc.tmp").mkdir()

    record = score.run_scoring(make_cfg(tiny_model_dir, str(corpus), resumed, *opts))
    assert record["counts"]["articles_already_scored"] == 2
    assert record["counts"]["articles_scored_now"] == 5
    assert not list((resumed / "mentions").glob(".*"))
    a, b = read_outputs(clean), read_outputs(resumed)
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], check_exact=False, atol=1e-6)
    assert len(a["mentions"]) > 7
    clean_run = json.loads((clean / "run.json").read_text())
    for key in ("articles", "mentions", "labels", "articles_no_actor", "actors"):
        assert record["counts"][key] == clean_run["counts"][key]
    # a third run has nothing left to do and changes nothing
    again = score.run_scoring(make_cfg(tiny_model_dir, str(corpus), resumed, *opts))
    assert again["counts"]["articles_scored_now"] == 0
    pd.testing.assert_frame_equal(read_outputs(resumed)["actors"], b["actors"])


def test_resuming_with_other_settings_is_refused(tiny_model_dir, tmp_path):
    out = tmp_path / "out"
    score.run_scoring(make_cfg(tiny_model_dir, str(SEED_FILE), out))
    with pytest.raises(
        StanceError,
        match=rf"^{out}: holds a scoring run with a different threshold; use a new "
        r"output_dir \(or delete this one\) to score with these settings$",
    ):
        score.run_scoring(make_cfg(tiny_model_dir, str(SEED_FILE), out, "score.threshold=0.7"))


def test_bad_inputs_are_reported_and_the_batch_completes(tiny_model_dir, tmp_path):
    title, paras = seed_paragraphs()
    good = paras[1]  # mentions Trump and Putin
    src = tmp_path / "in"
    src.mkdir()
    (src / "a_good.txt").write_text(f"{title}\n{good}\n", encoding="utf-8")
    (src / "b_empty.txt").write_text("\n  \n", encoding="utf-8")
    (src / "c_undecodable.txt").write_bytes(b"Title\nTrump said \xff\xfe hello.\n")
    (src / "d_no_actor.txt").write_text("Weather report\nIt will rain on Sunday across the region.\n", encoding="utf-8")
    (src / "e_rows.jsonl").write_text(
        json.dumps({"id": "j1", "title": "", "text": good, "outlet": "X"}) + "\n{not json\n", encoding="utf-8"
    )
    (src / "f_rows.csv").write_text(f'id,title,text,outlet\nc1,,"{good}",Y\nc2,,,Z\n', encoding="utf-8")
    out = tmp_path / "out"
    # the full input spec: paths plus a meta column passed through to every row
    record = score.run_scoring(
        make_cfg(tiny_model_dir, None, out, f"input.paths=[{src}]", "input.meta_columns=[outlet]")
    )
    reasons = {(Path(s["path"]).name, s["line"]): s["reason"] for s in record["skipped"]}
    assert reasons == {
        ("b_empty.txt", None): "empty file",
        ("c_undecodable.txt", 2): "cannot decode byte 0xff at byte offset 17 as utf-8 (input.encoding)",
        ("d_no_actor.txt", None): "no actor of the registry is mentioned",
        ("e_rows.jsonl", 2): "invalid JSON: Expecting property name enclosed in double quotes (column 2)",
        ("f_rows.csv", 3): "empty text in column 'text'",
    }
    c = record["counts"]
    assert (c["articles"], c["articles_with_actors"], c["articles_no_actor"], c["problems"]) == (4, 3, 1, 4)
    m = pd.read_parquet(out / "mentions")
    assert set(m["article_id"]) == {"a_good", "j1", "c1"}
    assert dict(zip(m["article_id"], m["outlet"])) == {"a_good": "", "j1": "X", "c1": "Y"}
    arts = pd.read_parquet(out / "articles.parquet")
    assert set(arts["outlet"]) == {"", "X", "Y"}
    assert json.loads((out / "run.json").read_text())["skipped"] == record["skipped"]


def test_only_bad_input_still_writes_empty_outputs(tiny_model_dir, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "empty.txt").write_text("", encoding="utf-8")
    record = score.run_scoring(make_cfg(tiny_model_dir, str(src), tmp_path / "out", "score.format=csv"))
    assert record["counts"]["articles"] == 0 and record["counts"]["problems"] == 1
    assert pd.read_csv(tmp_path / "out" / "mentions.csv").empty
    assert list(pd.read_csv(tmp_path / "out" / "actors.csv").columns)[:2] == ["actor_id", "actor_name"]


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_reduced_precision_stays_close(seed_run, tiny_model_dir, tmp_path, precision):
    _, out32, _ = seed_run
    out = tmp_path / precision
    record = score.run_scoring(make_cfg(tiny_model_dir, str(SEED_FILE), out, f"score.precision={precision}"))
    assert record["model"]["precision"] == precision
    a = pd.read_parquet(out32 / "mentions")[PROB_COLS].to_numpy()
    b = pd.read_parquet(out / "mentions")[PROB_COLS].to_numpy()
    np.testing.assert_allclose(b.sum(axis=1), 1.0, atol=1e-5)
    assert np.abs(a - b).max() < 0.05


def test_onnx_backend_gives_the_torch_numbers(seed_run, tiny_model_dir, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    monkeypatch.setenv("STANCE_CACHE", str(tmp_path / "cache"))
    _, out32, _ = seed_run
    out = tmp_path / "onnx"
    record = score.run_scoring(make_cfg(tiny_model_dir, str(SEED_FILE), out, "score.backend=onnx"))
    assert record["model"]["backend"] == "onnx"
    assert len(list((tmp_path / "cache" / "onnx").glob("*.onnx"))) == 1  # exported once, cached
    a = pd.read_parquet(out32 / "mentions")
    b = pd.read_parquet(out / "mentions")
    np.testing.assert_allclose(b[PROB_COLS].to_numpy(), a[PROB_COLS].to_numpy(), atol=1e-5)
    assert list(a["label"]) == list(b["label"])


def test_errors_name_the_problem(tiny_model_dir, tmp_path):
    with pytest.raises(
        StanceError,
        match=r"^model_dir: /nonexistent/model: no such folder \(expected a "
        r"trained model, e\.g\. RUN/model\)$",
    ):
        score.run_scoring(make_cfg(Path("/nonexistent/model"), str(SEED_FILE), tmp_path / "o"))
    with pytest.raises(StanceError, match=rf"^{tmp_path}/missing\.txt: no such file or folder$"):
        score.run_scoring(make_cfg(tiny_model_dir, str(tmp_path / "missing.txt"), tmp_path / "o"))
    with pytest.raises(
        StanceError,
        match=r"^input: no input given \(input=PATH: a file, folder or glob "
        r"of articles\)$",
    ):
        score.run_scoring(make_cfg(tiny_model_dir, None, tmp_path / "o"))
    # Enum fields: Hydra refuses unknown values when the config is composed (at start-up) ...
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException, match=r"fp8"):
        make_cfg(tiny_model_dir, str(SEED_FILE), tmp_path / "o", "score.precision=fp8")
    with pytest.raises(ConfigCompositionException, match=r"tensorrt"):
        make_cfg(tiny_model_dir, str(SEED_FILE), tmp_path / "o", "score.backend=tensorrt")
    # ... and the Python API, which takes plain strings, says the same in one line
    from stance.modeling.models import load_classifier

    with pytest.raises(
        StanceError,
        match=r"^score\.precision: unknown value 'fp8' \(expected one of fp32, "
        r"bf16, int8\)$",
    ):
        load_classifier(tiny_model_dir, precision="fp8")
    with pytest.raises(StanceError, match=r"^score\.backend: 'tensorrt' is not available \(supported: torch, onnx\)$"):
        load_classifier(tiny_model_dir, backend="tensorrt")
    with pytest.raises(
        StanceError,
        match=r"^score\.precision=bf16 needs score\.backend=torch \(the onnx backend "
        r"runs fp32 or int8\)$",
    ):
        score.run_scoring(
            make_cfg(tiny_model_dir, str(SEED_FILE), tmp_path / "o", "score.backend=onnx", "score.precision=bf16")
        )


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "stance.score", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


def test_cli_end_to_end_csv(tiny_model_dir, tmp_path):
    out = tmp_path / "out"
    proc = _cli(
        f"model_dir={tiny_model_dir}",
        f"input={SEED_DIR}",
        f"output_dir={out}",
        "score.format=csv",
        "score.threads=1",
        "score.bootstrap=100",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    mentions = pd.read_csv(out / "mentions.csv")
    run = json.loads((out / "run.json").read_text())
    assert len(mentions) == run["counts"]["mentions"] > 20
    assert json.loads(mentions["other_mentions"].iloc[0])[0].keys() == {"actor_id", "mention", "start", "end"}
    assert pd.read_csv(out / "articles.csv")["n_sentences"].sum() == len(mentions)
    assert (out / "actors.csv").exists() and (out / "stance_by_actor.png").exists()
    assert "sent/s" in proc.stderr


def test_cli_errors_are_one_line(tiny_model_dir, tmp_path):
    proc = _cli("model_dir=/nonexistent/model", f"input={SEED_DIR}", f"output_dir={tmp_path / 'o'}")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        "stance.score: error: model_dir: /nonexistent/model: no such folder (expected a trained model, e.g. RUN/model)"
    )
    proc = _cli(f"model_dir={tiny_model_dir}", f"input={tmp_path / 'nope'}", f"output_dir={tmp_path / 'o'}")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == f"stance.score: error: {tmp_path / 'nope'}: no such file or folder"


@pytest.mark.integration
def test_packaged_model_on_the_seed_article(packaged_model_dir, tmp_path):
    """The real MiniLM (with a new, untrained head) through scoring: the same numbers as the trainer's path."""
    import torch

    from stance.modeling.models import load_classifier, load_transformer

    torch.manual_seed(0)
    model, tokenizer = load_transformer(str(packaged_model_dir))
    model_dir = tmp_path / "model"
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    out = tmp_path / "out"
    record = score.run_scoring(make_cfg(model_dir, str(SEED_FILE), out, "score.threads=2"))
    m = pd.read_parquet(out / "mentions")
    assert len(m) == record["counts"]["mentions"] > 20
    from stance.text.actors import ActorRegistry
    from stance.text.articles import iter_articles
    from stance.text.pairs import article_pairs

    cfg = make_cfg(model_dir, str(SEED_FILE), out)
    (article,) = list(iter_articles(score.input_spec(cfg.input)))
    pairs = article_pairs(article, ActorRegistry.from_config(cfg.actors), cfg.text)
    reference = load_classifier(model_dir).predict_proba(pairs)
    np.testing.assert_allclose(m[PROB_COLS].to_numpy(), reference, atol=1e-4)
