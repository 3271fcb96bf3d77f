"""Smaller students and distillation: fewer encoder layers, trained on a teacher's soft labels.

* :func:`keep_layers` cuts a BERT-style classifier down to some of its encoder layers (``model.layers``,
  e.g. ``[0, 2, 4]`` of six: ``model=minilm_l3``), keeping its embeddings, classifier head, label maps
  and ``stance`` block; :func:`build_student` does it to a saved teacher and saves the student.
* :func:`add_soft_labels` runs the teacher (or each teacher of an ensemble: ``train.distill_from`` as a
  list) once over the train rows through the one prediction engine
  (``TransformerClassifier.predict_proba``; cached by weights + rows), softens by
  ``train.distill_temperature``, averages over teachers and stores the probabilities as a
  ``soft_labels`` column; the Trainer's loss then mixes :func:`distill_loss`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from stance.errors import StanceError
from stance.io import atomic_path
from stance.labels import LABELS
from stance.modeling.models import (
    TransformerClassifier,
    init_model_dir,
    load_classifier,
    load_transformer,
    save_model,
)

log = logging.getLogger(__name__)

SOFT_LABELS = "soft_labels"


def encoder_layers(model: Any) -> Any:
    """The encoder's ``ModuleList`` of layers (BERT, RoBERTa, MiniLM ...); StanceError otherwise."""
    base = getattr(model, getattr(model, "base_model_prefix", ""), None)
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    if layers is None:
        raise StanceError(f"model.layers: {type(model).__name__} has no encoder.layer list to take layers from")
    return layers


def keep_layers(model: Any, layers: Sequence[int]) -> Any:
    """``model`` with only the encoder ``layers`` (in order, weights shared, not copied); the
    config's ``num_hidden_layers`` follows and the stance block records which layers were kept."""
    import torch  # heavy: the model is a torch module

    old = encoder_layers(model)
    keep = [int(i) for i in layers]
    if not keep or any(i < 0 or i >= len(old) for i in keep) or len(set(keep)) != len(keep):
        raise StanceError(
            f"model.layers: {keep} must be distinct layer indices of the {len(old)}-layer model (0..{len(old) - 1})"
        )
    base = getattr(model, model.base_model_prefix)
    base.encoder.layer = torch.nn.ModuleList([old[i] for i in keep])
    model.config.num_hidden_layers = len(keep)
    block = dict(getattr(model.config, "stance", None) or {})
    if block:  # a stance model: say where this student came from (base checkpoints get it in training)
        model.config.stance = {**block, "layers_kept": keep}
    log.info("model.layers: kept encoder layers %s of %d", keep, len(old))
    return model


def build_student(teacher_dir: str | Path, layers: Sequence[int], out_dir: str | Path) -> Path:
    """Save a student of the saved stance model ``teacher_dir`` (its ``layers``, embeddings, head,
    tokenizer, label maps and stance block) to ``out_dir``; it loads like any saved model."""
    model, tokenizer = load_transformer(str(teacher_dir))
    if not getattr(model.config, "stance", None):
        raise StanceError(f"{teacher_dir}: not a fine-tuned stance model (no 'stance' block in config.json)")
    model = keep_layers(model, layers)
    model.config.stance = {**model.config.stance, "teacher": str(teacher_dir)}
    save_model(TransformerClassifier(model, tokenizer), out_dir)
    return Path(out_dir)


def teacher_dirs(distill_from: Any) -> list[str]:
    """``train.distill_from`` (one model folder, or a list of them: an ensemble) as model folders;
    a run dir means its ``model/``. One-line StanceError for a missing or non-stance folder."""
    items = [distill_from] if isinstance(distill_from, (str, Path)) else list(distill_from or [])
    if not items:
        raise StanceError("train.distill_from: empty (give a trained stance model folder, or a list of them)")
    dirs = [init_model_dir(item, "train.distill_from") for item in items]
    return [d for d in dirs if d is not None]


def _rows_key(rows: Any) -> str:
    """A digest of what the teacher sees of each row (text, target span, order)."""
    digest = hashlib.sha256()
    for column in ("example_id", "sentence", "actor_name", "mention_start", "mention_end"):
        if column in rows.column_names:
            digest.update(json.dumps(list(rows[column]), ensure_ascii=False).encode())
    return digest.hexdigest()


