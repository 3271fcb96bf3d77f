"""Temperature scaling recovers a known temperature; ECE and reliability bins are right."""

from __future__ import annotations

import numpy as np
import pytest

from stance.analysis.calibration import expected_calibration_error, fit_temperature, nll, reliability, softmax


def _synthetic(true_t: float, n: int = 20000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from softmax(z); the model reports z * true_t (mis-calibrated by true_t)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 1.5, size=(n, 3))
    p = softmax(z)
    labels = np.array([rng.choice(3, p=row) for row in p])
    return z * true_t, labels


@pytest.mark.parametrize("true_t", [0.4, 1.0, 2.5])
def test_fit_recovers_known_temperature(true_t: float) -> None:
    logits, labels = _synthetic(true_t)
    t = fit_temperature(logits, labels)
    assert t == pytest.approx(true_t, rel=0.05)
    # fitted NLL is no worse than the raw one, and predictions do not change
    assert nll(logits, labels, t) <= nll(logits, labels, 1.0) + 1e-9
    assert (softmax(logits, t).argmax(1) == softmax(logits).argmax(1)).all()


def test_calibration_lowers_ece_of_overconfident_model() -> None:
    logits, labels = _synthetic(3.0)
    before = expected_calibration_error(softmax(logits), labels)
    after = expected_calibration_error(softmax(logits, fit_temperature(logits, labels)), labels)
    assert before > 0.05 and after < before / 3


def test_nothing_to_fit_returns_one() -> None:
    assert fit_temperature(np.zeros((1, 3)), np.array([0])) == 1.0
    assert fit_temperature(np.random.default_rng(0).normal(size=(5, 3)), np.zeros(5, dtype=int)) == 1.0
    with pytest.raises(ValueError):
        fit_temperature(np.zeros((4, 3)), np.zeros(3, dtype=int))


def test_reliability_bins_by_hand() -> None:
    probs = np.array([[0.95, 0.03, 0.02], [0.35, 0.33, 0.32], [0.1, 0.85, 0.05], [1.0, 0.0, 0.0]])
    labels = np.array([0, 1, 1, 2])
    rel = reliability(probs, labels, n_bins=10)
    assert rel.count.sum() == 4
    assert rel.count[9] == 2 and rel.count[3] == 1 and rel.count[8] == 1  # 0.95 and 1.0 -> last bin
    assert rel.accuracy[9] == 0.5 and rel.confidence[9] == pytest.approx(0.975)
    expected = (2 / 4) * abs(0.5 - 0.975) + (1 / 4) * abs(0.0 - 0.35) + (1 / 4) * abs(1.0 - 0.85)
    assert rel.ece == pytest.approx(expected)


def test_low_confidence_warning_names_the_cause(tmp_path) -> None:
    import json
    from types import SimpleNamespace

    from stance.scoring.checks import low_confidence_warning

    model_dir = tmp_path / "run" / "model"
    model_dir.mkdir(parents=True)
    many = {"mentions": 10, "low_confidence": 8}
    assert (
        low_confidence_warning(
            {"mentions": 10, "low_confidence": 5}, 0.5, SimpleNamespace(kind="transformer"), model_dir
        )
        is None
    )
    uncal = low_confidence_warning(many, 0.5, SimpleNamespace(kind="transformer", temperature=1.0), model_dir)
    assert uncal.startswith("8 of 10 mentions (80%)") and "not calibrated" in uncal
    (model_dir.parent / "run.json").write_text(json.dumps({"counts": {"train": 143}}))
    few = low_confidence_warning(many, 0.5, SimpleNamespace(kind="transformer", temperature=0.7), model_dir)
    assert "only 143 labelled rows" in few and "+experiment=news" in few
    (model_dir.parent / "run.json").write_text(json.dumps({"counts": {"train": 8739}}))
    assert "unlike the model's training data" in low_confidence_warning(
        many, 0.5, SimpleNamespace(kind="transformer", temperature=0.7), model_dir
    )
