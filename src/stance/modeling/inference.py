"""The one prediction engine: every transformer prediction (training's evaluation, ``stance.evaluate``,
``stance.score``) runs through :func:`predict_proba` here.

Rows are encoded exactly as in training (:func:`stance.modeling.encoding.encode`), sorted by token
length within windows of ``sort_window`` rows (``None``: all rows), batched with padding to the
longest in the batch only, run by torch (fp32; bf16 autocast; int8 dynamic quantisation, applied by
:func:`apply_precision`) or by an ONNX Runtime session (:func:`onnx_session`, fp32), and returned
as probabilities in the order of the rows, columns in ``stance.labels.LABELS`` order.
"""

from __future__ import annotations

import hashlib
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
from stance.modeling.encoding import encode

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
    if back == Backend.onnx and prec != Precision.fp32:
        raise StanceError(f"score.precision={prec.value} needs score.backend=torch (the onnx backend runs fp32)")
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

    ``encoding``: ``input_format``, ``max_length``, ``markers`` and ``temperature`` (the saved
    model's ``stance`` block; probabilities are ``softmax(logits / temperature)``, 1 if absent). Within each window the inputs are sorted by token length (stable) and batched with
    padding to the longest in the batch only, so little compute goes to padding.
    """
    import torch  # heavy: imported when a transformer predicts

    probs = np.zeros((len(rows), len(LABELS)), dtype=np.float32)
    window = len(rows) if sort_window is None else max(1, int(sort_window))
    pad_id = tokenizer.pad_token_id or 0
    temperature = float(encoding.get("temperature") or 1.0)
    for w0 in range(0, len(rows), max(1, window)):
        feats = encode(
            tokenizer, rows[w0 : w0 + window], encoding["input_format"], encoding["max_length"], encoding["markers"]
        )
        ids, types = feats["input_ids"], feats.get("token_type_ids")
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for b0 in range(0, len(order), batch_size):
            idx = order[b0 : b0 + batch_size]
            width = max(len(ids[i]) for i in idx)
            # dynamic padding, built directly (tokenizer.pad is slow per batch)
            batch = {
                "input_ids": torch.full((len(idx), width), pad_id, dtype=torch.long),
                "attention_mask": torch.zeros((len(idx), width), dtype=torch.long),
            }
            if types is not None:
                batch["token_type_ids"] = torch.zeros((len(idx), width), dtype=torch.long)
            for r, i in enumerate(idx):
                n = len(ids[i])
                batch["input_ids"][r, :n] = torch.tensor(ids[i], dtype=torch.long)
                batch["attention_mask"][r, :n] = 1
                if types is not None:
                    batch["token_type_ids"][r, :n] = torch.tensor(types[i], dtype=torch.long)
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


def onnx_session(model: Any, tokenizer: Any, model_dir: Path, cache_dir: Path | None, threads: int) -> Any:
    """An ONNX Runtime session for the model, exporting it once (cached by the model folder's hash).

    The export traces the fp32 model with dynamic batch and length axes; ONNX Runtime then fuses
    attention, layer norm and GELU, which eager PyTorch runs as separate kernels.
    """
    try:
        import onnxruntime as ort  # optional extra (onnx), heavy
    except ImportError:
        raise StanceError(_ONNX_MISSING) from None
    cache = cache_dir or onnx_cache_dir()
    onnx_path = cache / f"{model_hash(model_dir)[:20]}.onnx"
    if not onnx_path.exists():
        export_onnx(model, tokenizer, onnx_path)
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
