"""Quality levers for the general news model (issue 9): each lever against the ``news`` recipe, 3+ seeds.

    .venv/bin/python benchmarks/quality_levers.py --out bench-out/levers --seeds 1 2 3 [--threads 2]
    .venv/bin/python benchmarks/quality_levers.py --out bench-out/levers --baseline news=RUNS_DIR

A lever is ``+experiment=news`` plus its overrides (``LEVERS`` below); the recipe as it was
measured (``train.layer_lr_decay=1``, no other targets marked): the recipe has since gained the
``llrd`` and ``others`` levers as defaults, and each lever pins the settings it was measured with;
the second round's levers build on ``llrd``, so compare them with it. Every (lever, seed) missing
under ``--out/<lever>/seed=N`` is trained with ``python -m stance.train`` (one process per run, in
turn: two trainings on two cores slow each other several-fold). ``--baseline news=DIR`` reuses
``DIR/seed=N`` runs of the plain recipe instead of training them; the ensemble levers distil the
baseline's seeds (their training time is the teachers', counted separately).

Every run's model scores, through the prediction engine, the transfer study's sets
(``benchmarks/transfer_study.py``): NewsMTSC dev_rw and dev_mt relabelled under the guideline,
dev_rw with NewsMTSC's own labels (comparable to the literature) and the 204 seed pairs
(zero-shot). Each (set, lever, seed) is written as a run folder under ``--out/compare/<set>/``,
ranked by ``stance.compare``'s paired bootstrap; the summary is macro-F1 mean ± sd over seeds and
training minutes per run (wall clock: they depend on what else ran on the machine).
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
    "news": (
        ["train.layer_lr_decay=1", "model.other_markers=[]"],
        "the recipe before this study: 3 epochs, lr 1e-4, batch 32, selected on dev_rw every half epoch",
    ),
    "llrd": (
        ["train.layer_lr_decay=0.85", "model.other_markers=[]"],
        "layer-wise lr decay 0.85 (embeddings at 0.85^7 of the head's lr): now the news recipe",
    ),
    "news_5ep": (
        ["model.other_markers=[]", "train.epochs=5"],
        "the recipe (with decay 0.85) for 5 epochs instead of 3, the best half-epoch checkpoint kept",
    ),
    "others": (
        [],
        "the recipe with the sentence's other targets marked { so } (21% of train rows, 99% of dev_mt's have some)",
    ),
    "others_5ep": (
        ["train.epochs=5"],
        "the two that helped dev_mt alone, together: other targets marked, 5 epochs",
    ),
    "name_swap": (
        ["model.other_markers=[]", "train.name_swap=0.5"],
        "the recipe with half the name targets of train swapped for another actor's name of as many words",
    ),
    "rdrop": (
        ["model.other_markers=[]", "train.rdrop_alpha=1.0"],
        "the recipe with R-Drop (each batch twice, weight 1 on the symmetric KL of the two predictions)",
    ),
    "ens6": (
        ["train.layer_lr_decay=1", "model.other_markers=[]", "train.distill_from={teachers}"],
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


EVALS = ("dev_rw_stance", "dev_mt_stance", "dev_rw_newsmtsc", "seed_zero_shot")


def score_run(model_dir: Path, dest: Path, lever: str, seed: int, rows: dict[str, Any], minutes: float) -> None:
    """Each evaluation set scored by the run's model through the prediction engine, written as a
    run folder ``dest/<evaluation>/lever=<lever>/seed=<seed>`` that stance.compare reads."""
    from stance.modeling.models import load_classifier
    from transfer_study import write_run

    clf = load_classifier(model_dir)
    for ev in EVALS:
        probs = clf.predict_proba(rows[ev], progress=False)
        folder = dest / ev / f"lever={lever}" / f"seed={seed}"
        extra = {"model": str(model_dir), "train_minutes": minutes}
        write_run(folder, lever, seed, rows[ev], probs, extra, key="lever")


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

    from stance.modeling.finetune import setup_runtime
    from transfer_study import eval_rows, rank_and_print

    setup_runtime(0, a.threads)
    rows = eval_rows()
    compare_dir = out / "compare"
    shutil.rmtree(compare_dir, ignore_errors=True)
    minutes: dict[str, list[float]] = {}
    for lever in a.levers:
        for seed in base_seeds if lever == "news" else a.seeds:
            folder = run_dir(out, baseline, lever, seed)
            record = json.loads((folder / "run.json").read_text())
            m = float(record["training"]["train_seconds"]) / 60
            minutes.setdefault(lever, []).append(m)
            score_run(folder / "model", compare_dir, lever, seed, rows, round(m, 2))

    import numpy as np

    summary: dict[str, dict[str, Any]] = {lever: {"train_minutes": minutes[lever]} for lever in a.levers}
    for ev in EVALS:
        comp = rank_and_print(compare_dir / ev, ["test_macro_f1"], f"{ev} (paired bootstrap against the best)")
        for row in comp.rows:
            if row.rank:
                lever = row.runs[0].overrides.get("lever", "")
                summary[lever][ev] = [r.metrics.get("test_macro_f1", float("nan")) for r in row.runs]

    def cell(values: list[float] | None) -> str:
        v = [x for x in values or [] if x == x]
        return f"{np.mean(v):.3f} ± {np.std(v, ddof=1):.3f}" if len(v) > 1 else (f"{v[0]:.3f}" if v else "–")

    print("\n## Levers: macro-F1 mean ± sd over seeds\n")
    print("| lever | " + " | ".join(EVALS) + " | train min/run | what |\n|---|" + "---|" * (len(EVALS) + 2))
    for lever in a.levers:
        cells = " | ".join(cell(summary[lever].get(ev)) for ev in EVALS)
        print(f"| {lever} | {cells} | {np.mean(minutes[lever]):.1f} | {LEVERS[lever][1]} |")
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
