"""Transfer study: which recipe gives a model that follows this project's stance definition?

    .venv/bin/python benchmarks/transfer_study.py \\
        --base news=outputs/recipes/news --base news_sentiment=outputs/recipes/news_sentiment

``--base NAME=DIR`` names a trained recipe: DIR holds one run per training seed (``seed=N/``
sub-folders, as ``python -m stance.train -m +experiment=NAME seed=1,2,3`` or ``hydra.run.dir``
writes them). For every recipe and seed this script scores, through the library's own functions:

- ``dev_rw_stance`` / ``dev_mt_stance``: NewsMTSC's dev splits with this project's stance labels
  (``data.labels=stance``: the primary quality number);
- ``dev_rw_newsmtsc``: NewsMTSC's dev_rw with its own (sentiment) labels (comparable to the literature);
- ``seed_zero_shot``: all 204 seed pairs, the model as it is;
- ``seed_cv_adapt``: the seed pairs by grouped 5-fold CV (``data.split.folds``: no sentence group
  in two folds), the model adapted on four folds (``+experiment=adapt``) and scored on the fifth;
  out-of-fold predictions pooled;
- ``dev_rw_stance_after_adapt`` / ``dev_mt_stance_after_adapt``: the relabelled dev splits scored
  by the model after ``make run``'s adaptation step (adapted on the seed's train split): what
  adaptation costs the general model.

Baselines without a base model are scored by the same grouped CV: ``seed_only`` (MiniLM fine-tuned
on the seed folds alone, the ``make quick`` recipe) and ``tfidf`` (TF-IDF + logistic regression).
``--mixed-epochs N`` adds ``mixed``: ``+experiment=mixed`` (NewsMTSC relabelled + the seed folds,
seed rows weighted 10x) trained from MiniLM for N epochs in every fold; its ``dev_*_stance`` rows
are fold 1's model (trained on NewsMTSC + four fifths of the seed).

Each (evaluation, recipe, seed) is written as a run folder (``metrics.json`` with ``test_*`` keys,
``predictions.jsonl``, ``run.json``, ``.hydra/overrides.yaml``) under ``--out/<evaluation>/``, so
``python -m stance.compare --out ... <that folder>`` ranks the recipes with its paired bootstrap;
this script runs it for every evaluation and prints one table (mean ± sd over seeds). Folders that
exist are reused: an interrupted study resumes.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from stance.overrides import quote_override as quote  # noqa: E402  (light: no torch)

EVALS = (
    "dev_rw_stance",
    "dev_mt_stance",
    "dev_rw_newsmtsc",
    "seed_zero_shot",
    "seed_cv_adapt",
    "dev_rw_stance_after_adapt",
    "dev_mt_stance_after_adapt",
)
CV_EVALS = ("seed_cv_adapt",)
# the general model after `make run`'s adaptation step (adapted on the seed's train split,
# selected on its validation split): how much of the general skill adaptation costs
AFTER_ADAPT = {"dev_rw_stance_after_adapt": "dev_rw_stance", "dev_mt_stance_after_adapt": "dev_mt_stance"}


def compose(*overrides: str) -> Any:
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from stance.config import CONFIG_DIR

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return hydra_compose("train", overrides=list(overrides))


def eval_rows() -> dict[str, list[dict[str, Any]]]:
    """The fixed evaluation sets, built by the pipeline's own dataset code."""
    import datasets

    from stance.data.dataset import ensure_dataset

    stance = ensure_dataset(compose("+experiment=news"))
    corpus = ensure_dataset(compose("+experiment=news_sentiment"))
    seed = ensure_dataset(compose())
    seed_all = datasets.concatenate_datasets([seed[s] for s in seed])
    return {
        "dev_rw_stance": stance["validation"].to_list(),
        "dev_mt_stance": stance["validation_mt"].to_list(),
        "dev_rw_newsmtsc": corpus["validation"].to_list(),
        "seed_zero_shot": seed_all.to_list(),
        "seed_cv_adapt": seed_all.to_list(),
    }


