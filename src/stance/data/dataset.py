"""The labelled dataset: gold annotations joined to (sentence, actor) pairs, grouped splits, folds.

``build_dataset`` returns a ``DatasetDict`` (splits ``train``/``validation``/``test``, or the
corpus's own splits) and a manifest; ``save_built`` writes both atomically to
``<data.processed_dir>/<data.name>/`` with ``preview.csv`` and, when some pairs have no label,
``unlabelled.csv`` (an annotation template). ``ensure_dataset`` reuses a built dataset whose
manifest matches the config and inputs, and rebuilds otherwise.

Grouping: rows of one group never sit in two splits (or two folds). ``group_by: article`` groups by
article id; ``group_by: sentence`` groups by normalised sentence text, and also joins, within an
article, a sentence with a longer one that contains it (a pull quote repeated inside a quote), so
near-duplicates cannot leak from train into test.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import random
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
from tqdm.auto import tqdm

from stance.errors import StanceError
from stance.io import atomic_path, file_sha256
from stance.labels import LABEL2ID, LABELS
from stance.text.pairs import PAIR_COLUMNS, article_pairs, sentence_key

log = logging.getLogger(__name__)

SPLITS: tuple[str, ...] = ("train", "validation", "test")
ANNOTATION_COLUMNS: tuple[str, ...] = ("article_id", "actor_id", "label", "sentence", "note")
_REQUIRED_ANNOTATION_COLUMNS: tuple[str, ...] = ("article_id", "actor_id", "label", "sentence")
# a sentence shorter than this (normalised) is never merged into a longer one's group
_MIN_CONTAINED_CHARS = 30
_PREVIEW_ROWS = 50

_MENTION = datasets.Features(
    {
        "actor_id": datasets.Value("string"),
        "mention": datasets.Value("string"),
        "start": datasets.Value("int32"),
        "end": datasets.Value("int32"),
    }
)
FEATURES = datasets.Features(
    {
        "example_id": datasets.Value("string"),
        "article_id": datasets.Value("string"),
        "sentence_idx": datasets.Value("int32"),
        "sentence": datasets.Value("string"),
        "actor_id": datasets.Value("string"),
        "actor_name": datasets.Value("string"),
        "mention": datasets.Value("string"),
        "mention_start": datasets.Value("int32"),
        "mention_end": datasets.Value("int32"),
        "other_mentions": datasets.List(_MENTION),
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


# --- groups, splits and folds ------------------------------------------------------------------
_EDGE = re.compile(r"^\W+|\W+$")


def loose_key(sentence: str) -> str:
    """sentence_key, case-folded, with quote marks and punctuation stripped at both ends."""
    return _EDGE.sub("", sentence_key(sentence).casefold())


def sentence_groups(sentences: Sequence[str], articles: Sequence[str | None] | None = None) -> list[str]:
    """The split group of each sentence (``group_by: sentence``).

    Sentences with the same :func:`loose_key` share a group anywhere in the data; within one article
    a sentence whose loose key (at least 30 characters) is contained in another's joins its group.
    A group is named by the smallest loose key in it, so names do not depend on row order.
    Rows whose article is None or "" are only grouped by equal keys.
    """
    keys = [loose_key(s) for s in sentences]
    parent: dict[str, str] = {k: k for k in keys}

    def find(k: str) -> str:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            lo, hi = sorted((ra, rb))
            parent[hi] = lo

    if articles is not None:
        by_article: dict[str, set[str]] = defaultdict(set)
        for key, art in zip(keys, articles):
            if art:
                by_article[art].add(key)
        for members in by_article.values():
            ordered = sorted(members, key=lambda k: (len(k), k))
            for i, short in enumerate(ordered):
                if len(short) < _MIN_CONTAINED_CHARS:
                    continue
                for longer in ordered[i + 1 :]:
                    if short in longer:
                        union(short, longer)
    return [find(k) for k in keys]


def assign_buckets(groups: Sequence[str], labels: Sequence[str], ratios: Sequence[float], seed: int) -> list[int]:
    """A bucket index per row: a group's rows share one bucket; label counts follow ``ratios``.

    Greedy stratified assignment: groups go largest first (ties in a seeded random order) to the
    bucket whose label counts fall furthest short of ``ratio * total``, each label weighted by its
    rarity. Deterministic given the rows and ``seed``.
    """
    per_group: dict[str, Counter[str]] = defaultdict(Counter)
    for g, y in zip(groups, labels):
        per_group[g][y] += 1
    totals: Counter[str] = Counter(labels)
    n = len(labels)
    names = sorted(per_group)
    random.Random(seed).shuffle(names)
    names.sort(key=lambda g: -sum(per_group[g].values()))  # stable: ties keep the shuffled order
    active = [b for b, r in enumerate(ratios) if r > 0]
    count: list[Counter[str]] = [Counter() for _ in ratios]
    size = [0] * len(ratios)
    where: dict[str, int] = {}
    for g in names:
        c = per_group[g]
        g_size = sum(c.values())

        def cost(b: int) -> float:
            # increase of sum((count - target)^2 / total) over labels, plus the same for sizes
            delta = sum(k * (2 * (count[b][y] - ratios[b] * totals[y]) + k) / totals[y] for y, k in c.items())
            return delta + g_size * (2 * (size[b] - ratios[b] * n) + g_size) / n

        best = min(active, key=lambda b: (cost(b), b))
        where[g] = best
        count[best].update(c)
        size[best] += g_size
    return [where[g] for g in groups]


def check_split_config(split: Any) -> None:
    """Raise StanceError for split ratios that are negative or do not sum to 1, or a bad group_by."""
    ratios = [float(getattr(split, s)) for s in SPLITS]
    if any(r < 0 for r in ratios) or abs(sum(ratios) - 1.0) > 1e-6 or ratios[0] <= 0:
        raise StanceError(
            "data.split: train/validation/test must be >= 0, train > 0, and sum to 1 "
            f"(got {ratios[0]}/{ratios[1]}/{ratios[2]})"
        )
    if split.group_by not in ("sentence", "article"):
        raise StanceError(f"data.split.group_by: {split.group_by!r} is not 'sentence' or 'article'")
    if split.folds < 2:
        raise StanceError(f"data.split.folds: {split.folds} (need at least 2)")


def add_groups(rows: list[dict[str, Any]], group_by: str) -> None:
    """Set each row's ``group`` (article id, or the sentence group) in place."""
    if group_by == "article":
        for r in rows:
            r["group"] = r["article_id"]
        return
    groups = sentence_groups([r["sentence"] for r in rows], [r["article_id"] for r in rows])
    for r, g in zip(rows, groups):
        r["group"] = g


