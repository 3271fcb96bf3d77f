"""External labelled corpora in the dataset row schema: NewsMTSC and generic CSV/JSONL files.

Both keep labelled (sentence, target) rows as they come: no article cleaning or segmentation;
``other_mentions`` are the other labelled targets of the same sentence (NewsMTSC-mt sentences carry
several: a model with ``model.other_markers`` marks them apart from the target). ``group`` is the normalised sentence (``stance.data.splits.loose_key``
family) and ``fold`` a grouped, stratified k-fold assignment over all rows.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import datasets

from stance.data.annotations import apply_reference_labels, read_reference_labels
from stance.data.download import resolve_source
from stance.data.rows import corpus_row, quiet_datasets
from stance.data.splits import add_groups, check_split_config, finish_splits, split_rows
from stance.errors import StanceError
from stance.io import is_url, read_csv_rows
from stance.labels import NEWSMTSC_POLARITY, check_label
from stance.text.actors import ActorRegistry

log = logging.getLogger(__name__)

# NewsMTSC ids: <article>_<sentence index>_<target as named in the article>_<from>_<to>
# (allsides_3447_1422_11_Ted Cruz_88_92, polusa_v1_59488606_-1_30_Dr. Sidney J. Blair_1_3)
_NEWSMTSC_ID = re.compile(r"^(?P<article>[A-Za-z]+(?:_v\d+)?_\d+_-?\d+)_(?P<sent>\d+)_(?P<target>.+)_\d+_\d+$", re.S)
NEWSMTSC_FIELDS: tuple[str, ...] = ("sentence", "mention", "from", "to", "polarity", "id")


def resolve_files(data: Any, source: str | None = None) -> dict[str, str]:
    """{split: path or URL} of ``data.files``, each relative to ``data.source`` unless absolute.

    A split whose file is empty is left out (``data.files.validation_mt=''``: Hydra merges dict
    overrides, so a split cannot be deleted). Local files must exist (StanceError naming the
    missing file and its config key).
    """
    if not data.files:
        raise StanceError(f"data.files: no files given for data.kind={data.kind} (e.g. data.files.train=FILE)")
    if source is None:
        source = resolve_source(str(data.source or ""), allow_download=bool(data.download))
    out: dict[str, str] = {}
    for split, name in data.files.items():
        name = "" if name is None else str(name).strip()
        if not name:
            continue
        if is_url(name) or Path(name).is_absolute() or not source:
            path = name
        elif is_url(source):
            path = source.rstrip("/") + "/" + name.lstrip("/")
        else:
            path = str(Path(source) / name)
        if not is_url(path) and not Path(path).is_file():
            raise StanceError(f"{path}: no such file (data.files.{split}, data.source={source!r})")
        out[str(split)] = path
    if not out:
        raise StanceError(f"data.files: every file name is empty for data.kind={data.kind}")
    return out


def normalise_name(name: str) -> str:
    """A free-text actor name as an id: NFKC, case-folded, possessive and edge punctuation dropped,
    inner whitespace as ``_`` ("President Trump's" -> "president_trump")."""
    text = unicodedata.normalize("NFKC", name).replace("\u2019", "'").casefold().strip()
    text = re.sub(r"'s?$", "", text)
    text = re.sub(r"^\W+|\W+$", "", text)
    return re.sub(r"\s+", "_", text) or "unknown"


def _actor(registry: Any, *names: str) -> tuple[str, str]:
    """(actor_id, actor_name): the first name the registry resolves, else the normalised first name."""
    for name in names:
        if name:
            actor = registry.resolve(name.strip())
            if actor is None and name.strip().endswith(("'s", "\u2019s")):
                actor = registry.resolve(name.strip()[:-2])
            if actor is not None:
                return actor.id, actor.name
    first = next((n for n in names if n and n.strip()), "")
    return normalise_name(first), first.strip()


# --- NewsMTSC ----------------------------------------------------------------------------------
def newsmtsc_row(rec: dict[str, Any], where: str, registry: Any) -> dict[str, Any]:
    """One NewsMTSC record -> a dataset row (label name in ``label``); StanceError for a bad one."""
    # datasets fills a field a row lacks with None (its columns are the union over all rows)
    absent = [f for f in NEWSMTSC_FIELDS if rec.get(f) is None]
    if absent:
        raise StanceError(
            f"{where}: missing field(s) {', '.join(absent)} (a NewsMTSC row has {', '.join(NEWSMTSC_FIELDS)})"
        )
    polarity = rec.get("polarity")
    try:
        label = NEWSMTSC_POLARITY[int(polarity)]  # type: ignore[arg-type]
    except (TypeError, ValueError, KeyError):
        raise StanceError(f"{where}: polarity {polarity!r} is not -1, 0 or 1") from None
    sentence, mention = str(rec["sentence"] or ""), str(rec["mention"] or "")
    start, end = rec["from"], rec["to"]
    if not isinstance(start, int) or not isinstance(end, int) or sentence[start:end] != mention or not mention:
        raise StanceError(f"{where}: from/to ({start}, {end}) do not span the mention {mention!r} in the sentence")
    ex_id = str(rec["id"])
    m = _NEWSMTSC_ID.match(ex_id)
    # the id names the target as the article does ("Reality Leigh Winner" for the mention "She"):
    # a better actor key than a pronoun when the registry knows neither
    target = m["target"] if m else ""
    actor_id, actor_name = _actor(registry, mention, target)
    if target and registry.resolve(mention) is None and registry.resolve(target) is None:
        actor_id, actor_name = normalise_name(target), target.strip()
    article_id, sentence_idx = (m["article"], int(m["sent"])) if m else (ex_id, -1)
    return corpus_row(ex_id, article_id, sentence_idx, sentence, (actor_id, actor_name), (mention, start, end), label)


def add_co_targets(rows: list[dict[str, Any]]) -> None:
    """Fill each row's ``other_mentions`` with the other labelled targets of its sentence (same
    ``article_id`` and text; a span labelled twice counts once), in place."""
    by_sentence: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_sentence[(row["article_id"], row["sentence"])].append(row)
    for group in by_sentence.values():
        if len(group) < 2:
            continue
        spans = {(r["mention_start"], r["mention_end"]): r for r in reversed(group)}  # the first row per span
        for row in group:
            here = (row["mention_start"], row["mention_end"])
            row["other_mentions"] = [
                {"actor_id": o["actor_id"], "mention": o["mention"], "start": s, "end": e}
                for (s, e), o in sorted(spans.items())
                if (s, e) != here
            ]


def json_lines(path: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of a local JSONL file; StanceError
    ``file:line: ...`` for a line that is not a JSON object, for undecodable bytes or an empty file."""
    empty = True
    try:
        with open(path, encoding="utf-8-sig") as fh:
            for line, text in enumerate(fh, 1):
                if not text.strip():
                    continue
                empty = False
                try:
                    rec = json.loads(text)
                except ValueError as err:
                    raise StanceError(f"{path}:{line}: not valid JSON ({err})") from None
                if not isinstance(rec, dict):
                    raise StanceError(f"{path}:{line}: expected a JSON object, got {type(rec).__name__}")
                yield line, rec
    except UnicodeDecodeError as err:
        raise StanceError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    if empty:
        raise StanceError(f"{path}: empty file")


