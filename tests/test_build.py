"""The build pipeline end to end on the generic reader: exact funnel counts, balanced books, shards."""
from __future__ import annotations

import bz2
import gzip
import json
from pathlib import Path

import pytest
import zstandard

from pipelines.cli import main
from storage.builds import iter_jsonl_zst, verify_dataset
from tests.helpers import FAST_RUNNER, dataset_records, side_rows, write_recipe

GOOD = 40


def good_rows() -> list[dict]:
    return [
        {"id": i, "title": f"How should I store coffee beans batch {i}?", "text": f"Keep batch {i} in an airtight jar away from light &amp; heat."}
        for i in range(GOOD)
    ]


def planted_corpus(folder: Path) -> Path:
    """40 good rows, 3 exact duplicates (one differing only in case and spacing), and 6 malformed rows."""
    rows = [json.dumps(r) for r in good_rows()]
    rows += [
        json.dumps({"id": 1001, "title": "How should I store coffee beans batch 1?", "text": "Keep batch 1 in an airtight jar away from light &amp; heat."}),
        json.dumps({"id": 1002, "title": "HOW should I store  coffee beans batch 2?", "text": "Keep batch 2 in an airtight jar away from light & heat."}),
        json.dumps({"id": 1003, "title": "How should I store coffee beans batch 2?", "text": "Keep batch 2 in an airtight jar away from light &amp; heat."}),
        "{this is not json",
        json.dumps("a bare string"),
        json.dumps({"id": 2001, "text": "no title here"}),
        json.dumps({"id": 2002, "title": 17, "text": "numeric title"}),
        json.dumps({"id": 2003, "title": "Empty document", "text": "   "}),
        json.dumps({"id": 2004, "title": "same text", "text": "Same   text"}),
    ]
    data = ("\n".join(rows) + "\n").encode()
    data += b'{"id": 3001, "title": "bad bytes \xff\xfe", "text": "x"}\n'
    path = folder / "pairs.jsonl"
    path.write_bytes(data)
    return path


def recipe_for(folder: Path, paths: list[str], **shards) -> str:
    return write_recipe(folder, {
        "output": str(folder / "out"),
        "sources": [{"dataset": "coffee", "kind": "jsonl", "paths": paths, "fields": {"query": "title", "document": "text", "id": "id"}}],
        "filters": {"clean": {}, "dedup": {"exact": "pair"}},
        "shards": {"records_per_shard": 16, **shards},
    })


