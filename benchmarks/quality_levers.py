"""Quality levers for the general news model (issue 9): each lever against the ``news`` recipe, 3+ seeds.

    .venv/bin/python benchmarks/quality_levers.py --out bench-out/levers --seeds 1 2 3 [--threads 2]
    .venv/bin/python benchmarks/quality_levers.py --out bench-out/levers --baseline news=RUNS_DIR

A lever is ``+experiment=news`` plus its overrides (``LEVERS`` below). Every (lever, seed) missing
under ``--out/<lever>/seed=N`` is trained with ``python -m stance.train`` (one process per run, in
turn: two trainings on two cores slow each other several-fold). ``--baseline news=DIR`` reuses
``DIR/seed=N`` runs of the plain recipe instead of training them; the ensemble levers distil the
baseline's seeds (their training time is the teachers', counted separately).

The table: macro-F1 on NewsMTSC dev_rw and dev_mt relabelled under the guideline (the runs'
``validation`` / ``validation_mt``), dev_rw with NewsMTSC's own labels (comparable to the
literature; scored here through the prediction engine), mean ± sd over seeds, training minutes
per run, and ``stance.compare``'s paired bootstrap of each lever against the baseline on the
relabelled dev_rw. Each run is copied as a small comparison folder (predictions, metrics, run
record, ``.hydra/overrides.yaml`` naming the lever) under ``--out/compare``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from stance.overrides import quote_override as quote  # noqa: E402  (light: no torch)

# name -> (overrides after +experiment=news, note). "{teachers}" is the baseline seeds' model folders.
LEVERS: dict[str, tuple[list[str], str]] = {
    "news": ([], "the recipe: 3 epochs, lr 1e-4, batch 32, selected on dev_rw every half epoch"),
    "llrd": (["train.layer_lr_decay=0.85"], "layer-wise lr decay 0.85 (embeddings at 0.85^7 of the head's lr)"),
    "news_5ep": (["train.epochs=5"], "a longer schedule: 5 epochs, the best half-epoch checkpoint kept"),
    "ens6": (
        ["train.distill_from={teachers}"],
        "6-layer student of the 3-seed ensemble (soft labels T=2, alpha 0.5), from MiniLM",
    ),
    "ens_l3": (
        ["+experiment=distill", "train.distill_from={teachers}", "model.init_from={last}"],
        "3-layer student (layers 0, 2, 4 of the last teacher) of the ensemble, 2 epochs: the scoring student",
    ),
    "ens_l3_4ep": (
        ["+experiment=distill", "train.distill_from={teachers}", "model.init_from={last}", "train.epochs=4"],
        "the same 3-layer student, 4 epochs",
    ),
}


def run_dir(out: Path, baseline: Path | None, lever: str, seed: int) -> Path:
    if lever == "news" and baseline is not None:
        return baseline / f"seed={seed}"
    return out / lever / f"seed={seed}"


def train(lever: str, seed: int, folder: Path, teachers: list[Path], threads: int) -> None:
    overrides, _ = LEVERS[lever]
    listed = "[" + ",".join(json.dumps(str(t)) for t in teachers) + "]"
    args = [o.replace("{teachers}", listed).replace("{last}", str(teachers[-1])) for o in overrides]
    # +experiment=distill replaces +experiment=news (both set data; distill's model is the student)
    experiment = [] if any(a.startswith("+experiment=") for a in args) else ["+experiment=news"]
    cmd = [sys.executable, "-m", "stance.train", *experiment, *args, f"seed={seed}", quote(f"hydra.run.dir={folder}")]
    if threads:
        cmd.append(f"threads={threads}")
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=REPO)


def newsmtsc_dev_rw(model_dir: Path, cache: dict[str, Any]) -> float:
    """Macro-F1 on dev_rw with NewsMTSC's own labels (data/processed/newsmtsc, built if absent)."""
    from stance.analysis.metrics import macro_f1
    from stance.modeling.models import load_classifier

    if "rows" not in cache:
        from hydra import compose, initialize_config_dir

        from stance.config import CONFIG_DIR
        from stance.data.dataset import ensure_dataset

        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            cfg = compose("train", overrides=["+experiment=news_sentiment"])
        cache["rows"] = ensure_dataset(cfg)["validation"].to_list()
    rows = cache["rows"]
    probs = load_classifier(model_dir).predict_proba(rows, progress=False)
    return macro_f1([int(r["label"]) for r in rows], probs.argmax(axis=1).tolist())


