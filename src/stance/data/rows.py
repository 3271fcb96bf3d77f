"""The one row schema: every (sentence, actor) row of a dataset split or a scoring run.

``PAIR_COLUMNS`` are the columns ``stance.text.pairs.article_pairs`` fills (meta columns follow);
``FEATURES`` adds ``label``, ``group`` and ``fold`` for datasets; :func:`mention_schema` is the
same row as a pyarrow schema for ``stance.score``'s mention parts (predicted label and
probabilities instead of gold label, group and fold). docs/ARCHITECTURE.md, "Dataset rows".
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import datasets
import pyarrow as pa

from stance.errors import StanceError
from stance.labels import LABEL2ID, LABELS

# (name, type) of each pair column; "mentions" is the list of {actor_id, mention, start, end}
_PAIR_SPEC: tuple[tuple[str, str], ...] = (
    ("example_id", "string"),
    ("article_id", "string"),
    ("sentence_idx", "int32"),
    ("sentence", "string"),
    ("actor_id", "string"),
    ("actor_name", "string"),
    ("mention", "string"),
    ("mention_start", "int32"),
    ("mention_end", "int32"),
    ("other_mentions", "mentions"),
)
_MENTION_SPEC: tuple[tuple[str, str], ...] = (
    ("actor_id", "string"),
    ("mention", "string"),
    ("start", "int32"),
    ("end", "int32"),
)
PAIR_COLUMNS: tuple[str, ...] = tuple(name for name, _ in _PAIR_SPEC)

_MENTION = datasets.Features({name: datasets.Value(kind) for name, kind in _MENTION_SPEC})
FEATURES = datasets.Features(
    {
        **{name: datasets.List(_MENTION) if kind == "mentions" else datasets.Value(kind) for name, kind in _PAIR_SPEC},
        "label": datasets.ClassLabel(names=list(LABELS)),
        "group": datasets.Value("string"),
        "fold": datasets.Value("int32"),
    }
)


def make_features(meta_columns: Iterable[str] = ()) -> datasets.Features:
    """FEATURES plus one string column per meta column (in the given order)."""
    feats = datasets.Features(dict(FEATURES))
    for col in meta_columns:
        if col in FEATURES:
            raise StanceError(f"input.meta_columns: {col!r} is already a dataset column")
        feats[col] = datasets.Value("string")
    return feats


def to_dataset(rows: list[dict[str, Any]], features: datasets.Features) -> datasets.Dataset:
    """Rows (``label`` as a label name) -> a Dataset with ``features``."""
    encoded = [{**r, "label": LABEL2ID[r["label"]]} for r in rows]
    if not encoded:
        return datasets.Dataset.from_dict({k: [] for k in features}, features=features)
    return datasets.Dataset.from_list(encoded, features=features)


def corpus_row(
    example_id: str,
    article_id: str,
    sentence_idx: int,
    sentence: str,
    actor: tuple[str, str],
    span: tuple[str, int, int],
    label: str,
) -> dict[str, Any]:
    """A row of an external corpus: one labelled (sentence, target), ``other_mentions`` empty (the
    loader fills them with the sentence's other labelled targets).

    ``actor`` is (actor_id, actor_name); ``span`` is (mention, start, end) in ``sentence``.
    """
    mention, start, end = span
    values: tuple[Any, ...] = (
        example_id,
        article_id,
        sentence_idx,
        sentence,
        actor[0],
        actor[1],
        mention,
        start,
        end,
        [],
    )
    return {**dict(zip(PAIR_COLUMNS, values)), "label": label}


def mention_schema(meta_columns: Sequence[str], labels: Sequence[str]) -> pa.Schema:
    """The pyarrow schema of a scored mention row: ids, meta columns, the pair columns, the predicted
    ``label``, ``prob_<label>`` per label and ``low_confidence``."""

    def arrow(kind: str) -> pa.DataType:
        if kind == "mentions":
            return pa.list_(pa.struct([(n, arrow(k)) for n, k in _MENTION_SPEC]))
        return pa.int32() if kind == "int32" else pa.string()

    head, rest = _PAIR_SPEC[:2], _PAIR_SPEC[2:]
    fields = [(n, arrow(k)) for n, k in head] + [(m, pa.string()) for m in meta_columns]
    fields += [(n, arrow(k)) for n, k in rest] + [("label", pa.string())]
    fields += [(f"prob_{lab}", pa.float32()) for lab in labels] + [("low_confidence", pa.bool_())]
    return pa.schema(fields)


def label_names(features: Any) -> tuple[str, ...] | None:
    """The ClassLabel names of a Dataset's ``label`` column (None when it has none)."""
    feat = getattr(features, "get", lambda _k: None)("label")
    names = getattr(feat, "names", None)
    return tuple(names) if names is not None else None


def check_data_labels(features: Any, where: str) -> None:
    """The data's label set must be LABELS in order (ids are compared, not names)."""
    names = label_names(features)
    if names is None:
        raise StanceError(f"{where}: dataset has no labels (no 'label' column)")
    if tuple(n.lower() for n in names) != LABELS:
        raise StanceError(
            f"{where}: data labels ({', '.join(names)}) do not match the model's label set ({', '.join(LABELS)})"
        )


@contextlib.contextmanager
def quiet_datasets() -> Iterator[None]:
    """Silence the ``datasets`` progress bars (one per tiny split or file is noise) for a block."""
    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if bars:
            datasets.enable_progress_bars()
