"""stance: how news text portrays actors (supportive, critical or neutral), sentence by sentence."""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"
__all__ = ["StanceModel", "__version__"]


def __getattr__(name: str) -> Any:
    # ``from stance import StanceModel`` loads the API (pandas, the model code) on first use only:
    # ``import stance`` and the entry points stay light (PEP 562)
    if name == "StanceModel":
        return importlib.import_module("stance.api").StanceModel
    raise AttributeError(f"module 'stance' has no attribute {name!r}")
