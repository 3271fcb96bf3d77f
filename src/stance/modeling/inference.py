"""The one prediction engine: every transformer prediction (training's evaluation, ``stance.evaluate``,
``stance.score``) runs through :func:`predict_proba` here.

Rows are encoded exactly as in training (:func:`stance.modeling.encoding.encode`), sorted by token
length within windows of ``sort_window`` rows (``None``: all rows), batched with padding to the
longest in the batch only, run by torch (fp32; bf16 autocast; int8 dynamic quantisation, applied by
:func:`apply_precision`) or by an ONNX Runtime session (:func:`onnx_session`: fp32, or int8 by static
per-channel quantisation calibrated on real pairs), and returned
as probabilities in the order of the rows, columns in ``stance.labels.LABELS`` order.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from stance.config import Backend, Precision
from stance.errors import StanceError
from stance.io import atomic_path, file_sha256
from stance.labels import LABELS
from stance.modeling.encoding import encode_for

log = logging.getLogger(__name__)

PRECISIONS: tuple[str, ...] = tuple(p.value for p in Precision)
BACKENDS: tuple[str, ...] = tuple(b.value for b in Backend)
_ONNX_MISSING = "score.backend=onnx needs onnxruntime and onnx (pip install onnxruntime onnx)"


def check_runtime(precision: Any, backend: Any) -> tuple[Precision, Backend]:
    """The precision and backend as enums; StanceError for an unknown value or an unsupported pair."""
    try:
        prec = Precision(str(getattr(precision, "value", precision)))
    except ValueError:
        raise StanceError(
            f"score.precision: unknown value {precision!r} (expected one of {', '.join(PRECISIONS)})"
        ) from None
    try:
        back = Backend(str(getattr(backend, "value", backend)))
    except ValueError:
        raise StanceError(f"score.backend: {backend!r} is not available (supported: {', '.join(BACKENDS)})") from None
    if back == Backend.onnx and prec == Precision.bf16:
        raise StanceError(
            f"score.precision={prec.value} needs score.backend=torch (the onnx backend runs fp32 or int8)"
        )
    return prec, back


def predict_proba(
    model: Any,
    tokenizer: Any,
    rows: Sequence[Mapping[str, Any]],
    encoding: Mapping[str, Any],
    batch_size: int = 64,
    sort_window: int | None = None,
    precision: str = "fp32",
    session: Any = None,
    on_batch: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Class probabilities (rows x labels, float32) in the order of ``rows``.

    ``encoding``: ``input_format``, ``max_length``, ``markers``, ``other_markers`` and ``temperature`` (the saved
    model's ``stance`` block; probabilities are ``softmax(logits / temperature)``, 1 if absent).
    Within each window the inputs are sorted by token length (stable) and batched with padding to
    the longest in the batch only, so little compute goes to padding.
    """
    import torch  # heavy: imported when a transformer predicts

    probs = np.zeros((len(rows), len(LABELS)), dtype=np.float32)
    window = len(rows) if sort_window is None else max(1, int(sort_window))
    pad_id = tokenizer.pad_token_id or 0
    temperature = float(encoding.get("temperature") or 1.0)
    for w0 in range(0, len(rows), max(1, window)):
        feats = encode_for(tokenizer, rows[w0 : w0 + window], encoding)
        ids, types = feats["input_ids"], feats.get("token_type_ids")
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for b0 in range(0, len(order), batch_size):
            idx = order[b0 : b0 + batch_size]
            batch = {k: torch.from_numpy(v) for k, v in pad_batch(ids, types, idx, pad_id).items()}
            probs[[w0 + i for i in idx]] = forward(model, batch, precision, session, temperature)
            if on_batch is not None:
                on_batch(len(idx))
    return probs


def forward(
    model: Any, batch: dict[str, Any], precision: str = "fp32", session: Any = None, temperature: float = 1.0
) -> np.ndarray:
    """Softmax probabilities of one padded batch (torch tensors), by the session when given;
    ``temperature`` (the calibration fitted after training) divides the logits first."""
    import torch  # heavy: imported when a transformer predicts

    if session is not None:
        feed = {i.name: batch[i.name].numpy() for i in session.get_inputs()}
        logits = session.run(None, feed)[0].astype(np.float32) / np.float32(temperature)
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)
    with torch.inference_mode():
        if precision == Precision.bf16:
            # matmuls in bfloat16 (AVX-512 BF16 / AMX where the CPU has them), softmax in fp32
            with torch.autocast("cpu", dtype=torch.bfloat16):
                logits = model(**batch).logits
        else:
            logits = model(**batch).logits
        return torch.softmax(logits.float() / temperature, dim=-1).numpy()


