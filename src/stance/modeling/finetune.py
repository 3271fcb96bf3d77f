"""Fine-tuning a transformer: the model to start from, the Trainer and its loss, the training loop.

:func:`fit_transformer` is what ``stance.modeling.training`` calls for ``model.kind=transformer``:
it loads the base checkpoint (``model.name_or_path``), a trained stance model to adapt
(``model.init_from``, keeping its label maps and encoding) or a layer-dropped student
(``model.layers``), encodes the rows as inference will (:mod:`stance.modeling.encoding`), and trains
with the Hugging Face ``Trainer`` (class-weighted, optionally per-row-weighted or distilled loss;
early stopping on validation macro-F1; the best checkpoint restored).
"""

from __future__ import annotations

import logging
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import datasets
import numpy as np

from stance.analysis.metrics import macro_f1
from stance.errors import StanceError
from stance.labels import LABELS
from stance.modeling.augment import swap_target_names
from stance.modeling.distill import (
    SOFT_LABELS,
    add_soft_labels,
    check_distill,
    distill_loss,
    encoder_layers,
    keep_layers,
    teacher_dirs,
)
from stance.modeling.encoding import check_input_format, encode_dataset
from stance.modeling.models import TransformerClassifier, init_model_dir, load_transformer

log = logging.getLogger(__name__)


# --- set-up ------------------------------------------------------------------------------------
def setup_runtime(seed: int, threads: int = 0) -> None:
    """Seed every RNG, set torch's thread count, quieten library chatter."""
    import torch
    import transformers

    if threads and threads > 0:
        torch.set_num_threads(int(threads))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    transformers.set_seed(int(seed))
    transformers.logging.set_verbosity_error()  # load reports, "newly initialized" warnings
    transformers.utils.logging.disable_progress_bar()  # "Loading weights" bars, not training's
    try:
        datasets.disable_progress_bars()
        datasets.logging.set_verbosity_error()
    except Exception:  # pragma: no cover - cosmetic only
        pass


def class_weights(labels: Sequence[int]) -> list[float]:
    """Inverse-frequency weights n / (k * count) (k = labels present); an absent label gets 0."""
    counts = np.bincount(np.asarray(labels, dtype=int), minlength=len(LABELS)).astype(float)
    present = counts > 0
    weights = np.zeros(len(LABELS))
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights.tolist()


# --- transformer training ----------------------------------------------------------------------
def _concise_progress() -> Any:
    from transformers.trainer_callback import ProgressCallback

    class ConciseProgress(ProgressCallback):
        """The usual tqdm bars, with one short line per log event instead of a raw dict."""

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
            if not state.is_world_process_zero or not logs:
                return
            if "eval_macro_f1" in logs:
                msg = f"step {state.global_step} (epoch {logs.get('epoch', state.epoch or 0):.2f}): validation macro-F1 {logs['eval_macro_f1']:.4f}, loss {logs.get('eval_loss', float('nan')):.4f}"
            elif "loss" in logs:
                msg = f"step {state.global_step}: loss {logs['loss']:.4f}, lr {logs.get('learning_rate', 0):.2e}"
            elif "train_runtime" in logs:
                msg = f"trained {state.global_step} steps in {logs['train_runtime']:.1f}s ({logs.get('train_samples_per_second', 0):.1f} examples/s)"
            else:
                return
            if self.training_bar is not None:
                self.training_bar.write(msg)
            else:
                log.info(msg)

    return ConciseProgress


def _time_limit(minutes: float) -> Any:
    from transformers import TrainerCallback

    class TimeLimit(TrainerCallback):
        """Stop once ``minutes`` of training have passed, validating and checkpointing that last
        step first, so the best model is still chosen among everything trained."""

        def __init__(self) -> None:
            self.start = time.perf_counter()
            self.hit = False

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.start = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            if not self.hit and time.perf_counter() - self.start > minutes * 60:
                self.hit = True
                log.warning("train.time_limit_minutes=%g reached at step %d: stopping", minutes, state.global_step)
                control.should_training_stop = True
                if args.eval_strategy != "no":
                    control.should_evaluate = True
                    control.should_save = True
            return control

    return TimeLimit()


def symmetric_kl(a: Any, b: Any) -> Any:
    """(KL(p_a || p_b) + KL(p_b || p_a)) / 2 of two batches of logits, mean over rows."""
    import torch

    la, lb = torch.log_softmax(a, dim=-1), torch.log_softmax(b, dim=-1)
    kl = torch.nn.functional.kl_div
    return (kl(lb, la, log_target=True, reduction="batchmean") + kl(la, lb, log_target=True, reduction="batchmean")) / 2


