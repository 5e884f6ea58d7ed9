"""A normal build's console: pairmill's funnel and the warnings that matter, none of Beam's per-run notices
(pipelines/logs.py). The build runs as a user runs it, ``python -m pipelines.cli build`` in a subprocess
on the default multi-process runner."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import write_recipe
from tests.worker_warning import MESSAGE

ROOT = Path(__file__).resolve().parent.parent
BEAM_NOTICES = ["apitools not found", "Logging handler created", "No semi_persistent_directory", "Discarding unparseable args",
                "direct_num_workers is not equal to 1"]


def small_recipe(folder: Path) -> str:
    path = folder / "qa.jsonl"
    path.write_text("".join(json.dumps({"id": i, "q": f"question {i} about brewing", "d": f"answer {i} about brewing with detail"}) + "\n"
                            for i in range(40)))
    return write_recipe(folder, {"output": str(folder / "out"),
                                 "sources": [{"dataset": "qa", "kind": "jsonl", "paths": [str(path)], "fields": {"query": "q", "document": "d", "id": "id"}}],
                                 "filters": {"clean": {}, "dedup": {"exact": "document"}}})


def build(folder: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``pairmill build`` as a user runs it, from another folder; each worker logs MESSAGE as it starts."""
    environment = {name: value for name, value in os.environ.items() if name != "PAIRMILL_BEAM_NOTICES"}
    environment.update({"PYTHONPATH": str(ROOT), **(env or {})})
    command = [sys.executable, "-m", "pipelines.cli", *args, "build", small_recipe(folder), "--overwrite", "--beam_plugins=tests.worker_warning"]
    done = subprocess.run(command, cwd=folder, env=environment, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return done


def test_the_command_line_sets_up_logging_before_beam_is_imported() -> None:
    """pipelines/logs.py's filter must be in place before ``import apache_beam`` logs the apitools notice."""
    probe = "import sys, pipelines.cli as cli; cli.make_parser(); print(sorted(m for m in sys.modules if m.startswith('apache_beam'))[:3])"
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr


@pytest.mark.slow
def test_a_build_prints_the_funnel_and_warnings_not_beams_notices(tmp_path: Path) -> None:
    done = build(tmp_path)
    assert "qa" in done.stdout and "books balanced" in done.stdout and "report: " in done.stdout
    console = done.stdout + done.stderr
    assert [notice for notice in BEAM_NOTICES if notice in console] == []
    # Each worker's warning reaches the console once: through Beam's log channel ("Worker: ..."), not
    # also from the worker's stderr; and nothing else is on stderr.
    lines = done.stderr.splitlines()
    assert lines and all(line.startswith("WARNING ") and "Worker: " in line and MESSAGE in line for line in lines)
    assert len(lines) <= (os.cpu_count() or 1)


@pytest.mark.slow
def test_log_level_info_brings_beams_logs_back(tmp_path: Path) -> None:
    done = build(tmp_path, "--log-level", "INFO", env={"PAIRMILL_BEAM_NOTICES": "1"})
    assert all(notice in done.stderr for notice in ["Logging handler created", "No semi_persistent_directory"])
    assert "books balanced" in done.stdout
