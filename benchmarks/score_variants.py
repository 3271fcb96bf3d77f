"""Faster scoring variants: speed, peak memory, size on disk and macro-F1 cost, on the same pairs.

    .venv/bin/python benchmarks/score_variants.py --model RUN/model [--student RUN2/model] --limit 150

Variants (each in a fresh subprocess, so its peak resident memory is its own):

  pipeline-1   ``transformers.pipeline`` fed one pair at a time (the first ``--one-limit`` pairs)
  pipeline-b   the same pipeline, ``batch_size=--batch-size``
  fp32         stance's engine (``TransformerClassifier.predict_proba``), torch fp32: the reference
  onnx-fp32    ONNX Runtime fp32 (``score.backend=onnx``)
  onnx-int8    ONNX Runtime int8, static per-channel, calibrated (``score.precision=int8 score.backend=onnx``)
  student-fp32 the 3-layer student (``--student``; without it: the model's layers 0, 2, 4 built by
               ``stance.modeling.distill.build_student``, untrained: its speed is a student's, its
               quality is not)
  student-int8 the student on ONNX Runtime int8

Pairs: the first ``--limit`` rows of NewsMTSC dev_rw and dev_mt relabelled under the guideline
(``validation`` / ``validation_mt`` of data/processed/newsmtsc-stance: ``data=newsmtsc
data.labels=stance``) and of the seed pairs (all splits of data/processed/seed). Speed is pairs/s
over all of them (model loading and the one-off ONNX export/quantisation excluded); macro-F1 per set
and its change in points against fp32; ratios against pipeline-1. ``--json`` writes the numbers,
``--markdown`` the README table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
SETS = {"dev_rw": ("newsmtsc-stance", ["validation"]), "dev_mt": ("newsmtsc-stance", ["validation_mt"])}
SETS["seed"] = ("seed", ["train", "validation", "test"])


def load_sets(limit: int) -> dict[str, list[dict]]:
    from stance.data.dataset import load_built

    out = {}
    for name, (data, splits) in SETS.items():
        built = load_built(REPO / "data" / "processed" / data)
        rows = [r for s in splits for r in built[s]]
        out[name] = rows[:limit] if limit else rows
    return out


def model_bytes(path: Path) -> int:
    return sum(
        f.stat().st_size for f in path.iterdir() if f.is_file() and f.suffix in (".safetensors", ".bin", ".onnx")
    )


def run_variant(a: argparse.Namespace) -> None:
    """One variant in this process: prints one JSON line (probabilities, pairs/s, peak RSS, size)."""
    import numpy as np
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    torch.set_num_threads(a.threads)
    sets = load_sets(a.limit)
    rows = [r for v in sets.values() for r in v]
    model = Path(a.student if a.variant.startswith("student") else a.model)
    size = model_bytes(model)
    if a.variant.startswith("pipeline"):
        from transformers import pipeline

        from stance.modeling.encoding import format_example
        from stance.modeling.models import load_classifier

        c = load_classifier(model)
        texts = [format_example(r, c.input_format, c.markers).text for r in rows]
        pipe = pipeline("text-classification", model=str(model), device=-1, truncation=True, max_length=c.max_length)
        if a.variant == "pipeline-1":
            texts = texts[: a.one_limit]
            pipe(texts[0])
            t0 = time.perf_counter()
            for t in texts:
                pipe(t)
        else:
            pipe(texts[:8], batch_size=a.batch_size)
            t0 = time.perf_counter()
            pipe(texts, batch_size=a.batch_size)
        speed, probs = len(texts) / (time.perf_counter() - t0), None
    else:
        from stance.modeling.models import load_classifier

        precision = "int8" if a.variant.endswith("int8") else "fp32"
        backend = "onnx" if a.variant.startswith("onnx") or a.variant == "student-int8" else "torch"
        c = load_classifier(model, precision=precision, backend=backend, threads=a.threads, cache_dir=a.cache)
        if backend == "onnx":
            onnx = sorted(Path(a.cache).glob("*.int8-*.onnx" if precision == "int8" else "*[0-9a-f].onnx"))
            size = max(f.stat().st_size for f in onnx)  # the file the session runs
        c.predict_proba(rows[:8], a.batch_size)
        t0 = time.perf_counter()
        p = c.predict_proba(rows, a.batch_size, sort_window=None)
        speed, probs = len(rows) / (time.perf_counter() - t0), np.asarray(p).tolist()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(
        json.dumps({"variant": a.variant, "pairs_per_s": speed, "peak_bytes": peak, "size_bytes": size, "probs": probs})
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--student", default=None, help="a trained student's model/ (default: built untrained)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--limit", type=int, default=150, help="rows per set (0: all)")
    ap.add_argument("--one-limit", type=int, default=100, help="pairs fed one at a time to pipeline-1")
    ap.add_argument("--variant", default=None, help=argparse.SUPPRESS)  # internal: one variant
    ap.add_argument("--cache", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--json", default=None)
    ap.add_argument("--markdown", default=None)
    a = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if a.variant:
        return run_variant(a)
    tmp = Path(tempfile.mkdtemp(prefix="score-variants-"))
    untrained = a.student is None
    if untrained:
        from stance.modeling.distill import build_student

        a.student = str(build_student(a.model, [0, 2, 4], tmp / "student"))
    results = {}
    base = [sys.executable, __file__, "--model", a.model, "--student", a.student, "--threads", str(a.threads)]
    base += ["--batch-size", str(a.batch_size), "--limit", str(a.limit), "--one-limit", str(a.one_limit)]
    for v in ("pipeline-1", "pipeline-b", "fp32", "onnx-fp32", "onnx-int8", "student-fp32", "student-int8"):
        cache = tmp / ("cache-student" if v.startswith("student") else "cache")
        out = subprocess.run([*base, "--variant", v, "--cache", str(cache)], capture_output=True, text=True)
        if out.returncode:  # the variant's own error, not just "returned non-zero exit status"
            raise SystemExit(f"variant {v} failed:\n{out.stderr.strip()[-2000:]}")
        results[v] = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{v}: {results[v]['pairs_per_s']:.1f} pairs/s", flush=True)
    report(a, results, untrained)


def report(a: argparse.Namespace, results: dict, untrained: bool) -> None:
    import numpy as np

    from stance.analysis.metrics import macro_f1

    sets = load_sets(a.limit)
    gold = {k: np.array([int(r["label"]) for r in v]) for k, v in sets.items()}
    bounds, n = {}, 0
    for k, v in sets.items():
        bounds[k], n = (n, n + len(v)), n + len(v)
    ref = np.asarray(results["fp32"]["probs"])
    one = results["pipeline-1"]["pairs_per_s"]
    head = "| variant | pairs/s | x pipeline one at a time | peak memory (MiB) | model on disk (MB) | "
    head += " | ".join(f"{k} macro-F1 (change, pt)" for k in sets) + " |"
    lines = [head, "|" + "---|" * (5 + len(sets))]
    summary = {}
    for v, r in results.items():
        cells = []
        if r["probs"] is not None:
            p = np.asarray(r["probs"])
            for k, (i, j) in bounds.items():
                f1, f0 = macro_f1(gold[k], p[i:j].argmax(1)), macro_f1(gold[k], ref[i:j].argmax(1))
                cells.append(f"{f1:.3f} ({100 * (f1 - f0):+.1f})")
                summary.setdefault(v, {})[k] = {"macro_f1": f1, "delta_pt": 100 * (f1 - f0)}
        else:
            cells = ["(= fp32 model)"] * len(sets)
        name = f"{v} (untrained)" if untrained and v.startswith("student") else v
        lines.append(
            f"| {name} | {r['pairs_per_s']:.1f} | {r['pairs_per_s'] / one:.2f}x | {r['peak_bytes'] / 2**20:.0f} | "
            f"{r['size_bytes'] / 1e6:.1f} | " + " | ".join(cells) + " |"
        )
        summary.setdefault(v, {}).update(
            {"pairs_per_s": r["pairs_per_s"], "peak_bytes": r["peak_bytes"], "size_bytes": r["size_bytes"]}
        )
    note = (
        f"\nmodel {a.model}; student {a.student}{' (untrained)' if untrained else ''}; {a.threads} thread(s); "
        f"{sum(len(v) for v in sets.values())} pairs ({', '.join(f'{k} {len(v)}' for k, v in sets.items())}); "
        f"pipeline-1 on the first {a.one_limit}; load average {os.getloadavg()[0]:.1f} at the end"
    )
    table = "\n".join(lines) + "\n" + note + "\n"
    print(table)
    if a.markdown:
        Path(a.markdown).write_text(table)
    if a.json:
        Path(a.json).write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