def test_build_counts_every_reason_and_balances(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    recipe = recipe_for(tmp_path, [str(planted_corpus(tmp_path))])
    assert main(["build", recipe, *FAST_RUNNER]) == 0
    printed = capsys.readouterr().out
    assert "books balanced" in printed and "report.html" in printed
    assert "books counted with committed counter values (a retried bundle counts once)" in printed

    report = json.loads((tmp_path / "out" / "report.json").read_text())
    entry = report["datasets"]["coffee"]
    stages = {s["stage"]: s for s in entry["stages"]}
    assert stages["read"]["in"] == 50
    assert stages["read"]["rejected"] == {
        "invalid_json": 1, "not_an_object": 1, "missing_field:title": 1, "wrong_type:title": 1, "invalid_utf8": 1,
    }
    assert stages["clean"]["dropped"] == {"empty_document": 1, "query_equals_document": 1}
    assert stages["exact_dedup"]["dropped"] == {"exact_duplicate": 3}
    assert (entry["read"], entry["written"], entry["dropped"], entry["rejected"]) == (50, 40, 5, 5)
    assert entry["balanced"] and report["balanced"]
    # FnApiRunner retries no bundle and reports each counter's one value as committed (and as attempted).
    assert report["metrics"] == entry["metrics"] == "committed"

    records = dataset_records(str(tmp_path / "out" / "coffee"))
    # The smallest id (as text) of each duplicate group survives: "coffee/1002" < "coffee/2".
    expected_ids = {f"coffee/{i}" for i in range(GOOD)} - {"coffee/2"} | {"coffee/1002"}
    assert sorted(r["id"] for r in records) == sorted(expected_ids)
    by_id = {r["id"]: r for r in records}
    assert by_id["coffee/1"]["document"] == "Keep batch 1 in an airtight jar away from light & heat."
    assert by_id["coffee/1"]["meta"] == {"file": str(tmp_path / "pairs.jsonl"), "row": 2}

    rejected = side_rows(tmp_path / "out", "rejected", "coffee")
    assert sorted((r["position"], r["reason"]) for r in rejected) == sorted([
        ("44", "invalid_json"), ("45", "not_an_object"), ("46", "missing_field:title"), ("47", "wrong_type:title"), ("50", "invalid_utf8"),
    ])
    assert all(r["file"].endswith("pairs.jsonl") for r in rejected)
    dropped = side_rows(tmp_path / "out", "dropped", "coffee")
    assert sorted(d["record"]["id"] for d in dropped if d["reason"] == "exact_duplicate") == ["coffee/1001", "coffee/1003", "coffee/2"]


def test_manifest_counts_and_verify_detects_one_changed_byte(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    recipe = recipe_for(tmp_path, [str(planted_corpus(tmp_path))])
    assert main(["build", recipe, *FAST_RUNNER]) == 0
    folder = tmp_path / "out" / "coffee"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["records"] == GOOD and manifest["objective"] == {"type": "paired", "columns": ["query", "document"]}
    assert len(manifest["shards"]) == 3  # ceil(40 / 16)
    counts = json.loads((folder / "counts.json").read_text())
    assert counts == {"count_per_file": {s["file"]: s["records"] for s in manifest["shards"]}, "total_count": GOOD}
    assert verify_dataset(str(folder)).ok
    assert main(["verify", str(tmp_path / "out")]) == 0

    shard = folder / manifest["shards"][1]["file"]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0x01
    shard.write_bytes(bytes(data))
    result = verify_dataset(str(folder))
    assert not result.ok and any(manifest["shards"][1]["file"] in p for p in result.problems)
    capsys.readouterr()
    assert main(["verify", str(folder)]) == 1
    assert "BAD" in capsys.readouterr().out


def decompressed_shards(folder: Path) -> dict[str, bytes]:
    return {p.name: zstandard.ZstdDecompressor().stream_reader(p.open("rb")).read() for p in sorted(folder.glob("shard-*.jsonl.zst"))}


@pytest.mark.slow
def test_two_builds_give_identical_shards_and_multiprocess_runner_agrees(tmp_path: Path) -> None:
    recipe = recipe_for(tmp_path, [str(planted_corpus(tmp_path))])
    assert main(["build", recipe, *FAST_RUNNER]) == 0
    first = decompressed_shards(tmp_path / "out" / "coffee")
    # The default local runner: FnApiRunner, multi-process over all cores.
    assert main(["build", recipe, "--overwrite"]) == 0
    assert decompressed_shards(tmp_path / "out" / "coffee") == first
    # Its worker processes' counters reach the result as committed values too.
    assert json.loads((tmp_path / "out" / "report.json").read_text())["metrics"] == "committed"


def test_rerun_keeps_a_complete_build_and_refuses_another_recipe(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    recipe = recipe_for(tmp_path, [str(planted_corpus(tmp_path))])
    assert main(["build", recipe, *FAST_RUNNER]) == 0
    shard = tmp_path / "out" / "coffee" / "shard-00000.jsonl.zst"
    built_at = shard.stat().st_mtime_ns
    first_report = json.loads((tmp_path / "out" / "report.json").read_text())["datasets"]["coffee"]
    assert main(["build", recipe, *FAST_RUNNER]) == 0
    assert shard.stat().st_mtime_ns == built_at
    again = json.loads((tmp_path / "out" / "report.json").read_text())["datasets"]["coffee"]
    assert again.pop("from_earlier_build") is True and again == first_report

    capsys.readouterr()
    other = recipe_for(tmp_path, [str(planted_corpus(tmp_path))], zstd_level=3)
    assert main(["build", other, *FAST_RUNNER]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--overwrite" in err and "coffee" in err
    assert main(["build", other, "--overwrite", *FAST_RUNNER]) == 0
    assert shard.stat().st_mtime_ns != built_at


def test_compressed_inputs_and_a_truncated_file(tmp_path: Path) -> None:
    lines = "".join(json.dumps(r) + "\n" for r in good_rows()).encode()
    first_half = lines[: len(lines) // 2].rsplit(b"\n", 1)[0] + b"\n"
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress(first_half))
    (tmp_path / "b.jsonl.bz2").write_bytes(bz2.compress(lines))
    (tmp_path / "c.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(lines))
    truncated = gzip.compress(lines)
    (tmp_path / "d.jsonl.gz").write_bytes(truncated[: len(truncated) // 2])
    recipe = write_recipe(tmp_path, {
        "output": str(tmp_path / "out"),
        "sources": [{"dataset": "mixed", "kind": "jsonl", "paths": [str(tmp_path / "*.jsonl.*")], "fields": {"query": "title", "document": "text"}}],
        "filters": {"clean": {}},
    })
    assert main(["build", recipe, *FAST_RUNNER]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())["datasets"]["mixed"]
    assert report["balanced"]
    rejected = side_rows(tmp_path / "out", "rejected", "mixed")
    assert [r["reason"] for r in rejected] == ["truncated_or_corrupt_file"]
    assert rejected[0]["file"].endswith("d.jsonl.gz") and rejected[0]["position"].startswith("after row ")
    records = dataset_records(str(tmp_path / "out" / "mixed"))
    from_truncated = [r for r in records if r["meta"]["file"].endswith("d.jsonl.gz")]
    assert 0 < len(from_truncated) < GOOD
    assert report["written"] == len(records) == first_half.count(b"\n") + GOOD + GOOD + len(from_truncated)
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids)) and all(i.startswith("mixed/") and ".jsonl." in i for i in ids)


def test_parquet_copy_matches_the_shards(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    recipe = recipe_for(tmp_path, [str(planted_corpus(tmp_path))], parquet=True)
    assert main(["build", recipe, *FAST_RUNNER]) == 0
    folder = tmp_path / "out" / "coffee"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert len(manifest["parquet"]) == len(manifest["shards"])
    for shard, parquet in zip(manifest["shards"], manifest["parquet"], strict=True):
        table = pq.read_table(folder / parquet)
        assert table.column("id").to_pylist() == [r["id"] for r in iter_jsonl_zst(str(folder / shard["file"]))]


def test_a_second_stage_reads_built_shards_and_keeps_ids_and_meta(tmp_path: Path) -> None:
    recipe = recipe_for(tmp_path, [str(planted_corpus(tmp_path))])
    assert main(["build", recipe, *FAST_RUNNER]) == 0
    stage_two = write_recipe(tmp_path, {
        "output": str(tmp_path / "stage2"),
        "sources": [{"dataset": "coffee_rescored", "kind": "shards", "paths": [str(tmp_path / "out" / "*" / "manifest.json")]}],
        "filters": {"dedup": {"exact": "document"}},
    })
    assert main(["build", stage_two, *FAST_RUNNER]) == 0
    first = {r["id"].split("/", 1)[1]: r for r in dataset_records(str(tmp_path / "out" / "coffee"))}
    second = {r["id"].split("/", 1)[1]: r for r in dataset_records(str(tmp_path / "stage2" / "coffee_rescored"))}
    assert second.keys() == first.keys()
    assert all(second[k]["meta"] == first[k]["meta"] and second[k]["dataset"] == "coffee_rescored" for k in first)

    shard = tmp_path / "out" / "coffee" / "shard-00000.jsonl.zst"
    data = bytearray(shard.read_bytes())
    data[-3] ^= 0x01
    shard.write_bytes(bytes(data))
    assert main(["build", stage_two, "--overwrite", *FAST_RUNNER]) == 0
    report = json.loads((tmp_path / "stage2" / "report.json").read_text())["datasets"]["coffee_rescored"]
    read = next(s for s in report["stages"] if s["stage"] == "read")
    assert read["rejected"] == {"shard_mismatch": 1} and report["balanced"]
    assert report["written"] == len(first) - json.loads((tmp_path / "out" / "coffee" / "manifest.json").read_text())["shards"][0]["records"]


def test_a_dataset_whose_books_do_not_balance_is_withheld(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    import pipelines.build as build

    real = build.build_funnel

    def losing_records(counters: dict, datasets: list) -> dict:
        return real({**counters, "coffee|write|kept": counters["coffee|write|kept"] - 1}, datasets)

    monkeypatch.setattr(build, "build_funnel", losing_records)
    recipe = recipe_for(tmp_path, [str(planted_corpus(tmp_path))])
    assert main(["build", recipe, *FAST_RUNNER]) == 1
    assert "books do not balance" in capsys.readouterr().err
    result = verify_dataset(str(tmp_path / "out" / "coffee"))
    assert not result.ok and "withheld" in result.problems[0]


def test_a_fasttext_binding_without_batch_probabilities_stops_the_build_in_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    import fasttext

    class LabelsOnly:  # fasttext-predict's batch predict: one label list per text, no probabilities
        def predict(self, texts: list[str], k: int) -> tuple[list[str], ...]:
            return tuple(["__label__en"] * k for _ in texts)

    recipe = write_recipe(tmp_path, {
        "output": str(tmp_path / "out"),
        "sources": [{"dataset": "coffee", "kind": "jsonl", "paths": [str(planted_corpus(tmp_path))], "fields": {"query": "title", "document": "text"}}],
        "filters": {"language": {}},
    })
    monkeypatch.setattr(fasttext, "load_model", lambda path: LabelsOnly())
    assert main(["build", recipe, *FAST_RUNNER]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("pairmill: error: language model: the installed fastText binding fasttext-numpy2")
    assert "returns no probabilities from batch predict" in err
    assert not (tmp_path / "out").exists()


def test_a_source_with_its_own_filters_runs_its_own_stages(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    corpus = str(planted_corpus(tmp_path))
    fields = {"query": "title", "document": "text", "id": "id"}
    recipe = write_recipe(tmp_path, {
        "output": str(tmp_path / "out"),
        "sources": [
            {"dataset": "deduped", "kind": "jsonl", "paths": [corpus], "fields": fields},
            {"dataset": "kept_all", "kind": "jsonl", "paths": [corpus], "fields": fields, "filters": {"dedup": None, "clean": {"drop_identical": False}}},
        ],
        "filters": {"clean": {}, "dedup": {"exact": "pair"}},
    })
    assert main(["build", recipe, "--dry-run"]) == 0
    assert "kept_all (its own filters): read -> clean -> write" in capsys.readouterr().out
    assert main(["build", recipe, *FAST_RUNNER]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    stages = {name: [s["stage"] for s in entry["stages"]] for name, entry in report["datasets"].items()}
    assert stages == {"deduped": ["read", "clean", "exact_dedup", "write"], "kept_all": ["read", "clean", "write"]}
    assert report["datasets"]["deduped"]["written"] == GOOD
    assert report["datasets"]["kept_all"]["written"] == GOOD + 4  # the 3 duplicates and the identical pair stay


def test_one_dataset_at_a_time_writes_what_one_pipeline_writes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    corpus = str(planted_corpus(tmp_path))
    raw = {
        "output": str(tmp_path / "together"),
        "sources": [{"dataset": name, "kind": "jsonl", "paths": [corpus], "fields": {"query": "title", "document": "text", "id": "id"}}
                    for name in ("coffee", "tea")],
        "filters": {"clean": {}, "dedup": {"exact": "pair"}},
        "shards": {"records_per_shard": 16},
    }
    assert main(["build", write_recipe(tmp_path, raw), *FAST_RUNNER]) == 0
    capsys.readouterr()
    (tmp_path / "apart").mkdir()
    apart = write_recipe(tmp_path / "apart", {**raw, "output": str(tmp_path / "apart" / "out")})
    assert main(["build", apart, "--one-dataset-at-a-time", *FAST_RUNNER]) == 0
    assert capsys.readouterr().err.splitlines() == ["pairmill: dataset 1 of 2: coffee", "pairmill: dataset 2 of 2: tea"]
    together = json.loads((tmp_path / "together" / "report.json").read_text())["datasets"]
    report = json.loads((tmp_path / "apart" / "out" / "report.json").read_text())
    assert report["balanced"] and list(report["datasets"]) == ["coffee", "tea"]
    for name in ("coffee", "tea"):
        assert decompressed_shards(tmp_path / "apart" / "out" / name) == decompressed_shards(tmp_path / "together" / name)
        assert report["datasets"][name]["stages"] == together[name]["stages"]
