"""Peak memory of ``python -m stance.score`` as the corpus grows (it should stay flat).

    .venv/bin/python benchmarks/score_memory.py                       # 1,000 and 20,000 articles
    .venv/bin/python benchmarks/score_memory.py --sizes 1000 5000 --model RUN/model

Articles are generated from shuffled seed paragraphs (benchmarks/score_corpus.py, 1-3
paragraphs each) into a temporary folder; each size is scored by a fresh
``python -m stance.score`` process and its peak resident set size is read from the kernel
(``os.wait4`` rusage of that child: exact, no sampling). The default model is the tiny random
BERT of tests/conftest.py (the model adds a constant to the peak, the corpus must not add a
slope); ``--model`` measures a real one.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO / "tests"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 20000])
    ap.add_argument("--model", default=None, help="model dir (default: a tiny random BERT)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--extra", nargs="*", default=[], help="further overrides for stance.score")
    a = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from score_corpus import make_corpus

    tmp = Path(tempfile.mkdtemp(prefix="score-memory-"))
    if a.model:
        model_dir, model_desc = Path(a.model), a.model
    else:
        from conftest import make_tiny_model

        model_dir = make_tiny_model(tmp / "tiny-model")
        model_desc = "tiny random BERT (tests/conftest.py make_tiny_model: 2 layers, hidden 32)"
    print(f"model: {model_desc}; threads {a.threads}")
    results = []
    for n in a.sizes:
        corpus = make_corpus(tmp / f"articles-{n}", n, seed=n, paragraphs=(1, 3))
        out = tmp / f"out-{n}"
        cmd = [
            sys.executable,
            "-m",
            "stance.score",
            f"model_dir={model_dir}",
            f"input={corpus}",
            f"output_dir={out}",
            f"score.threads={a.threads}",
            *a.extra,
        ]
        log_path = tmp / f"score-{n}.log"
        t0 = time.perf_counter()
        # the log goes to a file: a pipe nobody reads while waiting would fill up and block the child
        with log_path.open("w") as log:
            proc = subprocess.Popen(
                cmd,
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "OMP_NUM_THREADS": str(a.threads)},
            )
            _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        err = log_path.read_text(errors="replace")
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"stance.score failed for {n} articles:\n{err[-3000:]}")
        run = json.loads((out / "run.json").read_text())
        peak_mib = usage.ru_maxrss / 1024  # Linux: KiB
        c = run["counts"]
        results.append({"articles": n, "mentions": c["mentions"], "peak_rss_mib": peak_mib, "wall_s": wall})
        print(
            f"{n:>6} articles: {c['mentions']:>7} mentions, {c['articles_no_actor']} without actors, "
            f"{len(list((out / 'mentions').glob('part-*.parquet')))} parts; peak RSS {peak_mib:.0f} MiB; "
            f"{wall:.0f} s ({run['throughput']['sentences_per_s']:.0f} sentences/s, "
            f"{run['throughput']['articles_per_s']:.1f} articles/s)",
            flush=True,
        )
    if len(results) > 1:
        first, last = results[0], results[-1]
        print(
            f"peak RSS {last['articles']} vs {first['articles']} articles: {last['peak_rss_mib']:.0f} vs "
            f"{first['peak_rss_mib']:.0f} MiB ({last['peak_rss_mib'] / first['peak_rss_mib']:.2f}x for "
            f"{last['articles'] / first['articles']:.0f}x the articles)"
        )


if __name__ == "__main__":
    main()
