"""Reading articles (every format and every bad input), streaming, and boilerplate cleaning."""

from __future__ import annotations

import inspect
import json
import tracemalloc
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from stance.config import CleanConfig, InputConfig, TextConfig
from stance.errors import StanceError
from stance.text.articles import Article, Problem, clean_text, input_files, iter_articles

REPO = Path(__file__).resolve().parents[1]
SEED = REPO / "seeds" / "000_8c7c1d6cabef915e.txt"
BANNER = [
    "This holiday season, give to:",
    "Truth and understanding",
    "The Media Line's intrepid correspondents are in Israel, Gaza, Lebanon, Syria and Pakistan "
    "providing first-person reporting.",
    "They all said they cover it.",
    "We see it.",
    "We report with just one agenda: the truth.",
]


def spec(*paths: Path, **kw) -> InputConfig:
    return InputConfig(paths=[str(p) for p in paths], **kw)


def read(*paths: Path, **kw) -> tuple[list[Article], list[str]]:
    problems: list[Problem] = []
    arts = list(iter_articles(spec(*paths, **kw), on_problem=problems.append))
    return arts, [str(p) for p in problems]


def default_clean() -> CleanConfig:
    yaml = OmegaConf.load(REPO / "configs" / "text" / "default.yaml")
    return OmegaConf.merge(OmegaConf.structured(TextConfig), yaml).clean


# --- input_files -------------------------------------------------------------------------------
def test_input_files_expands_folders_and_globs_sorted(tmp_path: Path) -> None:
    (tmp_path / "sub" / "deep").mkdir(parents=True)
    (tmp_path / ".hidden").mkdir()
    for name in ["b.txt", "a.md", "sub/c.jsonl", "sub/deep/d.csv", "sub/skip.pdf", ".hidden/e.txt"]:
        (tmp_path / name).write_text("x\ny\n", encoding="utf-8")
    got = input_files([str(tmp_path)])
    assert got == sorted(got)
    assert [p.relative_to(tmp_path).as_posix() for p in got] == ["a.md", "b.txt", "sub/c.jsonl", "sub/deep/d.csv"]
    globbed = input_files([str(tmp_path / "**" / "*.jsonl"), str(tmp_path / "b.txt"), str(tmp_path / "b.txt")])
    assert [p.name for p in globbed] == ["b.txt", "c.jsonl"]


def test_input_files_errors(tmp_path: Path) -> None:
    with pytest.raises(StanceError, match=r"^nope\.txt: no such file or folder$"):
        input_files(["nope.txt"])
    pattern = str(tmp_path / "*.jsonl")
    with pytest.raises(StanceError, match=r": no \.txt/\.md/\.jsonl/\.csv files match this pattern$"):
        input_files([pattern])
    (tmp_path / "doc.pdf").write_bytes(b"%PDF")
    with pytest.raises(
        StanceError,
        match=r"doc\.pdf: unsupported file type '\.pdf' \(expected one of "
        r"\.txt, \.md, \.jsonl, \.csv\)$",
    ):
        input_files([str(tmp_path / "doc.pdf")])
    with pytest.raises(StanceError, match=r": folder holds no \.txt/\.md/\.jsonl/\.csv files$"):
        input_files([str(tmp_path)])


# --- formats -----------------------------------------------------------------------------------
def test_txt_and_md(tmp_path: Path) -> None:
    (tmp_path / "one.txt").write_text("\n  My Title  \nFirst para.\r\n\r\nSecond para.\n\n", encoding="utf-8")
    (tmp_path / "two.md").write_text("Headline\nBody text.", encoding="utf-8")
    arts, problems = read(tmp_path, meta_columns=["outlet"])
    assert problems == []
    assert arts[0] == Article(
        id="one",
        title="My Title",
        text="First para.\n\nSecond para.",
        source=str(tmp_path / "one.txt"),
        meta={"outlet": ""},
    )
    assert (arts[1].id, arts[1].title, arts[1].text) == ("two", "Headline", "Body text.")
    no_title, _ = read(tmp_path / "two.md", title_first_line=False)
    assert (no_title[0].title, no_title[0].text) == ("", "Headline\nBody text.")


def test_seed_reads_with_title(tmp_path: Path) -> None:
    (art,) = iter_articles(spec(SEED))
    assert art.id == "000_8c7c1d6cabef915e"
    assert art.title.startswith("Questions Mount Over Trump’s Claims")
    assert art.text.startswith("With no independent confirmation")
    assert art.title not in art.text


def test_jsonl_columns_meta_and_missing_id(tmp_path: Path) -> None:
    path = tmp_path / "news.jsonl"
    rows = [
        {"id": "a1", "title": "T1", "text": " Body one. ", "outlet": "X", "year": 2024},
        {"text": "Body two.", "outlet": None},
        {"id": 7, "headline": "H", "body": "ignored", "text": "Body three."},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows[:2]) + "\n\n" + json.dumps(rows[2]) + "\n", encoding="utf-8")
    arts, problems = read(path, meta_columns=["outlet", "year"])
    assert problems == []
    assert arts[0] == Article("a1", "T1", "Body one.", str(path), {"outlet": "X", "year": "2024"})
    assert (arts[1].id, arts[1].title, arts[1].meta) == ("news-2", "", {"outlet": "", "year": ""})
    assert arts[2].id == "7"


