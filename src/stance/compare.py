"""``python -m stance.compare PATH...``: rank training runs and sweeps in one table.

A thin argparse main over :mod:`stance.analysis.comparison` (its docstring states the contract):
prints the table and writes ``comparison.md``, ``comparison.csv`` and ``comparison.png``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from stance.analysis.comparison import (
    DEFAULT_METRICS,
    compare_runs,
    default_out,
    render_text,
    table,
    write_comparison,
)
from stance.errors import reports_errors

log = logging.getLogger("stance.compare")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m stance.compare",
        description="Rank training runs and sweeps: one table, seeds grouped, paired bootstrap vs the best.",
    )
    parser.add_argument("paths", nargs="+", help="sweep folders or run folders (searched recursively)")
    parser.add_argument("--metric", default="test_macro_f1", help="sort by this metric (higher is better)")
    parser.add_argument(
        "--metrics", nargs="+", default=list(DEFAULT_METRICS), help="metrics to show (absent ones are dropped)"
    )
    parser.add_argument("--allow-mixed-test-data", action="store_true", help="rank runs with different test data")
    parser.add_argument("--out", type=Path, help="folder for comparison.md/.csv/.png (default: common parent)")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (0: no significance)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    return parser


@reports_errors("stance.compare")
def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: print the table and write comparison.md/.csv/.png."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s] %(message)s", stream=sys.stderr)
    comp = compare_runs(
        args.paths,
        metric=args.metric,
        metrics=args.metrics,
        allow_mixed_test_data=args.allow_mixed_test_data,
        bootstrap=args.bootstrap,
        seed=args.seed,
    )
    header, body = table(comp)
    print(render_text(header, body))
    out = args.out or default_out(args.paths)
    written = write_comparison(comp, out)
    log.info("wrote %s", ", ".join(str(p) for p in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
