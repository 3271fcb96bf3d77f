"""The labelled dataset: gold annotations joined to (sentence, actor) pairs, grouped splits, folds.

``build_dataset`` returns a ``DatasetDict`` (splits ``train``/``validation``/``test``, or the
corpus's own splits) and a manifest; ``save_built`` writes both atomically to
``<data.processed_dir>/<data.name>/`` with ``preview.csv`` and, when some pairs have no label,
``unlabelled.csv`` (an annotation template). ``ensure_dataset`` reuses a built dataset whose
manifest matches the config, the inputs and ``BUILDER`` (the row-building code's version), and rebuilds
otherwise. Rows follow
:mod:`stance.data.rows`; groups, splits and folds come from :mod:`stance.data.splits`.
"""

from __future__ import annotations

import csv
import json
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
from tqdm.auto import tqdm

from stance.config import DataKind, to_container
from stance.data.corpora import load_labelled, load_newsmtsc, resolve_files
from stance.data.rows import make_features, quiet_datasets, to_dataset
from stance.data.splits import add_folds, add_groups, check_split_config, split_rows
from stance.data.userdata import TEMPLATE_COLUMNS, small_split_warnings, template_row
from stance.errors import StanceError
from stance.io import atomic_path, file_sha256, is_url, read_csv_rows
from stance.labels import LABEL2ID, LABELS
from stance.text.actors import ActorRegistry
from stance.text.articles import input_files, iter_articles
from stance.text.pairs import article_pairs, article_sentences, sentence_key

log = logging.getLogger(__name__)

ANNOTATION_COLUMNS: tuple[str, ...] = ("article_id", "actor_id", "label", "sentence", "note")
_REQUIRED_ANNOTATION_COLUMNS: tuple[str, ...] = ("article_id", "actor_id", "label", "sentence")
_PREVIEW_ROWS = 50


# --- annotations -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Annotation:
    """One gold label; ``where`` is ``file:line``."""

    article_id: str
    actor_id: str
    sentence: str
    label: str
    note: str
    where: str


AnnotationKey = tuple[str, str, str]


@dataclass
class Annotations:
    """Gold labels keyed by (article_id, actor_id, sentence_key(sentence)); rows with an empty
    label (a template not filled in yet) are counted in ``pending`` and otherwise ignored."""

    labels: dict[AnnotationKey, Annotation] = field(default_factory=dict)
    pending: int = 0
    # raw label spelling ("Critical ") -> (normalised, rows, first file:line): reported, not silent
    variants: dict[str, tuple[str, int, str]] = field(default_factory=dict)


def read_annotations(paths: Iterable[str], registry: Any) -> Annotations:
    """Read gold annotation CSVs (``article_id,actor_id,label,sentence,note``).

    ``actor_id`` may be any id, name or alias the registry resolves (stored as the canonical id).
    Raises StanceError ``file:line: ...`` for a missing column, an unknown actor, a label outside
    the label set, an empty article id or sentence, and the same pair labelled twice differently.
    """
    out = Annotations()
    for raw in paths:
        path = Path(raw)
        for line, row in read_csv_rows(path, _REQUIRED_ANNOTATION_COLUMNS):
            where = f"{path}:{line}"
            label = row["label"].strip().lower()
            if not label:
                out.pending += 1
                continue
            if label not in LABEL2ID:
                raise StanceError(f"{where}: unknown label {row['label']!r} (expected one of {', '.join(LABELS)})")
            if label != row["label"]:
                _, n, first = out.variants.get(row["label"], (label, 0, where))
                out.variants[row["label"]] = (label, n + 1, first)
            actor = registry.resolve(row["actor_id"].strip())
            if actor is None:
                raise StanceError(f"{where}: unknown actor {row['actor_id']!r} (not in the actor registry)")
            article_id = row["article_id"].strip()
            if not article_id:
                raise StanceError(f"{where}: empty article_id")
            if not sentence_key(row["sentence"]):
                raise StanceError(f"{where}: empty sentence")
            key = (article_id, actor.id, sentence_key(row["sentence"]))
            ann = Annotation(article_id, actor.id, row["sentence"], label, row.get("note", "") or "", where)
            prev = out.labels.get(key)
            if prev is not None and prev.label != label:
                raise StanceError(
                    f"{where}: {actor.id} in this sentence is labelled {label!r} here and {prev.label!r} at {prev.where}"
                )
            out.labels.setdefault(key, ann)
    return out


