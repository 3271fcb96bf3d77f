"""Agreement figures of the NewsMTSC relabelling, and the merged label file.

    .venv/bin/python benchmarks/annotation_agreement.py            # print agreement tables
    .venv/bin/python benchmarks/annotation_agreement.py --write    # also (re)write the merged file

Reads the independent annotations `data/annotations/newsmtsc-stance/annotator-*.csv` (corpus, split,
id, label, note) and the adjudication of their disagreements
(`data/annotations/newsmtsc-stance/adjudication.csv`: id, label, rule). Prints:

1. inter-annotator agreement on the rows labelled twice (Cohen's kappa with a bootstrap 95% CI,
   raw agreement, the confusion of the two passes);
2. the departure of NewsMTSC's own (sentiment) labels from the guideline's (stance) labels on every
   relabelled row, per split: kappa, confusion, and the share of NewsMTSC-polar rows the guideline
   calls neutral, with the kinds of disagreement read from the annotators' notes.

``--write`` merges the passes into `data/annotations/newsmtsc-stance.csv` (one row per id; a
disagreement takes the adjudicated label and the rule as its note). NewsMTSC's sentences are read
from ``--source`` for the comparison only; nothing of them is written.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from sklearn.metrics import cohen_kappa_score, confusion_matrix

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from stance.io import write_json, write_text  # noqa: E402
from stance.labels import LABELS, NEWSMTSC_POLARITY  # noqa: E402

RAW = REPO / "data" / "annotations" / "newsmtsc-stance"
MERGED = REPO / "data" / "annotations" / "newsmtsc-stance.csv"
# kinds of disagreement, recognised in the annotators' notes (first match wins)
KINDS = [
    (
        "victim / harmed / under pressure",
        r"victim|harm|attack|target of|under pressure|suffer|killed|accus|pressured|object of|sympathy|pity",
    ),
    ("speaker criticising or praising others", r"speaker|speaking|quoted|says|said|critic[a-z]* (of )?other|reported"),
    ("reported outcome / fact", r"outcome|fact|result|won|wins|lost|loses|poll|benefit|gain"),
]


def read_raw() -> dict[str, list[dict[str, str]]]:
    """{id: [annotation, ...]} over all annotator files (annotator number added)."""
    by_id: dict[str, list[dict[str, str]]] = {}
    for path in sorted(RAW.glob("annotator-*.csv")):
        who = path.stem.split("-")[-1]
        for row in csv.DictReader(path.open(encoding="utf-8")):
            by_id.setdefault(row["id"], []).append({**row, "annotator": who})
    return by_id


def kappa_ci(a: list[str], b: list[str], n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    k = cohen_kappa_score(a, b, labels=list(LABELS))
    rng = np.random.default_rng(seed)
    aa, bb = np.array(a), np.array(b)
    boots = []
    for _ in range(n_boot):
        i = rng.integers(0, len(aa), len(aa))
        if len(set(aa[i]) | set(bb[i])) > 1:
            boots.append(cohen_kappa_score(aa[i], bb[i], labels=list(LABELS)))
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return float(k), float(lo), float(hi)


def table(rows: list[str], cols: list[str], cm: np.ndarray, corner: str) -> str:
    out = [f"| {corner} | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    out += [f"| {r} | " + " | ".join(str(int(v)) for v in cm[i]) + " |" for i, r in enumerate(rows)]
    return "\n".join(out)


def merged_labels(
    by_id: dict[str, list[dict[str, str]]], adjudicated: dict[str, dict[str, str]]
) -> list[dict[str, str]]:
    out, missing = [], []
    for ex_id, anns in by_id.items():
        labels = {a["label"] for a in anns}
        first = anns[0]
        if len(labels) == 1:
            note = "; ".join(dict.fromkeys(a["note"] for a in anns if a["note"]))
            out.append(
                {"corpus": first["corpus"], "split": first["split"], "id": ex_id, "label": first["label"], "note": note}
            )
        elif ex_id in adjudicated:
            adj = adjudicated[ex_id]
            out.append(
                {
                    "corpus": first["corpus"],
                    "split": first["split"],
                    "id": ex_id,
                    "label": adj["label"],
                    "note": f"adjudicated: {adj['rule']}",
                }
            )
        else:
            missing.append(ex_id)
    if missing:
        raise SystemExit(
            f"{len(missing)} disagreements lack an adjudication in {RAW / 'adjudication.csv'}, e.g. {missing[:3]}"
        )
    order = {"dev_rw": 0, "dev_mt": 1, "train": 2}
    return sorted(out, key=lambda r: (order.get(r["split"], 9), r["id"]))


def newsmtsc_polarity(source: Path) -> dict[str, str]:
    out = {}
    for split in ("train", "dev_rw", "dev_mt"):
        for line in (source / f"{split}.jsonl").open(encoding="utf-8"):
            rec = json.loads(line)
            out[rec["id"]] = NEWSMTSC_POLARITY[int(rec["polarity"])]
    return out


def kind_of(note: str) -> str:
    for name, pattern in KINDS:
        if re.search(pattern, note, re.I):
            return name
    return "other / no note"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write", action="store_true", help=f"write the merged labels to {MERGED.relative_to(REPO)}")
    ap.add_argument(
        "--source", default=str(REPO.parent / "shared" / "newsmtsc"), help="NewsMTSC folder (for the comparison)"
    )
    ap.add_argument("--json", default=str(REPO / "bench-out" / "annotation_agreement.json"))
    a = ap.parse_args()

    by_id = read_raw()
    adj_path = RAW / "adjudication.csv"
    adjudicated = {r["id"]: r for r in csv.DictReader(adj_path.open(encoding="utf-8"))} if adj_path.exists() else {}
    report: dict[str, object] = {}
    lines = []

    double = {k: v for k, v in by_id.items() if len(v) >= 2}
    first = [v[0]["label"] for v in double.values()]
    second = [v[1]["label"] for v in double.values()]
    k, lo, hi = kappa_ci(first, second)
    agree = float(np.mean([x == y for x, y in zip(first, second)]))
    splits = Counter(v[0]["split"] for v in double.values())
    lines.append(f"## Inter-annotator agreement ({len(double)} of {len(by_id)} rows labelled twice: {dict(splits)})\n")
    lines.append(
        f"Cohen's kappa {k:.3f} [{lo:.3f}, {hi:.3f}], raw agreement {agree:.3f}, "
        f"{sum(x != y for x, y in zip(first, second))} disagreements ({len(adjudicated)} adjudicated)\n"
    )
    lines.append(
        table(list(LABELS), list(LABELS), confusion_matrix(first, second, labels=list(LABELS)), "pass 1 \\ pass 2")
    )
    report["inter_annotator"] = {"rows": len(double), "kappa": k, "kappa_ci": [lo, hi], "agreement": agree}

    final = (
        merged_labels(by_id, adjudicated) if (adjudicated or not any(x != y for x, y in zip(first, second))) else None
    )
    if final is None:
        print("\n".join(lines))
        print("\n(no adjudication file yet: merged labels and the NewsMTSC comparison need it)")
        return
    if a.write:
        with MERGED.open("w", encoding="utf-8", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=["corpus", "split", "id", "label", "note"], lineterminator="\n")
            w.writeheader()
            w.writerows(final)
        lines.append(f"\nwrote {MERGED.relative_to(REPO)} ({len(final)} rows)")

    source = Path(a.source)
    if (source / "train.jsonl").exists():
        pol = newsmtsc_polarity(source)
        lines.append("\n## NewsMTSC's labels (sentiment) vs the guideline's (stance)\n")
        lines.append(
            "| split | rows | kappa | agreement | NewsMTSC polar, guideline neutral | guideline polar, NewsMTSC neutral | opposite polarity |"
        )
        lines.append("|---|---|---|---|---|---|---|")
        report["newsmtsc_vs_guideline"] = {}
        for split in ("dev_rw", "dev_mt", "train", "all"):
            rows = [r for r in final if split in ("all", r["split"])]
            g = [r["label"] for r in rows]
            n = [pol[r["id"]] for r in rows]
            polar_to_neutral = sum(x == "neutral" and y != "neutral" for x, y in zip(g, n))
            neutral_to_polar = sum(x != "neutral" and y == "neutral" for x, y in zip(g, n))
            flipped = sum(x != "neutral" and y != "neutral" and x != y for x, y in zip(g, n))
            kk = cohen_kappa_score(g, n, labels=list(LABELS))
            ag = float(np.mean([x == y for x, y in zip(g, n)]))
            lines.append(
                f"| {split} | {len(rows)} | {kk:.3f} | {ag:.3f} | {polar_to_neutral} ({polar_to_neutral / len(rows):.1%}) | "
                f"{neutral_to_polar} ({neutral_to_polar / len(rows):.1%}) | {flipped} |"
            )
            report["newsmtsc_vs_guideline"][split] = {
                "rows": len(rows),
                "kappa": kk,
                "agreement": ag,
                "newsmtsc_polar_guideline_neutral": polar_to_neutral,
                "guideline_polar_newsmtsc_neutral": neutral_to_polar,
                "opposite": flipped,
            }
        rows = final
        g = [r["label"] for r in rows]
        n = [pol[r["id"]] for r in rows]
        lines.append("\nAll relabelled rows, guideline (rows) x NewsMTSC (columns):\n")
        lines.append(
            table(list(LABELS), list(LABELS), confusion_matrix(g, n, labels=list(LABELS)), "guideline \\ NewsMTSC")
        )
        kinds = Counter(kind_of(r["note"]) for r, x, y in zip(rows, g, n) if x == "neutral" and y != "neutral")
        lines.append("\nKinds of NewsMTSC-polar rows the guideline calls neutral (from the annotators' notes):\n")
        lines += [f"- {name}: {count}" for name, count in kinds.most_common()]
        report["kinds_polar_to_neutral"] = dict(kinds)
    text = "\n".join(lines)
    print(text)
    write_json(a.json, report)
    write_text(Path(a.json).with_suffix(".md"), text + "\n")


if __name__ == "__main__":
    main()
