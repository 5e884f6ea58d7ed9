"""Decontamination (filters/decontaminate.py): the overlap rules, the index on disk, the evaluation formats, the
stage in a build (books, funnel, datasheet in report.json, the page and `pairmill inspect`), and planted
evaluation texts in real pairs."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from filters.decontaminate import DecontaminateFilter, EvaluationIndex, build_index, index_folder, index_from_texts, parse_overlap_reason
from pipelines.cli import main
from schemas.config import ConfigError, parse_block
from schemas.recipe import DecontaminateConfig
from storage.texts import evaluation_texts
from tests.helpers import FAST_RUNNER, write_jsonl, write_recipe

PASSAGE = ("The mitochondria is the powerhouse of the cell and it produces most of the chemical energy needed to power "
           "the biochemical reactions of the cell. Energy is stored in a small molecule called adenosine triphosphate. "
           "Cells with high energy needs contain thousands of them.")
QUESTION = "what does the mitochondria do"
OTHER = "Hurricanes form over warm ocean water when the surface temperature is above twenty six degrees for many days."


def config(**keys: object) -> DecontaminateConfig:
    return parse_block(DecontaminateConfig, {"against": [{"path": "eval/first"}, {"path": "eval/second"}], **keys}, "test")


def stage(cfg: DecontaminateConfig, first: list[str], second: list[str]) -> DecontaminateFilter:
    index = index_from_texts([("first", first), ("second", second)], cfg.ngram, cfg.containment is not None)
    return DecontaminateFilter(cfg, "", index)


def pair(query: str, document: str, i: int = 0) -> dict:
    return {"id": f"t/{i}", "dataset": "t", "query": query, "document": document, "negatives": [], "meta": {}}


def test_equal_texts_shared_ngrams_and_near_copies_are_dropped_naming_set_and_side() -> None:
    words = PASSAGE.split()
    thirteen = " ".join(words[20:33])
    twelve = " ".join(words[20:32])
    check = stage(config(containment=None), [PASSAGE], [QUESTION]).check_batch
    assert check([
        pair("unrelated question?", PASSAGE),  # verbatim
        pair(QUESTION.upper() + "?!", "nothing here"),  # a short text equal in the matching form
        pair("q", f"Some words first. {thirteen} and then others."),  # shares 13 words in a row
        pair("q", f"Some words first. {twelve} and then others."),  # 12 in a row: kept
        pair(PASSAGE, f"{PASSAGE} And more."),
        pair(QUESTION, PASSAGE),  # both sides overlap, each another set: named after the first set in `against`
        pair("what does it do", OTHER),
    ]) == ["overlap:first:document", "overlap:second:query", "overlap:first:document", None, "overlap:first:both", "overlap:first:document", None]
    # A short evaluation text inside a long training text is no overlap: texts shorter than ngram compare whole.
    assert check([pair("q", f"Tell me {QUESTION} in a long text of many many words around it ok")]) == [None]
    # A copy trimmed by a sentence with a few words changed: no 13 words in a row left, but a near copy.
    trimmed_words = PASSAGE.rsplit(". ", 1)[0].split()
    for position in (9, 19, 29):
        trimmed_words[position] = "changed"
    trimmed = " ".join(trimmed_words)
    assert check([pair("q", trimmed)]) == [None]
    assert stage(config(), [PASSAGE], [QUESTION]).check_batch([pair("q", trimmed)]) == ["overlap:first:document"]


def test_sides_and_queries_only_choose_what_is_checked() -> None:
    both = [pair(PASSAGE, "x"), pair("x", PASSAGE)]
    assert stage(config(sides="document"), [PASSAGE], []).check_batch(both) == [None, "overlap:first:document"]
    assert stage(config(sides="query"), [PASSAGE], []).check_batch(both) == ["overlap:first:query", None]
    # Only queries are checked against `second`: its passage in a document is kept, in a query dropped.
    assert stage(config(queries_only=["second"]), [], [PASSAGE]).check_batch(both) == ["overlap:second:query", None]
    # A text in two sets is named after the first of them in `against`.
    assert stage(config(), [PASSAGE], [PASSAGE]).check_batch(both[1:]) == ["overlap:first:document"]
    assert parse_overlap_reason("overlap:my.set-1:both") == ("my.set-1", "both")
    assert parse_overlap_reason("exact_duplicate") is None


@pytest.mark.parametrize(("keys", "message"), [
    ({"against": []}, "against: name at least one evaluation set"),
    ({"against": [{"path": "a/x"}, {"path": "b/x"}]}, r"against\[1\]: the name 'x' is used by an earlier set"),
    ({"against": [{"path": "a/x", "name": "bad name"}]}, r"against\[0\]: the set's name must be letters"),
    ({"against": [{"path": "a/x"}], "queries_only": ["y"]}, "queries_only: 'y' is not the name of a set"),
    ({"against": [{"path": "a/x"}], "containment": 1.5}, "containment: must be between 0 and 1"),
])
def test_config_errors_name_the_key(keys: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_block(DecontaminateConfig, keys, "recipe.yaml: filters.decontaminate")


def test_set_names_default_to_the_path(tmp_path: Path) -> None:
    cfg = parse_block(DecontaminateConfig, {"against": [{"path": "gs://b/beir/quora/"}, {"path": "x/tests.jsonl", "format": "jsonl"}]}, "t")
    assert cfg.names == ["quora", "tests"]


def test_evaluation_formats_and_their_errors(tmp_path: Path) -> None:
    beir = tmp_path / "beir"
    beir.mkdir()
    write_jsonl(beir / "corpus.jsonl", [{"_id": "d1", "title": "Title", "text": "body text"}, {"_id": "d2", "text": "only text"}])
    write_jsonl(beir / "queries.jsonl", [{"_id": "q1", "text": "a question"}])
    assert list(evaluation_texts(str(beir), "beir", "text")) == ["Title body text", "only text", "a question"]
    write_jsonl(tmp_path / "rows.jsonl", [{"prompt": "first"}, {"prompt": "second"}])
    assert list(evaluation_texts(str(tmp_path / "rows.jsonl"), "jsonl", "prompt")) == ["first", "second"]
    (tmp_path / "lines.txt").write_text("one\n\n two \n", encoding="utf-8")
    assert list(evaluation_texts(str(tmp_path / "lines.txt"), "lines", "text")) == ["one", " two "]
    (tmp_path / "bad.jsonl").write_text('{"prompt": "ok"}\n{"other": 1}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad.jsonl:2: a row needs a 'prompt' field"):
        list(evaluation_texts(str(tmp_path / "bad.jsonl"), "jsonl", "prompt"))
    with pytest.raises(ConfigError, match=r"missing/corpus.jsonl: missing"):
        list(evaluation_texts(str(tmp_path / "missing"), "beir", "text"))


def test_index_written_and_read_back_gives_the_same_verdicts(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "first.jsonl", [{"text": PASSAGE}])
    write_jsonl(tmp_path / "second.jsonl", [{"text": QUESTION}, {"text": OTHER}])
    cfg = parse_block(DecontaminateConfig, {"against": [{"path": str(tmp_path / n), "format": "jsonl"} for n in ("first.jsonl", "second.jsonl")]}, "t")
    folder = index_folder(str(tmp_path / "out"), cfg)
    built = build_index(cfg, folder)
    read = EvaluationIndex.read(folder)
    assert read.names == ["first", "second"] and [s["texts"] for s in read.sets] == [1, 2]
    assert np.array_equal(read.shared.fingerprints, built.shared.fingerprints) and read.near is not None
    records = [pair("q", PASSAGE), pair(QUESTION, "x"), pair("x", OTHER.lower()), pair("x", "y")]
    assert DecontaminateFilter(cfg, folder).check_batch(records) == ["overlap:first:document", "overlap:second:query", "overlap:second:document", None]
    assert index_folder(str(tmp_path / "out"), cfg) != index_folder(str(tmp_path / "out"), DecontaminateConfig(cfg.against, ngram=8))


def test_a_build_drops_overlaps_balances_and_writes_the_datasheet(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    beir = tmp_path / "eval"
    beir.mkdir()
    write_jsonl(beir / "corpus.jsonl", [{"_id": "d1", "title": "", "text": PASSAGE}])
    write_jsonl(beir / "queries.jsonl", [{"_id": "q1", "text": QUESTION}])
    rows = [{"id": i, "q": f"question number {i} about storms", "a": f"{OTHER} Case {i}."} for i in range(10)]
    rows += [{"id": 10, "q": "tell me about cells", "a": PASSAGE}, {"id": 11, "q": "What does the MITOCHONDRIA do?", "a": "It makes energy."}]
    write_jsonl(tmp_path / "pairs.jsonl", rows)
    recipe = write_recipe(tmp_path, {
        "output": str(tmp_path / "out"),
        "sources": [{"dataset": "cells", "kind": "jsonl", "paths": [str(tmp_path / "pairs.jsonl")], "fields": {"query": "q", "document": "a", "id": "id"}}],
        "filters": {"dedup": {"exact": "pair"}, "decontaminate": {"against": [{"path": str(beir), "name": "bio"}]}},
    })
    assert main(["build", recipe, *FAST_RUNNER]) == 0
    printed = capsys.readouterr().out
    assert "books balanced" in printed and "overlap:bio:document=1" in printed and "overlap:bio:query=1" in printed
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["datasets"]["cells"]["written"] == 10 and report["datasets"]["cells"]["balanced"]
    sheet = report["datasheets"]["cells"]
    assert sheet["checked"] and sheet["against"] == [{"name": "bio", "path": str(beir), "format": "beir", "texts": 2}]
    assert sheet["overlaps"]["bio"] == {"query": 1, "document": 1, "both": 0, "pairs": 2}
    assert {e["id"] for e in sheet["examples"]["bio"]} == {"cells/10", "cells/11"}
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "Decontamination datasheet" in page and "cells/11" in page
    assert main(["inspect", str(tmp_path / "out" / "cells"), "-n", "0"]) == 0
    inspected = capsys.readouterr().out
    assert "decontamination of cells: both side(s) checked" in inspected and "bio (beir " in inspected and "2 pairs dropped (query 1, document 1)" in inspected


@pytest.mark.realdata
def test_planted_evaluation_texts_in_real_pairs_are_dropped() -> None:
    """The acceptance check on ../shared/realdata: MS MARCO texts planted into real pairs (verbatim, case and
    punctuation, trimmed by a sentence with two or three words changed) are dropped, the real pairs kept."""
    from benchmarks.decontamination import MSMARCO, planted_check

    if not MSMARCO.is_dir():
        pytest.skip("../shared/realdata is not beside the checkout")
    figures = planted_check(planted_count=2000)
    assert figures["planted_dropped_share"] >= 0.99, figures
    assert figures["real_dropped_share"] <= 0.005, figures


def test_a_queries_only_set_is_indexed_by_its_queries(tmp_path: Path) -> None:
    """Its corpus is the training documents' by design (MS MARCO's): only its queries are kept from training queries."""
    beir = tmp_path / "msmarco"
    beir.mkdir()
    write_jsonl(beir / "corpus.jsonl", [{"_id": "d1", "text": PASSAGE}])
    write_jsonl(beir / "queries.jsonl", [{"_id": "q1", "text": QUESTION}])
    cfg = parse_block(DecontaminateConfig, {"against": [{"path": str(beir)}], "queries_only": ["msmarco"]}, "t")
    folder = index_folder(str(tmp_path / "out"), cfg)
    assert build_index(cfg, folder).sets[0]["texts"] == 1
    records = [pair(QUESTION, PASSAGE), pair(PASSAGE, "x"), pair("x", QUESTION)]
    assert DecontaminateFilter(cfg, folder).check_batch(records) == ["overlap:msmarco:query", None, None]
