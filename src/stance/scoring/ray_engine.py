"""``score.engine=ray``: the scoring stages on Ray Data, with the local engine's results and guarantees.

    python -m stance.score model_dir=RUN/model input=PATH output_dir=OUT score.engine=ray

What runs where:

* the driver (this process) reads the articles with :func:`stance.text.articles.iter_articles`,
  the local reader, so bad files and rows, duplicate ids and the resume skip are decided exactly
  as in the local engine (and in the same order);
* Ray Data gets the articles a window at a time (``score.ray.window_articles``) as a dataset; a
  stateful :class:`Scorer` in ``map_batches`` (``score.ray.concurrency`` workers, the model loaded
  once per worker and window, ``score.ray.batch_size`` articles per call) cleans, segments and
  pairs them with :func:`stance.text.pairs.article_pairs` and classifies the pairs with the one
  prediction engine (``load_classifier(...).predict_proba``, calibration temperature included);
* the driver takes each article's rows and probabilities back, in input order, and hands them to
  the local engine's run object, which writes the mention parts (Parquet), the done-lists and
  the aggregates with the same code. The output folder is the local engine's, byte for byte in
  its rows; resumption works across engines (the engine is not part of the fingerprint).

A worker that dies mid-batch: Ray restarts it and runs the batch again; an article whose result
arrives twice is kept once, and an article whose result never arrives stops the run with a
StanceError (its part is not written), so rows are never lost or duplicated silently.
"""

from __future__ import annotations

import io
import json
import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from stance.errors import StanceError
from stance.modeling.models import load_classifier
from stance.text.actors import ActorRegistry
from stance.text.articles import Article
from stance.text.pairs import article_pairs

log = logging.getLogger("stance.score")

_NO_RAY = "score.engine=ray: Ray is not installed (pip install 'stance[distributed]', or `make install`)"


class Scorer:
    """Ray Data's stateful ``map_batches`` class: pairs and classifies a batch of articles.

    One instance per worker: the model is loaded once (in ``__init__``) and reused for every batch.
    Returns one row per article: its pair rows (JSON) and their probabilities (``.npy`` bytes, the
    engine's own dtype), so an article is always complete or absent in the output.
    """

    def __init__(self, model_dir: str, score_opts: dict[str, Any], text_cfg: Any, registry: ActorRegistry) -> None:
        threads = int(score_opts["threads"])
        if threads > 0:
            import torch  # heavy: only when a thread count is set

            torch.set_num_threads(threads)
        self.classifier = load_classifier(
            model_dir, precision=score_opts["precision"], backend=score_opts["backend"], threads=threads
        )
        self.batch_size = int(score_opts["batch_size"])
        self.sort_window = int(score_opts["sort_window"])
        self.text_cfg = text_cfg
        self.registry = registry

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        per_article = [
            article_pairs(
                Article(id=str(i), title=str(t), text=str(x), source=str(s), meta=json.loads(str(m))),
                self.registry,
                self.text_cfg,
            )
            for i, t, x, s, m in zip(batch["id"], batch["title"], batch["text"], batch["source"], batch["meta"])
        ]
        flat = [row for rows in per_article for row in rows]
        t0 = time.perf_counter()
        probs = self.classifier.predict_proba(flat, self.batch_size, sort_window=self.sort_window)
        infer_s = time.perf_counter() - t0
        out_rows, out_probs, start = [], [], 0
        for rows in per_article:
            out_rows.append(json.dumps(rows, ensure_ascii=False))
            out_probs.append(_npy(probs[start : start + len(rows)]))
            start += len(rows)
        return {
            "article_id": [str(i) for i in batch["id"]],
            "rows": out_rows,
            "probs": out_probs,
            "infer_s": [infer_s / max(len(per_article), 1)] * len(per_article),
        }


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def _from_npy(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)


