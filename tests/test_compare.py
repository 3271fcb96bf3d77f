"""stance.compare on fabricated run dirs shaped like stance.train's (docs/ARCHITECTURE.md)."""

from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path

import numpy as np
import pytest
import yaml

from stance.analysis.comparison import compare_runs, paired_bootstrap, render_text, table, write_comparison
from stance.analysis.metrics import compute_metrics, macro_f1
from stance.compare import main
from stance.errors import StanceError
from stance.labels import LABEL2ID, LABELS

HASH_A = "a" * 64
HASH_B = "b" * 64


def gold_rows(n: int = 60) -> list[tuple[str, str]]:
    """``n`` test rows (example_id, gold label), labels cycling through LABELS."""
    return [(f"art{i // 4}:{i % 4}:actor{i % 3}", LABELS[i % 3]) for i in range(n)]


def noisy(gold: list[tuple[str, str]], wrong_every: int, offset: int = 0) -> list[str]:
    """Predictions that are wrong on every ``wrong_every``-th row (shifted by ``offset``)."""
    out = []
    for i, (_, label) in enumerate(gold):
        wrong = wrong_every > 0 and (i + offset) % wrong_every == 0
        out.append(LABELS[(LABELS.index(label) + 1) % 3] if wrong else label)
    return out


def make_run(
    root: Path,
    overrides: list[str],
    seed: int,
    preds: list[str] | None = None,
    gold: list[tuple[str, str]] | None = None,
    status: str = "completed",
    test_hash: str = HASH_A,
    write_metrics: bool = True,
    model: str = "minilm",
) -> Path:
    """A run dir as stance.train writes it; metrics.json is computed from the predictions."""
    gold = gold or gold_rows()
    name = ",".join(o for o in sorted(overrides) if not o.startswith("seed=")) or "default"
    run = root / name / f"seed={seed}"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([*overrides, f"seed={seed}"]))
    choice = next((o.split("=", 1)[1] for o in overrides if o.startswith("model=")), model)
    input_format = next((o.split("=", 1)[1] for o in overrides if o.startswith("model.input_format=")), "markers")
    config = {"seed": seed, "model": {"name_or_path": choice, "input_format": input_format}, "train": {"epochs": 4.0}}
    (run / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    choices = {"model": choice, "data": "seed", "hydra/sweeper": "basic"}
    (run / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"runtime": {"choices": choices}}}))
    info = {"status": status, "primary_metric": "validation_macro_f1", "test_data_hash": test_hash, "seed": seed}
    (run / "run.json").write_text(json.dumps(info))
    if preds is not None and status == "completed":
        with (run / "predictions.jsonl").open("w") as fh:
            for (eid, label), pred in zip(gold, preds):
                probs = {f"prob_{lab}": float(lab == pred) for lab in LABELS}
                fh.write(json.dumps({"example_id": eid, "label": label, "pred": pred, **probs}) + "\n")
        if write_metrics:
            y = [LABEL2ID[label] for _, label in gold]
            p = [LABEL2ID[x] for x in preds]
            metrics = compute_metrics(y, p, prefix="test", bootstrap=0)
            metrics["validation_macro_f1"] = metrics["test_macro_f1"] - 0.01
            (run / "metrics.json").write_text(json.dumps(metrics))
    return run


# --- the paired bootstrap ----------------------------------------------------------------------
def test_bootstrap_identical_predictions_gives_zero_and_p_one() -> None:
    gold = gold_rows(90)
    preds = noisy(gold, 4)
    d = paired_bootstrap([g for _, g in gold], [preds], [preds], n=500, seed=1)
    assert d.delta == 0.0 and d.low == 0.0 and d.high == 0.0
    assert d.p_value == 1.0
    assert d.n_rows == 90


def test_bootstrap_clearly_better_run_is_significant() -> None:
    gold = gold_rows(150)
    labels = [g for _, g in gold]
    good, bad = noisy(gold, 20), noisy(gold, 2)
    d = paired_bootstrap(labels, [bad], [good], n=1000, seed=0)
    ids = [LABEL2ID[x] for x in labels]
    expected = macro_f1(ids, [LABEL2ID[x] for x in bad]) - macro_f1(ids, [LABEL2ID[x] for x in good])
    assert d.delta == pytest.approx(expected)
    assert d.delta < -0.3
    assert d.low <= d.delta <= d.high < 0
    assert d.p_value < 0.05
    # and the same comparison the other way round is the mirror image
    r = paired_bootstrap(labels, [good], [bad], n=1000, seed=0)
    assert r.delta == pytest.approx(-d.delta) and r.p_value == d.p_value


