"""``python -m stance.score``: score new articles in batch with a trained model.

    python -m stance.score model_dir=RUN/model input=PATH output_dir=OUT

A thin Hydra main over :func:`stance.scoring.engine.run_scoring` (its module docstring describes
the outputs and resumption).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig

from stance.config import CONFIG_DIR
from stance.errors import StanceError, reports_errors
from stance.overrides import input_shorthand
from stance.scoring.engine import run_scoring


@hydra.main(config_path=CONFIG_DIR, config_name="score", version_base="1.3")
@reports_errors("stance.score")
def _main(cfg: Any) -> None:
    try:
        run_scoring(cfg)
    except StanceError:
        # refused before any work: Hydra's run folder (OUT/.hydra-runs/<time>) must not be left behind
        _remove_hydra_run_dir()
        raise


def _remove_hydra_run_dir() -> None:
    """Remove this run's Hydra folder, then ``.hydra-runs`` and the output folder if that left them empty."""
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    shutil.rmtree(run_dir, ignore_errors=True)
    for parent in (run_dir.parent, run_dir.parent.parent):
        if parent.name and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()


@reports_errors("stance.score")  # outside Hydra too: configuration errors, one line, exit status 2
def main() -> None:
    """``python -m stance.score model_dir=RUN/model input=PATH output_dir=OUT``.

    ``input=PATH`` is shorthand for ``input.paths=['PATH']`` (``input`` is a typed InputConfig).
    """
    sys.argv[1:] = input_shorthand(sys.argv[1:])
    _main()


if __name__ == "__main__":
    main()