def apply_precision(model: Any, precision: str) -> Any:
    """The model prepared for ``precision``: int8 quantises the Linear layers; bf16 warns without
    native support (autocast runs in :func:`forward`); fp32 is unchanged."""
    import torch  # heavy: imported when a transformer is prepared

    model.eval()
    if precision == Precision.bf16 and not native_bf16():
        log.warning(
            "score.precision=bf16: this CPU has no native bfloat16 matmul (avx512_bf16 / amx_bf16); "
            "expect it to be much slower than fp32"
        )
    if precision == Precision.int8:
        # int8 weights, activations quantised on the fly: the Linear layers hold most FLOPs.
        # torch.ao.quantization warns that it moves to torchao; it still works in this torch.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
            model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    return model


def native_bf16() -> bool:
    """Whether the CPU has bfloat16 matmul instructions (Linux: /proc/cpuinfo flags)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            flags = next((line for line in fh if line.startswith("flags")), "")
    except OSError:
        return True  # cannot tell: do not warn
    return any(f in flags.split() for f in ("avx512_bf16", "amx_bf16"))


def model_hash(path: Path) -> str:
    """sha256 over the model folder's top-level files (names and contents)."""
    digest = hashlib.sha256()
    for f in sorted(p for p in path.iterdir() if p.is_file()):
        digest.update(f.name.encode())
        digest.update(file_sha256(f).encode())
    return digest.hexdigest()


# --- ONNX Runtime --------------------------------------------------------------------------------
def onnx_cache_dir() -> Path:
    """Where exported ONNX models are kept: $STANCE_CACHE or $XDG_CACHE_HOME/stance or ~/.cache/stance."""
    base = os.environ.get("STANCE_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "stance"
    return Path(base) / "onnx"


def onnx_session(
    model: Any,
    tokenizer: Any,
    model_dir: Path,
    cache_dir: Path | None,
    threads: int,
    precision: str = "fp32",
    encoding: Mapping[str, Any] | None = None,
    calibration: Sequence[Mapping[str, Any]] | None = None,
) -> Any:
    """An ONNX Runtime session for the model, exporting it once (cached by the model folder's hash).

    The export traces the fp32 model with dynamic batch and length axes; ONNX Runtime then fuses
    attention, layer norm and GELU, which eager PyTorch runs as separate kernels. ``precision``
    int8: the export quantised once by :func:`quantize_onnx` (cached beside it), calibrated on
    ``calibration`` rows encoded with ``encoding`` (default: :func:`calibration_rows`).
    """
    try:
        import onnxruntime as ort  # optional extra (onnx), heavy
    except ImportError:
        raise StanceError(_ONNX_MISSING) from None
    cache = cache_dir or onnx_cache_dir()
    onnx_path = cache / f"{model_hash(model_dir)[:20]}.onnx"
    if not onnx_path.exists():
        export_onnx(model, tokenizer, onnx_path)
    if precision == Precision.int8:
        rows = list(calibration) if calibration is not None else calibration_rows()
        enc = dict(encoding or {"input_format": "markers", "max_length": 128, "markers": ("<<", ">>")})
        key = hashlib.sha256(json.dumps([rows, enc], sort_keys=True, default=str).encode()).hexdigest()[:12]
        int8_path = onnx_path.with_name(f"{onnx_path.stem}.int8-{key}.onnx")
        if not int8_path.exists():
            quantize_onnx(onnx_path, int8_path, tokenizer, rows, enc)
        onnx_path = int8_path
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, int(threads))
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])


def export_onnx(model: Any, tokenizer: Any, onnx_path: Path) -> None:
    """Trace the fp32 model to ``onnx_path`` (atomically) with dynamic batch and length axes."""
    import torch  # heavy: imported for the export

    model = model.eval()
    sample = tokenizer(["A short sentence about << someone >> .", "Another one."], padding=True, return_tensors="pt")
    names = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in sample]

    class Logits(torch.nn.Module):
        """forward(*features) -> logits, with the features as positional inputs for the tracer."""

        def __init__(self, inner: Any):
            super().__init__()
            self.inner = inner

        def forward(self, *features: Any) -> Any:
            return self.inner(**dict(zip(names, features))).logits

    log.info("exporting the model to ONNX (once per model): %s", onnx_path)
    axes = {**{k: {0: "batch", 1: "length"} for k in names}, "logits": {0: "batch"}}
    try:
        with atomic_path(onnx_path) as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                Logits(model),
                tuple(sample[k] for k in names),
                str(tmp),
                input_names=names,
                output_names=["logits"],
                dynamic_axes=axes,
                opset_version=17,
                dynamo=False,
            )
    except ImportError:
        raise StanceError(_ONNX_MISSING) from None