@contextmanager
def ray_session(opts: Any) -> Iterator[dict[str, Any]]:
    """Ray for one scoring run: an instance already initialised in this process is used as it is;
    else ``score.ray.address`` is joined, or (None) a local instance is started and stopped at the end.
    Yields a record of where it ran and the start-up time."""
    try:
        import ray  # heavy (and optional): only for score.engine=ray
    except ImportError:
        raise StanceError(_NO_RAY) from None
    started_here = not ray.is_initialized()
    t0 = time.perf_counter()
    if started_here:
        address = str(opts.address).strip() if opts.address else None
        try:
            ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING)
        except (ConnectionError, ValueError, RuntimeError) as err:
            raise StanceError(f"score.ray.address: cannot connect to Ray at {address!r}: {err}") from None
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # the run's own tqdm bar counts articles
    resources = ray.cluster_resources()
    info = {
        "name": "ray",
        "ray_version": ray.__version__,
        "address": opts.address or None,
        "started_here": started_here,
        "startup_s": round(time.perf_counter() - t0, 3),
        "cluster_cpus": resources.get("CPU"),
        "nodes": len(ray.nodes()),
        "concurrency": int(opts.concurrency),
        "batch_size": int(opts.batch_size),
        "window_articles": int(opts.window_articles),
    }
    try:
        yield info
    finally:
        if started_here:
            ray.shutdown()


def check_options(opts: Any) -> None:
    for key in ("concurrency", "batch_size", "window_articles"):
        if int(getattr(opts, key)) < 1:
            raise StanceError(f"score.ray.{key}: must be at least 1, got {getattr(opts, key)}")


class RaySink:
    """Collects the articles the driver reads into windows and scores each window on Ray Data,
    feeding the results to ``run.add`` in input order (so parts are cut as in the local engine)."""

    def __init__(self, run: Any, registry: ActorRegistry) -> None:
        self.run = run
        self.registry = registry
        self.window: list[Article] = []
        self.size = int(run.cfg.score.ray.window_articles)
        self.retried = 0

    def add(self, article: Article) -> None:
        self.window.append(article)
        if len(self.window) >= self.size:
            self.score_window()

    def close(self) -> None:
        self.score_window()
        self.run.record.setdefault("engine", {})["results_received_twice"] = self.retried

    def _dataset(self, articles: list[Article]) -> Any:
        import ray  # heavy: already imported by ray_session

        opts = self.run.cfg.score
        items = [
            {"id": a.id, "title": a.title, "text": a.text, "source": a.source, "meta": json.dumps(a.meta)}
            for a in articles
        ]
        bs = int(opts.ray.batch_size)
        ds = ray.data.from_items(items, override_num_blocks=max(1, math.ceil(len(items) / bs)))
        score_opts = {k: getattr(opts, k) for k in ("threads", "precision", "backend", "batch_size", "sort_window")}
        return ds.map_batches(
            Scorer,
            fn_constructor_args=(str(self.run.cfg.model_dir), score_opts, self.run.cfg.text, self.registry),
            # a fixed pool: each worker loads the model once. Ray Data's default for actors is
            # max_restarts=-1, max_task_retries=-1: a worker that dies is restarted and its batch
            # run again (at least once; a result that arrives twice is dropped in score_window)
            compute=ray.data.ActorPoolStrategy(size=int(opts.ray.concurrency)),
            batch_size=bs,
            num_cpus=1,
        )

    def score_window(self) -> None:
        articles, self.window = self.window, []
        if not articles:
            return
        results: dict[str, tuple[list[dict[str, Any]], np.ndarray]] = {}
        wanted = {a.id for a in articles}
        seen: set[str] = set()
        nxt = 0
        for out in self._dataset(articles).iter_rows():
            aid = str(out["article_id"])
            if aid in seen or aid not in wanted:
                self.retried += 1
                continue
            seen.add(aid)
            results[aid] = (json.loads(out["rows"]), _from_npy(out["probs"]))
            self.run.t_infer += float(out["infer_s"])
            # hand over every article whose turn has come (input order: parts cut as locally)
            while nxt < len(articles) and articles[nxt].id in results:
                rows, probs = results.pop(articles[nxt].id)
                self.run.on_batch(len(rows))
                self.run.add(articles[nxt], rows, probs)
                nxt += 1
        if nxt < len(articles):
            missing = [a.id for a in articles[nxt:] if a.id not in results]
            raise StanceError(
                f"score.engine=ray: {len(missing)} article(s) came back without results (first: {missing[0]!r}); "
                "the parts written so far are kept: rerun to resume"
            )
