"""Start-up checks of training settings Hydra's types cannot express (ranges, combinations).

:func:`check_training` runs before any data or model is loaded, so a setting that cannot train
(``train.epochs=0``, ``train.learning_rate=-1``) is one StanceError line naming it, exit status 2,
instead of a run that trains nothing and reports "completed", or a traceback after loading.
"""

from __future__ import annotations

import math
from typing import Any

from stance.errors import StanceError


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _require(key: str, value: Any, ok: bool, need: str) -> None:
    if not ok:
        shown = f"{value:g}" if isinstance(value, float) else value  # 0, not 0.0: as the user typed it
        raise StanceError(f"{key}: must be {need}, got {shown}")


def check_training(cfg: Any) -> None:
    """Raise StanceError for the first training setting out of range (``cfg``: a TrainConfig)."""
    t = cfg.train
    max_steps = int(t.max_steps)
    _require("train.max_steps", max_steps, max_steps == -1 or max_steps >= 1, "at least 1, or -1 (use train.epochs)")
    epochs = _number(t.epochs)
    if max_steps == -1:  # train.max_steps, when set, replaces the epochs
        _require("train.epochs", t.epochs, epochs > 0 and math.isfinite(epochs), "positive")
    lr = _number(t.learning_rate)
    _require("train.learning_rate", t.learning_rate, lr > 0 and math.isfinite(lr), "positive")
    for key in ("batch_size", "eval_batch_size", "gradient_accumulation_steps", "logging_steps"):
        _require(f"train.{key}", getattr(t, key), int(getattr(t, key)) >= 1, "at least 1")
    for key in ("eval_steps", "early_stopping_patience", "time_limit_minutes", "weight_decay"):
        value = _number(getattr(t, key))
        _require(f"train.{key}", getattr(t, key), value >= 0, "0 or more")
    for key in ("warmup_ratio", "label_smoothing"):
        value = _number(getattr(t, key))
        _require(f"train.{key}", getattr(t, key), 0 <= value < 1, "in [0, 1)")
    rdrop = _number(t.get("rdrop_alpha", 0.0))
    _require("train.rdrop_alpha", t.get("rdrop_alpha"), rdrop >= 0 and math.isfinite(rdrop), "0 or more (0 = off)")
    swap = _number(t.get("name_swap", 0.0))
    _require("train.name_swap", t.get("name_swap"), 0 <= swap <= 1, "in [0, 1] (0 = off)")
    decay = _number(t.get("layer_lr_decay", 1.0))
    _require("train.layer_lr_decay", t.get("layer_lr_decay"), 0 < decay <= 1, "in (0, 1] (1 = off)")
    folds = int(cfg.eval.cv_folds)
    _require("eval.cv_folds", folds, folds == 0 or folds >= 2, "0 (off) or at least 2")
    _require("eval.bootstrap", cfg.eval.bootstrap, int(cfg.eval.bootstrap) >= 0, "0 or more")
    _require("model.max_length", cfg.model.max_length, int(cfg.model.max_length) >= 8, "at least 8 (tokens)")
