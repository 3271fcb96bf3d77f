"""score.precision=int8 score.backend=onnx: the fp32 export quantised once (static, per-channel,
calibrated on real pairs), cached beside the export, giving fp32's labels on a fixed batch.

Tolerance (stated in the README): on the tiny model's fixed batch (the 30 toy test rows plus the
143 packaged calibration pairs), >= 95% label agreement with ONNX fp32 and probabilities within 0.05.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import make_toy_dataset
from stance.errors import StanceError
from stance.modeling.inference import calibration_rows, check_runtime
from stance.modeling.models import load_classifier

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


def test_int8_onnx_gives_fp32_labels_on_a_fixed_batch(tiny_model_dir, tmp_path):
    rows = make_toy_dataset(45)["test"].to_list() + calibration_rows()
    cache = tmp_path / "cache"
    fp32 = load_classifier(tiny_model_dir, backend="onnx", threads=1, cache_dir=cache)
    int8 = load_classifier(tiny_model_dir, backend="onnx", precision="int8", threads=1, cache_dir=cache)
    files = sorted(p.name for p in cache.glob("*.onnx"))
    int8_file, fp32_file = files  # "<hash>.int8-<calibration>.onnx" beside "<hash>.onnx"
    assert int8_file.startswith(fp32_file.removesuffix(".onnx") + ".int8-")
    assert (cache / int8_file).stat().st_size < (cache / fp32_file).stat().st_size
    p32, p8 = fp32.predict_proba(rows), int8.predict_proba(rows)
    assert (p32.argmax(1) == p8.argmax(1)).mean() >= 0.95
    assert np.abs(p32 - p8).max() < 0.05
    # quantised once: a second load reuses the cached int8 model
    load_classifier(tiny_model_dir, backend="onnx", precision="int8", threads=1, cache_dir=cache)
    assert len(list(cache.glob("*.onnx"))) == 2


def test_int8_onnx_applies_the_temperature(tiny_model_dir, tmp_path):
    rows = calibration_rows()[:20]
    clf = load_classifier(tiny_model_dir, backend="onnx", precision="int8", threads=1, cache_dir=tmp_path)
    plain = clf.predict_proba(rows)
    clf.temperature = 0.05  # sharper: the engine divides the session's logits by it
    sharp = clf.predict_proba(rows)
    assert sharp.max(1).mean() > plain.max(1).mean()
    assert (sharp.argmax(1) == plain.argmax(1)).all()


def test_bf16_on_onnx_is_refused():
    with pytest.raises(StanceError, match=r"^score\.precision=bf16 needs score\.backend=torch"):
        check_runtime("bf16", "onnx")
    assert check_runtime("int8", "onnx")[0].value == "int8"