def add_folds(rows: list[dict[str, Any]], folds: int, seed: int) -> None:
    """Set each row's ``fold`` in place: grouped, stratified by label, ``folds`` buckets."""
    buckets = assign_buckets([r["group"] for r in rows], [r["label"] for r in rows], [1.0 / folds] * folds, seed)
    for r, b in zip(rows, buckets):
        r["fold"] = b


def split_rows(rows: list[dict[str, Any]], split: Any) -> dict[str, list[dict[str, Any]]]:
    """Rows (with ``group`` and ``label``) -> {split name: rows}, grouped and stratified.

    Splits with ratio 0 are left out. Row order within a split follows the input order.
    """
    ratios = [float(getattr(split, s)) for s in SPLITS]
    buckets = assign_buckets([r["group"] for r in rows], [r["label"] for r in rows], ratios, split.seed)
    out: dict[str, list[dict[str, Any]]] = {s: [] for s, r in zip(SPLITS, ratios) if r > 0}
    for r, b in zip(rows, buckets):
        out[SPLITS[b]].append(r)
    return out


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


def read_csv_rows(path: Path, required: Sequence[str]) -> Iterable[tuple[int, dict[str, str]]]:
    """(line number, row) of a UTF-8 CSV with a header; one-line StanceError for bad files."""
    if not path.is_file():
        raise StanceError(f"{path}: no such file")
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise StanceError(f"{path}: empty file (expected a header: {','.join(required)})")
            header = [h.strip() for h in header]
            missing = [c for c in required if c not in header]
            if missing:
                raise StanceError(f"{path}:1: missing column(s) {', '.join(missing)} (header: {','.join(header)})")
            line = reader.line_num + 1
            for values in reader:
                start, line = line, reader.line_num + 1
                if not any(v.strip() for v in values):
                    continue
                if len(values) != len(header):
                    raise StanceError(f"{path}:{start}: {len(values)} fields, the header has {len(header)}")
                yield start, dict(zip(header, values))
    except UnicodeDecodeError as err:
        raise StanceError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except csv.Error as err:
        raise StanceError(f"{path}: malformed CSV ({err})") from None


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


def _is_url(path: str) -> bool:
    return bool(re.match(r"^[a-z][a-z0-9+.-]*://", str(path), re.I))


