"""The analyst's side: the Python API (one engine with stance.score), stance by outlet and over time,
the spreadsheet-safe CSV flavour, and report.html (checked in a real headless Chromium)."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import stance.scoring.engine as score
from conftest import REPO, SEED_DIR
from stance.errors import StanceError
from stance.labels import LABELS
from test_score import make_cfg

NEWS = REPO / "tests" / "data" / "news" / "articles.jsonl"
PROBS = [f"prob_{lab}" for lab in LABELS]
VIEW_ARGS = (
    f"input.paths=[{SEED_DIR},{NEWS}]",
    "input.meta_columns=[outlet,date]",
    "score.group_by=[outlet]",
    "score.time_column=date",
)


@pytest.fixture(scope="module")
def news_run(tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("analyst") / "out"
    record = score.run_scoring(make_cfg(tiny_model_dir, None, out, *VIEW_ARGS))
    return out, record


@pytest.fixture(scope="module")
def api_model(tiny_model_dir):
    from stance import StanceModel

    return StanceModel.load(tiny_model_dir)


# --- the API -----------------------------------------------------------------------------------
def test_import_stance_stays_light():
    code = "import sys, stance; print('stance.api' in sys.modules, 'torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]


def test_predict_targets_by_actor_mention_or_span(api_model):
    sentence = "Critics blamed Trump for the deal, while Putin stayed silent."
    by_actor = api_model.predict(sentence, actor="Donald Trump")
    assert by_actor.mention == "Trump" and by_actor.span == (15, 20)
    assert by_actor.label in LABELS and sum(by_actor.probabilities.values()) == pytest.approx(1, abs=1e-5)
    assert api_model.predict(sentence, mention="Trump").probabilities == by_actor.probabilities
    assert api_model.predict(sentence, span=(15, 20)).probabilities == by_actor.probabilities
    other = api_model.predict(sentence, actor="Putin")
    assert other.span == (41, 46) and other.probabilities != by_actor.probabilities
    # a name outside the registry is found as a whole word
    assert api_model.predict("The council thanked Becker.", actor="becker").mention == "Becker"
    with pytest.raises(StanceError, match="not mentioned"):
        api_model.predict(sentence, actor="Zelenskyy")
    with pytest.raises(StanceError, match="exactly one"):
        api_model.predict(sentence, actor="Trump", mention="Trump")


def test_api_and_score_share_one_engine(news_run, api_model):
    """score_articles on the same articles gives stance.score's mention rows and probabilities."""
    out, _ = news_run
    scored = pd.read_parquet(out / "mentions")
    news = pd.read_json(NEWS, lines=True)
    mine = api_model.score_articles(news, meta_columns=["outlet", "date"])
    theirs = scored[scored["article_id"].isin(news["id"])]
    merged = mine.merge(theirs, on="example_id", suffixes=("", "_score"))
    assert len(merged) == len(mine) == len(theirs) > 0
    for col in PROBS:
        np.testing.assert_allclose(merged[col], merged[f"{col}_score"], atol=1e-5)
    assert (merged["outlet"] == merged["outlet_score"]).all()
    # predict_frame with spans reproduces the same numbers (markers inserted by the engine)
    frame = api_model.predict_frame(theirs[["sentence", "mention_start", "mention_end"]].reset_index(drop=True))
    np.testing.assert_allclose(frame[PROBS].to_numpy(), theirs[PROBS].to_numpy(), atol=1e-5)
    assert not any("<<" in s for s in frame["sentence"])


def test_predict_frame_reports_the_bad_row(api_model):
    df = pd.DataFrame({"sentence": ["Trump spoke.", "Nobody spoke."], "actor": ["Trump", "Trump"]})
    with pytest.raises(StanceError, match="row 1: actor='Trump': not mentioned"):
        api_model.predict_frame(df)
    ok = api_model.predict_frame(df.iloc[:1])
    assert list(ok.columns[-5:]) == ["label", *PROBS, "low_confidence"]


def test_load_accepts_a_run_folder(tiny_model_dir, tmp_path):
    from stance import StanceModel

    run = tmp_path / "run"
    shutil.copytree(tiny_model_dir, run / "model")
    assert StanceModel.load(run).classifier.kind == "transformer"
    with pytest.raises(StanceError, match="no such folder"):
        StanceModel.load(tmp_path / "absent")


# --- by outlet and over time --------------------------------------------------------------------
def test_group_and_time_tables_agree_with_the_mentions(news_run):
    out, record = news_run
    mentions = pd.read_parquet(out / "mentions")
    by_outlet = pd.read_parquet(out / "by_outlet.parquet")
    over_time = pd.read_parquet(out / "over_time.parquet")
    assert set(by_outlet["outlet"]) == {"Harbour Gazette", "Evening Ledger", "(missing)"}  # the seed has none
    for (actor, outlet), g in mentions.assign(outlet=mentions["outlet"].replace("", "(missing)")).groupby(
        ["actor_id", "outlet"]
    ):
        row = by_outlet[(by_outlet["actor_id"] == actor) & (by_outlet["outlet"] == outlet)].iloc[0]
        assert row["n_sentences"] == len(g)
        net = ((g["label"] == "supportive").sum() - (g["label"] == "critical").sum()) / len(g)
        assert row["net_stance"] == pytest.approx(net)
    assert set(over_time["period"]) == {"2025-02", "2025-03"}
    assert record["outputs"]["undated_articles"] == 1  # the seed article: no date column
    dated = mentions[mentions["date"] != ""]
    assert over_time["n_sentences"].sum() == len(dated)
    for name in ("stance_by_actor.png", "stance_by_outlet.png", "stance_over_time.png", "report.html"):
        assert (out / name).stat().st_size > 0