def _model_key(model_dir: str) -> str:
    """A digest of a saved model's weights and config (a retrained teacher gets a new key)."""
    digest = hashlib.sha256()
    for path in sorted(Path(model_dir).iterdir()):
        if path.suffix in {".json", ".safetensors", ".bin"} and path.is_file():
            digest.update(path.name.encode())
            with path.open("rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
    return digest.hexdigest()


def teacher_log_probs(rows: Any, teacher_dir: str, batch_size: int = 64, cache_dir: Path | None = None) -> Any:
    """The teacher's log-probabilities at temperature 1 (the logits up to a per-row constant, so
    softmax(log_p / T) = softmax(logits / T)); cached in ``cache_dir`` by weights + rows, because an
    ensemble's teachers each take minutes on CPU and every seed of a sweep needs the same numbers."""
    cache = None
    if cache_dir is not None:
        cache = Path(cache_dir) / f"{_model_key(teacher_dir)[:16]}-{_rows_key(rows)[:16]}.npy"
        if cache.is_file():
            log.info("distillation: teacher %s's probabilities from the cache %s", teacher_dir, cache)
            return np.load(cache)
    teacher = load_classifier(teacher_dir, batch_size=batch_size)
    if getattr(teacher, "kind", "") != "transformer":
        raise StanceError(f"train.distill_from={teacher_dir}: the teacher must be a transformer model")
    teacher.temperature = 1.0  # replaces the teacher's calibration temperature: T is applied below
    log.info("distillation: teacher %s predicts %d train rows", teacher_dir, len(rows))
    log_p = np.log(np.clip(teacher.predict_proba(rows.to_list(), sort_window=None), 1e-30, None))
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(cache) as tmp, open(tmp, "wb") as handle:
            np.save(handle, log_p)
    return log_p


def add_soft_labels(
    rows: Any, teachers: str | Sequence[str], temperature: float, batch_size: int = 64, cache_dir: Path | None = None
) -> Any:
    """``rows`` (a Dataset) with a ``soft_labels`` column: the teachers' class probabilities at
    ``temperature``, averaged over the teachers (an ensemble of seeds is a better teacher than
    any one of them), in LABELS order."""
    if not temperature > 0:
        raise StanceError(f"train.distill_temperature must be positive, got {temperature}")
    dirs = [teachers] if isinstance(teachers, str) else list(teachers)
    probs = np.zeros((len(rows), len(LABELS)))
    for teacher_dir in dirs:
        z = teacher_log_probs(rows, teacher_dir, batch_size, cache_dir) / float(temperature)
        z = np.exp(z - z.max(axis=1, keepdims=True))
        probs += z / z.sum(axis=1, keepdims=True)
    probs /= len(dirs)
    if SOFT_LABELS in rows.column_names:
        rows = rows.remove_columns(SOFT_LABELS)
    return rows.add_column(SOFT_LABELS, probs.astype(float).tolist())


def distill_loss(
    logits: Any, labels: Any, soft: Any, weight: Any, smoothing: float, alpha: float, temperature: float
) -> Any:
    """``alpha`` x T^2 x KL(teacher_T || student_T) + (1 - alpha) x cross-entropy on the hard labels.

    T^2 keeps the soft term's gradients on the scale of the hard one as T grows (Hinton et al. 2015);
    class weights and label smoothing apply to the hard term only (the teacher's distribution is the target).
    """
    import torch  # heavy: the loss is computed in torch

    f = torch.nn.functional
    student = f.log_softmax(logits / temperature, dim=-1)
    kl = f.kl_div(student, soft.to(logits.dtype).clamp_min(1e-12).log(), log_target=True, reduction="batchmean")
    loss = alpha * temperature**2 * kl
    if alpha < 1:
        loss = loss + (1 - alpha) * f.cross_entropy(logits, labels, weight=weight, label_smoothing=smoothing)
    return loss


def check_distill(cfg: Any) -> tuple[float, float] | None:
    """``(alpha, temperature)`` when ``train.distill_from`` is set, else None; StanceError for a bad setting."""
    t = cfg.train
    if not t.get("distill_from"):
        return None
    alpha, temperature = float(t.distill_alpha), float(t.distill_temperature)
    if not 0 < alpha <= 1:
        raise StanceError(f"train.distill_alpha: must be in (0, 1] (the soft labels' share of the loss), got {alpha}")
    if not temperature > 0:
        raise StanceError(f"train.distill_temperature: must be positive, got {temperature}")
    if cfg.get("mix") is not None:
        raise StanceError("train.distill_from cannot be combined with mix (per-row weights): use one of them")
    return alpha, temperature
