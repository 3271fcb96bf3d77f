"""Actor-aware input: markers around the target only, pair/both formats, truncation around the mention."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from conftest import make_toy_rows
from stance.errors import StanceError
from stance.modeling.encoding import DEFAULT_MARKERS, encode, format_example


@pytest.fixture(scope="module")
def tokenizer(packaged_model_dir):
    return AutoTokenizer.from_pretrained(packaged_model_dir)


def row_for(sentence: str, mention: str, name: str = "Donald Trump", others: tuple[str, ...] = ()) -> dict:
    start = sentence.index(mention)
    return {
        "example_id": "x",
        "sentence": sentence,
        "mention": mention,
        "mention_start": start,
        "mention_end": start + len(mention),
        "actor_name": name,
        "other_mentions": [
            {"actor_id": o, "mention": o, "start": sentence.index(o), "end": sentence.index(o) + len(o)} for o in others
        ],
    }


def test_markers_wrap_the_target_only():
    row = row_for("Biden met Trump after Trump spoke.", "Trump", others=("Biden",))
    f = format_example(row, "markers")
    assert f.text == "Biden met << Trump >> after Trump spoke."  # the second mention stays unmarked
    assert f.text_pair is None
    assert f.text[f.start : f.end] == "<< Trump >>"
    # the same sentence for another actor marks that actor instead
    other = format_example(row_for("Biden met Trump after Trump spoke.", "Biden", "Joe Biden"), "markers")
    assert other.text == "<< Biden >> met Trump after Trump spoke."


def test_other_markers_wrap_the_other_mentions_apart_from_the_target():
    row = row_for("Biden met Trump after Putin spoke.", "Trump", others=("Biden", "Putin"))
    f = format_example(row, "markers", other_markers=("{", "}"))
    assert f.text == "{ Biden } met << Trump >> after { Putin } spoke."
    assert f.text[f.start : f.end] == "<< Trump >>"  # the window centres on the target, wherever it moved
    assert format_example(row, "both", other_markers=("{", "}")).text == f.text
    assert format_example(row, "pair", other_markers=("{", "}")).text == row["sentence"]  # no markers at all
    # a mention overlapping the target, or an earlier other mention, or outside the sentence is left alone
    row["other_mentions"] += [
        {"actor_id": "t", "mention": "Trum", "start": 10, "end": 14},
        {"actor_id": "b", "mention": "Bid", "start": 0, "end": 3},
        {"actor_id": "z", "mention": "?", "start": 40, "end": 45},
    ]
    assert format_example(row, "markers", other_markers=("{", "}")).text == f.text


def test_pair_and_both_formats():
    row = row_for("Biden met Trump.", "Trump")
    pair = format_example(row, "pair")
    assert (pair.text, pair.text_pair) == ("Biden met Trump.", "Donald Trump")
    both = format_example(row, "both")
    assert (both.text, both.text_pair) == ("Biden met << Trump >>.", "Donald Trump")
    # no display name: the mention is the second segment
    assert format_example({**row, "actor_name": ""}, "pair").text_pair == "Trump"


def test_custom_markers():
    f = format_example(row_for("Biden met Trump.", "Trump"), "markers", markers=("[T]", "[/T]"))
    assert f.text == "Biden met [T] Trump [/T]."


def test_bad_format_and_span():
    row = row_for("Biden met Trump.", "Trump")
    with pytest.raises(StanceError, match=r"unknown model.input_format 'tags' \(expected one of markers, pair, both\)"):
        format_example(row, "tags")
    with pytest.raises(StanceError, match=r"example x: mention span 10:99 is outside its sentence \(16 characters\)"):
        format_example({**row, "mention_start": 10, "mention_end": 99}, "markers")


def test_encoded_tokens_mark_the_target(tokenizer):
    feats = encode(tokenizer, [row_for("Biden met Trump after Trump spoke.", "Trump")], "markers", 64)
    tokens = tokenizer.convert_ids_to_tokens(feats["input_ids"][0])
    assert tokens[tokens.index("met") :] == [
        "met",
        "<",
        "<",
        "trump",
        ">",
        ">",
        "after",
        "trump",
        "spoke",
        ".",
        "[SEP]",
    ]
    pair = encode(tokenizer, [row_for("Biden met Trump.", "Trump")], "pair", 64)
    assert tokenizer.decode(pair["input_ids"][0]) == "[CLS] biden met trump. [SEP] donald trump [SEP]"
    assert pair["token_type_ids"][0][-3:] == [1, 1, 1]


@pytest.mark.parametrize("where", ["start", "middle", "end"])
@pytest.mark.parametrize("input_format", ["markers", "pair", "both"])
def test_truncation_keeps_the_mention(tokenizer, where, input_format):
    words = [f"filler{i}" for i in range(300)]
    pos = {"start": 0, "middle": 150, "end": 299}[where]
    words[pos] = "Netanyahu"
    row = row_for(" ".join(words) + ".", "Netanyahu", "Benjamin Netanyahu")
    feats = encode(tokenizer, [row], input_format, max_length=48)
    ids = feats["input_ids"][0]
    assert len(ids) <= 48
    text = tokenizer.decode(ids)
    first_segment = text.split("[SEP]")[0]
    assert "netanyahu" in first_segment
    if input_format != "pair":
        assert "< < netanyahu > >" in first_segment
    if where == "middle":  # centred: context on both sides
        before, after = first_segment.split("netanyahu", 1)
        assert "filler14" in before and "filler15" in after


def test_encode_accepts_columns_and_rows(tokenizer):
    rows = make_toy_rows(6)
    columns = {k: [r[k] for r in rows] for k in rows[0]}
    assert encode(tokenizer, rows, "both", 32) == encode(tokenizer, columns, "both", 32)
    assert encode(tokenizer, [], "markers", 32) == {"input_ids": [], "attention_mask": []}


def test_default_markers_are_in_the_vocabulary(tokenizer):
    # the markers start with trained embeddings: no [UNK], no new tokens
    for marker in DEFAULT_MARKERS:
        assert tokenizer.unk_token not in tokenizer.tokenize(marker)
