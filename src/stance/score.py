"""``python -m stance.score``: score new articles in batch with a trained model.

    python -m stance.score model_dir=RUN/model input=PATH output_dir=OUT

A thin Hydra main over :func:`stance.scoring.engine.run_scoring` (its module docstring describes
the outputs and resumption).
"""

from __future__ import annotations

import sys
from typing import Any

import hydra

from stance.config import CONFIG_DIR, input_shorthand
from stance.errors import reports_errors
from stance.scoring.engine import run_scoring


@hydra.main(config_path=CONFIG_DIR, config_name="score", version_base="1.3")
@reports_errors("stance.score")
def _main(cfg: Any) -> None:
    run_scoring(cfg)


def main() -> None:
    """``python -m stance.score model_dir=RUN/model input=PATH output_dir=OUT``.

    ``input=PATH`` is shorthand for ``input.paths=['PATH']`` (``input`` is a typed InputConfig).
    """
    sys.argv[1:] = input_shorthand(sys.argv[1:])
    _main()


if __name__ == "__main__":
    main()
