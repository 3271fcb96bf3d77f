"""``python -m stance.evaluate``: score a saved model on labelled data and write the evaluation files.

    python -m stance.evaluate model_dir=outputs/train/<run>/model                 # data=seed, split=test
    python -m stance.evaluate model_dir=RUN/model split=all                       # every split of the data
    python -m stance.evaluate model_dir=RUN/model data=newsmtsc split=validation
    python -m stance.evaluate model_dir=RUN/model file=../shared/newsmtsc/dev_mt.jsonl

Writes ``metrics.json``, ``predictions.jsonl``, ``misclassified.jsonl``, ``confusion_matrix.png``
and ``report.md`` in its run dir (:mod:`stance.analysis.report`, shared with ``stance.train``).
A thin Hydra main over :func:`stance.modeling.evaluation.run_evaluation`.
"""

from __future__ import annotations

from typing import Any

import hydra

from stance.config import CONFIG_DIR, check_keys
from stance.errors import reports_errors
from stance.modeling.evaluation import run_evaluation


@hydra.main(config_path=CONFIG_DIR, config_name="evaluate", version_base="1.3")
@reports_errors("stance.evaluate")
def _main(cfg: Any) -> float:
    check_keys(cfg)  # a key added with + (+train.epoch=2) fails here, before any work
    metrics = run_evaluation(cfg)
    name = next(k for k in metrics if k.endswith("_macro_f1"))
    return float(metrics[name])


@reports_errors("stance.evaluate")  # outside Hydra too: configuration errors, one line, exit status 2
def main() -> None:
    """``python -m stance.evaluate [key=value ...]``."""
    _main()


if __name__ == "__main__":
    main()
