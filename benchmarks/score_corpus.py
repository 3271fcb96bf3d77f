"""Synthetic article folders for the scoring benchmarks, made of real seed paragraphs.

Each article is a title line and 2-8 paragraphs (by default) drawn (seeded, with replacement) from the seed
articles in seeds/, so sentence lengths, actor mentions and boilerplate are those of real news
text (some paragraphs mention no registered actor, so some articles have none).
"""

from __future__ import annotations

import random
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def seed_paragraphs(seed_dir: Path = REPO / "seeds") -> list[str]:
    paras: list[str] = []
    for path in sorted(seed_dir.glob("*.txt")):
        lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
        paras.extend(lines[1:])  # the first line is the title
    if not paras:
        raise SystemExit(f"no seed paragraphs under {seed_dir}")
    return paras


def make_corpus(folder: Path, n_articles: int, seed: int = 0, paragraphs: tuple[int, int] = (2, 8)) -> Path:
    """Write ``n_articles`` .txt articles of ``paragraphs`` (min, max) paragraphs under ``folder``
    (100 per subfolder); return ``folder``."""
    rng = random.Random(seed)
    paras = seed_paragraphs()
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n_articles):
        body = [rng.choice(paras) for _ in range(rng.randint(*paragraphs))]
        words = rng.choice(paras).split()[:8]
        title = " ".join(words).rstrip(",.;:") + f" ({i})"
        sub = folder / f"{i // 100:04d}"
        sub.mkdir(exist_ok=True)
        (sub / f"article-{i:06d}.txt").write_text(title + "\n" + "\n".join(body) + "\n", encoding="utf-8")
    return folder
