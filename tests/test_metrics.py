"""Metrics against hand-computed values; seeded bootstrap; per-actor breakdown; confusion plot."""

from __future__ import annotations

import pytest

from stance.analysis.metrics import actor_metrics, bootstrap_ci, compute_metrics, confusion, macro_f1, per_actor
from stance.analysis.plots import plot_confusion

# supportive=0, critical=1, neutral=2
GOLD = [0, 0, 1, 1, 2, 2]
PRED = [0, 1, 1, 1, 2, 0]


def test_hand_computed_values():
    m = compute_metrics(GOLD, PRED, prefix="test", bootstrap=0)
    # supportive: tp 1, fp 1, fn 1 -> P .5 R .5 F1 .5; critical: tp 2, fp 1 -> P 2/3 R 1 F1 .8;
    # neutral: tp 1, fn 1 -> P 1 R .5 F1 2/3
    assert m["test_supportive_precision"] == pytest.approx(0.5)
    assert m["test_critical_precision"] == pytest.approx(2 / 3)
    assert m["test_critical_recall"] == pytest.approx(1.0)
    assert m["test_critical_f1"] == pytest.approx(0.8)
    assert m["test_neutral_f1"] == pytest.approx(2 / 3)
    assert m["test_macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert m["test_f1_pn"] == pytest.approx((0.5 + 0.8) / 2)
    assert m["test_accuracy"] == pytest.approx(4 / 6)
    assert m["test_mean_recall"] == pytest.approx((0.5 + 1 + 0.5) / 3)
    assert m["test_n"] == 6.0 and m["test_neutral_support"] == 2.0
    assert "test_macro_f1_ci_low" not in m
    assert all(isinstance(v, float) for v in m.values())


def test_no_prefix_and_absent_label():
    m = compute_metrics([1, 1], [1, 1], bootstrap=0)
    assert m["accuracy"] == 1.0
    assert m["mean_recall"] == 1.0  # only labels present in the gold data count
    assert m["macro_f1"] == pytest.approx(1 / 3)  # absent labels score 0 in macro-F1


def test_confusion_rows_gold_columns_pred():
    assert confusion(GOLD, PRED).tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]


def test_bootstrap_contains_point_and_is_seeded():
    gold = GOLD * 10
    pred = PRED * 10
    point = macro_f1(gold, pred)
    low, high = bootstrap_ci(gold, pred, n=300, seed=1)
    assert low <= point <= high and low < high
    assert bootstrap_ci(gold, pred, n=300, seed=1) == (low, high)
    assert bootstrap_ci(gold, pred, n=300, seed=2) != (low, high)
    m = compute_metrics(gold, pred, prefix="validation", bootstrap=300, seed=1)
    assert (m["validation_macro_f1_ci_low"], m["validation_macro_f1_ci_high"]) == (low, high)


def test_per_actor_breakdown():
    actors = ["trump", "trump", "trump", "iran", "iran", "iran"]
    rows = per_actor(GOLD, PRED, actors)
    assert [r["actor_id"] for r in rows] == ["trump", "iran"]
    trump = rows[0]
    assert trump["n"] == 3 and trump["accuracy"] == pytest.approx(2 / 3)
    assert (trump["gold_supportive"], trump["gold_critical"], trump["pred_critical"]) == (2, 1, 2)
    iran = rows[1]  # gold 1, 2, 2; predicted 1, 2, 0: labels 0, 1, 2 -> F1 0, 1, 2/3
    assert iran["macro_f1"] == pytest.approx((0 + 1 + 2 / 3) / 3)
    assert per_actor([2, 2], [2, 2], ["russia", "russia"])[0]["macro_f1"] == 1.0
    flat = actor_metrics(GOLD, PRED, actors, prefix="test", min_support=3)
    assert flat["test_actor_iran_n"] == 3.0 and "test_actor_iran_macro_f1" in flat
    assert actor_metrics(GOLD, PRED, actors, prefix="test", min_support=4) == {}


def test_plot_confusion_writes_png(tmp_path):
    path = plot_confusion(confusion(GOLD, PRED), ["supportive", "critical", "neutral"], tmp_path / "cm.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["cm.png"]  # no temporary left behind
