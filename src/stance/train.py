"""``python -m stance.train``: fine-tune (or fit a baseline) on a built dataset and evaluate it.

    python -m stance.train                                   # packaged MiniLM on the seed data
    python -m stance.train model=tfidf_lr                    # a baseline, same artifacts
    python -m stance.train eval.cv_folds=5                   # grouped 5-fold CV + the final model
    python -m stance.train data=newsmtsc train.epochs=3 train.batch_size=32

A thin Hydra main over :func:`stance.modeling.training.run_training`, which returns the validation
macro-F1 (the CV mean with ``eval.cv_folds``) so a Hydra sweeper can optimise it.
"""

from __future__ import annotations

from typing import Any

import hydra

from stance.config import CONFIG_DIR, check_keys
from stance.errors import reports_errors
from stance.modeling.settings import check_training
from stance.modeling.training import run_training


@hydra.main(config_path=CONFIG_DIR, config_name="train", version_base="1.3")
@reports_errors("stance.train")
def _main(cfg: Any) -> float:
    check_keys(cfg)  # a key added with + (+train.epoch=2) fails here, before any work
    check_training(cfg)  # before any data or model is loaded
    return run_training(cfg)


@reports_errors("stance.train")  # outside Hydra too: configuration errors, one line, exit status 2
def main() -> None:
    """``python -m stance.train [key=value ...]``."""
    _main()


if __name__ == "__main__":
    main()