def _weighted_trainer(
    weights: list[float] | None, smoothing: float, distill: tuple[float, float] | None = None, rdrop: float = 0.0
) -> Any:
    import torch
    from transformers import Trainer

    class WeightedTrainer(Trainer):
        """Cross-entropy with optional class weights, label smoothing and per-row weights; R-Drop."""

        def compute_loss(
            self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
        ) -> Any:  # noqa: E501
            labels = inputs.pop("labels")
            rows = inputs.pop("sample_weight", None)
            soft = inputs.pop(SOFT_LABELS, None)  # the teacher's probabilities (train.distill_from)

            def loss_of(logits: Any) -> Any:
                w = torch.tensor(weights, dtype=logits.dtype, device=logits.device) if weights else None
                if soft is not None and distill is not None:
                    return distill_loss(logits, labels, soft, w, smoothing, *distill)
                if rows is None:
                    return torch.nn.functional.cross_entropy(logits, labels, weight=w, label_smoothing=smoothing)
                # the weighted mean cross_entropy takes, with each row's weight as a further factor
                per_row = torch.nn.functional.cross_entropy(
                    logits, labels, weight=w, label_smoothing=smoothing, reduction="none"
                )
                row_w = rows.to(per_row.dtype)
                norm = row_w * (w[labels] if w is not None else 1.0)
                return (per_row * row_w).sum() / norm.sum().clamp_min(1e-12)

            if rdrop and model.training:
                # R-Drop (Liang et al. 2021): the batch twice in one forward pass (two dropout masks),
                # the loss of both plus their symmetric KL: a consistency regulariser
                outputs = model(**{k: torch.cat([v, v]) for k, v in inputs.items()})
                a, b = outputs.logits.chunk(2)
                loss = (loss_of(a) + loss_of(b)) / 2 + rdrop * symmetric_kl(a, b)
                outputs.logits = a
            else:
                outputs = model(**inputs)
                loss = loss_of(outputs.logits)
            return (loss, outputs) if return_outputs else loss

    return WeightedTrainer