def test_bootstrap_small_difference_is_not_significant() -> None:
    gold = gold_rows(60)
    labels = [g for _, g in gold]
    a, b = noisy(gold, 5), noisy(gold, 5, offset=1)  # same error rate, different rows
    d = paired_bootstrap(labels, [a], [b], n=1000, seed=0)
    assert d.p_value > 0.5
    assert d.low < 0 < d.high


def test_bootstrap_runs_differing_on_one_row_are_not_significant() -> None:
    # most resamples miss or tie on the one differing row: ties count half, so p stays high
    gold = gold_rows(30)
    labels = [g for _, g in gold]
    a = [labels[0]] + ["neutral"] * 29
    b = ["neutral"] * 30
    d = paired_bootstrap(labels, [a], [b], n=1000, seed=0)
    assert d.delta > 0 and d.low == 0.0
    assert d.p_value > 0.3


def test_bootstrap_multi_seed_uses_the_seed_mean() -> None:
    gold = gold_rows(60)
    labels = [g for _, g in gold]
    ids = [LABEL2ID[x] for x in labels]
    seeds_a = [noisy(gold, 3), noisy(gold, 6)]
    seeds_b = [noisy(gold, 10), noisy(gold, 12), noisy(gold, 15)]
    d = paired_bootstrap(labels, seeds_a, seeds_b, n=200, seed=0)

    def mean_f1(runs: list[list[str]]) -> float:
        return float(np.mean([macro_f1(ids, [LABEL2ID[x] for x in p]) for p in runs]))

    assert d.delta == pytest.approx(mean_f1(seeds_a) - mean_f1(seeds_b))


# --- grouping, table, ranking ------------------------------------------------------------------
def test_seeds_are_grouped_with_mean_std_and_n(tmp_path: Path) -> None:
    gold = gold_rows()
    for seed, every in [(1, 3), (2, 4), (3, 6)]:
        make_run(tmp_path, ["model=minilm", "model.input_format=markers"], seed, noisy(gold, every))
    for seed, every in [(1, 2), (2, 3)]:
        make_run(tmp_path, ["model=minilm", "model.input_format=pair"], seed, noisy(gold, every))
    comp = compare_runs([tmp_path], bootstrap=0)
    assert comp.keys == ["model.input_format"]  # model=minilm is the same everywhere
    assert [r.values["model.input_format"] for r in comp.rows] == ["markers", "pair"]
    ids = [LABEL2ID[g] for _, g in gold]
    for row, everies in zip(comp.rows, [(3, 4, 6), (2, 3)]):
        scores = [macro_f1(ids, [LABEL2ID[x] for x in noisy(gold, e)]) for e in everies]
        assert len(row.runs) == len(everies)
        assert row.mean["test_macro_f1"] == pytest.approx(statistics.mean(scores))
        assert row.std["test_macro_f1"] == pytest.approx(statistics.stdev(scores))
        assert sorted(row.seeds) == [str(s) for s in range(1, len(everies) + 1)]


def test_table_matches_metrics_files_and_is_sorted_best_first(tmp_path: Path) -> None:
    gold = gold_rows()
    runs = {
        "majority": make_run(tmp_path, ["model=majority"], 1, ["neutral"] * len(gold), model="majority"),
        "tfidf_lr": make_run(tmp_path, ["model=tfidf_lr"], 1, noisy(gold, 4), model="tfidf_lr"),
        "minilm": make_run(tmp_path, ["model=minilm"], 1, noisy(gold, 8)),
    }
    comp = compare_runs([tmp_path], metrics=["test_macro_f1", "test_accuracy", "not_a_metric"], bootstrap=200)
    header, body = table(comp)
    assert header[:4] == ["rank", "model", "status", "seeds"]
    assert header[4:6] == ["test_macro_f1", "test_accuracy"]  # absent metrics are dropped
    assert [row[1] for row in body] == ["minilm", "tfidf_lr", "majority"]
    for row in body:
        metrics = json.loads((runs[row[1]] / "metrics.json").read_text())
        assert row[4] == f"{metrics['test_macro_f1']:.3f}"
        assert row[5] == f"{metrics['test_accuracy']:.3f}"
    assert body[0][6] == "(best)"
    assert body[2][6].startswith("-") and float(body[2][7]) < 0.05  # majority is clearly worse
    text = render_text(header, body)
    assert text.splitlines()[2].startswith("1     minilm")


