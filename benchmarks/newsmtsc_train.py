"""NewsMTSC benchmark: fine-tune the default model with ``stance.train`` on NewsMTSC train, select on
dev_rw, report macro-F1 on dev_rw and dev_mt, training wall time and training examples/s.

    .venv/bin/python benchmarks/newsmtsc_train.py                        # markers, 3 epochs, batch 32, lr 1e-4
    .venv/bin/python benchmarks/newsmtsc_train.py --input-format pair    # the pair input, same budget
    .venv/bin/python benchmarks/newsmtsc_train.py --epochs 2 --extra train.time_limit_minutes=40

It runs the same ``run_training`` as ``python -m stance.train data=newsmtsc ...`` (the equivalent
command line is printed), writes the usual run dir to ``--out`` (model in ``--out/model``) and a
``bench.json`` summary there. NewsMTSC is read from ../shared/newsmtsc (never copied); its test
splits are held out and never used.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input-format", default="markers", choices=["markers", "pair", "both"])
    ap.add_argument("--epochs", type=float, default=3.0)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-4)  # best dev_rw of 5e-5 and 1e-4 (3 epochs)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--max-steps", type=int, default=-1)
    ap.add_argument(
        "--eval-steps",
        type=int,
        default=137,
        help="validate on dev_rw every N steps (0: every epoch); 137 = half an epoch at batch 32",
    )
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--source", default=str(REPO.parent / "shared" / "newsmtsc"))
    ap.add_argument("--out", default=None, help="run dir (default bench-out/newsmtsc-<input-format>)")
    ap.add_argument("--extra", nargs="*", default=[], help="further Hydra overrides")
    a = ap.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    from hydra import compose, initialize_config_dir

    from stance.data.dataset import ensure_dataset
    from stance.modeling.training import run_training

    out = Path(a.out or REPO / "bench-out" / f"newsmtsc-{a.input_format}")
    overrides = [
        "data=newsmtsc",
        f"data.source={a.source}",
        f"model.input_format={a.input_format}",
        f"model.max_length={a.max_length}",
        f"train.epochs={a.epochs}",
        f"train.batch_size={a.batch_size}",
        f"train.learning_rate={a.lr}",
        f"train.max_steps={a.max_steps}",
        f"train.eval_steps={a.eval_steps}",
        "train.logging_steps=50",
        "train.class_weights=false",  # NewsMTSC train is class-balanced by its authors
        f"threads={a.threads}",
        f"seed={a.seed}",
        *a.extra,
    ]
    print("equivalent: python -m stance.train " + " ".join(overrides) + f" hydra.run.dir={out}", flush=True)
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    data = ensure_dataset(cfg)
    t0 = time.perf_counter()
    value = run_training(cfg, output_dir=out, data=data)
    wall = time.perf_counter() - t0
    metrics = json.loads((out / "metrics.json").read_text())
    run = json.loads((out / "run.json").read_text())
    summary = {
        "input_format": a.input_format,
        "dev_rw_macro_f1": metrics.get("validation_macro_f1"),
        "dev_rw_macro_f1_ci": [metrics.get("validation_macro_f1_ci_low"), metrics.get("validation_macro_f1_ci_high")],
        "dev_rw_f1_pn": metrics.get("validation_f1_pn"),
        "dev_mt_macro_f1": metrics.get("validation_mt_macro_f1"),
        "dev_mt_f1_pn": metrics.get("validation_mt_f1_pn"),
        "train_wall_s": run["training"]["train_seconds"],
        "train_examples_per_s": run["training"]["train_examples_per_s"],
        "epochs_run": run["training"]["epochs_run"],
        "best_checkpoint_step": run["training"]["best_checkpoint_step"],
        "steps": run["training"]["steps"],
        "run_wall_s": round(wall, 1),
        "threads": run["threads"],
        "load_average_1m_at_end": os.getloadavg()[0],
        "settings": overrides,
        "selected_on": "dev_rw (validation) macro-F1",
        "returned": value,
    }
    (out / "bench.json").write_text(json.dumps(summary, indent=2) + "\n")
    for k in ("dev_rw_macro_f1", "dev_mt_macro_f1", "train_wall_s", "train_examples_per_s", "epochs_run"):
        print(f"{k}: {summary[k]}", flush=True)


if __name__ == "__main__":
    main()
