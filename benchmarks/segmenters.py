"""Compare sentence-splitting backends on the hard cases; print accuracy and relative speed.

Usage: ``python benchmarks/segmenters.py [--cases tests/data/segmentation_cases.jsonl] [--repeat 20]``

Accuracy: the share of cases whose sentences all match the expected ones exactly (and the
failing case ids). Speed: seconds to split the seed article ``--repeat`` times, also as a ratio
to the fastest backend, all measured in this one run.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from stance.config import SegmentConfig
from stance.text.segment import BACKENDS, split_sentences

REPO = Path(__file__).resolve().parents[1]


def load_cases(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=Path, default=REPO / "tests/data/segmentation_cases.jsonl")
    parser.add_argument("--text", type=Path, default=REPO / "seeds/000_8c7c1d6cabef915e.txt")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    cases = load_cases(args.cases)
    text = args.text.read_text(encoding="utf-8")
    rows = []
    for backend, fix in [(b, f) for b in BACKENDS for f in (False, True)]:
        cfg = SegmentConfig(backend=backend, fix_titles=fix)
        backend = f"{backend}+fix" if fix else backend
        split_sentences("Warm up. Twice.", cfg)  # import and build the backend outside the timing
        failed = [c["id"] for c in cases if [s.text for s in split_sentences(c["text"], cfg)] != c["sentences"]]
        t0 = time.perf_counter()
        for _ in range(args.repeat):
            n = len(split_sentences(text, cfg))
        secs = time.perf_counter() - t0
        rows.append((backend, len(cases) - len(failed), failed, secs, n))
    fastest = min(r[3] for r in rows)
    print(f"{len(cases)} cases ({args.cases.name}); speed: {args.text.name} x{args.repeat}")
    print(f"{'backend':<14} {'exact':>7} {'accuracy':>8} {'seconds':>8} {'x fastest':>9} {'sents':>5}")
    for backend, ok, _failed, secs, n in rows:
        print(
            f"{backend:<14} {ok:>3}/{len(cases):<3} {ok / len(cases):>8.3f} {secs:>8.3f} {secs / fastest:>9.1f} {n:>5}"
        )
    for backend, _, failed, _, _ in rows:
        print(f"{backend} misses: {', '.join(failed) or '-'}")


if __name__ == "__main__":
    main()
