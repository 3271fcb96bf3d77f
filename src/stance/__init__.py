"""stance: how news text portrays actors (supportive, critical or neutral), sentence by sentence."""

__version__ = "0.1.0"