# --- building ----------------------------------------------------------------------------------
# Raise when rows built from the same config and inputs change (a dataset built by older code is
# then rebuilt, not reused): 2 = corpus rows carry their sentence's other labelled targets.
BUILDER = 2


@dataclass
class BuildResult:
    dataset: datasets.DatasetDict
    manifest: dict[str, Any]
    # pairs without a gold label (annotation template rows) and human-readable warnings
    unlabelled: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def display_path(path: str | Path) -> str:
    """``path`` relative to the working directory when under it (manifests stay machine-neutral)."""
    p = Path(path)
    try:
        return p.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(p)


def input_hashes(cfg: Any) -> dict[str, list[dict[str, Any]]]:
    """sha256 of every input and annotation file of ``cfg.data`` (URLs are listed without a hash)."""
    data = cfg.data

    def entry(path: str | Path) -> dict[str, Any]:
        if is_url(str(path)):
            return {"path": str(path), "sha256": None}
        return {"path": display_path(path), "sha256": file_sha256(path)}

    if data.kind == "articles":
        inputs = [entry(p) for p in input_files(list(data.input.paths))]
    else:
        inputs = [entry(p) for p in resolve_files(data).values()]
    if data.kind == "articles":
        annotations = [entry(p) for p in data.annotations]
    else:  # by-reference labels change the dataset as much as the corpus does
        annotations = [entry(p) for p in data.label_files] if str(data.labels) != "corpus" else []
    return {"inputs": inputs, "annotations": annotations}


def dataset_config(cfg: Any) -> dict[str, Any]:
    """The part of a config that decides the dataset's content (not where it is written)."""
    data = to_container(cfg.data)
    data.pop("processed_dir", None)
    if (
        getattr(data["kind"], "value", data["kind"]) != "newsmtsc"
    ):  # corpus-only settings: they cannot change another kind's rows
        for key in ("labels", "label_files", "download"):
            data.pop(key, None)
    out = {"data": data, "actors": to_container(cfg.actors), "text": to_container(cfg.text)}
    return json.loads(json.dumps(out))


def output_path(cfg: Any) -> Path:
    """Where the dataset of ``cfg`` is written: ``output_dir`` or ``<data.processed_dir>/<data.name>``."""
    out = getattr(cfg, "output_dir", None)
    return Path(out) if out else Path(cfg.data.processed_dir) / cfg.data.name


def columns(ds: datasets.Dataset, *names: str) -> dict[str, list[Any]]:
    """Whole columns as Python lists (one Arrow conversion, not a row-by-row iteration)."""
    return ds.select_columns(list(names)).to_dict()


def count_rows(dd: datasets.DatasetDict) -> dict[str, dict[str, dict[str, int]]]:
    """{split: {label: {actor_id: n}}} with every label present (0 when absent), actors sorted."""
    out: dict[str, dict[str, dict[str, int]]] = {}
    for split, ds in dd.items():
        cols = columns(ds, "label", "actor_id")
        c: Counter[tuple[int, str]] = Counter(zip(cols["label"], cols["actor_id"]))
        out[split] = {
            label: dict(sorted((a, n) for (y, a), n in c.items() if y == i)) for i, label in enumerate(LABELS)
        }
    return out


def _manifest(cfg: Any, dd: datasets.DatasetDict, extra: dict[str, Any]) -> dict[str, Any]:
    counts = count_rows(dd)
    folds: Counter[int] = Counter(f for ds in dd.values() for f in columns(ds, "fold")["fold"])
    return {
        "name": cfg.data.name,
        "kind": cfg.data.kind,
        "rows": {s: len(ds) for s, ds in dd.items()},
        "labels": {s: {y: sum(a.values()) for y, a in c.items()} for s, c in counts.items()},
        "counts": counts,
        "folds": {str(f): folds[f] for f in sorted(folds)},
        **extra,
        **input_hashes(cfg),
        "columns": list(next(iter(dd.values())).column_names) if dd else [],
        "config": dataset_config(cfg),
        "builder": BUILDER,
    }


