"""Typed configuration schemas, registered with Hydra's ConfigStore.

Every entry point's YAML (``configs/<entry>.yaml``) lists its ``*_schema`` first in its defaults,
so a misspelt key, a value of the wrong type or a value outside an Enum's members (precision,
backend, formats, ``group_by``, segmenter, kinds) fails at start-up with a message naming it.
Options in config groups (``data/``, ``actors/``, ``model/``) extend the group schemas below.
The Enums are ``StrEnum``: a member compares equal to its string and is written as it (JSON, YAML).
Schemas are registered once, when this module is imported (:func:`register`).
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from stance.errors import StanceError
from stance.overrides import job_dirname


# --- allowed values ----------------------------------------------------------------------------
class SegmentBackend(StrEnum):
    """Sentence splitters (benchmarks/segmenters.py measures them)."""

    pysbd = "pysbd"
    syntok = "syntok"
    blingfire = "blingfire"
    regex = "regex"


class GroupBy(StrEnum):
    sentence = "sentence"
    article = "article"


class DataKind(StrEnum):
    articles = "articles"
    newsmtsc = "newsmtsc"
    labelled = "labelled"


class ModelKind(StrEnum):
    transformer = "transformer"
    majority = "majority"
    tfidf_lr = "tfidf_lr"


class InputFormat(StrEnum):
    markers = "markers"
    pair = "pair"
    both = "both"


class Precision(StrEnum):
    fp32 = "fp32"
    bf16 = "bf16"
    int8 = "int8"


class Backend(StrEnum):
    torch = "torch"
    onnx = "onnx"


class ScoreEngine(StrEnum):
    """Where scoring runs: in this process, or on Ray Data (one machine or a cluster)."""

    local = "local"
    ray = "ray"


class TableFormat(StrEnum):
    parquet = "parquet"
    csv = "csv"
    jsonl = "jsonl"


class TimeFreq(StrEnum):
    """Periods of ``over_time.<fmt>``: weeks (Monday-Sunday), calendar months, quarters."""

    W = "W"
    M = "M"
    Q = "Q"


class CsvFlavour(StrEnum):
    """plain: CSV as pandas writes it; excel: UTF-8 BOM and formula-looking cells (=, +, -, @)
    prefixed with an apostrophe, so a spreadsheet shows the text instead of running it."""

    plain = "plain"
    excel = "excel"


# --- reading and preparing articles (shared by build and score) --------------------------------
@dataclass
class InputConfig:
    """Where articles come from and how their files are read."""

    # Files, folders or globs: .txt/.md (title on the first line), .jsonl, .csv.
    paths: list[str] = field(default_factory=lambda: ["seeds"])
    id_column: str = "id"
    text_column: str = "text"
    title_column: Optional[str] = "title"
    # Columns passed through to every row (outlet, date, url ...).
    meta_columns: list[str] = field(default_factory=list)
    # For .txt/.md: the first non-empty line is the title.
    title_first_line: bool = True
    encoding: str = "utf-8"
    # A longer line is rejected as malformed (not prose: minified HTML, base64 ...).
    max_line_chars: int = 20000


@dataclass
class CleanConfig:
    """Web boilerplate removal, line by line (see README: Cleaning)."""

    enabled: bool = True
    drop_markdown_images: bool = True
    # Regular expressions; a line matching any (re.search, case-insensitive) is dropped.
    drop_line_patterns: list[str] = field(default_factory=list)
    # Short lines without sentence-final punctuation (menu items, banner slogans) are dropped.
    drop_short_lines_under_words: int = 5


@dataclass
class SegmentConfig:
    backend: SegmentBackend = SegmentBackend.blingfire
    language: str = "en"
    # post-fix around title abbreviations (Lt., Rep., Sgt. ...) on top of the backend
    fix_titles: bool = True


@dataclass
class TextConfig:
    # the title (and a .txt file's first line) is scored as sentence 0: headlines carry stance
    include_title: bool = True
    clean: CleanConfig = field(default_factory=CleanConfig)
    segment: SegmentConfig = field(default_factory=SegmentConfig)


@dataclass
class ActorSpec:
    """One entry of the actor registry (config group ``actors/``), keyed by its canonical id."""

    name: str = MISSING
    kind: str = MISSING  # person, country, organisation, region, ...
    aliases: list[str] = field(default_factory=list)


# --- the dataset -------------------------------------------------------------------------------
@dataclass
class SplitConfig:
    train: float = 0.7
    validation: float = 0.15
    test: float = 0.15
    # "sentence": a sentence never appears in two splits; "article": an article never does.
    group_by: GroupBy = GroupBy.sentence
    folds: int = 5
    # splits and folds depend on this seed only (not the training seed), so seed sweeps share them
    seed: int = 42


@dataclass
class ColumnsConfig:
    """Column names of a generic labelled CSV/JSONL (``data.kind=labelled``)."""

    id: Optional[str] = "id"
    sentence: str = "sentence"
    actor: Optional[str] = None  # an actor id from the registry, or a free-text name
    mention: Optional[str] = "mention"
    start: Optional[str] = None
    end: Optional[str] = None
    label: str = "label"
    article_id: Optional[str] = None


@dataclass
class DataConfig:
    name: str = "seed"
    # articles: raw articles + gold annotations; newsmtsc: NewsMTSC JSONL; labelled: generic CSV/JSONL.
    kind: DataKind = DataKind.articles
    input: InputConfig = field(default_factory=InputConfig)
    annotations: list[str] = field(default_factory=lambda: ["data/annotations/seed.csv"])
    # newsmtsc / labelled: a local folder or a base URL the files are read from.
    source: str = ""
    # split name -> file name (relative to source) or full path/URL.
    files: dict[str, str] = field(default_factory=dict)
    # newsmtsc: which labels to train and select on. corpus: NewsMTSC's own (sentiment toward the
    # target, as published); stance: only the rows of label_files, with this project's stance
    # labels (docs/annotation-guidelines.md); mixed: stance labels where given, the corpus's elsewhere.
    labels: str = "corpus"
    # by-reference label files (corpus, split, id, label, note) joined to the corpus at load time
    label_files: list[str] = field(default_factory=list)
    # source=auto: allow fetching the public files (sha256-checked, cached under data/external/)
    download: bool = True
    columns: ColumnsConfig = field(default_factory=ColumnsConfig)
    # raw label value (as a string) -> one of stance.labels.LABELS
    label_map: dict[str, str] = field(default_factory=dict)
    split: SplitConfig = field(default_factory=SplitConfig)
    processed_dir: str = "data/processed"


# --- models and training -----------------------------------------------------------------------
@dataclass
class ModelConfig:
    kind: ModelKind = ModelKind.transformer
    name_or_path: str = "sentence-transformers/all-MiniLM-L6-v2"
    # markers: target mention marked in place; pair: (sentence, actor name); both.
    input_format: InputFormat = InputFormat.markers
    max_length: int = 128
    # markers/both: the strings put around the target mention (recorded in the saved model)
    markers: list[str] = field(default_factory=lambda: ["<<", ">>"])
    # markers/both: the strings put around the sentence's other mentions (rows' other_mentions: other
    # actors, other labelled targets of a corpus sentence); empty: they stay unmarked
    other_markers: list[str] = field(default_factory=list)
    # tfidf_lr: characters of context either side of the mention used as extra features.
    context_chars: int = 60
    C: float = 1.0
    # start from a trained stance model (RUN/model or RUN) instead of name_or_path: its weights,
    # label maps and encoding block (input_format, max_length, markers) are kept (+experiment=adapt)
    init_from: Optional[str] = None
    # keep only these encoder layers (a smaller, faster student: model=minilm_l3 keeps 0, 2, 4 of 6)
    layers: Optional[list[int]] = None


@dataclass
class TrainingConfig:
    epochs: float = 4.0
    batch_size: int = 16
    eval_batch_size: int = 64
    learning_rate: float = 5e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    lr_scheduler: str = "linear"
    label_smoothing: float = 0.0
    # inverse-frequency class weights in the loss: the seed data is ~75% neutral, and macro-F1
    # (the primary metric) weighs every class equally
    class_weights: bool = True
    # fit a softmax temperature on the validation split after training (stored with the model and
    # applied wherever probabilities are produced), so score.threshold means what it says
    calibrate: bool = True
    early_stopping_patience: int = 3
    max_steps: int = -1
    # evaluate and checkpoint every N steps; 0 = once per epoch
    eval_steps: int = 0
    logging_steps: int = 10
    gradient_accumulation_steps: int = 1
    # batches of similar-length examples (less padding: faster on CPU), still shuffled
    group_by_length: bool = True
    # stop (after a last validation + checkpoint) once training has run this long; 0 = no limit
    time_limit_minutes: float = 0.0
    # layer-wise learning-rate decay: encoder layer i of L trains at learning_rate * decay**(L - i),
    # the embeddings one step lower, the head at learning_rate (1.0 = off)
    layer_lr_decay: float = 1.0
    # R-Drop: each batch through the model twice (two dropout masks) and this weight on the symmetric
    # KL between the two predictions (0 = off; a step costs about twice as much)
    rdrop_alpha: float = 0.0
    # the share of name-mention targets in the train rows replaced by another actor's name from
    # the train rows (stance.modeling.augment; 0 = off)
    name_swap: float = 0.0
    # distillation (+experiment=distill): a trained stance model (RUN/model), or a list of them (an
    # ensemble: their probabilities are averaged), whose probabilities on the train rows, softened
    # by distill_temperature, are the targets; distill_alpha is their share of the loss (1: soft
    # labels only; the rest is cross-entropy on the hard labels)
    distill_from: Any = None
    distill_alpha: float = 0.5
    distill_temperature: float = 2.0


@dataclass
class EvalConfig:
    cv_folds: int = 0
    bootstrap: int = 1000
    splits: list[str] = field(default_factory=lambda: ["validation", "test"])


@dataclass
class MixConfig:
    """Another dataset whose train rows join this run's train split (``+experiment=mixed``)."""

    data: DataConfig = field(default_factory=DataConfig)
    # loss weight of each added row; the run's own rows weigh 1, so 0.1 up-weights them 10x
    weight: float = 1.0