def test_weekly_periods_and_bad_dates(tiny_model_dir, tmp_path):
    rows = [
        {"id": "a", "text": "Trump praised Putin.", "outlet": "X", "date": "2025-03-12"},
        {"id": "b", "text": "Putin blamed Trump.", "outlet": "Y", "date": "2025-03-14T08:00:00Z"},
        {"id": "c", "text": "Trump met Putin.", "outlet": "Y", "date": "12/03/2025"},
    ]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    args = [f"input.paths=[{src}]", "input.meta_columns=[outlet,date]", "score.time_column=date", "score.time_freq=W"]
    record = score.run_scoring(make_cfg(tiny_model_dir, None, tmp_path / "out", *args))
    over_time = pd.read_parquet(tmp_path / "out" / "over_time.parquet")
    assert set(over_time["period"]) == {"2025-03-10"}  # both in the week starting Monday 10 March
    (bad,) = record["skipped"]
    assert "'12/03/2025' is not a date (expected ISO 8601" in bad["reason"] and "'c'" in bad["reason"]


def test_views_need_meta_columns(tiny_model_dir, tmp_path):
    with pytest.raises(
        StanceError, match=r"score.group_by: 'outlet' is not a meta column.*input.meta_columns=\[outlet\]"
    ):
        score.run_scoring(make_cfg(tiny_model_dir, str(NEWS), tmp_path / "o", "score.group_by=[outlet]"))
    assert not (tmp_path / "o" / "run.json").exists()


# --- spreadsheets -------------------------------------------------------------------------------
def test_excel_flavour_neutralises_formulas(tiny_model_dir, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text('id,text,outlet\nx1,"Trump praised Putin.","=HYPERLINK(""http://evil"")"\n', encoding="utf-8")
    args = [f"input.paths=[{src}]", "input.meta_columns=[outlet]", "score.format=csv", "score.group_by=[outlet]"]
    score.run_scoring(make_cfg(tiny_model_dir, None, tmp_path / "xl", *args, "score.csv_flavour=excel"))
    score.run_scoring(make_cfg(tiny_model_dir, None, tmp_path / "plain", *args))
    for name in ("mentions.csv", "articles.csv", "by_outlet.csv"):
        raw = (tmp_path / "xl" / name).read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf")
        rows = list(csv.DictReader((tmp_path / "xl" / name).open(encoding="utf-8-sig")))
        assert rows[0]["outlet"] == '\'=HYPERLINK("http://evil")'
        assert not (tmp_path / "plain" / name).read_bytes().startswith(b"\xef\xbb\xbf")
    actors = pd.read_csv(tmp_path / "xl" / "actors.csv", encoding="utf-8-sig")
    assert actors["net_stance"].dtype == float  # numbers, negative ones too, stay numbers


# --- report.html --------------------------------------------------------------------------------
def test_report_is_self_contained_and_shows_every_actor(news_run):
    out, _ = news_run
    page = (out / "report.html").read_text(encoding="utf-8")
    actors = pd.read_parquet(out / "actors.parquet")
    for name in actors["actor_name"]:
        assert f"<h3>{name}</h3>" in page
    assert "<script" not in page and not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert page.count("data:image/png;base64,") == 3
    assert "<mark>" in page and "least confident" in page and "by outlet" in page


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)  # type: ignore[return-value]
    pytest.skip("no Chromium: install the Debian package `chromium` (make install does it as root)")


def _run_browser(browser: str, page: Path, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        f"--user-data-dir={tmp / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
        *args,
        page.as_uri(),
    ]
    env = {**os.environ, "HOME": str(tmp)}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)


def _console(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def test_report_in_headless_chromium(news_run, tmp_path):
    browser = _chromium()
    out, _ = news_run
    # the check itself works: a page with an error is caught
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><script>console.error('boom')</script></body></html>", encoding="utf-8")
    assert _console(_run_browser(browser, bad, tmp_path / "b1", "--dump-dom").stderr)
    dom = _run_browser(browser, out / "report.html", tmp_path / "b2", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert not _console(dom.stderr), _console(dom.stderr)
    for name in pd.read_parquet(out / "actors.parquet")["actor_name"]:
        assert f">{name}</h3>" in dom.stdout
    shot = tmp_path / "report.png"
    done = _run_browser(
        browser, out / "report.html", tmp_path / "b3", f"--screenshot={shot}", "--window-size=1280,2400"
    )
    assert done.returncode == 0 and shot.stat().st_size > 10_000
    assert not _console(done.stderr)
