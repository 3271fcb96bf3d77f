"""Calibrated confidence: temperature scaling, expected calibration error, reliability bins.

A fine-tuned classifier's softmax is rarely a probability: trained with class weights on a small
set it is flat (every row "low confidence"), trained long on a big one it is over-confident. One
scalar temperature T, fitted on the validation split by minimising the negative log-likelihood
of ``softmax(logits / T)``, fixes most of it without changing any prediction (the arg-max of
``logits / T`` is the arg-max of ``logits``) — Guo et al., "On Calibration of Modern Neural
Networks", ICML 2017. The temperature is stored with the model (``stance.temperature`` in
``config.json``) and applied wherever probabilities are produced, so ``score.threshold`` means
what it says.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Searched on log T: T in [0.05, 20] covers flat (T < 1 sharpens) and over-confident (T > 1) models.
_LOG_T_BOUNDS = (float(np.log(0.05)), float(np.log(20.0)))


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature`` (numerically stable)."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the true labels under ``softmax(logits / T)``."""
    p = softmax(logits, temperature)
    idx = np.asarray(labels, dtype=np.int64)
    return float(-np.mean(np.log(np.clip(p[np.arange(len(idx)), idx], 1e-12, None))))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature minimising validation NLL (bounded 1-D search on log T).

    Returns 1.0 (no change) for fewer than two rows or a single class: nothing to fit.
    """
    from scipy.optimize import minimize_scalar  # scipy comes with scikit-learn

    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if logits.ndim != 2 or len(logits) != len(labels):
        raise ValueError(f"logits {logits.shape} and labels {labels.shape} do not match")
    if len(labels) < 2 or len(np.unique(labels)) < 2:
        return 1.0
    res = minimize_scalar(
        lambda t: nll(logits, labels, float(np.exp(t))), bounds=_LOG_T_BOUNDS, method="bounded", options={"xatol": 1e-4}
    )
    return float(np.exp(res.x))


@dataclass(frozen=True)
class Reliability:
    """Per-bin confidence and accuracy of the top label (equal-width bins over [0, 1])."""

    edges: np.ndarray  # n_bins + 1
    confidence: np.ndarray  # mean top probability per bin (nan where empty)
    accuracy: np.ndarray  # share of correct top labels per bin (nan where empty)
    count: np.ndarray  # rows per bin
    ece: float  # expected calibration error: sum over bins of count/n * |accuracy - confidence|


def reliability(probs: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> Reliability:
    """Reliability of the top-label probability; ``ece`` is the standard (top-label, L1) ECE."""
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == labels).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # right-closed bins, the first one closed on both sides: a confidence of exactly 1.0 lands in the last bin
    which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    count = np.bincount(which, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(which, weights=conf, minlength=n_bins) / count
        mean_acc = np.bincount(which, weights=correct, minlength=n_bins) / count
    filled = count > 0
    n = max(len(labels), 1)
    ece = float(np.sum(count[filled] / n * np.abs(mean_acc[filled] - mean_conf[filled])))
    return Reliability(edges=edges, confidence=mean_conf, accuracy=mean_acc, count=count, ece=ece)


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> float:
    return reliability(probs, labels, n_bins).ece