def test_metric_chooses_the_sort_and_comes_first(tmp_path: Path) -> None:
    gold = gold_rows()
    make_run(tmp_path, ["model=minilm"], 1, noisy(gold, 8))
    run = make_run(tmp_path, ["model=tfidf_lr"], 1, noisy(gold, 4), model="tfidf_lr")
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["validation_macro_f1"] = 0.99  # best on validation, worse on test
    (run / "metrics.json").write_text(json.dumps(metrics))
    comp = compare_runs([tmp_path], metric="validation_macro_f1", metrics=["test_macro_f1"], bootstrap=0)
    header, body = table(comp)
    assert header[4:6] == ["validation_macro_f1", "test_macro_f1"]
    assert [row[1] for row in body] == ["tfidf_lr", "minilm"]
    assert body[0][4] == "0.990"


def test_sampled_floats_are_shortened_in_the_table_not_in_the_csv(tmp_path: Path) -> None:
    gold = gold_rows()
    make_run(tmp_path, ["train.learning_rate=2.368863950364079e-05"], 42, noisy(gold, 4))
    make_run(tmp_path, ["train.learning_rate=5e-05"], 42, noisy(gold, 3))
    comp = compare_runs([tmp_path], bootstrap=0)
    header, body = table(comp)
    assert header[1] == "train.learning_rate"
    assert sorted(row[1] for row in body) == ["2.369e-05", "5e-05"]
    write_comparison(comp, tmp_path)
    with (tmp_path / "comparison.csv").open() as fh:
        assert sorted(r["train.learning_rate"] for r in csv.DictReader(fh)) == ["2.368863950364079e-05", "5e-05"]


def test_a_group_choice_not_overridden_takes_the_runs_resolved_value(tmp_path: Path) -> None:
    gold = gold_rows()
    make_run(tmp_path / "a", [], 1, noisy(gold, 5), model="minilm")  # default model, no overrides
    make_run(tmp_path / "b", ["model=tfidf_lr"], 1, noisy(gold, 3), model="tfidf_lr")
    comp = compare_runs([tmp_path / "a", tmp_path / "b"], bootstrap=0)
    assert comp.keys == ["model"]
    assert [r.values["model"] for r in comp.rows] == ["minilm", "tfidf_lr"]


def test_an_override_equal_to_the_default_is_the_same_configuration(tmp_path: Path) -> None:
    gold = gold_rows()
    make_run(tmp_path / "a", ["train.epochs=4"], 1, noisy(gold, 4))  # config.yaml: epochs 4.0
    make_run(tmp_path / "b", [], 2, noisy(gold, 5))
    comp = compare_runs([tmp_path], bootstrap=0)
    assert comp.keys == []
    assert len(comp.rows) == 1 and comp.rows[0].seeds == ["1", "2"]
    assert comp.rows[0].label == "all runs"


def test_mixed_test_data_is_refused_unless_allowed(tmp_path: Path) -> None:
    gold = gold_rows()
    make_run(tmp_path, ["model=minilm"], 1, noisy(gold, 4), test_hash=HASH_A)
    make_run(tmp_path, ["model=tfidf_lr"], 1, noisy(gold, 3), test_hash=HASH_B, model="tfidf_lr")
    with pytest.raises(
        StanceError,
        match=r"^runs were evaluated on different test data \(test_data_hash aaaaaaaaaaaa \(1 runs, e\.g\. .*\); "
        r"bbbbbbbbbbbb \(1 runs, e\.g\. .*\)\); their scores are not comparable: "
        r"pass --allow-mixed-test-data to list them anyway$",
    ):
        compare_runs([tmp_path], bootstrap=0)
    comp = compare_runs([tmp_path], allow_mixed_test_data=True, bootstrap=0)
    header, body = table(comp)
    assert "test_data" in header
    assert sorted(row[header.index("test_data")] for row in body) == ["aaaaaaaa", "bbbbbbbb"]


def test_failed_and_interrupted_runs_are_rows_with_their_status(tmp_path: Path) -> None:
    gold = gold_rows()
    make_run(tmp_path, ["model.input_format=markers"], 1, noisy(gold, 4))
    make_run(tmp_path, ["model.input_format=markers"], 2, noisy(gold, 5), status="running")
    failed = make_run(tmp_path, ["model.input_format=pair"], 1, noisy(gold, 3), status="failed")
    info = json.loads((failed / "run.json").read_text())
    (failed / "run.json").write_text(json.dumps({**info, "error": "RuntimeError: out of memory"}))
    make_run(tmp_path, ["model.input_format=both"], 1, noisy(gold, 3), write_metrics=False)
    bare = tmp_path / "killed" / "seed=3" / ".hydra"  # killed before run.json was written
    bare.mkdir(parents=True)
    (bare / "overrides.yaml").write_text(yaml.safe_dump(["model.input_format=both", "seed=3"]))
    comp = compare_runs([tmp_path], bootstrap=100)
    header, body = table(comp)
    status = header.index("status")
    assert [(row[0], row[1], row[status]) for row in body] == [
        ("1", "markers", "completed"),
        ("-", "pair", "failed"),
        ("-", "both", "incomplete"),
        ("-", "both", "incomplete"),
        ("-", "markers", "running"),
    ]
    assert comp.rows[0].runs[0].seed == 1 and len(comp.rows[0].runs) == 1  # the running seed is apart
    assert all(cell == "" for row in body[1:] for cell in row[status + 2 :])
    write_comparison(comp, tmp_path / "out")
    md = (tmp_path / "out" / "comparison.md").read_text()
    assert "model.input_format=pair/seed=1`: failed (RuntimeError: out of memory)" in md


