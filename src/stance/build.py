"""``python -m stance.build``: build the labelled dataset and write it to ``data/processed/<name>/``.

python -m stance.build                                   # the seed articles + seed.csv
python -m stance.build data=newsmtsc data.source=../shared/newsmtsc
python -m stance.build data.input.paths=[my/articles] data.annotations=[my.csv] data.name=mine
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import hydra

from stance.config import CONFIG_DIR, check_keys
from stance.data.dataset import BuildResult, build, output_path, save_built
from stance.data.userdata import write_data_config, write_starter
from stance.errors import reports_errors
from stance.labels import LABELS

log = logging.getLogger(__name__)


def format_counts(result: BuildResult) -> str:
    """A split x label table of row counts, with totals."""
    labels = result.manifest["labels"]
    width = max([len(s) for s in labels] + [5])
    head = f"{'split':<{width}}  " + "  ".join(f"{y:>10}" for y in LABELS) + f"  {'total':>7}"
    lines = [head]
    for split, per_label in labels.items():
        cells = "  ".join(f"{per_label.get(y, 0):>10}" for y in LABELS)
        lines.append(f"{split:<{width}}  {cells}  {sum(per_label.values()):>7}")
    return "\n".join(lines)


def run_build(cfg: Any) -> tuple[Path, dict[str, Any]]:
    """Build the dataset of ``cfg`` (BuildConfig), write it atomically, print a summary.

    Returns (output folder, manifest). Nothing is written when the build fails.
    """
    result = build(cfg)
    path = save_built(result, output_path(cfg))
    m = result.manifest
    print(format_counts(result))
    if cfg.data.kind == "articles":
        print(
            f"{m['articles']} articles, {m['pairs']} (sentence, actor) pairs, {m['labelled']} labelled, "
            f"{m['unlabelled']} unlabelled, {m['stale_annotations']} stale annotations"
        )
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if result.unlabelled:
        print(f"annotation template: {path / 'unlabelled.csv'}", file=sys.stderr)
        starter = write_starter(result.unlabelled, list(cfg.data.annotations), str(cfg.data.name))
        if starter is not None:  # outside data/processed: a rebuild never deletes the user's labels
            print(
                f"fill the label column of {starter} in place (mention and neighbouring sentences included), "
                f"then add it: data.annotations=[...,{starter}]",
                file=sys.stderr,
            )
    print(f"wrote {path}")
    if not getattr(cfg, "output_dir", None):
        data_config = write_data_config(cfg)
        if data_config is not None:
            print(f"data config: {data_config}; train on this dataset: python -m stance.train data={cfg.data.name}")
    return path, m


@hydra.main(config_path=CONFIG_DIR, config_name="build", version_base="1.3")
@reports_errors("stance.build")
def _main(cfg: Any) -> None:
    check_keys(cfg)  # a key added with + (+train.epoch=2) fails here, before any work
    run_build(cfg)


@reports_errors("stance.build")  # outside Hydra too: configuration errors, one line, exit status 2
def main() -> None:
    """``python -m stance.build [key=value ...]``."""
    _main()


if __name__ == "__main__":
    main()