def write_run(
    folder: Path,
    recipe: str,
    seed: int,
    rows: list[dict[str, Any]],
    probs: Any,
    extra: dict[str, Any],
    key: str = "recipe",
) -> dict[str, float]:
    """One scored evaluation as a run folder stance.compare reads; ``key=recipe`` names its row."""
    from stance.analysis.metrics import compute_metrics
    from stance.analysis.report import examples_hash, prediction_rows
    from stance.io import write_json, write_jsonl, write_text

    y_true = [int(r["label"]) for r in rows]
    metrics = compute_metrics(y_true, probs.argmax(axis=1).tolist(), prefix="test", bootstrap=1000, seed=seed)
    write_jsonl(folder / "predictions.jsonl", prediction_rows(rows, probs))
    write_json(folder / "metrics.json", metrics)
    write_text(folder / ".hydra" / "overrides.yaml", f"- {key}={recipe}\n- seed={seed}\n")
    write_text(folder / ".hydra" / "config.yaml", f"{key}: {recipe}\nseed: {seed}\n")
    write_json(
        folder / "run.json", {"status": "completed", "seed": seed, "test_data_hash": examples_hash(rows), **extra}
    )
    return metrics


def rank_and_print(folder: Path, metrics: list[str], title: str) -> Any:
    """stance.compare over the run folders under ``folder`` (ranked by ``metrics[0]``, paired
    bootstrap against the best): written beside them and printed as a markdown table."""
    from stance.analysis.comparison import compare_runs, table, write_comparison

    comp = compare_runs([folder], metric=metrics[0], metrics=metrics)
    write_comparison(comp, folder)
    header, body = table(comp)
    print(f"\n## {title}\n")
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for line in body:
        print("| " + " | ".join(line) + " |")
    return comp


def cv_probs(overrides: list[str], rows: list[dict[str, Any]], work: Path, on_fold: Any = None) -> Any:
    """Out-of-fold probabilities of grouped 5-fold CV over ``rows`` (the training code's run_cv)."""
    import datasets

    from stance.data.rows import FEATURES
    from stance.modeling.finetune import setup_runtime
    from stance.modeling.training import run_cv

    cfg = compose(*overrides, "eval.cv_folds=5", "eval.bootstrap=0")
    setup_runtime(int(cfg.seed), int(cfg.threads))
    ds = datasets.Dataset.from_list(rows, features=FEATURES)
    work.mkdir(parents=True, exist_ok=True)
    _, oof = run_cv(cfg, ds, work, on_fold=on_fold)
    import numpy as np

    from stance.labels import LABELS

    by_id = {r["example_id"]: [r[f"prob_{label}"] for label in LABELS] for r in oof}
    return np.asarray([by_id[r["example_id"]] for r in rows], dtype=np.float32)


def adapted_model(base: Path, seed: int, threads: list[str], work: Path) -> Path:
    """The base model adapted to the seed labels as ``make run`` does it (trained once, reused)."""
    from stance.modeling.training import run_training

    run = work / f"adapted-{base.parent.parent.name}-seed{seed}"
    if not (run / "model" / "config.json").is_file():
        run_training(
            compose("+experiment=adapt", f"model.init_from={quote(base)}", f"seed={seed}", *threads), output_dir=run
        )
    return run / "model"


def seeds_of(folder: Path) -> dict[int, Path]:
    out = {}
    for run in sorted(folder.glob("seed=*")):
        m = re.fullmatch(r"seed=(\d+)", run.name)
        if m and (run / "model" / "config.json").is_file():
            out[int(m[1])] = run / "model"
    if not out:
        raise SystemExit(f"{folder}: no seed=N/model folders")
    return out