def input_hashes(cfg: Any) -> dict[str, list[dict[str, Any]]]:
    """sha256 of every input and annotation file of ``cfg.data`` (URLs are listed without a hash)."""
    data = cfg.data

    def entry(path: str | Path) -> dict[str, Any]:
        if _is_url(str(path)):
            return {"path": str(path), "sha256": None}
        return {"path": display_path(path), "sha256": file_sha256(path)}

    if data.kind == "articles":
        from stance.text.articles import input_files

        inputs = [entry(p) for p in input_files(list(data.input.paths))]
    else:
        from stance.data.corpora import resolve_files

        inputs = [entry(p) for p in resolve_files(data).values()]
    annotations = [entry(p) for p in data.annotations] if data.kind == "articles" else []
    return {"inputs": inputs, "annotations": annotations}


def dataset_config(cfg: Any) -> dict[str, Any]:
    """The part of a config that decides the dataset's content (not where it is written)."""
    from stance.config import to_container

    data = to_container(cfg.data)
    data.pop("processed_dir", None)
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
            label: dict(sorted((a, n) for (y, a), n in c.items() if y == i))
            for i, label in enumerate(LABELS)
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
    }


def _build_articles(cfg: Any, registry: Any) -> BuildResult:
    from stance.text.articles import iter_articles

    data = cfg.data
    check_split_config(data.split)
    meta_columns = list(data.input.meta_columns)
    features = make_features(meta_columns)
    annotations = read_annotations(list(data.annotations), registry)

    rows: list[dict[str, Any]] = []
    n_articles = 0
    # iter_articles raises on the first bad file or row (and on a repeated article id)
    for article in tqdm(iter_articles(data.input), desc="articles", unit="article", disable=None, leave=False):
        n_articles += 1
        rows.extend(article_pairs(article, registry, cfg.text))

    labelled: list[dict[str, Any]] = []
    unlabelled: list[dict[str, str]] = []
    used: set[AnnotationKey] = set()
    for r in rows:
        for col in meta_columns:
            r.setdefault(col, "")
        key = (r["article_id"], r["actor_id"], sentence_key(r["sentence"]))
        ann = annotations.labels.get(key)
        if ann is None:
            unlabelled.append(
                {"article_id": r["article_id"], "actor_id": r["actor_id"], "label": "", "sentence": r["sentence"], "note": ""}
            )
            continue
        used.add(key)
        labelled.append({**r, "label": ann.label})
    stale = [a for k, a in annotations.labels.items() if k not in used]

    add_groups(labelled, data.split.group_by)
    add_folds(labelled, data.split.folds, data.split.seed)
    splits = split_rows(labelled, data.split)
    dd = datasets.DatasetDict({s: to_dataset(rs, features) for s, rs in splits.items()})

    warnings: list[str] = []
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


def registry_from_config(cfg: Any) -> Any:
    from stance.text.actors import ActorRegistry

    return ActorRegistry.from_config(cfg.actors)


def build(cfg: Any) -> BuildResult:
    """Build the dataset of ``cfg`` in memory (nothing is written). See :func:`build_dataset`."""
    registry = registry_from_config(cfg)
    kind = cfg.data.kind
    if kind == "articles":
        return _build_articles(cfg, registry)
    if kind in ("newsmtsc", "labelled"):
        from stance.data.corpora import load_labelled, load_newsmtsc

        dd = load_newsmtsc(cfg.data, registry) if kind == "newsmtsc" else load_labelled(cfg.data, registry)
        return BuildResult(dd, _manifest(cfg, dd, {}))
    raise StanceError(f"data.kind: {kind!r} is not one of articles, newsmtsc, labelled")


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
        _write_csv(tmp / "unlabelled.csv", list(ANNOTATION_COLUMNS), result.unlabelled)


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
        log.warning("%s was built from a different config: rebuilding", path)
        return False
    hashes = input_hashes(cfg)
    if manifest.get("inputs") != hashes["inputs"] or manifest.get("annotations") != hashes["annotations"]:
        log.warning("%s is stale (input or annotation files changed): rebuilding", path)
        return False
    return True


def ensure_dataset(cfg: Any) -> datasets.DatasetDict:
    """The dataset of ``cfg`` (Build/Train config): loaded when built from the same config and
    inputs (and ``cfg.rebuild`` is not set), else built and saved first."""
    path = output_path(cfg)
    if not getattr(cfg, "rebuild", False) and is_current(cfg, path):
        log.info("using the built dataset %s", path)
        return load_built(path)
    result = build(cfg)
    for w in result.warnings:
        log.warning(w)
    save_built(result, path)
    return result.dataset