def comparison_copy(src: Path, dest: Path, lever: str, seed: int) -> None:
    """The files stance.compare reads, with overrides naming the lever (the runs' own differ in spelling)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("predictions.jsonl", "metrics.json", "run.json"):
        shutil.copyfile(src / name, dest / name)
    (dest / ".hydra").mkdir(exist_ok=True)
    (dest / ".hydra" / "overrides.yaml").write_text(f"- lever={lever}\n- seed={seed}\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(REPO / "bench-out" / "levers"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--baseline", help="news=DIR: reuse DIR/seed=N runs of +experiment=news")
    ap.add_argument("--baseline-seeds", type=int, nargs="+", help="the baseline's seeds (default: --seeds)")
    ap.add_argument("--levers", nargs="+", default=list(LEVERS), choices=list(LEVERS))
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    out = Path(a.out).resolve()
    baseline = Path(a.baseline.partition("=")[2]).resolve() if a.baseline else None
    base_seeds = a.baseline_seeds or a.seeds
    teachers = [run_dir(out, baseline, "news", s) / "model" for s in base_seeds]
    for lever in a.levers:
        for seed in base_seeds if lever == "news" else a.seeds:
            folder = run_dir(out, baseline, lever, seed)
            if not (folder / "metrics.json").is_file():
                if lever == "news" and baseline is not None:
                    raise SystemExit(f"{folder}: no metrics.json (the --baseline run is missing)")
                train(lever, seed, folder, teachers, a.threads)

    from stance.analysis.comparison import compare_runs, table, write_comparison

    compare_dir = out / "compare"
    shutil.rmtree(compare_dir, ignore_errors=True)
    extra: dict[str, dict[str, list[float]]] = {}
    cache: dict[str, Any] = {}
    for lever in a.levers:
        for seed in base_seeds if lever == "news" else a.seeds:
            folder = run_dir(out, baseline, lever, seed)
            comparison_copy(folder, compare_dir / f"lever={lever}" / f"seed={seed}", lever, seed)
            record = json.loads((folder / "run.json").read_text())
            cell = extra.setdefault(lever, {"minutes": [], "newsmtsc": []})
            cell["minutes"].append(float(record["training"]["train_seconds"]) / 60)
            cell["newsmtsc"].append(newsmtsc_dev_rw(folder / "model", cache))
    comp = compare_runs(
        [compare_dir],
        metric="validation_macro_f1",
        metrics=["validation_macro_f1", "validation_mt_macro_f1"],
    )
    write_comparison(comp, compare_dir)
    header, body = table(comp)
    print("\n## stance.compare (relabelled dev_rw; paired bootstrap against the best)\n")
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for line in body:
        print("| " + " | ".join(line) + " |")

    import numpy as np

    def cell(values: list[float]) -> str:
        v = [x for x in values if x == x]
        return f"{np.mean(v):.3f} ± {np.std(v, ddof=1):.3f}" if len(v) > 1 else (f"{v[0]:.3f}" if v else "–")

    summary = {}
    print("\n## Levers: macro-F1 mean ± sd over seeds\n")
    print(
        "| lever | seeds | dev_rw (guideline) | dev_mt (guideline) | dev_rw (NewsMTSC labels) | train min/run | what |"
    )
    print("|---|---|---|---|---|---|---|")
    for row in comp.rows:
        if not row.rank:
            continue
        lever = row.runs[0].overrides.get("lever", "")
        rw = [r.metrics.get("validation_macro_f1", float("nan")) for r in row.runs]
        mt = [r.metrics.get("validation_mt_macro_f1", float("nan")) for r in row.runs]
        summary[lever] = {"dev_rw": rw, "dev_mt": mt, **extra[lever], "seeds": row.seeds}
        print(
            f"| {lever} | {', '.join(row.seeds)} | {cell(rw)} | {cell(mt)} | {cell(extra[lever]['newsmtsc'])} "
            f"| {np.mean(extra[lever]['minutes']):.1f} | {LEVERS[lever][1]} |"
        )
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
