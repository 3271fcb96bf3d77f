"""Scoring precision options: macro-F1 change and speed of fp32 / int8 / bf16 (and ONNX Runtime fp32).

    .venv/bin/python benchmarks/score_precision.py                       # the NewsMTSC-trained model
    .venv/bin/python benchmarks/score_precision.py --model RUN/model --threads 2

Every option scores the same labelled (sentence, actor) rows through ``stance.score``'s own
``TransformerClassifier.predict_proba`` (stance.modeling.inference: length-sorted batches, the training encoding):

* the seed pairs (all splits of ``data/processed/seed``: the model never saw them when it was
  trained on NewsMTSC);
* NewsMTSC dev_rw and dev_mt (``validation`` / ``validation_mt`` of ``data/processed/newsmtsc``,
  built by ``python -m stance.build data=newsmtsc``; the test splits are never used).

Reported per set: macro-F1, its change against fp32 in points, label agreement with fp32, the
largest probability difference and sentences/s (options run back to back on each set, so their
speed ratios share the machine's load). bf16 runs on a seeded subset of ``--bf16-limit`` rows
per set when the CPU has no native bfloat16 (it is emulated and very slow there); its F1 change
is then against fp32 on the same subset.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(REPO / "bench-out" / "newsmtsc-markers" / "model"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--bf16-limit", type=int, default=60)
    ap.add_argument("--limit", type=int, default=0, help="rows per set (0: all)")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(level=logging.WARNING)
    import torch
    from transformers.utils import logging as hf_logging

    from stance.analysis.metrics import macro_f1
    from stance.data.dataset import load_built
    from stance.labels import LABELS
    from stance.modeling.inference import native_bf16
    from stance.modeling.models import load_classifier

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    torch.set_num_threads(a.threads)
    seed = load_built(REPO / "data" / "processed" / "seed")
    news = load_built(REPO / "data" / "processed" / "newsmtsc")
    sets = {
        "seed pairs (all splits)": [r for split in seed.values() for r in split],
        "NewsMTSC dev_rw": list(news["validation"]),
        "NewsMTSC dev_mt": list(news["validation_mt"]),
    }
    if a.limit:
        sets = {k: v[: a.limit] for k, v in sets.items()}
    options = [("fp32", "torch"), ("int8", "torch"), ("bf16", "torch")]
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401

        options.append(("fp32", "onnx"))
    except ImportError:
        print("(onnxruntime/onnx not installed: the onnx backend is not measured)")
    models = {opt: load_classifier(a.model, precision=opt[0], threads=a.threads, backend=opt[1]) for opt in options}
    native = native_bf16()
    print(f"model {a.model}; {a.threads} thread(s); native bf16: {native}; load average {os.getloadavg()[0]:.1f}")
    report: dict[str, dict[str, dict[str, float]]] = {}
    for name, rows in sets.items():
        gold = np.array([int(r["label"]) for r in rows])
        probs: dict[tuple[str, str], np.ndarray] = {}
        speed: dict[tuple[str, str], float] = {}
        sub = sorted(random.Random(0).sample(range(len(rows)), min(a.bf16_limit, len(rows))))
        for opt, sm in models.items():
            use = sub if (opt[0] == "bf16" and not native) else list(range(len(rows)))
            sm.predict_proba([rows[i] for i in use[:8]], a.batch_size)  # warm-up
            t0 = time.perf_counter()
            p = sm.predict_proba([rows[i] for i in use], a.batch_size)
            speed[opt] = len(use) / (time.perf_counter() - t0)
            probs[opt] = (np.array(use), p)
        _, base = probs[("fp32", "torch")]
        print(
            f"\n{name}: {len(rows)} rows (gold: "
            + ", ".join(f"{lab} {int((gold == i).sum())}" for i, lab in enumerate(LABELS))
            + ")"
        )
        report[name] = {}
        for opt in models:
            idx, p = probs[opt]
            ref = base[idx]
            f1 = macro_f1(gold[idx], p.argmax(1))
            ref_f1 = macro_f1(gold[idx], ref.argmax(1))
            agree = float((p.argmax(1) == ref.argmax(1)).mean())
            tag = f"{opt[0]}/{opt[1]}"
            subset = f" on {len(idx)}-row subset (fp32 there {ref_f1:.4f})" if len(idx) < len(rows) else ""
            print(
                f"  {tag:11s} macro-F1 {f1:.4f}  change {100 * (f1 - ref_f1):+.2f} pt{subset}; "
                f"agreement with fp32 {agree:.1%}; max |dprob| {np.abs(p - ref).max():.4f}; "
                f"{speed[opt]:.1f} sentences/s ({speed[opt] / speed[('fp32', 'torch')]:.2f}x fp32)"
            )
            report[name][tag] = {
                "macro_f1": f1,
                "delta_pt": 100 * (f1 - ref_f1),
                "agreement": agree,
                "rows": len(idx),
                "sentences_per_s": speed[opt],
            }
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")
    if a.json:
        Path(a.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
