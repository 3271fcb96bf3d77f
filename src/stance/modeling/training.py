"""Training: fine-tune (or fit a baseline) on a built dataset, evaluate it, write the run's artifacts.

``run_training(cfg)`` returns the validation macro-F1 (the CV mean with ``eval.cv_folds``), never a
test score, so a Hydra sweeper can optimise it without looking at the test split. The run dir gets
the fixed artifacts of docs/ARCHITECTURE.md: model/, metrics.json, predictions.jsonl,
misclassified.jsonl, confusion_matrix.png, report.md, run.json.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import datasets
import numpy as np
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict
from sklearn.model_selection import StratifiedGroupKFold

from stance.analysis.calibration import expected_calibration_error, fit_temperature
from stance.analysis.metrics import actor_metrics, compute_metrics, macro_f1
from stance.analysis.report import evaluate_rows, examples_hash, log_metrics, prediction_rows, write_evaluation
from stance.config import to_container
from stance.data.dataset import ensure_dataset
from stance.data.rows import check_data_labels
from stance.errors import StanceError
from stance.io import write_json, write_jsonl
from stance.labels import LABELS
from stance.modeling.distill import SOFT_LABELS, add_soft_labels, check_distill, distill_loss, keep_layers
from stance.modeling.encoding import check_input_format, encode_dataset
from stance.modeling.models import TransformerClassifier, load_transformer, make_baseline, save_model

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


def _weighted_trainer(weights: list[float] | None, smoothing: float, distill: tuple[float, float] | None = None) -> Any:
    import torch
    from transformers import Trainer

    class WeightedTrainer(Trainer):
        """Cross-entropy with optional class weights, label smoothing and per-row weights."""

        def compute_loss(
            self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
        ) -> Any:  # noqa: E501
            labels = inputs.pop("labels")
            rows = inputs.pop("sample_weight", None)
            soft = inputs.pop(SOFT_LABELS, None)  # the teacher's probabilities (train.distill_from)
            outputs = model(**inputs)
            w = torch.tensor(weights, dtype=outputs.logits.dtype, device=outputs.logits.device) if weights else None
            if soft is not None and distill is not None:
                loss = distill_loss(outputs.logits, labels, soft, w, smoothing, *distill)
            elif rows is None:
                loss = torch.nn.functional.cross_entropy(outputs.logits, labels, weight=w, label_smoothing=smoothing)
            else:
                # the weighted mean cross_entropy takes, with each row's weight as a further factor
                per_row = torch.nn.functional.cross_entropy(
                    outputs.logits, labels, weight=w, label_smoothing=smoothing, reduction="none"
                )
                rows = rows.to(per_row.dtype)
                norm = rows * (w[labels] if w is not None else 1.0)
                loss = (per_row * rows).sum() / norm.sum().clamp_min(1e-12)
            return (loss, outputs) if return_outputs else loss

    return WeightedTrainer


def _eval_metric(pred: Any) -> dict[str, float]:
    logits = pred.predictions[0] if isinstance(pred.predictions, tuple) else pred.predictions
    return {"macro_f1": macro_f1(pred.label_ids, np.argmax(logits, axis=1))}


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
    from transformers import DataCollatorWithPadding, EarlyStoppingCallback, TrainingArguments
    from transformers.trainer_callback import ProgressCallback

    m, t = cfg.model, cfg.train
    check_input_format(m.input_format)
    markers = tuple(m.markers)
    if len(markers) != 2 or not all(str(x).strip() for x in markers):
        raise StanceError(f"model.markers must be two non-empty strings, got {list(markers)}")
    import transformers

    transformers.set_seed(int(cfg.seed))  # the new classifier head's initialisation
    distill = check_distill(cfg)
    if distill is not None:  # the teacher's soft labels, computed once through the prediction engine
        train_rows = add_soft_labels(train_rows, _distill_teacher(t.distill_from), distill[1], int(t.eval_batch_size))
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
        base_model = block.get("base_model", m.name_or_path)
        log.info(
            "model.init_from=%s: fine-tuning it (input %s, max_length %d, markers %s)",
            init_from,
            input_format,
            max_length,
            markers,
        )
    model.config.stance = {
        "input_format": input_format,
        "max_length": max_length,
        "markers": list(markers),
        "base_model": base_model,
        **({"init_from": init_from} if init_from else {}),
        **({"layers_kept": [int(i) for i in m.layers]} if m.get("layers") else {}),
        **({"distilled_from": _distill_teacher(t.distill_from)} if distill is not None else {}),
    }
    enc = dict(input_format=input_format, max_length=max_length, markers=markers)
    train_ds = encode_dataset(train_rows, tokenizer, **enc)
    valid_ds = encode_dataset(valid_rows, tokenizer, **enc) if valid_rows is not None and len(valid_rows) else None

    ckpt = Path(tempfile.mkdtemp(prefix=".checkpoints-", dir=work_dir))
    strategy = "no" if valid_ds is None else ("steps" if t.eval_steps > 0 else "epoch")
    args = TrainingArguments(
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
        save_steps=t.eval_steps or None,
        save_total_limit=1,  # the best checkpoint is always kept with load_best_model_at_end
        save_only_model=True,  # no optimizer state: 1/3 of the disk and time per checkpoint
        load_best_model_at_end=valid_ds is not None,
        metric_for_best_model="macro_f1",
        greater_is_better=True,
        logging_strategy="steps",
        logging_steps=int(t.logging_steps),
        train_sampling_strategy="group_by_length" if t.group_by_length else "random",
        # per-row weights reach compute_loss only if the Trainer keeps the column
        remove_unused_columns=not {"sample_weight", SOFT_LABELS} & set(train_ds.column_names),
        seed=int(cfg.seed),
        data_seed=int(cfg.seed),
        use_cpu=not _has_accelerator(),
        report_to="none",
        disable_tqdm=False,
        dataloader_num_workers=0,
    )
    weights = class_weights(train_rows["label"]) if t.class_weights else None
    trainer_cls = _weighted_trainer(weights, float(t.label_smoothing), distill)
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
    state = trainer.state
    seen = state.global_step * int(t.batch_size) * int(t.gradient_accumulation_steps)
    info = {
        "train_seconds": round(train_s, 2),
        "steps": int(state.global_step),
        "epochs_run": round(float(state.epoch or 0), 3),
        "train_examples_per_s": round(min(seen, len(train_ds) * math.ceil(state.epoch or 1)) / train_s, 2)
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
    model = trainer.model.to("cpu")
    return TransformerClassifier(model, tokenizer, input_format, max_length, markers, int(t.eval_batch_size)), info


def _value(option: Any) -> str:
    """An Enum config value as its string (plain strings pass through)."""
    return str(getattr(option, "value", option))


REQUIRED = "<required>"


def init_model_dir(init_from: Any) -> str | None:
    """``model.init_from`` as a saved stance model folder (a run dir means its ``model/``), or None.

    One-line StanceError for a missing folder or a folder that is not a fine-tuned stance model
    (a baseline, or a base checkpoint without the ``stance`` block and label maps)."""
    if init_from is None or not str(init_from).strip():
        return None
    if str(init_from) == REQUIRED:  # a recipe's placeholder (OmegaConf ignores ??? when merging onto a default)
        raise StanceError(
            "model.init_from: missing (+experiment=adapt needs the trained model to start from: model.init_from=RUN/model)"
        )
    path = Path(str(init_from)).expanduser()
    if (path / "model" / "config.json").is_file():
        path = path / "model"
    config = path / "config.json"
    if not config.is_file():
        raise StanceError(
            f"model.init_from={init_from}: no config.json there (expected a stance.train run's model/ folder)"
        )
    if '"stance"' not in config.read_text(encoding="utf-8"):
        raise StanceError(
            f"model.init_from={init_from}: not a fine-tuned stance model (no 'stance' block in config.json); "
            "use model.name_or_path for a base checkpoint"
        )
    return str(path)


def _distill_teacher(distill_from: Any) -> str:
    """``train.distill_from`` as the teacher's model folder (a run dir means its ``model/``)."""
    if str(distill_from) == REQUIRED:
        raise StanceError(
            "train.distill_from: missing (+experiment=distill needs the teacher: train.distill_from=RUN/model)"
        )
    path = init_model_dir(distill_from)
    assert path is not None  # distill_from is set (check_distill)
    return path


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


