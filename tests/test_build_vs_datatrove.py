"""benchmarks/build_vs_datatrove.py: the process-tree RSS sampler, the kept-set comparison, the one-line error
for a missing peer venv, and a tiny run of both systems (slow; skipped where the peer venv is absent)."""
from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import pytest

from benchmarks.build_vs_datatrove import (
    DEFAULT_PEER_PYTHON,
    MIB,
    PeerError,
    check_peer,
    datatrove_kept,
    jaccard,
    main,
    pairmill_kept,
    run_sampled,
    similarity,
)
from tests.helpers import write_dataset

# A child holding 200 MiB that starts a grandchild holding 100 MiB; both written to, so the pages are resident.
ALLOCATING_TREE = """
import subprocess, sys, time
held = b"x" * (200 << 20)
grandchild = subprocess.Popen([sys.executable, "-c", "import time; held = b'x' * (100 << 20); time.sleep(2)"])
grandchild.wait()
"""


def test_the_sampler_sees_a_child_and_a_grandchild_together(tmp_path: Path) -> None:
    sampled = run_sampled([sys.executable, "-c", ALLOCATING_TREE], tmp_path / "out", tmp_path / "err")
    assert sampled.returncode == 0, (tmp_path / "err").read_text()
    assert 300 * MIB <= sampled.peak_rss < 300 * MIB + 120 * MIB  # two interpreters' own RSS on top
    assert sampled.wall >= 2


def test_kept_sets_are_read_from_both_outputs_and_compared(tmp_path: Path) -> None:
    records = [{"id": f"bench/{i}", "dataset": "bench", "query": f"q {i}", "document": f"d {i}", "negatives": [], "meta": {}}
               for i in (1, 2, 3, 10)]
    write_dataset(tmp_path / "pairmill" / "bench", "bench", records, per_shard=2)
    (tmp_path / "datatrove").mkdir()
    for rank, ids in enumerate([[1, 2], [10, 11]]):
        with gzip.open(tmp_path / "datatrove" / f"{rank:05d}.jsonl.gz", "wt") as f:
            f.writelines(json.dumps({"text": "t", "id": str(i), "metadata": {}}) + "\n" for i in ids)

    ours, theirs = pairmill_kept(tmp_path / "pairmill"), datatrove_kept(tmp_path / "datatrove")
    assert ours == {"1", "2", "3", "10"} and theirs == {"1", "2", "10", "11"}
    assert jaccard(ours, theirs) == 3 / 5 and jaccard(set(), set()) == 1.0
    compared = similarity({("pairmill", 1): ours, ("datatrove", 1): theirs, ("pairmill", 2): ours, ("datatrove", 2): ours})
    assert compared["pairmill 1w vs datatrove 1w"] == {"jaccard": 0.6, "only_first": 1, "only_second": 1}
    assert compared["pairmill 1w vs pairmill 2w"]["jaccard"] == 1.0
    assert "pairmill 1w vs datatrove 2w" not in compared  # different systems are compared at the same worker count only


def test_a_missing_or_datatrove_less_peer_is_one_line_saying_how_to_make_it(tmp_path: Path) -> None:
    with pytest.raises(PeerError, match=r"is missing; make it with: python3\.11 -m venv .*datatrove\[processing\]==0\.10\.1"):
        check_peer(str(tmp_path / "no-venv" / "python"))
    with pytest.raises(PeerError, match=r"cannot import datatrove \(ModuleNotFoundError.*\); make the venv with: "):
        check_peer(sys.executable)  # pairmill's venv has no datatrove
    with pytest.raises(SystemExit, match=r"^build_vs_datatrove: peer python \S+ is missing; [^\n]*$"):
        main(["--records", "10", "--work", str(tmp_path), "--peer-python", str(tmp_path / "none")])
    assert not any(tmp_path.iterdir())  # stopped before writing the corpus


@pytest.mark.slow
@pytest.mark.skipif(not Path(DEFAULT_PEER_PYTHON).exists(), reason=f"no peer venv at {DEFAULT_PEER_PYTHON}")
def test_both_systems_on_2000_records(tmp_path: Path) -> None:
    try:
        check_peer(DEFAULT_PEER_PYTHON)
    except PeerError as err:
        pytest.skip(str(err))
    results = main(["--records", "2000", "--per-file", "1000", "--workers", "1", "2", "--work", str(tmp_path), "--json", str(tmp_path / "r.json")])
    assert json.loads((tmp_path / "r.json").read_text()) == results
    runs = {(r["system"], r["workers"]): r for r in results["runs"]}
    assert set(runs) == {(s, w) for s in ("pairmill", "datatrove") for w in (1, 2)}
    for run in runs.values():
        assert run["stage_kept"]["read"] == 2000 and 1800 < run["kept"] == run["stage_kept"]["near_dedup"] < 2000
        assert run["peak_rss_mib"] > 50 and run["records_per_s"] > 0
    assert results["kept_sets"]["pairmill 1w vs pairmill 2w"]["jaccard"] == 1.0
    assert results["kept_sets"]["pairmill 1w vs datatrove 1w"]["jaccard"] > 0.95
    assert set(results["ratios"]) == {"pairmill/datatrove records/s, 1 worker(s)", "pairmill/datatrove records/s, 2 worker(s)",
                                      "pairmill 2-worker/1-worker records/s", "datatrove 2-worker/1-worker records/s"}