def check_json_lines(path: str) -> None:
    """Raise StanceError ``file:line: ...`` for the first bad line of a local JSONL file."""
    for _ in json_lines(path):
        pass


def load_newsmtsc(data: Any, registry: Any) -> datasets.DatasetDict:
    """NewsMTSC JSONL files (``data.files``: split -> file under ``data.source``) as a DatasetDict.

    ``data.source`` is a local folder or an http(s) base URL; files are read with
    ``datasets.load_dataset("json")``, which handles both. The given splits are kept. Polarity
    -1/0/1 -> critical/neutral/supportive; ``example_id`` is the NewsMTSC id; ``actor_id`` is the
    registry actor when the mention (or the id's target name) resolves, else the normalised target.
    """
    check_split_config(data.split)
    splits: dict[str, list[dict[str, Any]]] = {}
    # the corpus split each loaded split comes from (validation <- dev_rw.jsonl): by-reference labels name it
    origins: dict[str, str] = {}
    for split, path in resolve_files(data).items():
        origins[split] = Path(path.rsplit("/", 1)[-1]).stem
        if not is_url(path):
            check_json_lines(path)  # exact file:line errors before datasets' own (row-less) ones
        try:
            with quiet_datasets():
                ds = datasets.load_dataset("json", data_files={"data": path}, split="data")
        except Exception as err:  # datasets wraps JSON, network and schema errors differently
            message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise StanceError(f"{path}: cannot read as NewsMTSC JSON lines ({message})") from None
        missing = [f for f in NEWSMTSC_FIELDS if f not in ds.column_names]
        if missing:
            raise StanceError(
                f"{path}: missing field(s) {', '.join(missing)} (NewsMTSC has {', '.join(NEWSMTSC_FIELDS)})"
            )
        # row i is line i + 1: NewsMTSC files have no blank lines
        splits[split] = [newsmtsc_row(rec, f"{path}:{i + 1}", registry) for i, rec in enumerate(ds.to_list())]
        add_co_targets(splits[split])  # before relabelling: a target without a stance label is still there
        log.info("%s: %d rows (%s)", path, len(splits[split]), split)
    if str(data.labels) != "corpus":
        labels = read_reference_labels(list(data.label_files), "newsmtsc")
        splits = apply_reference_labels(splits, origins, labels, str(data.labels))
        log.info("data.labels=%s: %s", data.labels, ", ".join(f"{s} {len(r)}" for s, r in splits.items()))
    return finish_splits(splits, data.split.folds, data.split.seed)


