"""The command line: user mistakes are one line with exit code 2; inspect and verify."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.cli import main
from schemas.record import new_record
from tests.helpers import FAST_RUNNER, write_dataset, write_recipe


def one_line_error(capsys: pytest.CaptureFixture, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pairmill: error: ") and "\n" not in err
    return err


def recipe(tmp_path: Path, **source) -> str:
    return write_recipe(tmp_path, {
        "output": str(tmp_path / "out"),
        "sources": [{"dataset": "qa", "kind": "jsonl", "paths": [str(tmp_path / "*.jsonl")], "fields": {"query": "q", "document": "d"}, **source}],
    })


def test_user_mistakes_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert "no file matches" in one_line_error(capsys, ["build", recipe(tmp_path), *FAST_RUNNER])
    (tmp_path / "a.jsonl").write_text('{"q": "a", "d": "b"}\n')
    assert "unknown kind 'xmlx'" in one_line_error(capsys, ["build", recipe(tmp_path, kind="xmlx")])
    assert "unknown option --runnr" in one_line_error(capsys, ["build", recipe(tmp_path), "--runnr=FnApiRunner"])
    assert "recipe file not found" in one_line_error(capsys, ["build", str(tmp_path / "missing.yaml")])
    assert "no such folder" in one_line_error(capsys, ["verify", str(tmp_path / "nothing")])
    assert "neither a dataset folder" in one_line_error(capsys, ["inspect", str(tmp_path)])


def test_inspect_prints_manifest_and_records(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    records = [new_record("qa", str(i), f"question {i}", f"answer {i}", file="f", row=i) for i in range(5)]
    folder = write_dataset(tmp_path / "qa", "qa", records)
    assert main(["inspect", str(folder), "-n", "2"]) == 0
    out = capsys.readouterr().out
    assert '"total_count"' not in out and '"records": 5' in out
    printed = [json.loads(line) for line in out.splitlines() if line.startswith('{"dataset"')]
    assert [r["id"] for r in printed] == ["qa/0", "qa/1"]


def test_verify_reports_a_missing_shard(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    records = [new_record("qa", str(i), "q", "d", file="f", row=i) for i in range(5)]
    folder = write_dataset(tmp_path / "qa", "qa", records, per_shard=2)
    (folder / "shard-00001.jsonl.zst").unlink()
    assert main(["verify", str(folder)]) == 1
    assert "shard-00001.jsonl.zst: shard listed in the manifest is missing" in capsys.readouterr().out
