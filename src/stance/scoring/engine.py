"""Batch scoring of new articles with a trained model (the run behind ``python -m stance.score``).

    python -m stance.score model_dir=RUN/model input=PATH output_dir=OUT

``input`` is a file, folder or glob (``input=PATH``), or the full reading spec
(``input.paths=[a,b] input.meta_columns=[outlet,date]``). Every (sentence, actor) pair that
:func:`stance.text.pairs.article_pairs` finds is encoded exactly as in training
(:func:`stance.modeling.encoding.encode` with the model's saved ``stance`` block) and classified.

Outputs in ``output_dir`` (``score.format`` = parquet | csv | jsonl for the tables):

* ``mentions/part-NNNNN.parquet``: one row per (sentence, actor), written per chunk of
  ``score.chunk_articles`` articles, each part atomically; read the folder with
  ``pandas.read_parquet(OUT / "mentions")``. With csv/jsonl, ``mentions.<fmt>`` as well.
* ``articles.<fmt>``: one row per (article, actor): counts and shares of each label, net stance.
* ``actors.<fmt>``: the same over the corpus, with a bootstrap 95% CI of net stance (articles
  resampled).
* ``stance_by_actor.png``, ``run.json`` (model, resolved config, input hashes, counts, skipped
  items with reasons).

Resumable: ``.score-state/part-NNNNN.json`` lists the article ids of each written part (written
after the part, so a part without its list is an interrupted write and is discarded). A rerun on
the same ``output_dir`` skips those articles; aggregates are always recomputed from all parts, so
a resumed run ends with the same outputs as an uninterrupted one. Rows are held for one chunk at a
time, so memory stays flat as the corpus grows.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from stance.config import InputConfig, ScoreConfig
from stance.errors import StanceError
from stance.io import atomic_path, file_sha256, write_json
from stance.labels import LABELS

log = logging.getLogger("stance.score")

PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "int8")
BACKENDS: tuple[str, ...] = ("torch", "onnx")
FORMATS: tuple[str, ...] = ("parquet", "csv", "jsonl")
STATE_DIR = ".score-state"
MENTIONS_DIR = "mentions"


# --- the model -------------------------------------------------------------------------------------
@dataclass
class ScoringModel:
    """A loaded classifier (``stance.modeling.models.load_classifier``) prepared for fast batch scoring.

    Transformers are encoded exactly as in training (:func:`stance.modeling.encoding.encode` with the
    model's saved ``stance`` block); baselines (majority, tfidf_lr) use their own ``predict_proba``.
    Probability columns are in ``labels`` order (= ``stance.labels.LABELS``).
    """

    classifier: Any
    precision: str
    model_dir: Path
    labels: tuple[str, ...] = LABELS
    backend: str = "torch"
    # an onnxruntime.InferenceSession when backend == "onnx"
    session: Any = None

    @property
    def kind(self) -> str:
        return str(getattr(self.classifier, "kind", "transformer"))

    def encode(self, rows: Sequence[dict[str, Any]]) -> dict[str, list[list[int]]]:
        from stance.modeling.encoding import encode

        c = self.classifier
        return encode(c.tokenizer, rows, c.input_format, c.max_length, c.markers)

    def predict_proba(
        self,
        rows: Sequence[dict[str, Any]],
        batch_size: int = 64,
        sort_window: int = 2048,
        on_batch: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Class probabilities (rows x labels, float32) in the order of ``rows``.

        Within each window of ``sort_window`` rows the inputs are sorted by token length and
        batched with padding to the longest in the batch only, so little compute goes to padding.
        """
        if self.kind != "transformer":
            probs = np.asarray(self.classifier.predict_proba(list(rows)), dtype=np.float32)
            if on_batch is not None:
                on_batch(len(rows))
            return probs
        import torch

        probs = np.zeros((len(rows), len(self.labels)), dtype=np.float32)
        pad_id = self.classifier.tokenizer.pad_token_id or 0
        for w0 in range(0, len(rows), max(1, sort_window)):
            feats = self.encode(rows[w0 : w0 + sort_window])
            ids = feats["input_ids"]
            types = feats.get("token_type_ids")
            order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
            for b0 in range(0, len(order), batch_size):
                idx = order[b0 : b0 + batch_size]
                width = max(len(ids[i]) for i in idx)
                # dynamic padding, built directly (tokenizer.pad is slow per batch)
                input_ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
                mask = torch.zeros((len(idx), width), dtype=torch.long)
                tt = torch.zeros((len(idx), width), dtype=torch.long) if types is not None else None
                for r, i in enumerate(idx):
                    n = len(ids[i])
                    input_ids[r, :n] = torch.tensor(ids[i], dtype=torch.long)
                    mask[r, :n] = 1
                    if tt is not None:
                        tt[r, :n] = torch.tensor(types[i], dtype=torch.long)
                batch = {"input_ids": input_ids, "attention_mask": mask}
                if tt is not None:
                    batch["token_type_ids"] = tt
                probs[[w0 + i for i in idx]] = self._forward(batch)
                if on_batch is not None:
                    on_batch(len(idx))
        return probs

    def _forward(self, batch: dict[str, Any]) -> np.ndarray:
        import torch

        if self.session is not None:
            feed = {i.name: batch[i.name].numpy() for i in self.session.get_inputs()}
            logits = self.session.run(None, feed)[0].astype(np.float32)
            logits -= logits.max(axis=1, keepdims=True)
            exp = np.exp(logits)
            return exp / exp.sum(axis=1, keepdims=True)
        model = self.classifier.model
        with torch.inference_mode():
            if self.precision == "bf16":
                # matmuls in bfloat16 (AVX-512 BF16 / AMX where the CPU has them), softmax in fp32
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    logits = model(**batch).logits
            else:
                logits = model(**batch).logits
            return torch.softmax(logits.float(), dim=-1).numpy()


def _check_model_dir(model_dir: Any) -> Path:
    if model_dir is None or not str(model_dir).strip():
        raise StanceError("model_dir: no model given (model_dir=RUN/model)")
    path = Path(str(model_dir)).expanduser()
    if not path.is_dir():
        raise StanceError(f"model_dir: {model_dir}: no such folder (expected a trained model, e.g. RUN/model)")
    return path


def load_scoring_model(model_dir: str | os.PathLike[str], precision: str = "fp32",
                       threads: int = 0, backend: str = "torch",
                       cache_dir: str | os.PathLike[str] | None = None) -> ScoringModel:
    """Load a saved model folder for scoring (``stance.modeling.models.load_classifier``).

    ``precision`` (transformers only): fp32; bf16 (``torch.autocast`` on CPU); int8 (dynamic
    quantisation of the Linear layers, ``torch.ao.quantization.quantize_dynamic``).
    ``backend``: torch, or onnx (fp32 only: the model exported once to ONNX, cached under
    ``cache_dir`` by content hash, run with ONNX Runtime). Raises StanceError for a missing
    folder, a label set other than LABELS, an unknown precision or an unsupported combination.
    """
    import torch

    from stance.modeling.models import load_classifier

    path = _check_model_dir(model_dir)
    if precision not in PRECISIONS:
        raise StanceError(f"score.precision: unknown value {precision!r} (expected one of {', '.join(PRECISIONS)})")
    if threads > 0:
        torch.set_num_threads(threads)
    if backend not in BACKENDS:
        raise StanceError(f"score.backend: {backend!r} is not available (supported: {', '.join(BACKENDS)})")
    if backend == "onnx" and precision != "fp32":
        raise StanceError(f"score.precision={precision} needs score.backend=torch (the onnx backend runs fp32)")
    classifier = load_classifier(path)
    scoring = ScoringModel(classifier, precision, path)
    if scoring.kind == "transformer" and backend == "onnx":
        scoring.backend = "onnx"
        scoring.session = _onnx_session(classifier, path, Path(cache_dir) if cache_dir else None,
                                        threads or torch.get_num_threads())
        log.info("model %s: input %s, max_length %d, ONNX Runtime fp32, %d thread(s)", path,
                 classifier.input_format, classifier.max_length, threads or torch.get_num_threads())
    elif scoring.kind == "transformer":
        classifier.model.eval()
        if precision == "bf16" and not _native_bf16():
            log.warning("score.precision=bf16: this CPU has no native bfloat16 matmul (avx512_bf16 / amx_bf16); "
                        "expect it to be much slower than fp32")
        if precision == "int8":
            # int8 weights, activations quantised on the fly: the Linear layers hold most FLOPs.
            # torch.ao.quantization warns that it moves to torchao; it still works in this torch.
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
                classifier.model = torch.ao.quantization.quantize_dynamic(
                    classifier.model, {torch.nn.Linear}, dtype=torch.qint8)
        log.info("model %s: input %s, max_length %d, %s, %d thread(s)", path, classifier.input_format,
                 classifier.max_length, precision, torch.get_num_threads())
    else:
        log.info("model %s: %s baseline", path, scoring.kind)
    return scoring


def _native_bf16() -> bool:
    """Whether the CPU has bfloat16 matmul instructions (Linux: /proc/cpuinfo flags)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            flags = next((line for line in fh if line.startswith("flags")), "")
    except OSError:
        return True  # cannot tell: do not warn
    return any(f in flags.split() for f in ("avx512_bf16", "amx_bf16"))


def onnx_cache_dir() -> Path:
    """Where exported ONNX models are kept: $STANCE_CACHE or $XDG_CACHE_HOME/stance or ~/.cache/stance."""
    base = os.environ.get("STANCE_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "stance"
    return Path(base) / "onnx"


def _onnx_session(classifier: Any, model_dir: Path, cache_dir: Path | None, threads: int) -> Any:
    """An ONNX Runtime session for the classifier, exporting it once (cached by the model's hash).

    The export traces the fp32 model with dynamic batch and length axes; ONNX Runtime then fuses
    attention, layer norm and GELU, which eager PyTorch runs as separate kernels.
    """
    try:
        import onnxruntime as ort
    except ImportError:
        raise StanceError("score.backend=onnx needs onnxruntime and onnx (pip install onnxruntime onnx)") from None
    cache = cache_dir or onnx_cache_dir()
    onnx_path = cache / f"{_model_hash(model_dir)[:20]}.onnx"
    if not onnx_path.exists():
        _export_onnx(classifier, onnx_path)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, int(threads))
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])


def _export_onnx(classifier: Any, onnx_path: Path) -> None:
    import warnings

    import torch

    model, tokenizer = classifier.model.eval(), classifier.tokenizer
    sample = tokenizer(["A short sentence about << someone >> .", "Another one."], padding=True,
                       return_tensors="pt")
    names = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in sample]

    class Logits(torch.nn.Module):
        """forward(*features) -> logits, with the features as positional inputs for the tracer."""

        def __init__(self, inner: Any):
            super().__init__()
            self.inner = inner

        def forward(self, *features: Any) -> Any:
            return self.inner(**dict(zip(names, features))).logits

    log.info("exporting the model to ONNX (once per model): %s", onnx_path)
    try:
        with atomic_path(onnx_path) as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                Logits(model), tuple(sample[k] for k in names), str(tmp), input_names=names,
                output_names=["logits"], dynamic_axes={**{k: {0: "batch", 1: "length"} for k in names},
                                                       "logits": {0: "batch"}},
                opset_version=17, dynamo=False,
            )
    except ImportError:
        raise StanceError("score.backend=onnx needs onnxruntime and onnx (pip install onnxruntime onnx)") from None


def _model_hash(path: Path) -> str:
    """sha256 over the model folder's top-level files (names and contents)."""
    digest = hashlib.sha256()
    for f in sorted(p for p in path.iterdir() if p.is_file()):
        digest.update(f.name.encode())
        digest.update(file_sha256(f).encode())
    return digest.hexdigest()


# --- configuration -------------------------------------------------------------------------------
def input_spec(value: Any) -> InputConfig:
    """The reading spec from ``input``: a path/glob string, a list of them, or an InputConfig mapping."""
    from omegaconf import DictConfig, ListConfig, OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    if value is None or (isinstance(value, str) and not value.strip()):
        raise StanceError("input: no input given (input=PATH: a file, folder or glob of articles)")
    if isinstance(value, str):
        return InputConfig(paths=[value])
    if isinstance(value, (list, tuple, ListConfig)):
        return InputConfig(paths=[str(v) for v in value])
    if isinstance(value, InputConfig):
        return value
    if isinstance(value, (dict, DictConfig)):
        try:
            merged = OmegaConf.merge(OmegaConf.structured(InputConfig), value)
        except OmegaConfBaseException as err:
            raise StanceError(f"input: {str(err).splitlines()[0]}") from None
        spec: InputConfig = OmegaConf.to_object(merged)  # type: ignore[assignment]
        if not spec.paths:
            raise StanceError("input: no input given (input=PATH: a file, folder or glob of articles)")
        return spec
    raise StanceError(f"input: expected a path or a mapping, got {type(value).__name__}")


def _check_options(cfg: ScoreConfig) -> None:
    opts = cfg.score
    if opts.backend not in BACKENDS:
        raise StanceError(f"score.backend: {opts.backend!r} is not available (supported: {', '.join(BACKENDS)})")
    if opts.backend == "onnx" and opts.precision != "fp32":
        raise StanceError(f"score.precision={opts.precision} needs score.backend=torch (the onnx backend runs fp32)")
    if opts.format not in FORMATS:
        raise StanceError(f"score.format: unknown value {opts.format!r} (expected one of {', '.join(FORMATS)})")
    for key in ("batch_size", "sort_window", "chunk_articles"):
        if int(getattr(opts, key)) < 1:
            raise StanceError(f"score.{key}: must be at least 1, got {getattr(opts, key)}")
    if not 0.0 <= float(opts.threshold) <= 1.0:
        raise StanceError(f"score.threshold: must be between 0 and 1, got {opts.threshold}")


def _fingerprint(cfg: ScoreConfig, spec: InputConfig, model_hash: str) -> dict[str, Any]:
    """What must not change between a run and its resumption (it changes the mention rows)."""
    text = _dataclass_dict(cfg.text)
    actors = _dataclass_dict(cfg.actors)
    return {
        "model_sha256": model_hash,
        "precision": cfg.score.precision,
        "threshold": float(cfg.score.threshold),
        "text": json.loads(json.dumps(text, default=str)),
        "actors": json.loads(json.dumps(actors, default=str)),
        "meta_columns": list(spec.meta_columns),
        "reading": {k: getattr(spec, k) for k in ("id_column", "text_column", "title_column",
                                                     "title_first_line", "encoding")},
    }


# --- resumable state -----------------------------------------------------------------------------
class ScoreState:
    """The parts already written to ``output_dir`` and the article ids they cover."""

    def __init__(self, out: Path, fingerprint: dict[str, Any]):
        self.out = out
        self.state = out / STATE_DIR
        self.mentions = out / MENTIONS_DIR
        self.done: set[str] = set()
        self.parts: list[int] = []
        fp_path = self.state / "fingerprint.json"
        has_parts = any(self.state.glob("part-*.json")) if self.state.exists() else False
        if fp_path.exists() and has_parts:
            old = json.loads(fp_path.read_text(encoding="utf-8"))
            if old != fingerprint:
                changed = sorted(k for k in set(old) | set(fingerprint) if old.get(k) != fingerprint.get(k))
                raise StanceError(
                    f"{out}: holds a scoring run with a different {', '.join(changed)}; "
                    "use a new output_dir (or delete this one) to score with these settings"
                )
        else:
            write_json(fp_path, fingerprint)
        for manifest in sorted(self.state.glob("part-*.json")):
            num = int(manifest.stem.split("-")[1])
            if not self.part_path(num).exists():
                log.warning("%s has no part file: discarding it", manifest)
                manifest.unlink()
                continue
            self.parts.append(num)
            self.done.update(json.loads(manifest.read_text(encoding="utf-8"))["articles"])
        # a part without its done-list is an interrupted write (never the case with atomic writes
        # unless the process died between the two renames): its articles are scored again
        listed = set(self.parts)
        for part in self.mentions.glob("part-*.parquet") if self.mentions.exists() else []:
            if int(part.stem.split("-")[1]) not in listed:
                log.warning("discarding %s (its done-list was never written)", part)
                part.unlink()
        # temporaries of writes killed mid-way (kill -9): never read, removed here
        for folder in (self.mentions, self.state, self.out):
            for tmp in folder.glob(".*.tmp") if folder.exists() else []:
                shutil.rmtree(tmp, ignore_errors=True)
        if self.parts:
            log.info("resuming: %d part(s), %d article(s) already scored", len(self.parts), len(self.done))

    def part_path(self, num: int) -> Path:
        return self.mentions / f"part-{num:05d}.parquet"

    def manifest_path(self, num: int) -> Path:
        return self.state / f"part-{num:05d}.json"

    def next_part(self) -> int:
        return max(self.parts, default=-1) + 1

    def manifests(self) -> Iterator[tuple[int, dict[str, Any]]]:
        for num in sorted(self.parts):
            yield num, json.loads(self.manifest_path(num).read_text(encoding="utf-8"))


# --- mention tables ------------------------------------------------------------------------------
def _mention_schema(meta_columns: Sequence[str], labels: Sequence[str]) -> Any:
    import pyarrow as pa

    other = pa.list_(pa.struct([("actor_id", pa.string()), ("mention", pa.string()),
                                ("start", pa.int32()), ("end", pa.int32())]))
    fields = [("example_id", pa.string()), ("article_id", pa.string())]
    fields += [(m, pa.string()) for m in meta_columns]
    fields += [("sentence_idx", pa.int32()), ("sentence", pa.string()), ("actor_id", pa.string()),
               ("actor_name", pa.string()), ("mention", pa.string()), ("mention_start", pa.int32()),
               ("mention_end", pa.int32()), ("other_mentions", other), ("label", pa.string())]
    fields += [(f"prob_{lab}", pa.float32()) for lab in labels]
    fields += [("low_confidence", pa.bool_())]
    return pa.schema(fields)


def _mention_table(rows: list[dict[str, Any]], probs: np.ndarray, labels: Sequence[str],
                   meta_columns: Sequence[str], threshold: float) -> Any:
    import pyarrow as pa

    schema = _mention_schema(meta_columns, labels)
    top = probs.argmax(axis=1) if len(rows) else np.zeros(0, dtype=int)
    cols: dict[str, Any] = {}
    for name in schema.names:
        if name == "label":
            cols[name] = [labels[i] for i in top]
        elif name.startswith("prob_") and name[5:] in labels:
            cols[name] = probs[:, labels.index(name[5:])]
        elif name == "low_confidence":
            cols[name] = probs.max(axis=1) < threshold if len(rows) else np.zeros(0, dtype=bool)
        else:
            cols[name] = [row.get(name, "") for row in rows]
    return pa.table(cols, schema=schema)


# --- aggregates ----------------------------------------------------------------------------------
def _counts_frame(df: Any, keys: list[str]) -> Any:
    """Per group of ``keys`` (in order of appearance): n_sentences, n_<label>, n_low_confidence,
    share_<label> and net_stance = (n_supportive - n_critical) / n_sentences."""
    import pandas as pd

    counts = pd.DataFrame({f"n_{lab}": (df["label"] == lab).astype("int64") for lab in LABELS})
    counts["n_low_confidence"] = df["low_confidence"].astype("int64")
    counts["n_sentences"] = 1
    out = pd.concat([df[keys], counts], axis=1).groupby(keys, sort=False, dropna=False).sum().reset_index()
    for lab in LABELS:
        out[f"share_{lab}"] = out[f"n_{lab}"] / out["n_sentences"]
    out["net_stance"] = (out["n_supportive"] - out["n_critical"]) / out["n_sentences"]
    return out


def bootstrap_net_ci(n: np.ndarray, diff: np.ndarray, reps: int, seed: int,
                     level: float = 0.95) -> tuple[float, float]:
    """Percentile CI of the pooled net stance sum(diff)/sum(n), resampling articles (clusters).

    ``n``: sentences per article, ``diff``: supportive - critical per article. NaN for fewer
    than two articles (a CI over one article says nothing). Resamples in blocks so memory stays
    bounded for large corpora.
    """
    m = len(n)
    if m < 2 or reps < 1:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    block = max(1, min(reps, 2_000_000 // m))
    stats = np.empty(reps, dtype=np.float64)
    n = n.astype(np.float64)
    diff = diff.astype(np.float64)
    for b0 in range(0, reps, block):
        k = min(block, reps - b0)
        idx = rng.integers(0, m, size=(k, m))
        stats[b0 : b0 + k] = diff[idx].sum(axis=1) / n[idx].sum(axis=1)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(stats, [alpha, 1.0 - alpha])
    return (float(lo), float(hi))


class _TableWriter:
    """Append DataFrames to one table file (parquet/csv/jsonl), e.g. an atomic temporary path."""

    def __init__(self, path: Path, fmt: str):
        self.path, self.fmt = path, fmt
        self.writer: Any = None  # pyarrow ParquetWriter
        self.fh: Any = None
        self.schema: Any = None

    def write(self, df: Any) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self.fmt == "parquet":
            table = pa.Table.from_pandas(df, preserve_index=False)
            if self.writer is None:
                self.schema = table.schema
                self.writer = pq.ParquetWriter(self.path, self.schema)
            self.writer.write_table(table.cast(self.schema))
            return
        header = self.fh is None
        if self.fh is None:
            self.fh = self.path.open("w", encoding="utf-8", newline="")
        if "other_mentions" in df.columns:
            conv = _json_list if self.fmt == "csv" else _plain_list
            df = df.assign(other_mentions=[conv(v) for v in df["other_mentions"]])
        if self.fmt == "csv":
            df.to_csv(self.fh, index=False, header=header)
        else:
            for rec in df.to_dict(orient="records"):
                self.fh.write(json.dumps(rec, ensure_ascii=False, default=_json_default) + "\n")

    def close(self, empty: Any) -> None:
        """Finish the file; ``empty`` (a DataFrame with the columns) is written when nothing was."""
        if self.writer is None and self.fh is None:
            self.write(empty)
        if self.writer is not None:
            self.writer.close()
        if self.fh is not None:
            self.fh.close()


def _plain_list(value: Any) -> list[dict[str, Any]]:
    return [dict(v) for v in value] if value is not None else []


def _json_list(value: Any) -> str:
    return json.dumps(_plain_list(value), ensure_ascii=False, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(type(value).__name__)


def _write_table(df: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        writer = _TableWriter(tmp, path.suffix.lstrip("."))
        writer.write(df)
        writer.close(df)


ARTICLE_COUNT_COLUMNS: tuple[str, ...] = (
    "n_sentences", *(f"n_{lab}" for lab in LABELS), "n_low_confidence",
    *(f"share_{lab}" for lab in LABELS), "net_stance",
)


def aggregate(out: Path, state: ScoreState, labels: Sequence[str], meta_columns: Sequence[str],
              fmt: str, reps: int, seed: int) -> dict[str, Any]:
    """Write ``articles.<fmt>``, ``actors.<fmt>`` (and ``mentions.<fmt>`` for csv/jsonl) from all parts.

    Reads one part at a time: an article's rows are all in one part, so its per-actor counts are
    final there; the corpus totals keep two numbers per (article, actor) for the bootstrap.
    Returns ``{"mentions": row count, "actors": the actors DataFrame}``.
    """
    import pandas as pd
    import pyarrow.parquet as pq

    article_cols = ["article_id", *meta_columns, "actor_id", "actor_name"]
    empty_articles = pd.DataFrame(
        {c: pd.Series(dtype=object) for c in article_cols}
        | {c: pd.Series(dtype="float64" if c.startswith(("share", "net")) else "int64")
           for c in ARTICLE_COUNT_COLUMNS}
    )
    per_actor: dict[str, dict[str, Any]] = {}
    n_rows = 0
    export = fmt != "parquet"  # parquet: the mentions/ folder is the output
    with atomic_path(out / f"articles.{fmt}") as art_tmp, \
            _maybe_atomic(out / f"mentions.{fmt}" if export else None) as men_tmp:
        art_writer = _TableWriter(art_tmp, fmt)
        men_writer = _TableWriter(men_tmp, fmt) if export else None
        for num in sorted(state.parts):
            table = pq.read_table(state.part_path(num))
            n_rows += table.num_rows
            if men_writer is not None and table.num_rows:
                men_writer.write(table.to_pandas())
            if table.num_rows == 0:
                continue
            df = table.select([*article_cols, "label", "low_confidence"]).to_pandas()
            arts = _counts_frame(df, article_cols)[[*article_cols, *ARTICLE_COUNT_COLUMNS]]
            art_writer.write(arts)
            for actor_id, g in arts.groupby("actor_id", sort=False):
                acc = per_actor.setdefault(actor_id, {"actor_name": g["actor_name"].iloc[0], "n": [],
                                                      "diff": [], "counts": np.zeros(len(LABELS) + 1, int)})
                acc["n"].append(g["n_sentences"].to_numpy())
                acc["diff"].append((g["n_supportive"] - g["n_critical"]).to_numpy())
                acc["counts"] += g[[*(f"n_{lab}" for lab in LABELS), "n_low_confidence"]].to_numpy().sum(axis=0)
        art_writer.close(empty_articles)
        if men_writer is not None:
            men_writer.close(_mention_schema(meta_columns, labels).empty_table().to_pandas())

    actor_rows = []
    for actor_id, acc in per_actor.items():
        n = np.concatenate(acc["n"])
        diff = np.concatenate(acc["diff"])
        total = int(n.sum())
        # seeded per actor (not by position) so an actor's CI does not depend on the others
        lo, hi = bootstrap_net_ci(n, diff, reps, seed=(seed * 1_000_003 + zlib.crc32(actor_id.encode())) % 2**32)
        row: dict[str, Any] = {"actor_id": actor_id, "actor_name": acc["actor_name"], "n_articles": len(n),
                               "n_sentences": total}
        row.update({f"n_{lab}": int(c) for lab, c in zip(LABELS, acc["counts"])})
        row["n_low_confidence"] = int(acc["counts"][-1])
        row.update({f"share_{lab}": row[f"n_{lab}"] / total for lab in LABELS})
        row["net_stance"] = float(diff.sum() / total)
        row["net_stance_ci_low"], row["net_stance_ci_high"] = lo, hi
        actor_rows.append(row)
    actor_cols = ["actor_id", "actor_name", "n_articles", *ARTICLE_COUNT_COLUMNS,
                  "net_stance_ci_low", "net_stance_ci_high"]
    actors = pd.DataFrame(actor_rows, columns=actor_cols)
    actors = actors.sort_values(["n_sentences", "actor_id"], ascending=[False, True], kind="stable")
    actors = actors.reset_index(drop=True)
    _write_table(actors, out / f"actors.{fmt}")
    return {"mentions": n_rows, "actors": actors}


class _NullCtx:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


def _maybe_atomic(path: Path | None) -> Any:
    return atomic_path(path) if path is not None else _NullCtx()


# --- the run -------------------------------------------------------------------------------------
@dataclass
class _Progress:
    """A tqdm bar over articles whose postfix shows scored sentences per second."""

    bar: Any
    start: float
    sentences: int = 0

    def add_sentences(self, k: int) -> None:
        self.sentences += k
        rate = self.sentences / max(time.perf_counter() - self.start, 1e-9)
        self.bar.set_postfix_str(f"{self.sentences} sent, {rate:.1f} sent/s", refresh=False)
        self.bar.refresh()


def run_scoring(cfg: ScoreConfig | Any) -> dict[str, Any]:
    """Score every article of ``cfg.input`` into ``cfg.output_dir``; return the run record.

    Bad input (empty/undecodable files, malformed rows, duplicate ids) and articles without any
    registered actor are skipped, counted and listed in ``run.json``; they never stop the batch.
    Raises StanceError for a missing model_dir, input or output_dir, or a resumption with
    different settings.
    """
    from stance.text.actors import ActorRegistry
    from stance.text.articles import Problem, input_files, iter_articles

    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    _check_options(cfg)
    model_dir = _check_model_dir(_value(cfg, "model_dir"))
    spec = input_spec(_value(cfg, "input"))
    files = input_files(list(spec.paths))  # raises for a missing input
    out_value = _value(cfg, "output_dir")
    if out_value is None or not str(out_value).strip():
        raise StanceError("output_dir: no output folder given (output_dir=OUT)")
    out = Path(str(out_value)).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    # heavy imports after the checks, so a typo in a path fails in a second, not after torch loads
    import torch
    from tqdm.auto import tqdm

    from stance.data.rows import PAIR_COLUMNS
    from stance.text.pairs import article_pairs

    registry = ActorRegistry.from_config(cfg.actors)
    if len(registry) == 0:
        raise StanceError("actors: the actor registry is empty (actors=<registry>)")
    opts = cfg.score
    sm = load_scoring_model(model_dir, opts.precision, int(opts.threads), opts.backend)
    model_hash = _model_hash(model_dir)
    meta_columns = [m for m in spec.meta_columns if m not in PAIR_COLUMNS]
    state = ScoreState(out, _fingerprint(cfg, spec, model_hash))
    config_record = _dataclass_dict(cfg)
    config_record["input"] = _dataclass_dict(spec)

    record: dict[str, Any] = {
        "status": "running",
        "started": started.isoformat(timespec="seconds"),
        "model": {"dir": str(model_dir), "sha256": model_hash, "kind": sm.kind, "labels": list(sm.labels),
                  "input_format": getattr(sm.classifier, "input_format", None),
                  "max_length": getattr(sm.classifier, "max_length", None),
                  "markers": list(getattr(sm.classifier, "markers", ()) or ()),
                  "precision": sm.precision if sm.kind == "transformer" else None,
                  "backend": sm.backend, "threads": int(opts.threads) or torch.get_num_threads()},
        "config": config_record,
    }
    write_json(out / "run.json", record)

    problems: list[Problem] = []

    def on_problem(problem: Problem) -> None:
        problems.append(problem)
        log.warning("skipped %s", problem)

    n_read = n_resumed = n_scored = n_pairs = 0
    chunk_ids: list[str] = []
    chunk_rows: list[dict[str, Any]] = []
    chunk_no_actor: list[dict[str, str]] = []
    part_num = state.next_part()
    bar = tqdm(desc="scoring", unit="art", dynamic_ncols=True, mininterval=1.0)
    progress = _Progress(bar, time.perf_counter())
    t_infer = 0.0

    def flush() -> None:
        nonlocal part_num, n_scored, n_pairs, t_infer
        if not chunk_ids:
            return
        ti = time.perf_counter()
        probs = sm.predict_proba(chunk_rows, int(opts.batch_size), int(opts.sort_window),
                                 on_batch=progress.add_sentences)
        t_infer += time.perf_counter() - ti
        table = _mention_table(chunk_rows, probs, sm.labels, meta_columns, float(opts.threshold))
        write_part(state, part_num, table, {"articles": list(chunk_ids), "no_actor": list(chunk_no_actor),
                                            "rows": len(chunk_rows)})
        n_scored += len(chunk_ids)
        n_pairs += len(chunk_rows)
        bar.update(len(chunk_ids))
        part_num += 1
        chunk_ids.clear()
        chunk_rows.clear()
        chunk_no_actor.clear()

    t_loop = time.perf_counter()
    try:
        for article in iter_articles(spec, on_problem=on_problem):
            n_read += 1
            if article.id in state.done:
                n_resumed += 1
                continue
            rows = article_pairs(article, registry, cfg.text)
            if not rows:
                chunk_no_actor.append({"article_id": article.id, "source": article.source})
            chunk_ids.append(article.id)
            chunk_rows.extend(rows)
            if len(chunk_ids) >= int(opts.chunk_articles):
                flush()
        flush()
    except BaseException as err:
        # the parts written so far stay valid; run.json says where the run stopped and why
        record.update({"status": "interrupted" if isinstance(err, KeyboardInterrupt) else "failed",
                       "error": f"{type(err).__name__}: {err}".splitlines()[0],
                       "counts": {"articles_scored_now": n_scored, "mentions_scored_now": n_pairs,
                                  "articles_already_scored": n_resumed, "problems": len(problems)}})
        write_json(out / "run.json", record)
        raise
    finally:
        bar.close()
    # reading, segmentation, mention finding, inference and part writing (not model loading)
    t_score = time.perf_counter() - t_loop

    # every part (this run's and earlier runs') makes up the final outputs
    no_actor: list[dict[str, str]] = []
    total_articles = 0
    for _, manifest in state.manifests():
        total_articles += len(manifest["articles"])
        no_actor.extend(manifest["no_actor"])
    fmt = opts.format
    agg = aggregate(out, state, sm.labels, meta_columns, fmt, int(opts.bootstrap), int(cfg.seed))
    actors = agg["actors"]
    plot_path = out / "stance_by_actor.png"
    if len(actors):
        from stance.analysis.plots import plot_stance_by_actor

        plot_stance_by_actor(actors, plot_path, title=f"Stance by actor ({total_articles} article{'s' if total_articles != 1 else ''})")
    elif plot_path.exists():
        plot_path.unlink()

    label_counts = {lab: int(actors[f"n_{lab}"].sum()) for lab in LABELS} if len(actors) else {
        lab: 0 for lab in LABELS}
    skipped = [{"path": p.path, "line": p.line, "reason": p.message} for p in problems]
    skipped += [{"path": d["source"], "line": None, "article_id": d["article_id"],
                 "reason": "no actor of the registry is mentioned"} for d in no_actor]
    elapsed = time.perf_counter() - t0
    record.update({
        "status": "completed",
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "elapsed_s": round(elapsed, 3),
        "inputs": [{"path": str(f), "sha256": file_sha256(f), "bytes": f.stat().st_size} for f in files],
        "counts": {
            "files": len(files),
            "articles_read": n_read,
            "articles_scored_now": n_scored,
            "articles_already_scored": n_resumed,
            "articles": total_articles,
            "articles_with_actors": total_articles - len(no_actor),
            "articles_no_actor": len(no_actor),
            "problems": len(problems),
            "mentions": int(agg["mentions"]),
            "mentions_scored_now": n_pairs,
            "actors": int(len(actors)),
            "labels": label_counts,
            "low_confidence": int(actors["n_low_confidence"].sum()) if len(actors) else 0,
        },
        "throughput": {
            "articles_per_s": round(n_scored / t_score, 3) if t_score > 0 else None,
            "sentences_per_s": round(n_pairs / t_score, 3) if t_score > 0 else None,
            "inference_s": round(t_infer, 3),
        },
        "skipped": skipped,
        "outputs": {
            "mentions": [f"{MENTIONS_DIR}/"] + ([f"mentions.{fmt}"] if fmt != "parquet" else []),
            "articles": f"articles.{fmt}",
            "actors": f"actors.{fmt}",
            "plot": plot_path.name if len(actors) else None,
        },
    })
    write_json(out / "run.json", record)
    log.info("scored %d article(s) (%d now, %d earlier): %d mentions of %d actor(s); skipped %d problem(s), "
             "%d article(s) without actors; %.1f sentences/s -> %s",
             total_articles, n_scored, n_resumed, agg["mentions"], len(actors), len(problems),
             len(no_actor), n_pairs / t_score if t_score > 0 else 0.0, out)
    return record


def _value(cfg: Any, key: str) -> Any:
    """``cfg.<key>``, or None where it is unset (``???`` in a DictConfig, MISSING in a dataclass)."""
    from omegaconf import MISSING, DictConfig, OmegaConf

    if isinstance(cfg, DictConfig):
        return None if OmegaConf.is_missing(cfg, key) else cfg[key]
    value = getattr(cfg, key, None)
    return None if value == MISSING else value


def write_part(state: ScoreState, num: int, table: Any, manifest: dict[str, Any]) -> None:
    """Write one part: the mention rows first, then its done-list (each atomically)."""
    import pyarrow.parquet as pq

    with atomic_path(state.part_path(num)) as tmp:
        pq.write_table(table, tmp)
    write_json(state.manifest_path(num), manifest)
    state.parts.append(num)


def _dataclass_dict(obj: Any) -> Any:
    import dataclasses

    if dataclasses.is_dataclass(obj):
        return {f.name: _dataclass_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {k: _dataclass_dict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_dataclass_dict(v) for v in obj]
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(obj, (DictConfig, ListConfig)):
            return OmegaConf.to_container(obj, resolve=True)
    except ImportError:  # pragma: no cover
        pass
    return obj
