"""Training-time levers of issue 9: target-name swap (train.name_swap) and R-Drop (train.rdrop_alpha)."""

from __future__ import annotations

import datasets
import pytest
import torch

from stance.data.rows import FEATURES
from stance.modeling.augment import is_name, swap_row, swap_target_names
from stance.modeling.finetune import symmetric_kl


def row(i: int, sentence: str, mention: str, actor: str, others: tuple[str, ...] = ()) -> dict:
    start = sentence.index(mention)
    return {
        "example_id": f"e{i}", "article_id": "a", "sentence_idx": i, "sentence": sentence,
        "actor_id": actor, "actor_name": actor.title(), "mention": mention,
        "mention_start": start, "mention_end": start + len(mention),
        "other_mentions": [
            {"actor_id": o.lower(), "mention": o, "start": sentence.index(o), "end": sentence.index(o) + len(o)}
            for o in others
        ],
        "label": i % 3, "group": f"g{i}", "fold": 0,
    }  # fmt: skip


def test_swap_row_moves_the_other_mentions_after_the_target():
    r = row(0, "Critics say Trump failed Putin and Xi.", "Trump", "trump", others=("Putin", "Xi"))
    donor = row(1, "Angela Merkel spoke.", "Angela Merkel", "merkel")
    out = swap_row(r, donor)
    assert out["sentence"] == "Critics say Angela Merkel failed Putin and Xi."
    assert (out["actor_id"], out["actor_name"], out["label"]) == ("merkel", "Merkel", r["label"])
    assert out["sentence"][out["mention_start"] : out["mention_end"]] == "Angela Merkel"
    assert [out["sentence"][o["start"] : o["end"]] for o in out["other_mentions"]] == ["Putin", "Xi"]


def test_swap_target_names_is_seeded_keeps_pronouns_and_word_counts():
    rows = [
        row(0, "Critics say Trump failed.", "Trump", "trump"),
        row(1, "Obama praised the plan.", "Obama", "obama"),
        row(2, "She said it was fine.", "She", "doe"),
        row(3, "Angela Merkel spoke on Monday.", "Angela Merkel", "merkel"),
        row(4, "Boris Johnson resigned.", "Boris Johnson", "johnson"),
    ] * 3
    ds = datasets.Dataset.from_list(rows, features=FEATURES)
    a, b = swap_target_names(ds, 0.5, seed=1), swap_target_names(ds, 0.5, seed=1)
    assert a.to_list() == b.to_list() and len(a) == len(ds)
    assert a["label"] == ds["label"]  # the stance stays: only the name changes
    changed = [(old, new) for old, new in zip(ds.to_list(), a.to_list()) if old != new]
    assert len(changed) == round(0.5 * 12)  # 12 name targets, the pronoun rows never swap
    for old, new in changed:
        assert is_name(old["mention"]) and new["actor_id"] != old["actor_id"]
        assert len(new["mention"].split()) == len(old["mention"].split())
    assert swap_target_names(ds, 0.5, seed=2).to_list() != a.to_list()
    assert swap_target_names(ds, 0.0, seed=1) is ds
    assert not is_name("he") and not is_name("the senator") and is_name("Mr. Trump")


def test_symmetric_kl():
    a = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
    assert symmetric_kl(a, a).item() == pytest.approx(0.0, abs=1e-7)
    b = torch.tensor([[0.0, 2.0, -1.0], [0.5, 0.0, 0.5]])
    assert symmetric_kl(a, b).item() == pytest.approx(symmetric_kl(b, a).item()) and symmetric_kl(a, b).item() > 0