def _cell(c: dict[str, Any] | None) -> str:
    """``mean ± sd (n)`` of one summary cell; no sd for a single seed."""
    if not c:
        return "–"
    sd = "" if c["std"] is None or c["n"] < 2 or c["std"] != c["std"] else f" ± {c['std']:.3f}"
    return f"{c['mean']:.3f}{sd} ({c['n']})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", action="append", default=[], help="NAME=DIR of a trained recipe (seed=N/ runs)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="training seeds of the CV baselines")
    ap.add_argument("--out", default=str(REPO / "bench-out" / "transfer"))
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--no-baselines", action="store_true")
    ap.add_argument(
        "--mixed-epochs", type=float, default=0, help="add the mixed recipe trained N epochs per fold (0: off)"
    )
    a = ap.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    log = logging.getLogger("transfer")
    log.setLevel(logging.INFO)
    from stance.modeling.finetune import setup_runtime
    from stance.modeling.models import load_classifier

    out = Path(a.out)
    rows = eval_rows()
    jobs: list[tuple[str, int, str, Any]] = []  # (recipe, seed, evaluation, model dir or None)
    for spec in a.base:
        name, _, folder = spec.partition("=")
        for seed, model in seeds_of(Path(folder)).items():
            jobs += [(name, seed, ev, model) for ev in EVALS]
    if not a.no_baselines:
        jobs += [("seed_only", s, "seed_cv_adapt", None) for s in a.seeds]
        jobs += [("tfidf", s, "seed_cv_adapt", None) for s in a.seeds]
    if a.mixed_epochs > 0:
        jobs += [("mixed", s, "seed_cv_adapt", None) for s in a.seeds]
    threads = [f"threads={a.threads}"] if a.threads else []
    for i, (recipe, seed, ev, model) in enumerate(jobs, 1):
        folder = out / ev / f"recipe={recipe}" / f"seed={seed}"
        if (folder / "run.json").is_file():
            continue
        t0 = time.perf_counter()
        if ev in CV_EVALS:
            if model is not None:
                overrides = ["+experiment=adapt", f"model.init_from={quote(model)}", f"seed={seed}", *threads]
            elif recipe == "tfidf":
                overrides = ["model=tfidf_lr", f"seed={seed}", *threads]
            elif recipe == "mixed":
                overrides = ["+experiment=mixed", f"train.epochs={a.mixed_epochs:g}", f"seed={seed}", *threads]
            else:
                overrides = [f"seed={seed}", *threads]
            fold_one = {}

            def score_dev(i: int, clf: Any, keep: dict[str, Any] = fold_one, mixed: bool = recipe == "mixed") -> None:
                if mixed and i == 0:  # the mixed model's general skill: fold 1's model
                    keep.update({d: clf.predict_proba(rows[d], progress=False) for d in AFTER_ADAPT.values()})

            probs = cv_probs(overrides, rows[ev], out / ".work", on_fold=score_dev)
            for dev, dev_probs in fold_one.items():
                write_run(out / dev / f"recipe={recipe}" / f"seed={seed}", recipe, seed, rows[dev], dev_probs, {})
        elif ev in AFTER_ADAPT:
            adapted = adapted_model(model, seed, threads, out / ".work")
            setup_runtime(seed, a.threads)
            probs = load_classifier(adapted).predict_proba(rows[AFTER_ADAPT[ev]], progress=False)
        else:
            setup_runtime(seed, a.threads)
            probs = load_classifier(model).predict_proba(rows[ev], progress=False)
        m = write_run(
            folder,
            recipe,
            seed,
            rows[AFTER_ADAPT.get(ev, ev)],
            probs,
            {"model": str(model) if model else None, "seconds": round(time.perf_counter() - t0, 1)},
        )
        log.info(
            "[%d/%d] %s seed %d %s: macro-F1 %.4f (%.0fs)",
            i,
            len(jobs),
            recipe,
            seed,
            ev,
            m["test_macro_f1"],
            time.perf_counter() - t0,
        )

    summary: dict[str, dict[str, Any]] = {}
    for ev in EVALS:
        if not (out / ev).is_dir():
            continue
        comp = rank_and_print(out / ev, ["test_macro_f1", "test_f1_pn", "test_accuracy"], ev)
        for row in comp.rows:
            if row.rank:
                summary.setdefault(row.label, {})[ev] = {
                    "mean": row.mean.get("test_macro_f1"),
                    "std": row.std.get("test_macro_f1"),
                    "n": len(row.runs),
                }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print("\n## Summary: macro-F1, mean ± sd over training seeds (n)\n")
    print("| recipe | " + " | ".join(EVALS) + " |\n|---|" + "---|" * len(EVALS))
    for recipe, cells in summary.items():
        print(f"| {recipe} | " + " | ".join(_cell(cells.get(ev)) for ev in EVALS) + " |")


if __name__ == "__main__":
    main()
