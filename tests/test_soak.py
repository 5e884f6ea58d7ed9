"""benchmarks/soak_multiworker.py: its comparison of two build outputs finds a planted difference and names
the input files, its driver prints one line per run and exits 1 on a difference; one real build (slow)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks.soak_multiworker import compare, main, snapshot
from tests.helpers import write_dataset


def record(i: int, document: str = "") -> dict[str, Any]:
    file = f"/in/part-{i // 100:05d}.jsonl.gz"
    return {"id": f"bench/{i}", "dataset": "bench", "query": f"question {i}", "document": document or f"answer {i}",
            "negatives": [], "meta": {"file": file, "row": i % 100 + 1}}


def funnel(written: int, read: int = 300) -> dict[str, Any]:
    stages = [{"stage": "read", "in": read, "kept": read, "dropped": {}, "rejected": {}, "skipped": {}, "info": {}},
              {"stage": "write", "in": written, "kept": written, "dropped": {}, "rejected": {}, "skipped": {}, "info": {}}]
    return {"stages": stages, "read": read, "written": written, "dropped": read - written, "rejected": 0, "added": 0,
            "balanced": True, "metrics": "committed", "stage_seconds": {"read": 1.0 + written}}


def write_output(output: Path, records: list[dict[str, Any]], books: dict[str, Any]) -> Path:
    write_dataset(output / "bench", "bench", records, per_shard=100)
    (output / "_funnel").mkdir(parents=True, exist_ok=True)
    (output / "_funnel" / "bench.json").write_text(json.dumps(books))
    return output


KEPT = [i for i in range(300) if i % 7]  # 257 records from three input files


def test_identical_outputs_compare_equal_whatever_the_timings(tmp_path: Path) -> None:
    a = snapshot(write_output(tmp_path / "a", [record(i) for i in KEPT], funnel(len(KEPT))))
    books = funnel(len(KEPT))
    books["stage_seconds"] = {"read": 99.0}
    b = snapshot(write_output(tmp_path / "b", [record(i) for i in KEPT], books))
    assert a["bench"].written == len(KEPT) and a["bench"].balanced
    assert compare(a, b) == []


def test_a_planted_difference_is_reported_with_its_input_files(tmp_path: Path) -> None:
    a = snapshot(write_output(tmp_path / "a", [record(i) for i in KEPT], funnel(len(KEPT))))
    lost = set(range(150, 200))  # the last half of one input file, as in the 1M-record loss
    got = [record(i, "edited" if i == 10 else "") for i in KEPT if i not in lost] + [record(7), record(14)]
    got.sort(key=lambda r: int(r["id"].split("/")[1]))
    b = snapshot(write_output(tmp_path / "b", got, funnel(len(got))))
    problems = compare(a, b)
    missing = len([i for i in KEPT if i in lost])
    assert f"bench: {missing} ids missing, from part-00001.jsonl.gz {missing} (rows 51-100)" in problems
    assert "bench: 2 ids extra, from part-00000.jsonl.gz 2 (rows 8-15)" in problems
    assert "bench: 1 ids with a different record, from part-00000.jsonl.gz 1 (rows 11-11)" in problems
    assert f"bench: funnel written {len(KEPT)} -> {len(got)}" in problems
    assert any(line.startswith("bench: funnel write.kept ") for line in problems)


def test_same_records_in_another_order_and_a_missing_dataset(tmp_path: Path) -> None:
    a = snapshot(write_output(tmp_path / "a", [record(i) for i in KEPT], funnel(len(KEPT))))
    b = snapshot(write_output(tmp_path / "b", [record(i) for i in reversed(KEPT)], funnel(len(KEPT))))
    assert [line.split(" (")[0] for line in compare(a, b)] == ["bench: same records, different order or sharding"]
    assert compare(a, {}) == ["bench: dataset missing"]


def test_driver_prints_a_line_per_run_and_fails_on_a_difference(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    builds: list[tuple[str, int]] = []
    losing = [3]  # the third build (the second multi-worker run) loses an input file's records

    def fake_build(corpus: Path, output: Path, workers: int) -> float:
        builds.append((output.name, workers))
        kept = [i for i in KEPT if not (len(builds) in losing and 200 <= i < 300)]
        write_output(output, [record(i) for i in kept], funnel(len(kept)))
        return 1.5

    def fake_corpus(folder: Path, records: int, per_file: int) -> Path:
        (folder / "corpus").mkdir(parents=True)
        return folder / "corpus"

    assert main(["--runs", "3", "--records", "300", "--work", str(tmp_path)], fake_build, fake_corpus) == 1
    assert builds == [("out-reference", 1), ("out-run-1", 2), ("out-run", 2), ("out-run", 2)]
    lines = capsys.readouterr().out.splitlines()
    runs = [line for line in lines if line.startswith(("reference", "run "))]
    assert len(runs) == 4 and all("balanced yes" in line for line in runs)
    assert runs[1].endswith("identical to run 1: -  identical to reference: yes")
    assert runs[2].endswith("identical to run 1: NO  identical to reference: NO")
    assert runs[3].endswith("identical to run 1: yes  identical to reference: yes")
    assert "    vs run 1: bench: 86 ids missing, from part-00002.jsonl.gz 86 (rows 1-100)" in lines
    assert lines[-1].startswith("verdict: FAIL: 1 of 4 builds differ")
    assert (tmp_path / "300-10000" / "out-run-2-differs" / "bench").is_dir()

    builds.clear()
    losing.clear()
    assert main(["--runs", "2", "--records", "300", "--reference-workers", "0", "--work", str(tmp_path / "again")],
                fake_build, fake_corpus) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("verdict: PASS: all 2 runs at 2 workers identical to run 1,")


@pytest.mark.slow
def test_one_real_multiworker_build(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["--runs", "1", "--records", "300", "--per-file", "100", "--reference-workers", "0", "--work", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "(3 files)" in out and "balanced yes" in out and "verdict: PASS" in out
