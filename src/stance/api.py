"""The Python API: a trained model as an object, for notebooks and scripts.

    from stance import StanceModel
    model = StanceModel.load("outputs/train/RUN")          # a run folder or its model/ folder
    model.predict("The council praised Becker for the budget.", actor="Becker")
    model.predict_frame(df)                                 # columns sentence + actor | mention | span
    model.score_articles(["Title\\nText ...", ...])           # the mentions table of stance.score

The same engine as ``stance.evaluate`` and ``stance.score``: rows are built by
:func:`stance.text.pairs.article_pairs` (articles) or here (one sentence and its target), and
classified by the loaded classifier's ``predict_proba`` (:mod:`stance.modeling.inference`), which
inserts the target markers itself and applies the saved temperature, so the probabilities are the
calibrated ones. A user never types ``<< >>``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from stance.config import CONFIG_DIR, TextConfig
from stance.data.rows import PAIR_COLUMNS
from stance.errors import StanceError
from stance.labels import LABELS
from stance.modeling.models import load_classifier
from stance.scoring.tables import mention_table
from stance.text.actors import ActorRegistry
from stance.text.articles import Article
from stance.text.pairs import article_pairs


@dataclass(frozen=True)
class Prediction:
    """One (sentence, target) classified: ``label``, ``probabilities`` (label -> p, calibrated),
    the target ``mention`` and its ``span`` in the sentence (end exclusive)."""

    label: str
    probabilities: dict[str, float]
    mention: str
    span: tuple[int, int]

    @property
    def confidence(self) -> float:
        return self.probabilities[self.label]


def model_folder(path: str | Path) -> Path:
    """``path`` itself when it holds a model, else its ``model/`` subfolder (a training run)."""
    p = Path(path).expanduser()
    if (p / "model").is_dir() and not (p / "config.json").exists() and not (p / "stance.json").exists():
        return p / "model"
    if not p.is_dir():
        raise StanceError(f"{path}: no such folder (expected a training run or its model/ folder)")
    return p


class StanceModel:
    """A loaded stance model with its actor registry and text settings (see the module docstring)."""

    def __init__(self, classifier: Any, registry: ActorRegistry, text: TextConfig, threshold: float = 0.5) -> None:
        self.classifier = classifier
        self.registry = registry
        self.text = text
        self.threshold = float(threshold)

    @classmethod
    def load(
        cls,
        run_or_model_dir: str | Path,
        actors: str | Path | Mapping[str, Any] | ActorRegistry | None = None,
        *,
        precision: str = "fp32",
        batch_size: int = 64,
        threshold: float = 0.5,
    ) -> StanceModel:
        """Load a model folder (or a run's ``model/``). ``actors``: a registry, a YAML path, a
        mapping like ``configs/actors/*.yaml``, or None for ``configs/actors/default.yaml``."""
        classifier = load_classifier(model_folder(run_or_model_dir), batch_size=batch_size, precision=precision)
        if isinstance(actors, ActorRegistry):
            registry = actors
        elif actors is None or isinstance(actors, (str, Path)):
            registry = ActorRegistry.from_yaml(actors or Path(CONFIG_DIR) / "actors" / "default.yaml")
        else:
            registry = ActorRegistry.from_config(actors)
        text = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(TextConfig), _text_defaults()))
        return cls(classifier, registry, text, threshold)  # type: ignore[arg-type]

    # --- one sentence --------------------------------------------------------------------------
    def target_row(
        self, sentence: str, actor: str | None = None, *, mention: str | None = None, span: Sequence[int] | None = None
    ) -> dict[str, Any]:
        """The model's input row for ``sentence`` with its target given by exactly one of ``actor``
        (an id, name or alias of the registry, or any name found in the sentence), ``mention``
        (text in the sentence; its first occurrence) or ``span`` ((start, end) characters)."""
        if sum(x is not None for x in (actor, mention, span)) != 1:
            raise StanceError("give exactly one of actor=, mention= or span= (the target in the sentence)")
        name = None
        if span is not None:
            start, end = int(span[0]), int(span[1])
            if not 0 <= start < end <= len(sentence):
                raise StanceError(f"span=({start}, {end}) is outside the sentence ({len(sentence)} characters)")
        elif mention is not None:
            start = sentence.find(mention)
            if start < 0 or not mention:
                raise StanceError(f"mention={mention!r} does not occur in the sentence")
            end = start + len(mention)
        else:
            start, end, name = self._find_actor(sentence, str(actor))
        return {
            "example_id": "api",
            "article_id": "api",
            "sentence_idx": 0,
            "sentence": sentence,
            "actor_id": "",
            "actor_name": name or sentence[start:end],
            "mention": sentence[start:end],
            "mention_start": start,
            "mention_end": end,
            "other_mentions": [],
        }

    def _find_actor(self, sentence: str, actor: str) -> tuple[int, int, str | None]:
        """(start, end, display name) of ``actor``'s first mention: a registered actor by any alias,
        else the literal name as a whole word (case-insensitive)."""
        known = self.registry.resolve(actor)
        if known is not None:
            for m in self.registry.find(sentence):
                if m.actor_id == known.id:
                    return m.start, m.end, known.name
        hit = re.search(rf"(?<!\w){re.escape(actor.strip())}(?!\w)", sentence, flags=re.IGNORECASE)
        if hit is None:
            raise StanceError(f"actor={actor!r}: not mentioned in the sentence (give mention= or span=)")
        return hit.start(), hit.end(), known.name if known is not None else None

    def predict(
        self, sentence: str, actor: str | None = None, *, mention: str | None = None, span: Sequence[int] | None = None
    ) -> Prediction:
        """The stance of ``sentence`` toward its target (see :meth:`target_row`)."""
        row = self.target_row(sentence, actor, mention=mention, span=span)
        probs = self.predict_proba([row])[0]
        return Prediction(
            label=LABELS[int(np.argmax(probs))],
            probabilities={lab: float(p) for lab, p in zip(LABELS, probs)},
            mention=row["mention"],
            span=(row["mention_start"], row["mention_end"]),
        )

    def predict_proba(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Calibrated probabilities (rows x LABELS) of rows in the dataset row schema."""
        return self.classifier.predict_proba(list(rows))

    # --- tables --------------------------------------------------------------------------------
    def predict_frame(self, df: pd.DataFrame) -> pd.DataFrame:
        """``df`` with ``label``, ``prob_<label>`` and ``low_confidence`` added. Each row's target:
        ``mention_start``/``mention_end`` if present, else ``mention``, else ``actor``."""
        if "sentence" not in df.columns:
            raise StanceError("predict_frame: the DataFrame needs a 'sentence' column")
        if not {"mention_start", "mention_end"} <= set(df.columns) and not {"mention", "actor"} & set(df.columns):
            raise StanceError("predict_frame: give the target as 'actor', 'mention' or 'mention_start'/'mention_end'")
        rows = []
        for i, rec in enumerate(df.to_dict(orient="records")):
            try:
                rows.append(self._frame_row(rec))
            except StanceError as err:
                raise StanceError(f"predict_frame: row {i}: {err}") from None
        probs = self.predict_proba(rows)
        out = df.copy()
        out["label"] = [LABELS[i] for i in probs.argmax(axis=1)] if len(rows) else []
        for j, lab in enumerate(LABELS):
            out[f"prob_{lab}"] = probs[:, j]
        out["low_confidence"] = probs.max(axis=1) < self.threshold if len(rows) else []
        return out

    def _frame_row(self, rec: Mapping[str, Any]) -> dict[str, Any]:
        sentence = str(rec["sentence"])
        if _given(rec.get("mention_start")) and _given(rec.get("mention_end")):
            return self.target_row(sentence, span=(int(rec["mention_start"]), int(rec["mention_end"])))
        if _given(rec.get("mention")):
            return self.target_row(sentence, mention=str(rec["mention"]))
        return self.target_row(sentence, actor=str(rec.get("actor") or ""))

    def score_articles(
        self, articles: str | Iterable[str] | pd.DataFrame, meta_columns: Sequence[str] = ()
    ) -> pd.DataFrame:
        """The mentions table of ``stance.score`` (one row per sentence x registered actor) for
        texts (the first line is the title) or a DataFrame with ``text`` (optional ``id``,
        ``title`` and the ``meta_columns``, e.g. outlet and date, passed through)."""
        meta = [m for m in meta_columns if m not in PAIR_COLUMNS]
        rows: list[dict[str, Any]] = []
        for art in _articles(articles, meta):
            rows.extend(article_pairs(art, self.registry, self.text))
        probs = self.predict_proba(rows) if rows else np.zeros((0, len(LABELS)), dtype=np.float32)
        return mention_table(rows, probs, LABELS, meta, self.threshold).to_pandas()


def _given(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and np.isnan(value)) and str(value) != ""


def _text_defaults() -> Any:
    """``configs/text/default.yaml``: the text settings scoring uses by default."""
    path = Path(CONFIG_DIR) / "text" / "default.yaml"
    return OmegaConf.load(path) if path.exists() else {}


def _articles(articles: str | Iterable[str] | pd.DataFrame, meta: Sequence[str]) -> Iterable[Article]:
    if isinstance(articles, str):
        articles = [articles]
    if isinstance(articles, pd.DataFrame):
        if "text" not in articles.columns:
            raise StanceError("score_articles: the DataFrame needs a 'text' column")
        missing = [m for m in meta if m not in articles.columns]
        if missing:
            raise StanceError(f"score_articles: meta column(s) {missing} are not in the DataFrame")
        for i, rec in enumerate(articles.to_dict(orient="records")):
            ident = str(rec.get("id", i))
            yield Article(ident, str(rec.get("title") or ""), str(rec["text"]), "api", {m: rec[m] for m in meta})
        return
    for i, text in enumerate(articles):
        title, _, body = str(text).partition("\n")
        yield Article(str(i), title.strip(), body, "api", {})
