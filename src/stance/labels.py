"""The one source of the label set and its maps."""

from __future__ import annotations

from stance.errors import StanceError

LABELS: tuple[str, ...] = ("supportive", "critical", "neutral")
LABEL2ID: dict[str, int] = {label: i for i, label in enumerate(LABELS)}
ID2LABEL: dict[int, str] = dict(enumerate(LABELS))

# NewsMTSC polarity (-1 negative, 0 neutral, 1 positive) toward the target.
NEWSMTSC_POLARITY: dict[int, str] = {1: "supportive", -1: "critical", 0: "neutral"}

# The two polar labels: NewsMTSC also reports F1 averaged over these only.
POLAR_LABELS: tuple[str, ...] = ("supportive", "critical")


def check_label(label: str, where: str = "") -> str:
    """Return ``label`` stripped and lower-cased, or raise a StanceError naming ``where``."""
    norm = str(label).strip().lower()
    if norm not in LABEL2ID:
        prefix = f"{where}: " if where else ""
        raise StanceError(f"{prefix}unknown label {label!r} (expected one of {', '.join(LABELS)})")
    return norm