def fit_model(cfg: Any, train_rows: Any, valid_rows: Any | None, work_dir: str | Path) -> tuple[Any, dict[str, Any]]:
    """Fit ``cfg.model`` (transformer or baseline) on the train rows; returns (classifier, info)."""
    if cfg.model.kind == "transformer":
        return fit_transformer(cfg, train_rows, valid_rows, work_dir)
    t0 = time.perf_counter()
    model = make_baseline(cfg.model.kind, cfg.model.context_chars, cfg.model.C, cfg.seed)
    model.fit(train_rows.to_list(), train_rows["label"])
    s = time.perf_counter() - t0
    return model, {
        "train_seconds": round(s, 3),
        "train_examples_per_s": round(len(train_rows) / s, 1) if s > 0 else None,
    }


def add_mix(cfg: Any, data: Any) -> Any:
    """``data`` with ``cfg.mix.data``'s train rows added to its train split, every train row
    weighted (own rows 1, added rows ``cfg.mix.weight``); validation and test stay ``data``'s own."""
    weight = float(cfg.mix.weight)
    if not weight > 0:
        raise StanceError(f"mix.weight must be positive, got {cfg.mix.weight}")
    mix_cfg = cfg.copy()
    with open_dict(mix_cfg):  # the mixed dataset replaces data whole (a merge would mix their files)
        mix_cfg.data = cfg.mix.data
        mix_cfg.mix = None
    if mix_cfg.data.name == cfg.data.name:
        raise StanceError(
            f"mix.data.name={cfg.mix.data.name!r} is this run's own dataset: give the mixed dataset its own name"
        )
    added = ensure_dataset(mix_cfg)["train"]
    own = data["train"]
    common = [c for c in own.column_names if c in added.column_names]
    added = added.select_columns(common).cast(own.select_columns(common).features)
    merged = datasets.concatenate_datasets([own.select_columns(common), added])
    merged = merged.add_column("sample_weight", [1.0] * len(own) + [weight] * len(added))
    log.info(
        "mix: %d own train rows (weight 1) + %d rows of %s (weight %g)", len(own), len(added), cfg.mix.data.name, weight
    )
    out = datasets.DatasetDict(dict(data))
    out["train"] = merged
    return out