# --- the CLI: outputs and one-line errors --------------------------------------------------------
def test_main_prints_the_table_and_writes_md_csv_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gold = gold_rows()
    sweep = tmp_path / "sweep"
    for seed in (1, 2):
        make_run(sweep, ["model.input_format=markers"], seed, noisy(gold, 3 + seed))
        make_run(sweep, ["model.input_format=pair"], seed, noisy(gold, 2))
    assert main([str(sweep), "--bootstrap", "200"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:3] == ["rank", "model.input_format", "status"]
    assert len(out.strip().splitlines()) == 4  # header, rule, two configurations
    md = (sweep / "comparison.md").read_text()
    assert "| 1 | markers | completed | 2 (1,2) |" in md
    with (sweep / "comparison.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["model.input_format"] for r in rows] == ["markers", "pair"]
    assert rows[0]["n_seeds"] == "2" and rows[0]["seeds"] == "1 2"
    assert float(rows[1]["p_value"]) < 0.05 and float(rows[1]["delta_ci_high"]) < 0
    assert (sweep / "comparison.png").stat().st_size > 1000
    # --out elsewhere; a second run over the same folder still finds exactly the 4 runs
    assert main([str(sweep), "--bootstrap", "0", "--out", str(tmp_path / "report")]) == 0
    assert (tmp_path / "report" / "comparison.csv").is_file()


def test_default_output_is_the_common_parent_of_the_inputs(tmp_path: Path) -> None:
    gold = gold_rows()
    a = make_run(tmp_path / "sweeps" / "one", ["model=minilm"], 1, noisy(gold, 4))
    b = make_run(tmp_path / "sweeps" / "two", ["model=tfidf_lr"], 1, noisy(gold, 3), model="tfidf_lr")
    assert main([str(a), str(b), "--bootstrap", "0"]) == 0
    assert (tmp_path / "sweeps" / "comparison.md").is_file()


def test_missing_path_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path / "nope")])
    assert exc.value.code == 2
    assert capsys.readouterr().err.strip() == f"stance.compare: error: {tmp_path / 'nope'}: no such file or directory"


def test_folder_without_runs_is_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(StanceError, match=r"empty: no runs found \(no folder with \.hydra/ or run\.json below it\)$"):
        compare_runs([tmp_path / "empty"])


def test_malformed_predictions_name_the_file_and_line(tmp_path: Path) -> None:
    gold = gold_rows()
    make_run(tmp_path, ["model=minilm"], 1, noisy(gold, 4))
    run = make_run(tmp_path, ["model=tfidf_lr"], 1, noisy(gold, 3), model="tfidf_lr")
    lines = (run / "predictions.jsonl").read_text().splitlines()
    lines[2] = json.dumps({"example_id": "x", "label": "neutral"})
    (run / "predictions.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(StanceError, match=r"predictions\.jsonl:3: missing 'pred' \(needs example_id, label, pred\)$"):
        compare_runs([tmp_path], bootstrap=10)


def test_plot_error_bars_are_the_bootstrap_ci_not_the_seed_spread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """comparison.png's error bars: the mean of each configuration's runs' bootstrap CI bounds."""
    from stance.analysis import comparison

    gold = gold_rows()
    sweep = tmp_path / "sweep"
    for seed, (lo, hi) in zip((1, 2), ((0.5, 0.7), (0.6, 0.8))):
        run = make_run(sweep, ["model.input_format=markers"], seed, noisy(gold, 3 + seed))
        metrics = json.loads((run / "metrics.json").read_text())
        metrics.update(test_macro_f1_ci_low=lo, test_macro_f1_ci_high=hi)
        (run / "metrics.json").write_text(json.dumps(metrics))
    seen: dict = {}
    monkeypatch.setattr(comparison, "plot_comparison", lambda *a, **kw: seen.update(kw))
    comparison.write_comparison(comparison.compare_runs([sweep], bootstrap=0), tmp_path / "out")
    assert seen["ci_low"] == [pytest.approx(0.55)] and seen["ci_high"] == [pytest.approx(0.75)]
    assert "bootstrap 95% CI" in seen["title"]
