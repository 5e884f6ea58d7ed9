"""The generic jsonl / csv / tsv / parquet readers, on their own (no Beam)."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.sources.base import Skip, is_rejected
from pipelines.sources.generic import CsvSource, JsonlSource, ParquetSource, get_path, natural_file_names
from schemas.recipe import parse_source


def source(cls, raw: dict, paths: list[str]):
    spec = parse_source({"dataset": "d", "paths": paths, **raw}, "test")
    return cls(spec, paths)


def parsed(src, path: str, data: bytes) -> list:
    return [item for item in src.parse(path, io.BytesIO(data)) if not isinstance(item, Skip)]


def test_field_paths_reach_into_nested_json_and_lists() -> None:
    row = {"question": "q", "answers": ["a1", "a2"], "meta": {"title": "t"}}
    assert get_path(row, "answers.0") == "a1"
    assert get_path(row, "answers.-1") == "a2"
    assert get_path(row, "meta.title") == "t"
    assert get_path(row, "answers.2") is not None and get_path(row, "meta.missing") is get_path(row, "nope")


def test_jsonl_paq_and_wikianswers_style_rows() -> None:
    paq = source(JsonlSource, {"kind": "jsonl", "fields": {"query": "question", "document": "answer.0"}}, ["/x/paq.jsonl"])
    items = parsed(paq, "/x/paq.jsonl", json.dumps({"question": "who wrote hamlet", "answer": ["Shakespeare"]}).encode() + b"\n")
    assert items[0]["id"] == "d/paq.jsonl:1" and items[0]["document"] == "Shakespeare"
    wiki = source(JsonlSource, {"kind": "jsonl", "fields": {"query": "set.0", "document": "set.1"}}, ["/x/w.jsonl"])
    item = parsed(wiki, "/x/w.jsonl", b'{"set": ["how tall is it", "what is its height"]}\n')[0]
    assert (item["query"], item["document"]) == ("how tall is it", "what is its height")


def test_jsonl_score_field_and_bad_score() -> None:
    src = source(JsonlSource, {"kind": "jsonl", "fields": {"query": "q", "document": "d", "id": "k", "score": "s"}}, ["f.jsonl"])
    good, bad = parsed(src, "f.jsonl", b'{"q": "a", "d": "b", "k": 7, "s": "3.5"}\n{"q": "a", "d": "b", "k": 8, "s": "high"}\n')
    assert good["meta"]["source_score"] == 3.5 and good["id"] == "d/7"
    assert is_rejected(bad) and bad["reason"] == "wrong_type:s" and bad["position"] == "2"


def test_jsonl_unpaired_surrogate_is_rejected_and_a_pair_is_kept() -> None:
    src = source(JsonlSource, {"kind": "jsonl", "fields": {"query": "q", "document": "d", "id": "k"}}, ["f.jsonl"])
    lone, paired, plain = parsed(src, "f.jsonl", b'{"q": "bad \\ud800 x", "d": "b", "k": 1}\n'
                                 b'{"q": "smile \\ud83d\\ude00", "d": "b", "k": 2}\n{"q": "a\\u00e9", "d": "b", "k": 3}\n')
    assert is_rejected(lone) and lone["reason"] == "unpaired_surrogate" and lone["position"] == "1"
    assert lone["raw"].encode("utf-8")  # the raw line keeps the escape as text, so the rejected shard can hold it
    assert paired["query"] == "smile \U0001f600" and plain["query"] == "a\u00e9"


def test_tsv_with_header_quotes_and_bad_rows() -> None:
    src = source(CsvSource, {"kind": "csv", "fields": {"query": "question1", "document": "question2", "id": "id"}}, ["q.tsv"])
    data = (
        b'id\tquestion1\tquestion2\n'
        b'1\t"What is ""cold brew""?"\tHow is cold brew made?\n'
        b'2\tonly two columns\n'
        b'3\t"multi\nline"\tsecond\n'
        b'4\tbad \xff byte\tx\n'
    )
    items = parsed(src, "q.tsv", data)
    assert items[0]["query"] == 'What is "cold brew"?' and items[0]["id"] == "d/1"
    assert is_rejected(items[1]) and items[1]["reason"] == "wrong_column_count" and items[1]["position"] == "3"
    assert items[2]["query"] == "multi\nline" and items[2]["meta"]["row"] == 4
    assert is_rejected(items[3]) and items[3]["reason"] == "invalid_utf8" and items[3]["position"] == "6"


def test_headerless_csv_with_named_columns() -> None:
    src = source(CsvSource, {"kind": "csv", "columns": ["label", "title", "description"], "fields": {"query": "title", "document": "description"}}, ["ag.csv"])
    items = parsed(src, "ag.csv", b'"3","Wall St. Bears Claw Back","Short-sellers are seeing green again."\n')
    assert items[0]["query"] == "Wall St. Bears Claw Back" and items[0]["id"] == "d/ag.csv:1"


def test_parquet_rows_and_a_missing_column(tmp_path: Path) -> None:
    path = tmp_path / "s2orc.parquet"
    pq.write_table(pa.table({"title": ["A title", "B"], "abstract": ["An abstract.", None], "paper_id": [11, 12]}), path)
    src = source(ParquetSource, {"kind": "parquet", "fields": {"query": "title", "document": "abstract", "id": "paper_id"}}, [str(path)])
    items = parsed(src, str(path), path.read_bytes())
    assert items[0]["id"] == "d/11" and items[0]["meta"]["row"] == 0
    assert items[1]["document"] == "" and items[1]["meta"]["row"] == 1
    other = source(ParquetSource, {"kind": "parquet", "fields": {"query": "title", "document": "body"}}, [str(path)])
    (item,) = parsed(other, str(path), path.read_bytes())
    assert is_rejected(item) and item["reason"] == "missing_field:body"


def test_corrupt_parquet_is_one_rejected_row(tmp_path: Path) -> None:
    src = source(ParquetSource, {"kind": "parquet", "fields": {"query": "a", "document": "b"}}, ["x.parquet"])
    (item,) = parsed(src, "x.parquet", b"PAR1 this is not parquet")
    assert is_rejected(item) and item["reason"] == "corrupt_parquet"


def test_natural_file_names_stay_unique() -> None:
    assert natural_file_names(["/d/a/train.jsonl", "/d/b/test.jsonl"]) == {"/d/a/train.jsonl": "train.jsonl", "/d/b/test.jsonl": "test.jsonl"}
    assert natural_file_names(["/d/a/train.jsonl", "/d/b/train.jsonl"]) == {"/d/a/train.jsonl": "a/train.jsonl", "/d/b/train.jsonl": "b/train.jsonl"}


def test_array_rows_paragraph_lists_and_null_texts() -> None:
    src = source(JsonlSource, {"kind": "jsonl", "fields": {"query": "0", "document": "1"}}, ["wa.jsonl"])
    (item,) = parsed(src, "wa.jsonl", b'["how tall is it", "what is its height"]\n')
    assert (item["query"], item["document"]) == ("how tall is it", "what is its height")
    s2orc = source(JsonlSource, {"kind": "jsonl", "fields": {"query": "title", "document": "abstract"}}, ["s.jsonl"])
    lines = b'{"title": "t", "abstract": ["p1", "p2"]}\n{"title": "t", "abstract": null}\n{"title": "t", "abstract": [1]}\n'
    paragraphs, empty, bad = parsed(s2orc, "s.jsonl", lines)
    assert paragraphs["document"] == "p1\n\np2" and empty["document"] == ""
    assert is_rejected(bad) and bad["reason"] == "wrong_type:abstract"


def test_progress_reader_passes_bytes_through_and_reports(tmp_path: Path, capsys) -> None:
    from storage.compressed import ProgressReader

    data = b"".join(json.dumps({"q": f"q{i}", "d": f"d{i}"}).encode() + b"\n" for i in range(1000))
    reader = ProgressReader(io.BytesIO(data), "/x/big.jsonl", len(data))
    reader.EVERY_SECONDS = 0.0
    assert io.BufferedReader(reader).read() == data
    assert "reading big.jsonl: 100% of" in capsys.readouterr().err
