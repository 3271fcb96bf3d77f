"""Batch scoring of new articles with a trained model (the run behind ``python -m stance.score``).

    python -m stance.score model_dir=RUN/model input=PATH output_dir=OUT

``input`` is a file, folder or glob (``input=PATH``), or the full reading spec
(``input.paths=[a,b] input.meta_columns=[outlet,date]``). Every (sentence, actor) pair that
:func:`stance.text.pairs.article_pairs` finds is encoded exactly as in training
(:func:`stance.modeling.encoding.encode` with the model's saved ``stance`` block) and classified.

Outputs in ``output_dir`` (``score.format`` = parquet | csv | jsonl for the tables):

* ``mentions/part-NNNNN.parquet``: one row per (sentence, actor), written per chunk of
  ``score.chunk_articles`` articles, each part atomically; read the folder with
  ``pandas.read_parquet(OUT / "mentions")``. With csv/jsonl, ``mentions.<fmt>`` as well.
* ``articles.<fmt>``: one row per (article, actor): counts and shares of each label, net stance.
* ``actors.<fmt>``: the same over the corpus, with a bootstrap 95% CI of net stance (articles
  resampled).
* ``stance_by_actor.png``, ``run.json`` (model, resolved config, input hashes, counts, skipped
  items with reasons).

Resumable (:mod:`stance.scoring.state`): ``.score-state/part-*.json`` lists the article ids and
content hashes of each written part. A rerun on the same ``output_dir`` skips unchanged articles,
rescores changed ones and drops the rows of articles whose input is gone; aggregates are always
recomputed from all parts, so a resumed run ends with the same outputs as an uninterrupted one.
Rows are held for one chunk at a time, so memory stays flat as the corpus grows.

One writer at a time: the run holds an exclusive lock on ``output_dir`` (a second one is refused at
once). SIGINT and SIGTERM stop the run with ``run.json`` saying "interrupted" (with pid and host);
the parts written so far stay valid.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from stance.config import InputConfig, ScoreConfig, ScoreEngine, check_keys
from stance.data.rows import PAIR_COLUMNS
from stance.errors import Interrupted, StanceError, sigterm_interrupts
from stance.io import file_sha256, write_json
from stance.labels import LABELS
from stance.modeling.inference import model_hash
from stance.modeling.models import load_classifier
from stance.scoring.checks import (
    FORMATS,
    check_model_dir,
    check_options,
    config_value,
    input_spec,
    low_confidence_warning,
)
from stance.scoring.groups import date_problem
from stance.scoring.ray_engine import RaySink, ray_session
from stance.scoring.state import (
    MENTIONS_DIR,
    ScoreState,
    article_hash,
    fingerprint,
    lock_output,
    plain,
    write_part,
)
from stance.scoring.tables import aggregate, mention_table
from stance.scoring.views import check_view_options, write_views
from stance.text.actors import ActorRegistry
from stance.text.articles import Problem, input_files, iter_articles
from stance.text.pairs import article_pairs

log = logging.getLogger("stance.score")
_RESUME_HINT = "rerun the same command to resume"


# --- the run -------------------------------------------------------------------------------------
@dataclass
class _Run:
    """One scoring run: its settings, the loaded model, progress counters and the chunk being filled."""

    cfg: Any
    out: Path
    classifier: Any
    state: ScoreState
    meta_columns: list[str]
    record: dict[str, Any]
    bar: Any = None
    start: float = field(default_factory=time.perf_counter)
    problems: list[Problem] = field(default_factory=list)
    n_read: int = 0
    n_resumed: int = 0
    n_changed: int = 0
    dropped: list[str] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    chunk_hashes: dict[str, str] = field(default_factory=dict)
    n_scored: int = 0
    n_pairs: int = 0
    sentences: int = 0
    t_infer: float = 0.0
    chunk_ids: list[str] = field(default_factory=list)
    chunk_rows: list[dict[str, Any]] = field(default_factory=list)
    chunk_no_actor: list[dict[str, str]] = field(default_factory=list)
    # probabilities computed elsewhere (score.engine=ray), one array per article of the chunk
    chunk_probs: list[Any] = field(default_factory=list)
    part_num: int = 0

    def on_problem(self, problem: Problem) -> None:
        self.problems.append(problem)
        log.warning("skipped %s", problem)

    def on_batch(self, k: int) -> None:
        """Progress postfix: scored sentences per second."""
        self.sentences += k
        rate = self.sentences / max(time.perf_counter() - self.start, 1e-9)
        self.bar.set_postfix_str(f"{self.sentences} sent, {rate:.1f} sent/s", refresh=False)
        self.bar.refresh()

    def add(self, article: Any, rows: list[dict[str, Any]], probs: Any = None) -> None:
        column = self.cfg.score.time_column
        bad_date = date_problem(article.meta.get(column), column) if column else None
        if bad_date:  # skipped like any bad input row: listed in run.json, never guessed
            self.on_problem(Problem(article.source, None, f"article {article.id!r}: {bad_date}"))
            return
        self.seen.add(article.id)
        if article.id in self.state.owner:
            self.n_changed += 1  # scored before from other content: prune() removes the old rows
        self.chunk_hashes[article.id] = article_hash(article)
        if not rows:
            self.chunk_no_actor.append({"article_id": article.id, "source": article.source})
        self.chunk_ids.append(article.id)
        self.chunk_rows.extend(rows)
        if probs is not None:
            self.chunk_probs.append(probs)
        if len(self.chunk_ids) >= int(self.cfg.score.chunk_articles):
            self.flush()

    def flush(self) -> None:
        """Score the chunk and write it as one part (rows, then its done-list)."""
        if not self.chunk_ids:
            return
        opts = self.cfg.score
        ti = time.perf_counter()
        if self.chunk_probs:  # scored by the Ray engine already
            probs = np.concatenate(self.chunk_probs)
        else:
            probs = self.classifier.predict_proba(
                self.chunk_rows, int(opts.batch_size), sort_window=int(opts.sort_window), on_batch=self.on_batch
            )
            self.t_infer += time.perf_counter() - ti
        table = mention_table(self.chunk_rows, probs, LABELS, self.meta_columns, float(opts.threshold))
        write_part(
            self.state,
            self.part_num,
            table,
            {
                "articles": list(self.chunk_ids),
                "hashes": dict(self.chunk_hashes),
                "no_actor": list(self.chunk_no_actor),
                "rows": len(self.chunk_rows),
            },
        )
        self.n_scored += len(self.chunk_ids)
        self.n_pairs += len(self.chunk_rows)
        self.bar.update(len(self.chunk_ids))
        self.part_num += 1
        self.chunk_ids.clear()
        self.chunk_hashes.clear()
        self.chunk_rows.clear()
        self.chunk_no_actor.clear()
        self.chunk_probs.clear()


def run_scoring(cfg: ScoreConfig | Any) -> dict[str, Any]:
    """Score every article of ``cfg.input`` into ``cfg.output_dir``; return the run record.

    Bad input (empty/undecodable files, malformed rows, duplicate ids) and articles without any
    registered actor are skipped, counted and listed in ``run.json``; they never stop the batch.
    Raises StanceError for a missing model_dir, input or output_dir, a resumption with
    different settings, or another run writing to ``output_dir``; :class:`stance.errors.Interrupted`
    (a KeyboardInterrupt) when SIGINT or SIGTERM stops it, after recording that in ``run.json``.
    """
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    check_keys(cfg)  # a key added with + (+score.grp=1) fails here, before any work
    check_options(cfg)
    model_dir = check_model_dir(config_value(cfg, "model_dir"))
    spec = input_spec(config_value(cfg, "input"))
    check_view_options(cfg.score, spec.meta_columns)
    files = input_files(list(spec.paths))  # raises for a missing input
    out_value = config_value(cfg, "output_dir")
    if out_value is None or not str(out_value).strip():
        raise StanceError("output_dir: no output folder given (output_dir=OUT)")
    out = Path(str(out_value)).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    registry = ActorRegistry.from_config(cfg.actors)
    if len(registry) == 0:
        raise StanceError("actors: the actor registry is empty (actors=<registry>)")
    with lock_output(out), sigterm_interrupts():
        return _run_locked(cfg, out, model_dir, spec, registry, files, started, t0)


def _run_locked(
    cfg: Any,
    out: Path,
    model_dir: Path,
    spec: InputConfig,
    registry: ActorRegistry,
    files: list[Path],
    started: datetime,
    t0: float,
) -> dict[str, Any]:
    """The run, under the output lock: an interruption or failure is recorded in run.json."""
    try:
        run = _start(cfg, out, model_dir, spec, started)
    except KeyboardInterrupt as err:
        raise Interrupted(getattr(err, "signum", signal.SIGINT), _RESUME_HINT) from None
    try:
        write_json(out / "run.json", run.record)  # "running", with pid and host
        return _score_and_finish(run, cfg, spec, registry, files, t0)
    except BaseException as err:
        _record_stop(run, err)
        if isinstance(err, KeyboardInterrupt):
            raise Interrupted(getattr(err, "signum", signal.SIGINT), _RESUME_HINT) from None
        raise


def _record_stop(run: _Run, err: BaseException) -> None:
    """The parts written so far stay valid; run.json says where the run stopped and why."""
    run.record.update(
        {
            "status": "interrupted" if isinstance(err, KeyboardInterrupt) else "failed",
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
            "error": f"{type(err).__name__}: {err}".splitlines()[0],
            "counts": {
                "articles_scored_now": run.n_scored,
                "mentions_scored_now": run.n_pairs,
                "articles_already_scored": run.n_resumed,
                "problems": len(run.problems),
            },
        }
    )
    write_json(run.out / "run.json", run.record)


def _score_and_finish(
    run: _Run, cfg: Any, spec: InputConfig, registry: ActorRegistry, files: list[Path], t0: float
) -> dict[str, Any]:
    if cfg.score.engine == ScoreEngine.ray:  # the same stages on Ray Data (scoring/ray_engine.py)
        with ray_session(cfg.score.ray) as info:
            run.record["engine"] = info
            t_score = _score_articles(run, spec, registry, RaySink(run, registry))
    else:
        t_score = _score_articles(run, spec, registry)
    return _finish(run, files, t_score, t0)


def _start(cfg: Any, out: Path, model_dir: Path, spec: InputConfig, started: datetime) -> _Run:
    """Open the resumable state (other settings are refused before the model loads), load the
    model and make the first run record."""
    opts = cfg.score
    digest = model_hash(model_dir)
    state = ScoreState(out, fingerprint(cfg, spec, digest))
    if int(opts.threads) > 0:
        _set_threads(int(opts.threads))
    classifier = load_classifier(model_dir, precision=opts.precision, backend=opts.backend, threads=int(opts.threads))
    kind = str(getattr(classifier, "kind", "transformer"))
    if kind != "transformer":
        log.info("model %s: %s baseline", model_dir, kind)
    config_record = plain(cfg)
    config_record["input"] = plain(spec)
    record: dict[str, Any] = {
        "status": "running",
        "started": started.isoformat(timespec="seconds"),
        # with "running": people (and tools) can tell a live run from one whose process is gone
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "model": {
            "dir": str(model_dir),
            "sha256": digest,
            "kind": kind,
            "labels": list(LABELS),
            "input_format": getattr(classifier, "input_format", None),
            "max_length": getattr(classifier, "max_length", None),
            "markers": list(getattr(classifier, "markers", ()) or ()),
            **({"other_markers": list(om)} if (om := getattr(classifier, "other_markers", ())) else {}),
            "precision": classifier.precision if kind == "transformer" else None,
            "backend": getattr(classifier, "backend", "torch"),
            "threads": int(opts.threads) or _get_threads(),
        },
        "config": config_record,
    }
    meta_columns = [m for m in spec.meta_columns if m not in PAIR_COLUMNS]
    return _Run(cfg, out, classifier, state, meta_columns, record, part_num=state.next_part())


def _score_articles(run: _Run, spec: InputConfig, registry: ActorRegistry, sink: RaySink | None = None) -> float:
    """Read, pair and score every article not scored yet; returns the seconds it took.
    With a ``sink`` (score.engine=ray) articles go to it and come back to ``run.add`` scored."""
    # a first, cheap pass (reading only) gives the bar its total, so it shows an ETA
    total = sum(1 for _ in iter_articles(spec, on_problem=lambda _: None))
    run.bar = tqdm(total=total, desc="scoring", unit="art", dynamic_ncols=True, mininterval=1.0)
    run.start = t_loop = time.perf_counter()
    try:
        for article in iter_articles(spec, on_problem=run.on_problem):
            run.n_read += 1
            if run.state.is_current(article.id, article_hash(article)):
                run.seen.add(article.id)
                run.n_resumed += 1
                run.bar.update(1)
                continue
            if sink is not None:
                sink.add(article)
            else:
                run.add(article, article_pairs(article, registry, run.cfg.text))
        if sink is not None:
            sink.close()
        run.flush()
        # only once every input was read: an interrupted run must not drop what it did not reach
        run.dropped = run.state.drop_missing(run.seen)
        run.state.prune()
    finally:
        run.bar.close()
    # reading, segmentation, mention finding, inference and part writing (not model loading)
    return time.perf_counter() - t_loop


def _finish(run: _Run, files: list[Path], t_score: float, t0: float) -> dict[str, Any]:
    """Aggregate every part (this run's and earlier runs'), plot, and write the final run record."""
    no_actor: list[dict[str, str]] = []
    total_articles = 0
    for _, manifest in run.state.manifests():
        total_articles += len(manifest["articles"])
        no_actor.extend(manifest["no_actor"])
    fmt = run.cfg.score.format
    agg = aggregate(run.out, run.state, LABELS, run.meta_columns, fmt, int(run.cfg.score.bootstrap), int(run.cfg.seed))
    actors = agg["actors"]
    plot_path = run.out / "stance_by_actor.png"
    if not len(actors) and plot_path.exists():  # with actors, write_views draws it
        plot_path.unlink()
    for other in FORMATS:  # tables of an earlier run in another score.format would contradict these
        for name in ("articles", "actors", "mentions"):
            if other != fmt and (run.out / f"{name}.{other}").is_file():
                (run.out / f"{name}.{other}").unlink()
    skipped = [{"path": p.path, "line": p.line, "reason": p.message} for p in run.problems]
    skipped += [
        {
            "path": d["source"],
            "line": None,
            "article_id": d["article_id"],
            "reason": "no actor of the registry is mentioned",
        }
        for d in no_actor
    ]
    run.record.update(
        {
            "status": "completed",
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
            "elapsed_s": round(time.perf_counter() - t0, 3),
            "inputs": [{"path": str(f), "sha256": file_sha256(f), "bytes": f.stat().st_size} for f in files],
            "counts": _counts(run, files, total_articles, no_actor, agg["mentions"], actors),
            "throughput": {
                "articles_per_s": round(run.n_scored / t_score, 3) if t_score > 0 else None,
                "sentences_per_s": round(run.n_pairs / t_score, 3) if t_score > 0 else None,
                "inference_s": round(run.t_infer, 3),
            },
            "skipped": skipped,
            "outputs": {
                "mentions": [f"{MENTIONS_DIR}/"] + ([f"mentions.{fmt}"] if fmt != "parquet" else []),
                "articles": f"articles.{fmt}",
                "actors": f"actors.{fmt}",
                "plot": plot_path.name if len(actors) else None,
            },
        }
    )
    run.record["outputs"].update(write_views(run.out, run.state, run.cfg, actors, run.record))
    write_json(run.out / "run.json", run.record)
    log.info(
        "scored %d article(s) (%d now, of which %d changed since scored; %d earlier; %d dropped: "
        "no longer in the input): %d mentions of %d actor(s); skipped %d problem(s), "
        "%d article(s) without actors; %.1f sentences/s -> %s",
        total_articles,
        run.n_scored,
        run.n_changed,
        run.n_resumed,
        len(run.dropped),
        agg["mentions"],
        len(actors),
        len(run.problems),
        len(no_actor),
        run.n_pairs / t_score if t_score > 0 else 0.0,
        run.out,
    )
    warning = low_confidence_warning(
        run.record["counts"], float(run.cfg.score.threshold), run.classifier, Path(str(run.cfg.model_dir))
    )
    if warning:
        log.warning("%s", warning)
    return run.record


def _counts(
    run: _Run, files: list[Path], total_articles: int, no_actor: list[dict[str, str]], mentions: int, actors: Any
) -> dict[str, Any]:
    label_counts = {lab: int(actors[f"n_{lab}"].sum()) if len(actors) else 0 for lab in LABELS}
    return {
        "files": len(files),
        "articles_read": run.n_read,
        "articles_scored_now": run.n_scored,
        "articles_already_scored": run.n_resumed,
        # rescored: their content changed since the run that scored them (old rows removed)
        "articles_changed": run.n_changed,
        # rows removed: no longer in the input (file deleted, row removed, or now unreadable)
        "articles_dropped": len(run.dropped),
        "articles": total_articles,
        "articles_with_actors": total_articles - len(no_actor),
        "articles_no_actor": len(no_actor),
        "problems": len(run.problems),
        "mentions": int(mentions),
        "mentions_scored_now": run.n_pairs,
        "actors": int(len(actors)),
        "labels": label_counts,
        "low_confidence": int(actors["n_low_confidence"].sum()) if len(actors) else 0,
    }


def _set_threads(threads: int) -> None:
    import torch  # heavy: only when a thread count is set

    torch.set_num_threads(threads)


def _get_threads() -> int:
    import torch  # heavy: loaded by the model anyway

    return int(torch.get_num_threads())