def calibrate(classifier: Any, rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Fit the softmax temperature on validation rows and store it with the model (its ``stance``
    block, saved with it); predictions do not change, probabilities do. Returns the temperature
    and the validation ECE before calibration (the after-figure is the split's ``_ece``)."""
    classifier.temperature = 1.0
    probs = classifier.predict_proba(rows)
    labels = np.asarray([int(r["label"]) for r in rows])
    # log-probabilities are the logits up to a per-row constant, which softmax ignores
    temperature = fit_temperature(np.log(np.clip(probs.astype(np.float64), 1e-12, None)), labels)
    # rounded as saved, so this run's metrics and a reload of the model agree exactly
    classifier.temperature = round(temperature, 6)
    classifier.model.config.stance = {
        **dict(classifier.model.config.stance or {}),
        "temperature": classifier.temperature,
    }
    log.info("calibration: temperature %.3f fitted on %d validation rows", temperature, len(rows))
    return {
        "temperature": classifier.temperature,
        "validation_ece_uncalibrated": expected_calibration_error(probs, labels),
    }


# --- cross-validation --------------------------------------------------------------------------
def cv_folds(rows: Any, k: int, seed: int) -> np.ndarray:
    """Fold index per row: the dataset's ``fold`` column when it has exactly ``k`` folds, else
    StratifiedGroupKFold on ``group`` (a group never spans two folds)."""
    if "fold" in rows.column_names:
        folds = np.asarray(rows["fold"])
        if len(set(folds.tolist())) == k:
            _, inv = np.unique(folds, return_inverse=True)
            return inv
    groups = rows["group"] if "group" in rows.column_names else rows["example_id"]
    n_groups = len(set(groups))
    if n_groups < k:
        raise StanceError(f"eval.cv_folds={k} but the data has only {n_groups} groups")
    out = np.zeros(len(rows), dtype=int)
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    for i, (_, held) in enumerate(splitter.split(np.zeros(len(rows)), rows["label"], groups)):
        out[held] = i
    return out


def run_cv(cfg: Any, rows: Any, work_dir: Path) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Grouped K-fold CV over ``rows`` (train + validation; test is never used): each fold trains
    the full budget (no early stopping: the held-out fold is not peeked at) and predicts its held-out
    rows. Returns (``cv_<metric>_mean``/``_std`` + pooled ``cv_oof_*``, out-of-fold predictions)."""
    k = int(cfg.eval.cv_folds)
    folds = cv_folds(rows, k, int(cfg.seed))
    per_fold: list[dict[str, float]] = []
    probs = np.zeros((len(rows), len(LABELS)), dtype=np.float32)
    for i in range(k):
        held = np.flatnonzero(folds == i)
        train_idx = np.flatnonzero(folds != i)
        log.info("CV fold %d/%d: %d train, %d held out", i + 1, k, len(train_idx), len(held))
        clf, _ = fit_model(cfg, rows.select(train_idx), None, work_dir)
        held_rows = rows.select(held).to_list()
        m, p = evaluate_rows(clf, held_rows, prefix="", bootstrap=0, seed=cfg.seed)
        probs[held] = p
        per_fold.append(m)
        log.info("CV fold %d/%d: macro-F1 %.4f", i + 1, k, m.get("macro_f1", float("nan")))
    out: dict[str, float] = {}
    for key in per_fold[0]:
        vals = np.array([f[key] for f in per_fold if key in f], dtype=float)
        out[f"cv_{key}_mean"] = float(vals.mean())
        out[f"cv_{key}_std"] = float(vals.std(ddof=1)) if len(vals) > 1 else 0.0
    all_rows = rows.to_list()
    y_true = [int(r["label"]) for r in all_rows]
    pooled = compute_metrics(y_true, probs.argmax(axis=1), prefix="cv_oof", bootstrap=cfg.eval.bootstrap, seed=cfg.seed)
    out.update(pooled)
    oof = prediction_rows(all_rows, probs)
    for rec, f in zip(oof, folds):
        rec["fold"] = int(f)
    return out, oof


# --- the run -----------------------------------------------------------------------------------
def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _order_splits(names: Sequence[str]) -> list[str]:
    first = [s for s in ("validation", "test") if s in names]
    return first + [s for s in names if s not in first and s != "train"]


def run_training(cfg: Any, output_dir: str | Path | None = None, data: Any | None = None) -> float:
    """Train ``cfg.model`` on ``cfg.data`` (built first if absent), evaluate, write the artifacts.

    ``data`` (a DatasetDict in the row schema) replaces ``ensure_dataset(cfg)`` (tests, benchmarks).
    Returns the validation macro-F1, or ``cv_macro_f1_mean`` when ``eval.cv_folds`` > 1.
    """
    if output_dir is None:
        output_dir = HydraConfig.get().runtime.output_dir
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    record: dict[str, Any] = {
        "status": "running",
        "started_at": _now(),
        "seed": int(cfg.seed),
        "model": {
            "kind": cfg.model.kind,
            "name_or_path": cfg.model.name_or_path,
            "input_format": cfg.model.input_format,
        },
        "data": cfg.data.name,
        "output_dir": str(out),
        "pid": os.getpid(),
    }
    write_json(out / "run.json", record)
    _terminate_as_exception()
    try:
        value = _run(cfg, out, data, record, t_start)
    except BaseException as err:
        record.update(status="failed", finished_at=_now(), error=f"{type(err).__name__}: {err}".splitlines()[0])
        write_json(out / "run.json", record)
        raise
    return value


def _run(cfg: Any, out: Path, data: Any | None, record: dict[str, Any], t_start: float) -> float:
    setup_runtime(int(cfg.seed), int(cfg.threads))
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    if data is None:
        data = ensure_dataset(cfg)
    if cfg.get("mix") is not None:
        data = add_mix(cfg, data)
    timings["data_s"] = round(time.perf_counter() - t0, 2)
    where = f"dataset {cfg.data.name}"
    if "train" not in data or len(data["train"]) == 0:
        raise StanceError(f"{where}: no training examples (split 'train' is missing or empty)")
    for name in data:
        check_data_labels(data[name].features, f"{where} split {name}")
    splits = [s for s in _order_splits(list(data.keys())) if len(data[s]) > 0]
    has_valid = "validation" in splits
    record["counts"] = {name: len(data[name]) for name in data}
    log.info("data %s: %s", cfg.data.name, ", ".join(f"{k} {v}" for k, v in record["counts"].items()))

    metrics: dict[str, float] = {}
    cv_k = int(cfg.eval.cv_folds)
    if cv_k == 1 or cv_k < 0:
        raise StanceError(f"eval.cv_folds must be 0 (off) or at least 2, got {cv_k}")
    if cv_k > 1:
        t0 = time.perf_counter()
        pool_names = [s for s in ("train", "validation") if s in data]
        pool = datasets.concatenate_datasets([data[s] for s in pool_names])
        cv_metrics, oof = run_cv(cfg, pool, out)
        metrics.update(cv_metrics)
        write_jsonl(out / "cv_predictions.jsonl", oof)
        timings["cv_s"] = round(time.perf_counter() - t0, 2)
        log.info(
            "CV (%d folds over %s): macro-F1 %.4f ± %.4f",
            cv_k,
            "+".join(pool_names),
            metrics["cv_macro_f1_mean"],
            metrics["cv_macro_f1_std"],
        )

    t0 = time.perf_counter()
    classifier, info = fit_model(cfg, data["train"], data["validation"] if has_valid else None, out)
    timings["train_s"] = round(time.perf_counter() - t0, 2)
    if cfg.train.calibrate and has_valid and getattr(classifier, "kind", "") == "transformer":
        metrics.update(calibrate(classifier, data["validation"].to_list()))
    save_model(classifier, out / "model")

    t0 = time.perf_counter()
    focus = "test" if "test" in splits else (splits[0] if splits else None)
    focus_rows: list[dict[str, Any]] = []
    focus_probs = np.zeros((0, len(LABELS)))
    for s in splits:
        rows = data[s].to_list()
        m, p = evaluate_rows(classifier, rows, prefix=s, bootstrap=int(cfg.eval.bootstrap), seed=int(cfg.seed))
        metrics.update(m)
        if s == focus:
            focus_rows, focus_probs = rows, p
            metrics.update(
                actor_metrics([r["label"] for r in rows], p.argmax(axis=1), [r["actor_id"] for r in rows], s)
            )
    timings["eval_s"] = round(time.perf_counter() - t0, 2)

    if cv_k > 1:
        primary_name = "cv_macro_f1_mean"
    elif has_valid:
        primary_name = "validation_macro_f1"
    else:
        primary_name = None
        log.warning("no validation split: the returned value is NaN (nothing to select on)")
    primary = float(metrics[primary_name]) if primary_name else float("nan")

    notes = [
        f"model: `{cfg.model.name_or_path}` ({cfg.model.kind}, input {cfg.model.input_format}), seed {cfg.seed}",
        f"data: `{cfg.data.name}` ({', '.join(f'{k} {v}' for k, v in record['counts'].items())})",
        f"primary metric: {primary_name} = {primary:.4f}"
        if primary_name
        else "primary metric: none (no validation split)",
    ]
    if focus:
        write_evaluation(
            out,
            metrics,
            focus,
            focus_rows,
            focus_probs,
            f"Training run {out.name}",
            splits + (["cv_oof"] if cv_k > 1 else []),
            notes,
        )
    else:
        write_json(out / "metrics.json", metrics)
    log_metrics(metrics, splits)

    timings["total_s"] = round(time.perf_counter() - t_start, 2)
    record.update(
        status="completed",
        finished_at=_now(),
        primary_metric={"name": primary_name, "value": primary},
        test_data_hash=examples_hash(focus_rows) if focus_rows else None,
        predictions_split=focus,
        timings=timings,
        train_examples_per_s=info.get("train_examples_per_s"),
        training=info,
        threads=_threads(),
        config=to_container(cfg),
    )
    write_json(out / "run.json", record)
    log.info("%s = %.4f; artifacts in %s", primary_name, primary, out)
    return primary


def _terminate_as_exception() -> None:
    """Turn SIGTERM (kill, a scheduler's time-out) into an exception, so a killed run still records
    status "failed" and removes its temporary checkpoints."""
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum: int, frame: Any) -> None:
        raise SystemExit(f"terminated by signal {signum}")

    signal.signal(signal.SIGTERM, handler)


def _threads() -> int:
    import torch

    return int(torch.get_num_threads())
