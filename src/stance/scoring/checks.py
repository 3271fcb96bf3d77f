"""Checks of a scoring run's settings before any work starts, and of its outcome after.

Before: the input spec (``input=PATH`` or the full mapping), options Hydra's types cannot check
(ranges, combinations; Enum values again for the Python API, where a plain dataclass carries any
string), the model folder. After: the one-line warning when most mentions are low-confidence,
naming the likely cause.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from stance.config import InputConfig, ScoreConfig, ScoreEngine, TableFormat
from stance.errors import StanceError
from stance.modeling.inference import check_runtime
from stance.scoring.ray_engine import check_options as check_ray_options

FORMATS: tuple[str, ...] = tuple(f.value for f in TableFormat)
_NO_INPUT = "input: no input given (input=PATH: a file, folder or glob of articles)"


def input_spec(value: Any) -> InputConfig:
    """The reading spec from ``input``: a path/glob string, a list of them, or an InputConfig mapping."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise StanceError(_NO_INPUT)
    if isinstance(value, str):
        return InputConfig(paths=[value])
    if isinstance(value, (list, tuple, ListConfig)):
        return InputConfig(paths=[str(v) for v in value])
    if isinstance(value, InputConfig):
        spec = value
    elif isinstance(value, (dict, DictConfig)):
        try:
            merged = OmegaConf.merge(OmegaConf.structured(InputConfig), value)
        except OmegaConfBaseException as err:
            raise StanceError(f"input: {str(err).splitlines()[0]}") from None
        spec = OmegaConf.to_object(merged)  # type: ignore[assignment]
    else:
        raise StanceError(f"input: expected a path or a mapping, got {type(value).__name__}")
    if not spec.paths:
        raise StanceError(_NO_INPUT)
    return spec


def check_options(cfg: ScoreConfig) -> None:
    """Checks Hydra cannot make (ranges, combinations); Enum values are checked again for the
    Python API, where a plain dataclass carries any string."""
    opts = cfg.score
    check_runtime(opts.precision, opts.backend)
    if opts.format not in FORMATS:
        raise StanceError(f"score.format: unknown value {opts.format!r} (expected one of {', '.join(FORMATS)})")
    for key in ("batch_size", "sort_window", "chunk_articles"):
        if int(getattr(opts, key)) < 1:
            raise StanceError(f"score.{key}: must be at least 1, got {getattr(opts, key)}")
    if opts.engine not in tuple(ScoreEngine):
        raise StanceError(f"score.engine: unknown value {opts.engine!r} (expected local or ray)")
    if opts.engine == ScoreEngine.ray:
        check_ray_options(opts.ray)
    if not 0.0 <= float(opts.threshold) <= 1.0:
        raise StanceError(f"score.threshold: must be between 0 and 1, got {opts.threshold}")


def config_value(cfg: Any, key: str) -> Any:
    """``cfg.<key>``, or None where it is unset (``???`` in a DictConfig, MISSING in a dataclass)."""
    if isinstance(cfg, DictConfig):
        return None if OmegaConf.is_missing(cfg, key) else cfg[key]
    value = getattr(cfg, key, None)
    return None if value == MISSING else value


def check_model_dir(model_dir: Any) -> Path:
    """The model folder given as ``model_dir``; StanceError when it is unset or missing."""
    if model_dir is None or not str(model_dir).strip():
        raise StanceError("model_dir: no model given (model_dir=RUN/model)")
    path = Path(str(model_dir)).expanduser()
    if not path.is_dir():
        raise StanceError(f"model_dir: {model_dir}: no such folder (expected a trained model, e.g. RUN/model)")
    return path


def low_confidence_warning(counts: dict[str, Any], threshold: float, classifier: Any, model_dir: Path) -> str | None:
    """A one-line warning when more than half of the mentions are low-confidence, naming the
    likely cause (uncalibrated model, a model trained on few rows, or text unlike its training data)."""
    mentions, low = int(counts.get("mentions") or 0), int(counts.get("low_confidence") or 0)
    if not mentions or low / mentions <= 0.5:
        return None
    head = f"{low} of {mentions} mentions ({low / mentions:.0%}) have a top probability below score.threshold={threshold:g}: "
    if getattr(classifier, "kind", "") != "transformer":
        return head + "a baseline model's probabilities are not confidences; read the labels, not the flags"
    if float(getattr(classifier, "temperature", 1.0)) == 1.0:
        return head + (
            "the model is not calibrated (trained with train.calibrate=false or before calibration existed), "
            "so its probabilities are not confidences; retrain, or lower score.threshold"
        )
    trained = _training_rows(model_dir)
    if trained is not None and trained < 1000:
        return head + (
            f"the model learned from only {trained} labelled rows, so it is rarely sure; train the `news` recipe "
            "(python -m stance.train +experiment=news) and adapt it (README: Recipes)"
        )
    return head + "the text may be unlike the model's training data (genre, language); check a sample in mentions/"


def _training_rows(model_dir: Path) -> int | None:
    """Training rows of the run that saved ``model_dir`` (its sibling run.json), if known."""
    try:
        record = json.loads((model_dir.parent / "run.json").read_text(encoding="utf-8"))
        return int(record["counts"]["train"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