@dataclass
class TrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    # train on data's train split plus mix.data's (validation and test stay data's own)
    mix: Optional[MixConfig] = None
    actors: dict[str, ActorSpec] = field(default_factory=dict)
    text: TextConfig = field(default_factory=TextConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainingConfig = field(default_factory=TrainingConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    seed: int = 42
    threads: int = 0  # 0 = torch default
    # rebuild the dataset even if data/processed/<name> exists
    rebuild: bool = False


@dataclass
class BuildConfig:
    data: DataConfig = field(default_factory=DataConfig)
    actors: dict[str, ActorSpec] = field(default_factory=dict)
    text: TextConfig = field(default_factory=TextConfig)
    seed: int = 42
    # write the dataset under this folder instead of <data.processed_dir>/<data.name>
    output_dir: Optional[str] = None


@dataclass
class EvaluateConfig:
    model_dir: str = MISSING
    data: DataConfig = field(default_factory=DataConfig)
    actors: dict[str, ActorSpec] = field(default_factory=dict)
    text: TextConfig = field(default_factory=TextConfig)
    split: str = "test"
    # a labelled JSONL/CSV evaluated instead of a built split (NewsMTSC format or data.columns)
    file: Optional[str] = None
    eval: EvalConfig = field(default_factory=EvalConfig)
    batch_size: int = 64
    threads: int = 0
    seed: int = 42


@dataclass
class RayOptions:
    """``score.engine=ray``: where the Ray instance is and how the work is cut (README: More than one machine)."""

    # None: start a local Ray instance in this process and stop it at the end; "auto" (the cluster
    # this machine belongs to, as after `ray start`) or "ray://host:10001" joins an existing one
    address: Optional[str] = None
    # scoring workers (Ray actors), each loads the model once and takes one CPU
    concurrency: int = 2
    # articles per map_batches call (a worker's unit of work; a worker that dies redoes one batch)
    batch_size: int = 16
    # articles handed to Ray at a time (rounded up to whole parts): bounds the driver's memory;
    # workers load the model once per window
    window_articles: int = 10000


@dataclass
class ScoreOptions:
    batch_size: int = 64
    # sort by length within windows of this many examples before batching
    sort_window: int = 2048
    # fp32; bf16 (autocast); int8 (torch: dynamic quantisation of the Linear layers; onnx: static
    # per-channel quantisation calibrated on real pairs)
    precision: Precision = Precision.fp32
    # torch, or onnx: the model exported once to ONNX and run by ONNX Runtime (fp32 or int8)
    backend: Backend = Backend.torch
    # local: this process; ray: Ray Data (score.ray.*), same rows and tables
    engine: ScoreEngine = ScoreEngine.local
    ray: RayOptions = field(default_factory=RayOptions)
    # rows whose top probability is below this are flagged low_confidence
    threshold: float = 0.5
    format: TableFormat = TableFormat.parquet
    bootstrap: int = 1000
    threads: int = 0
    # write the mention rows of every N articles as one part (bounded memory, resumable)
    chunk_articles: int = 500
    # meta columns (input.meta_columns) to aggregate by: by_<column>.<fmt> per actor and value
    group_by: list[str] = field(default_factory=list)
    # a meta column of dates (ISO 8601, e.g. 2025-03-14): over_time.<fmt> per actor and period
    time_column: Optional[str] = None
    time_freq: TimeFreq = TimeFreq.M
    # csv tables meant for spreadsheets: excel (see CsvFlavour); parquet/jsonl are never changed
    csv_flavour: CsvFlavour = CsvFlavour.plain
    # actors drawn in the figures (most mentioned first); the rest are counted in the caption
    top_actors: int = 20
    # report.html: per-actor summary, outlet/time views, example sentences (examples per label)
    report: bool = True
    examples: int = 3


@dataclass
class ScoreConfig:
    model_dir: str = MISSING
    # the reading spec: ``input.paths=[a,b] input.meta_columns=[outlet]``; ``python -m stance.score``
    # also takes ``input=PATH`` (rewritten to ``input.paths=['PATH']`` by input_shorthand)
    input: InputConfig = field(default_factory=lambda: InputConfig(paths=[]))
    output_dir: str = MISSING
    actors: dict[str, ActorSpec] = field(default_factory=dict)
    text: TextConfig = field(default_factory=TextConfig)
    score: ScoreOptions = field(default_factory=ScoreOptions)
    seed: int = 42


def config_dir() -> str:
    """The folder of the YAML configs (``configs/`` at the repository top).

    A wheel ships it inside the package as ``stance/configs`` (pyproject: ``package-dir``); a source
    checkout or editable install reads the repository's ``configs/`` directly.
    """
    packaged = Path(__file__).resolve().parent / "configs"
    if packaged.is_dir():
        return str(packaged)
    return str(Path(__file__).resolve().parents[2] / "configs")


CONFIG_DIR = config_dir()


def register() -> None:
    """Register the schemas and the ``stance_dirname`` resolver (once, on import of this module)."""
    cs = ConfigStore.instance()
    cs.store(name="build_schema", node=BuildConfig)
    cs.store(name="train_schema", node=TrainConfig)
    cs.store(name="evaluate_schema", node=EvaluateConfig)
    cs.store(name="score_schema", node=ScoreConfig)
    OmegaConf.register_new_resolver("stance_dirname", job_dirname, replace=True)


def check_keys(cfg: Any) -> None:
    """Refuse keys a typed schema does not have, at start-up (entry points call this first).

    Struct mode already refuses ``train.epoch=2``, but Hydra's ``+train.epoch=2`` (the spelling its
    own error hint suggests) opens the node to add the key, and the run would ignore it. Mappings
    typed ``dict[str, ...]`` (``actors``, ``data.files``, ``data.label_map``) take any key.
    """
    for key, known in _unknown_keys(cfg, ""):
        close = difflib.get_close_matches(key.rpartition(".")[2], known, n=1)
        hint = f"did you mean {key.rpartition('.')[0] + '.' if '.' in key else ''}{close[0]}?" if close else ""
        raise StanceError(f"{key}: no such setting ({hint or 'see the config schema in stance.config'})")


def _unknown_keys(node: Any, prefix: str) -> list[tuple[str, list[str]]]:
    if not isinstance(node, DictConfig) or node._is_missing() or node._is_none():
        return []
    kind = OmegaConf.get_type(node)
    out = []
    if dataclasses.is_dataclass(kind):
        known = [f.name for f in dataclasses.fields(kind)]
        out += [(prefix + str(k), known) for k in node if str(k) not in known]
    for k in node:
        out += _unknown_keys(node._get_node(str(k)), prefix + str(k) + ".")
    return out


def to_container(cfg: Any) -> dict[str, Any]:
    """The resolved config as plain Python data (for manifests and run records)."""
    return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)  # type: ignore[return-value]


register()