def test_jsonl_custom_columns(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"doc": "d1", "headline": "H", "body": "B."}) + "\n", encoding="utf-8")
    (art,) = iter_articles(spec(path, id_column="doc", text_column="body", title_column="headline"))
    assert (art.id, art.title, art.text) == ("d1", "H", "B.")


def test_csv_bom_multiline_and_large_field(tmp_path: Path) -> None:
    path = tmp_path / "news.csv"
    big = "word " * 40000  # 200,000 characters: above the csv module's default field limit
    body = f'id,title,text,outlet\r\nx1,T,"Line one.\r\nLine ""two"".",O\r\n,T2,"{big}",\r\n'
    path.write_bytes(b"\xef\xbb\xbf" + body.encode("utf-8"))
    arts, problems = read(path, meta_columns=["outlet", "date"], max_line_chars=300000)
    assert problems == []
    assert arts[0] == Article("x1", "T", 'Line one.\nLine "two".', str(path), {"outlet": "O", "date": ""})
    assert arts[1].id == "news-2" and len(arts[1].text) == len(big.strip())


def test_iter_articles_is_a_lazy_generator(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text(json.dumps({"id": "1", "text": "ok."}) + "\n", encoding="utf-8")
    (tmp_path / "b.jsonl").write_text("{not json\n", encoding="utf-8")
    gen = iter_articles(spec(tmp_path))
    assert inspect.isgenerator(gen)
    assert next(gen).id == "1"  # the bad second file is not read yet
    with pytest.raises(StanceError, match=r"b\.jsonl:1: invalid JSON"):
        next(gen)


def test_streaming_memory_stays_flat(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    text = "Some sentence about the news. " * 60
    with path.open("w", encoding="utf-8") as fh:
        for i in range(8000):
            fh.write(json.dumps({"id": f"a{i}", "text": text}) + "\n")
    assert path.stat().st_size > 14_000_000
    tracemalloc.start()
    n = sum(1 for _ in iter_articles(spec(path)))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert n == 8000
    assert peak < 3_000_000  # the ids seen, not the file


# --- bad input ---------------------------------------------------------------------------------
def test_empty_files(tmp_path: Path) -> None:
    for name in ["e.txt", "e.jsonl", "e.csv"]:
        (tmp_path / name).write_text(" \n\n", encoding="utf-8")
    arts, problems = read(tmp_path)
    assert arts == []
    assert problems == [f"{tmp_path / n}: empty file" for n in ["e.csv", "e.jsonl", "e.txt"]]
    with pytest.raises(StanceError, match=r"e\.csv: empty file$"):
        list(iter_articles(spec(tmp_path)))


def test_title_only_txt(tmp_path: Path) -> None:
    (tmp_path / "t.txt").write_text("Only a title\n", encoding="utf-8")
    assert read(tmp_path)[1] == [f"{tmp_path / 't.txt'}: no text after the title line"]


def test_undecodable_bytes_name_byte_and_offset(tmp_path: Path) -> None:
    (tmp_path / "bad.txt").write_bytes(b"Title\nGood line.\nBad \xff byte.\n")
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b'{"id": "1", "text": "fine"}\n{"id": "2", "text": "caf\xe9"}\n{"id": "3", "text": "ok"}\n')
    arts, problems = read(tmp_path)
    assert [a.id for a in arts] == ["1", "3"]
    assert problems == [
        f"{tmp_path / 'bad.txt'}:3: cannot decode byte 0xff at byte offset 21 as utf-8 (input.encoding)",
        f"{path}:2: cannot decode byte 0xe9 at byte offset 52 as utf-8 (input.encoding)",
    ]
    arts, problems = read(path, encoding="latin-1")
    assert problems == [] and arts[1].text == "café"


@pytest.mark.parametrize("suffix", [".txt", ".jsonl", ".csv"])
@pytest.mark.parametrize("size", [50_000, 200_000])
def test_overlong_line(tmp_path: Path, suffix: str, size: int) -> None:
    long = "x" * size
    content = {
        ".txt": f"Title\n{long}\n",
        ".jsonl": "\n" + json.dumps({"id": "1", "text": long}) + "\n" + json.dumps({"id": "2", "text": "ok"}) + "\n",
        ".csv": f"id,text\n1,{long}\n2,ok\n",
    }[suffix]
    path = tmp_path / f"f{suffix}"
    path.write_text(content, encoding="utf-8")
    arts, problems = read(path)
    if size == 50_000:  # measured exactly
        why = f"line of {len(content.splitlines()[1])} characters is longer than 20000"
    else:  # never read whole: only a bounded prefix is held in memory
        why = "line longer than 20000 characters"
    assert problems == [f"{path}:2: {why} (input.max_line_chars): not article text"]
    assert [a.id for a in arts] == ([] if suffix == ".txt" else ["2"])


def test_line_just_over_the_limit_counts_characters(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    path.write_text(json.dumps({"id": "1", "text": "é" * 90}, ensure_ascii=False) + "\n", encoding="utf-8")
    assert read(path, max_line_chars=200)[1] == []
    assert read(path, max_line_chars=100)[1] == [
        f"{path}:1: line of 113 characters is longer than 100 (input.max_line_chars): not article text"
    ]


def test_jsonl_bad_rows(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    lines = [
        '{"id": "1", "text": "fine."}',
        "{oops",
        "[1, 2]",
        '{"id": "4"}',
        '{"id": "5", "text": "  "}',
        '{"id": "6", "text": 42}',
        '{"id": "1", "text": "again."}',
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    arts, problems = read(path)
    assert [a.id for a in arts] == ["1"]
    assert problems == [
        f"{path}:2: invalid JSON: Expecting property name enclosed in double quotes (column 2)",
        f"{path}:3: expected a JSON object, got list",
        f"{path}:4: row has no text (column 'text' missing)",
        f"{path}:5: empty text in column 'text'",
        f"{path}:6: text in column 'text' is not a string",
        f"{path}:7: duplicate article id '1' (first in {path}:1)",
    ]
    with pytest.raises(StanceError, match=r"^.*r\.jsonl:2: invalid JSON: Expecting property name"):
        list(iter_articles(spec(path)))


def test_csv_bad_rows_and_missing_column(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text('id,text\n1,fine.\n2,\n3\n4,"  "\n', encoding="utf-8")
    arts, problems = read(path)
    assert [a.id for a in arts] == ["1"]
    assert problems == [
        f"{path}:3: empty text in column 'text'",
        f"{path}:4: row has no text (column 'text' missing)",
        f"{path}:5: empty text in column 'text'",
    ]
    other = tmp_path / "other.csv"
    other.write_text("id,body\n1,x\n", encoding="utf-8")
    with pytest.raises(
        StanceError,
        match=r"other\.csv:1: no column 'text' in the CSV header "
        r"\(columns: id, body\)$",
    ):
        list(iter_articles(spec(other)))


def test_duplicate_ids_across_files(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"id": "x", "text": "one."}\n', encoding="utf-8")
    (tmp_path / "x.txt").write_text("Title\nBody.\n", encoding="utf-8")
    arts, problems = read(tmp_path)
    assert [a.source for a in arts] == [str(tmp_path / "a.jsonl")]
    assert problems == [f"{tmp_path / 'x.txt'}: duplicate article id 'x' (first in {tmp_path / 'a.jsonl'}:1)"]


def test_problem_str() -> None:
    assert str(Problem("a.csv", 3, "bad")) == "a.csv:3: bad"
    assert str(Problem("a.txt", None, "empty file")) == "a.txt: empty file"


# --- cleaning ----------------------------------------------------------------------------------
def test_clean_seed_drops_banner_and_keeps_every_paragraph() -> None:
    (art,) = iter_articles(spec(SEED))
    original = art.text.splitlines()
    cleaned = clean_text(art.text, default_clean()).splitlines()
    for line in BANNER:
        assert line in original and line not in cleaned
    assert not any("![" in line or "themedialine.org" in line for line in cleaned)
    expected = [line for line in original if line.strip() and line not in BANNER and not line.startswith("![")]
    assert cleaned == expected
    assert len(expected) == 30
    assert cleaned[0].startswith("With no independent confirmation of a Trump-Putin call")


def test_clean_rules() -> None:
    cfg = CleanConfig(drop_line_patterns=[r"^read more\b"], drop_short_lines_under_words=5)
    text = (
        "Menu\nHome page links\nHe said no.\nRead more: other stories here and there\n\n"
        "Prose with an image ![x](http://a/b.png) inside it stays.\n"
        "[![logo](http://a/l.png)](http://a)\n“Never,” he said.\n   \nWhy?"
    )
    assert clean_text(text, cfg).splitlines() == [
        "He said no.",
        "Prose with an image  inside it stays.",
        "“Never,” he said.",
        "Why?",
    ]
    assert clean_text(text, CleanConfig(enabled=False)) == text


def test_banner_patterns_are_general_but_spare_prose() -> None:
    cfg = default_clean()
    assert (
        clean_text(
            "This Giving Tuesday, donate to:\nThe Media Line’s correspondents are in "
            "Kyiv and Gaza providing first-person reporting.\nWe See It",
            cfg,
        )
        == ""
    )
    prose = (
        "We see it as a turning point, the minister said.\n"
        "They all said they cover it, but none of them did.\n"
        "This holiday season, give to charities that help refugees, the mayor urged."
    )
    assert clean_text(prose, cfg) == prose


def test_invalid_pattern() -> None:
    with pytest.raises(
        StanceError,
        match=r"^text\.clean\.drop_line_patterns: invalid regular "
        r"expression '\(unclosed': missing \), unterminated subpattern",
    ):
        clean_text("x", CleanConfig(drop_line_patterns=["(unclosed"]))