def _build_articles(cfg: Any, registry: Any) -> BuildResult:
    data = cfg.data
    check_split_config(data.split)
    meta_columns = list(data.input.meta_columns)
    features = make_features(meta_columns)
    annotations = read_annotations(list(data.annotations), registry)

    rows: list[dict[str, Any]] = []
    sentences: dict[str, list[str]] = {}  # per article: the context columns of the template
    n_articles = 0
    # iter_articles raises on the first bad file or row (and on a repeated article id)
    for article in tqdm(iter_articles(data.input), desc="articles", unit="article", disable=None, leave=False):
        n_articles += 1
        rows.extend(article_pairs(article, registry, cfg.text))
        sentences[article.id] = article_sentences(article, cfg.text)
    _check_pairs(data.input, registry, n_articles, len(rows))

    labelled: list[dict[str, Any]] = []
    unlabelled: list[dict[str, str]] = []
    used: set[AnnotationKey] = set()
    for r in rows:
        for col in meta_columns:
            r.setdefault(col, "")
        key = (r["article_id"], r["actor_id"], sentence_key(r["sentence"]))
        ann = annotations.labels.get(key)
        if ann is None:
            unlabelled.append(template_row(r, sentences.get(r["article_id"], [])))
            continue
        used.add(key)
        labelled.append({**r, "label": ann.label})
    stale = [a for k, a in annotations.labels.items() if k not in used]

    add_groups(labelled, data.split.group_by)
    add_folds(labelled, data.split.folds, data.split.seed)
    splits = split_rows(labelled, data.split)
    dd = datasets.DatasetDict({s: to_dataset(rs, features) for s, rs in splits.items()})

    warnings: list[str] = [
        f"label {raw!r} read as {norm!r} ({n} row(s), first at {first}): fix the spelling to silence this"
        for raw, (norm, n, first) in annotations.variants.items()
    ]
    if unlabelled:
        warnings.append(
            f"{len(unlabelled)} of {len(rows)} pairs have no annotation and are left out "
            "(an annotation template is written to unlabelled.csv)"
        )
    if stale:
        warnings.append(
            f"{len(stale)} annotations match no pair (stale: article, actor or sentence not found), "
            f"first at {stale[0].where}: {stale[0].actor_id} in {stale[0].sentence[:60]!r}"
        )
    if not labelled:
        warnings.append("no pair has a label: the splits are empty")
    else:
        n_groups = len({r["group"] for r in labelled})
        empty = [s for s, rs in splits.items() if not rs]
        if empty:
            warnings.append(
                f"split(s) {', '.join(empty)} empty: {n_groups} group(s) for {len(labelled)} rows "
                f"(data.split.group_by={data.split.group_by})"
            )
        if n_groups < data.split.folds:
            warnings.append(f"{n_groups} group(s) for {data.split.folds} folds: some folds are empty")
        warnings.extend(small_split_warnings({s: len(rs) for s, rs in splits.items() if rs}))
    extra = {
        "articles": n_articles,
        "pairs": len(rows),
        "labelled": len(labelled),
        "unlabelled": len(unlabelled),
        "stale_annotations": len(stale),
        "pending_annotations": annotations.pending,
        # the first 100, to find them; the count above is complete
        "stale": [
            {"where": a.where, "article_id": a.article_id, "actor_id": a.actor_id, "sentence": a.sentence}
            for a in stale[:100]
        ],
    }
    return BuildResult(dd, _manifest(cfg, dd, extra), unlabelled, warnings)


def _check_pairs(spec: Any, registry: Any, n_articles: int, n_pairs: int) -> None:
    """A build without a single (sentence, actor) pair has nothing to label or train on: refuse it
    with the reason instead of writing a dataset without rows."""
    where = f"data.input.paths={list(spec.paths)}"
    if n_articles == 0:
        raise StanceError(f"{where}: no article in the input (a CSV with only its header, or no rows)")
    if n_pairs == 0:
        raise StanceError(
            f"{where}: no actor of the registry ({len(registry)} actors) is mentioned in {n_articles} "
            "article(s), so there is no (sentence, actor) pair (pick the registry with actors=<name>)"
        )


def registry_from_config(cfg: Any) -> Any:
    return ActorRegistry.from_config(cfg.actors)


def build(cfg: Any) -> BuildResult:
    """Build the dataset of ``cfg`` in memory (nothing is written). See :func:`build_dataset`."""
    registry = registry_from_config(cfg)
    kind = cfg.data.kind
    if kind == "articles":
        return _build_articles(cfg, registry)
    if kind in ("newsmtsc", "labelled"):
        dd = load_newsmtsc(cfg.data, registry) if kind == "newsmtsc" else load_labelled(cfg.data, registry)
        return BuildResult(dd, _manifest(cfg, dd, {}))
    raise StanceError(f"data.kind: {kind!r} is not one of {', '.join(DataKind)}")


