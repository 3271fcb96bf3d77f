"""``python -m stance.score``: score new articles in batch with a trained model.

    python -m stance.score model_dir=RUN/model input=PATH output_dir=OUT

A thin Hydra main over :func:`stance.scoring.engine.run_scoring` (its module docstring describes
the outputs and resumption).
"""

from __future__ import annotations

from typing import Any

import hydra

from stance.config import CONFIG_DIR
from stance.errors import reports_errors
from stance.scoring.engine import run_scoring


@hydra.main(config_path=CONFIG_DIR, config_name="score", version_base="1.3")
@reports_errors("stance.score")
def main(cfg: Any) -> None:
    """``python -m stance.score model_dir=RUN/model input=PATH output_dir=OUT``."""
    run_scoring(cfg)


if __name__ == "__main__":
    main()