# --- int8: static quantisation calibrated on real pairs ------------------------------------------
CALIBRATION_FILE = Path(__file__).with_name("calibration_pairs.jsonl")


def calibration_rows() -> list[dict[str, Any]]:
    """The default calibration rows: the 143 (sentence, actor) pairs of the seed articles' train
    split, shipped with the package (real news sentences, so activation ranges are news-like)."""
    with open(CALIBRATION_FILE, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def quantize_onnx(
    fp32_path: Path,
    int8_path: Path,
    tokenizer: Any,
    rows: Sequence[Mapping[str, Any]],
    encoding: Mapping[str, Any],
    batch_size: int = 16,
) -> None:
    """Static int8 quantisation of the fp32 export (atomically to ``int8_path``): weights int8 per
    output channel, activations uint8 with ranges fixed from running ``rows`` (MinMax), QDQ format.

    Only the MatMul/Gemm nodes with a weight matrix are quantised (they hold nearly all the FLOPs),
    except the feed-forward output projections, whose inputs (after GELU) are heavy-tailed, and the
    pooler/classifier: on the NewsMTSC model quantising those too cut label agreement with fp32
    from 98% to 94.5% (200 dev_rw rows).
    """
    if not rows:
        raise StanceError("score.precision=int8 (onnx): no calibration rows")
    try:
        import onnx  # optional extra (onnx), heavy
        from onnxruntime.quantization import (  # optional extra (onnx), heavy
            CalibrationDataReader,
            CalibrationMethod,
            QuantFormat,
            QuantType,
            quantize_static,
        )
        from onnxruntime.quantization.shape_inference import quant_pre_process  # optional extra (onnx)
    except ImportError:
        raise StanceError(_ONNX_MISSING) from None

    feats = encode_for(tokenizer, rows, encoding)
    pad_id = tokenizer.pad_token_id or 0

    class Rows(CalibrationDataReader):  # type: ignore[misc]
        """Padded batches of the encoded calibration rows, as ONNX Runtime feeds."""

        def __init__(self) -> None:
            self.batches = iter(_numpy_batches(feats, pad_id, batch_size))

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    log.info("quantising the ONNX model to int8 (once per model), calibrated on %d rows: %s", len(rows), int8_path)
    names = [n.name for n in onnx.load(str(fp32_path)).graph.node if n.op_type in ("MatMul", "Gemm")]
    exclude = [n for n in names if "layer." not in n or (n.endswith("output/dense/MatMul") and "attention" not in n)]
    with atomic_path(int8_path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prepared = tmp.with_name(tmp.name + ".pre.onnx")
        # shape inference and graph clean-up first, as ONNX Runtime's quantisation expects
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(tmp),
            Rows(),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=["MatMul", "Gemm"],
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=exclude,
            extra_options={"WeightSymmetric": True, "ActivationSymmetric": False, "MatMulConstBOnly": True},
        )
        prepared.unlink(missing_ok=True)


def pad_batch(
    ids: Sequence[Sequence[int]], types: Sequence[Sequence[int]] | None, idx: Sequence[int], pad_id: int
) -> dict[str, np.ndarray]:
    """Rows ``idx`` of the encoded inputs as one int64 batch padded to its longest row only
    (dynamic padding, built directly: ``tokenizer.pad`` is slow per batch); ``token_type_ids``
    when the tokenizer gives them."""
    width = max(len(ids[i]) for i in idx)
    batch = {
        "input_ids": np.full((len(idx), width), pad_id, dtype=np.int64),
        "attention_mask": np.zeros((len(idx), width), dtype=np.int64),
    }
    if types is not None:
        batch["token_type_ids"] = np.zeros((len(idx), width), dtype=np.int64)
    for r, i in enumerate(idx):
        batch["input_ids"][r, : len(ids[i])] = ids[i]
        batch["attention_mask"][r, : len(ids[i])] = 1
        if types is not None:
            batch["token_type_ids"][r, : len(ids[i])] = types[i]
    return batch


def _numpy_batches(feats: Mapping[str, list[list[int]]], pad_id: int, batch_size: int) -> list[dict[str, np.ndarray]]:
    """The encoded rows in order as padded int64 batches (ONNX Runtime's calibration feed)."""
    ids, types = feats["input_ids"], feats.get("token_type_ids")
    return [
        pad_batch(ids, types, range(b0, min(len(ids), b0 + batch_size)), pad_id)
        for b0 in range(0, len(ids), batch_size)
    ]