def build_dataset(cfg: Any) -> tuple[datasets.DatasetDict, dict[str, Any]]:
    """Build the labelled dataset of ``cfg`` (a BuildConfig): ``(DatasetDict, manifest)``.

    ``data.kind``: ``articles`` (articles in ``data.input`` + gold ``data.annotations``, split
    by ``data.split``), ``newsmtsc`` or ``labelled`` (see :mod:`stance.data.corpora`). Nothing is
    written; :func:`save_built` writes. Raises StanceError for bad input or config.
    """
    result = build(cfg)
    return result.dataset, result.manifest


def save_built(result: BuildResult, path: str | Path) -> Path:
    """Write ``result`` to the folder ``path`` atomically (a failed write leaves no folder)."""
    path = Path(path)
    with quiet_datasets(), atomic_path(path) as tmp:
        _write_built(result, tmp)
    log.info("wrote %s", path)
    return path


def _write_built(result: BuildResult, tmp: Path) -> None:
    """The dataset folder's files: save_to_disk output, manifest.json, preview.csv, unlabelled.csv."""
    result.dataset.save_to_disk(str(tmp))
    (tmp / "manifest.json").write_text(
        json.dumps(result.manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    preview = []
    for split, ds in result.dataset.items():
        for r in ds.select(range(min(_PREVIEW_ROWS, len(ds)))):
            preview.append(
                {"split": split, "example_id": r["example_id"], "label": LABELS[r["label"]],
                 "actor_id": r["actor_id"], "mention": r["mention"], "sentence": r["sentence"]}
            )  # fmt: skip
    _write_csv(tmp / "preview.csv", ["split", "example_id", "label", "actor_id", "mention", "sentence"], preview)
    if result.unlabelled:
        _write_csv(tmp / "unlabelled.csv", list(TEMPLATE_COLUMNS), result.unlabelled)


def _write_csv(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def load_built(path: str | Path) -> datasets.DatasetDict:
    """Load a dataset written by ``stance.build``; StanceError when ``path`` is not one."""
    path = Path(path)
    if not path.exists():
        raise StanceError(f"{path}: no built dataset here (run: python -m stance.build)")
    if not (path / "dataset_dict.json").is_file():
        raise StanceError(f"{path}: not a built dataset (no dataset_dict.json)")
    try:
        return datasets.load_from_disk(str(path))
    except Exception as err:  # datasets raises several types for damaged folders
        raise StanceError(f"{path}: cannot load the dataset ({type(err).__name__}: {err})") from None


def is_current(cfg: Any, path: str | Path) -> bool:
    """Whether the dataset at ``path`` was built from ``cfg``'s config and current input files."""
    manifest_path = Path(path) / "manifest.json"
    if not manifest_path.is_file():
        return False
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if manifest.get("config") != dataset_config(cfg):
        built, wanted = manifest.get("config", {}).get("data", {}), dataset_config(cfg)["data"]
        if _sources(built) != _sources(wanted):  # a user's dataset is never rebuilt from other inputs
            raise StanceError(
                f"{path} was built from other inputs ({_sources(built)}) than this config names "
                f"({_sources(wanted)}); it is left as it is: train on it with data={cfg.data.name} (the data "
                f"config python -m stance.build wrote), or rebuild it from this config with rebuild=true"
            )
        log.warning("%s was built from the same inputs with other settings: rebuilding", path)
        return False
    if manifest.get("builder", 1) != BUILDER:
        log.warning("%s was built by an older version of stance (rows changed since): rebuilding", path)
        return False
    hashes = input_hashes(cfg)
    if manifest.get("inputs") != hashes["inputs"] or manifest.get("annotations") != hashes["annotations"]:
        log.warning("%s is stale (input or annotation files changed): rebuilding", path)
        return False
    return True


def _sources(data: dict[str, Any]) -> dict[str, Any]:
    """The inputs a dataset config reads (not how it splits or segments them)."""
    reading = data.get("input") or {}
    out = {"kind": str(data.get("kind")), "input.paths": reading.get("paths"), "annotations": data.get("annotations")}
    out.update({k: data[k] for k in ("source", "files", "label_files") if data.get(k)})
    return out


def ensure_dataset(cfg: Any) -> datasets.DatasetDict:
    """The dataset of ``cfg`` (Build/Train config): loaded when built from the same config and
    inputs (and ``cfg.rebuild`` is not set), else built and saved first."""
    path = output_path(cfg)
    if not getattr(cfg, "rebuild", False) and is_current(cfg, path):
        log.info("using the built dataset %s", path)
        dd = load_built(path)
        for w in small_split_warnings({name: len(ds) for name, ds in dd.items() if len(ds)}):
            log.warning(w)
        return dd
    result = build(cfg)
    for w in result.warnings:
        log.warning(w)
    save_built(result, path)
    return result.dataset