def layerwise_groups(model: Any, lr: float, decay: float, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW parameter groups with layer-wise learning-rate decay (Howard & Ruder 2018; Sun et al. 2019).

    The head (pooler, classifier) trains at ``lr``, encoder layer i of L at ``lr * decay**(L - i)``
    and the embeddings at ``lr * decay**(L + 1)``: the lower layers hold general language knowledge a
    small stance corpus should move least. Biases and LayerNorm weights get no weight decay, as in
    the Trainer's own grouping.
    """
    from transformers import Trainer

    n_layers = len(encoder_layers(model))
    no_decay = set(Trainer.get_decay_parameter_names(None, model))  # type: ignore[arg-type]
    groups: dict[tuple[int, bool], dict[str, Any]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        layer = re.search(r"encoder\.layer\.(\d+)\.", name)
        depth = n_layers - int(layer.group(1)) if layer else (n_layers + 1 if "embeddings" in name else 0)
        decays = name in no_decay
        group = groups.setdefault(
            (depth, decays), {"params": [], "lr": lr * decay**depth, "weight_decay": weight_decay if decays else 0.0}
        )
        group["params"].append(param)
    return [groups[key] for key in sorted(groups)]


def _eval_metric(pred: Any) -> dict[str, float]:
    logits = pred.predictions[0] if isinstance(pred.predictions, tuple) else pred.predictions
    return {"macro_f1": macro_f1(pred.label_ids, np.argmax(logits, axis=1))}


def check_markers(m: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(model.markers, model.other_markers), or a one-line StanceError naming the bad setting."""
    markers = tuple(str(x) for x in m.markers)
    if len(markers) != 2 or not all(x.strip() for x in markers):
        raise StanceError(f"model.markers must be two non-empty strings, got {list(markers)}")
    others = tuple(str(x) for x in (m.get("other_markers") or ()))
    if others and (len(others) != 2 or not all(x.strip() for x in others) or set(others) & set(markers)):
        raise StanceError(
            f"model.other_markers must be empty or two non-empty strings unlike model.markers, got {list(others)}"
        )
    return markers, others


def load_for_training(
    cfg: Any, markers: tuple[str, ...], teachers: list[str] | None = None, other_markers: tuple[str, ...] = ()
) -> tuple[Any, Any, dict[str, Any]]:
    """(model, tokenizer, stance block) to fine-tune: the base checkpoint, a trained stance model to
    adapt (``model.init_from``: its encoding block is kept) or a layer-dropped student; ``teachers``
    (distillation) are recorded in the block."""
    m = cfg.model
    init_from = init_model_dir(m.get("init_from"))
    model, tokenizer = load_transformer(init_from or m.name_or_path)
    if m.get("layers"):  # a smaller student (model=minilm_l3)
        model = keep_layers(model, list(m.layers))
    input_format, max_length = _value(m.input_format), int(m.max_length)
    base_model = m.name_or_path
    if init_from:
        # adaptation keeps the encoding the model was trained with: other markers or another input
        # format would present the same rows differently from everything it learned
        block = dict(getattr(model.config, "stance", None) or {})
        input_format, max_length, markers = block["input_format"], int(block["max_length"]), tuple(block["markers"])
        other_markers = tuple(block.get("other_markers") or ())
        base_model = block.get("base_model", m.name_or_path)
        log.info(
            "model.init_from=%s: fine-tuning it (input %s, max_length %d, markers %s)",
            init_from,
            input_format,
            max_length,
            markers,
        )
    block = {
        "input_format": input_format,
        "max_length": max_length,
        "markers": list(markers),
        **({"other_markers": list(other_markers)} if other_markers else {}),
        "base_model": base_model,
        **({"init_from": init_from} if init_from else {}),
        **({"layers_kept": [int(i) for i in m.layers]} if m.get("layers") else {}),
        **({"distilled_from": teachers} if teachers else {}),
    }
    model.config.stance = block
    return model, tokenizer, block


def training_arguments(cfg: Any, ckpt: Path, strategy: str, weighted_rows: bool) -> Any:
    """The Trainer's arguments from ``cfg.train`` (checkpoints in ``ckpt``, removed by the caller)."""
    from transformers import TrainingArguments

    t = cfg.train
    return TrainingArguments(
        output_dir=str(ckpt),
        num_train_epochs=float(t.epochs),
        max_steps=int(t.max_steps),
        per_device_train_batch_size=int(t.batch_size),
        per_device_eval_batch_size=int(t.eval_batch_size),
        gradient_accumulation_steps=int(t.gradient_accumulation_steps),
        learning_rate=float(t.learning_rate),
        weight_decay=float(t.weight_decay),
        warmup_steps=float(t.warmup_ratio),  # a float in [0, 1) is a ratio of the total steps
        lr_scheduler_type=t.lr_scheduler,
        eval_strategy=strategy,
        save_strategy=strategy,
        eval_steps=t.eval_steps or None,
        save_steps=t.eval_steps or 500,  # used only with eval_steps (strategy "steps"); 500 is the default
        save_total_limit=1,  # the best checkpoint is always kept with load_best_model_at_end
        save_only_model=True,  # no optimizer state: 1/3 of the disk and time per checkpoint
        load_best_model_at_end=strategy != "no",
        metric_for_best_model="macro_f1",
        greater_is_better=True,
        logging_strategy="steps",
        logging_steps=int(t.logging_steps),
        train_sampling_strategy="group_by_length" if t.group_by_length else "random",
        # per-row weights reach compute_loss only if the Trainer keeps the column
        remove_unused_columns=not weighted_rows,
        seed=int(cfg.seed),
        data_seed=int(cfg.seed),
        use_cpu=not _has_accelerator(),
        report_to="none",
        disable_tqdm=False,
        dataloader_num_workers=0,
    )


def _train_info(state: Any, result: Any, train_s: float, n_rows: int, t: Any, limit: Any) -> dict[str, Any]:
    """What run.json records of the training loop: time, steps, speed, the validation history."""
    seen = state.global_step * int(t.batch_size) * int(t.gradient_accumulation_steps)
    return {
        "train_seconds": round(train_s, 2),
        "steps": int(state.global_step),
        "epochs_run": round(float(state.epoch or 0), 3),
        "train_examples_per_s": round(min(seen, n_rows * math.ceil(state.epoch or 1)) / train_s, 2)
        if train_s > 0
        else None,
        "trainer_samples_per_second": result.metrics.get("train_samples_per_second"),
        "best_validation_macro_f1": state.best_metric,
        "best_checkpoint_step": _step_of(state.best_model_checkpoint),
        "stopped_by_time_limit": bool(limit is not None and limit.hit),
        "validation_history": [
            {"step": h["step"], "epoch": round(h["epoch"], 3), "macro_f1": h["eval_macro_f1"]}
            for h in state.log_history
            if "eval_macro_f1" in h
        ],
    }


def fit_transformer(
    cfg: Any,
    train_rows: Any,
    valid_rows: Any | None,
    work_dir: str | Path,
) -> tuple[Any, dict[str, Any]]:
    """Fine-tune ``cfg.model`` on ``train_rows`` (Datasets in the row schema).

    With ``valid_rows``: evaluate each epoch (or ``train.eval_steps``), stop early on validation
    macro-F1 and keep the best checkpoint; without: train the full budget. Checkpoints go to a
    temporary folder under ``work_dir``, removed afterwards. Returns (TransformerClassifier, info).
    """
    from transformers import DataCollatorWithPadding, EarlyStoppingCallback
    from transformers.trainer_callback import ProgressCallback

    m, t = cfg.model, cfg.train
    check_input_format(m.input_format)
    markers, other_markers = check_markers(m)
    import transformers

    transformers.set_seed(int(cfg.seed))  # the new classifier head's initialisation
    distill = check_distill(cfg)
    teachers = teacher_dirs(t.distill_from) if distill is not None else None
    if float(t.name_swap) > 0:  # before the teachers score them: soft labels for the text trained on
        train_rows = swap_target_names(train_rows, float(t.name_swap), int(cfg.seed))
    if distill is not None and teachers:  # the teachers' soft labels, computed once through the prediction engine
        cache = Path(str(cfg.data.processed_dir)) / ".teacher-probs"
        train_rows = add_soft_labels(train_rows, teachers, distill[1], int(t.eval_batch_size), cache_dir=cache)
    model, tokenizer, block = load_for_training(cfg, markers, teachers, other_markers)
    enc = dict(
        input_format=block["input_format"],
        max_length=block["max_length"],
        markers=tuple(block["markers"]),
        other_markers=tuple(block.get("other_markers") or ()),
    )
    train_ds = encode_dataset(train_rows, tokenizer, **enc)
    valid_ds = encode_dataset(valid_rows, tokenizer, **enc) if valid_rows is not None and len(valid_rows) else None

    ckpt = Path(tempfile.mkdtemp(prefix=".checkpoints-", dir=work_dir))
    strategy = "no" if valid_ds is None else ("steps" if t.eval_steps > 0 else "epoch")
    args = training_arguments(
        cfg, ckpt, strategy, weighted_rows=bool({"sample_weight", SOFT_LABELS} & set(train_ds.column_names))
    )
    weights = class_weights(train_rows["label"]) if t.class_weights else None
    trainer_cls = _weighted_trainer(weights, float(t.label_smoothing), distill, float(t.rdrop_alpha))
    optimizer = None
    if float(t.layer_lr_decay) != 1.0:
        from transformers import Trainer

        opt_cls, opt_kwargs = Trainer.get_optimizer_cls_and_kwargs(args, model)
        groups = layerwise_groups(model, float(t.learning_rate), float(t.layer_lr_decay), float(t.weight_decay))
        optimizer = (opt_cls, {**opt_kwargs, "params": groups})
    callbacks = (
        [EarlyStoppingCallback(early_stopping_patience=int(t.early_stopping_patience))] if valid_ds is not None else []
    )
    trainer = trainer_cls(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=valid_ds,
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=_eval_metric,
        callbacks=callbacks,
        optimizer_cls_and_kwargs=optimizer,
    )
    limit = _time_limit(float(t.time_limit_minutes)) if t.time_limit_minutes and t.time_limit_minutes > 0 else None
    if limit is not None:
        trainer.add_callback(limit)
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(_concise_progress())
    t0 = time.perf_counter()
    try:
        result = trainer.train()
    finally:
        shutil.rmtree(ckpt, ignore_errors=True)
    train_s = time.perf_counter() - t0
    info = _train_info(trainer.state, result, train_s, len(train_ds), t, limit)
    model = trainer.model.to("cpu")
    return TransformerClassifier(model, tokenizer, batch_size=int(t.eval_batch_size), **enc), info


def _value(option: Any) -> str:
    """An Enum config value as its string (plain strings pass through)."""
    return str(getattr(option, "value", option))


def _step_of(checkpoint: str | None) -> int | None:
    if not checkpoint:
        return None
    try:
        return int(str(checkpoint).rstrip("/").rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return None


def _has_accelerator() -> bool:
    import torch

    return bool(torch.cuda.is_available())