# --- generic labelled CSV/JSONL ----------------------------------------------------------------
def labelled_records(path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(file:line, record) of a labelled .csv or .jsonl file (local or URL)."""
    suffix = Path(path.split("?")[0]).suffix.lower()
    if suffix not in (".csv", ".jsonl", ".json"):
        raise StanceError(f"{path}: unsupported file type {suffix or '(none)'!r} (expected .csv or .jsonl)")
    if is_url(path):
        with quiet_datasets():
            ds = datasets.load_dataset("csv" if suffix == ".csv" else "json", data_files={"data": path}, split="data")
        offset = 2 if suffix == ".csv" else 1
        for i, rec in enumerate(ds.to_list()):
            yield f"{path}:{i + offset}", rec
        return
    if suffix == ".csv":
        for line, row in read_csv_rows(Path(path), ()):
            yield f"{path}:{line}", row
        return
    for line, rec in json_lines(path):
        yield f"{path}:{line}", rec


def label_map(data: Any) -> dict[str, str]:
    """``data.label_map`` as {raw value (a string): label}, every label checked (``check_label``)."""
    return {str(raw): check_label(str(label), f"data.label_map.{raw}") for raw, label in (data.label_map or {}).items()}


def is_newsmtsc(record: dict[str, Any]) -> bool:
    """Whether a record carries NewsMTSC's fields (``polarity``, ``from``, ``to`` ...)."""
    return all(f in record for f in NEWSMTSC_FIELDS)


def _label(raw: Any, label_map: dict[str, str], where: str) -> str:
    value = "" if raw is None else str(raw).strip()
    if label_map:
        if value not in label_map:
            raise StanceError(f"{where}: label {value!r} is not in data.label_map ({', '.join(label_map)})")
        return label_map[value]
    return check_label(value, where)


def labelled_row(
    rec: dict[str, Any], where: str, data: Any, registry: Any, label_map: dict[str, str]
) -> dict[str, Any]:
    """One generic labelled record -> a dataset row (``data.columns`` names the fields)."""
    cols = data.columns

    def get(col: str | None) -> Any:
        if not col:
            return None
        if col not in rec:
            raise StanceError(f"{where}: missing column {col!r} (data.columns)")
        return rec[col]

    sentence = str(get(cols.sentence) or "")
    if not sentence.strip():
        raise StanceError(f"{where}: empty sentence")
    label = _label(get(cols.label), label_map, where)
    actor = str(get(cols.actor) or "").strip() if cols.actor else ""
    mention = ""
    if cols.mention and (cols.mention in rec or not cols.actor):
        mention = str(get(cols.mention) or "")
    if not actor and not mention.strip():
        raise StanceError(f"{where}: no actor or mention (data.columns.actor / data.columns.mention)")
    if cols.start and cols.end:
        try:
            start, end = int(get(cols.start)), int(get(cols.end))
        except (TypeError, ValueError):
            raise StanceError(f"{where}: start/end must be integers") from None
        if not 0 <= start < end <= len(sentence) or (mention and sentence[start:end] != mention):
            raise StanceError(f"{where}: start/end ({start}, {end}) do not span {mention or 'a mention'!r}")
        mention = sentence[start:end]
    elif mention:
        start = sentence.find(mention)
        if start < 0:
            raise StanceError(f"{where}: mention {mention!r} not found in the sentence")
        end = start + len(mention)
    else:
        resolved = registry.resolve(actor)
        found = [m for m in registry.find(sentence) if resolved is not None and m.actor_id == resolved.id]
        if found:
            start, end, mention = found[0].start, found[0].end, found[0].text
        else:
            start = sentence.find(actor)
            if start < 0:
                raise StanceError(f"{where}: actor {actor!r} is not mentioned in the sentence")
            end, mention = start + len(actor), actor
    actor_id, actor_name = _actor(registry, actor or mention)
    raw_id = rec.get(cols.id) if cols.id else None
    article = rec.get(cols.article_id) if cols.article_id else None
    example_id = str(raw_id) if raw_id not in (None, "") else where.rsplit("/", 1)[-1]
    article_id = "" if article is None else str(article)
    return corpus_row(example_id, article_id, -1, sentence, (actor_id, actor_name), (mention, start, end), label)


def load_labelled(data: Any, registry: Any) -> datasets.DatasetDict:
    """A generic labelled CSV/JSONL corpus (one row per sentence x actor) as a DatasetDict.

    ``data.columns`` names the sentence, the actor (registry id/name or free text) and/or the
    mention, optional start/end offsets (else the mention, or the actor's first mention, is found
    in the sentence; an error if absent) and the label; ``data.label_map`` maps raw label values
    (as strings) to labels. One file is split with the grouped, stratified splitter
    (``data.split``); several files are kept as the splits their keys name.
    """
    check_split_config(data.split)
    labels = label_map(data)
    files = resolve_files(data)
    per_file: dict[str, list[dict[str, Any]]] = {}
    for split, path in files.items():
        rows = [labelled_row(rec, where, data, registry, labels) for where, rec in labelled_records(path)]
        if not rows:
            raise StanceError(f"{path}: no rows")
        add_co_targets(rows)
        per_file[split] = rows
        log.info("%s: %d rows", path, len(rows))
    if len(per_file) == 1:
        rows = next(iter(per_file.values()))
        if data.split.group_by == "article" and not data.columns.article_id:
            raise StanceError("data.split.group_by=article needs data.columns.article_id")
        add_groups(rows, data.split.group_by if data.columns.article_id else "sentence")
        splits = split_rows(rows, data.split)
    else:
        splits = per_file
    return finish_splits(splits, data.split.folds, data.split.seed)


def load_labelled_file(cfg: Any) -> Any:
    """All rows of one labelled file as a Dataset in the row schema (nothing is split off).

    A file whose records carry NewsMTSC's fields (``polarity``, ``from``, ``to`` ...) is read as
    NewsMTSC; any other .jsonl/.csv through ``data.columns`` / ``data.label_map``.
    """
    path = str(cfg.file)
    registry = ActorRegistry.from_config(cfg.actors)
    records = list(labelled_records(path))
    if not records:
        raise StanceError(f"{path}: no rows")
    label_col = cfg.data.columns.label
    first = records[0][1]
    # NewsMTSC by its fields; a first row lacking some of them is still NewsMTSC when it has the
    # polarity and no data.columns.label column, so the missing field is named, not "no labels"
    if is_newsmtsc(first) or ("polarity" in first and label_col not in first):
        rows = [newsmtsc_row(rec, where, registry) for where, rec in records]
    else:
        if label_col not in first:
            raise StanceError(f"{path}: dataset has no labels (no {label_col!r} column; set data.columns.label)")
        labels = label_map(cfg.data)
        rows = [labelled_row(rec, where, cfg.data, registry, labels) for where, rec in records]
    return finish_splits({"eval": rows}, int(cfg.data.split.folds), int(cfg.data.split.seed))["eval"]
