"""What a worker sees: the pipeline a launcher builds runs where the launcher's files are not.

The launcher (a copy of the checkout, with a HOME of its own) builds the build and mine graphs and
serialises each as Dataflow receives it: the runner API proto, every DoFn pickled inside. Then the
checkout copy and the launcher's HOME are deleted, and a worker process runs each proto with Beam's
FnApiRunner from an empty working directory, with an empty HOME and only the installed package
(``pip install --target``, not the checkout) and its dependencies on ``sys.path``. A DoFn that kept a
path into the launcher's files (a model, package data, a cache) or a file read at graph construction
would fail there.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_packaging import FRENCH, english_pairs

ROOT = Path(__file__).resolve().parents[1]

# argv: recipe, proto out, "build" or "mine". Builds the graph as run_build / run_mine do, runs nothing.
LAUNCH = r"""
import sys
import apache_beam as beam
from apache_beam.transforms.environments import EmbeddedPythonEnvironment
from pipelines.build import add_dataset, open_sources
from pipelines.mine import add_mined_dataset
from storage.configs import load_recipe
from storage.builds import dataset_folder, existing_manifest

recipe_path, out, command = sys.argv[1:]
recipe = load_recipe(recipe_path)
pipeline = beam.Pipeline(runner="FnApiRunner")
if command == "build":
    for source in open_sources(recipe):
        add_dataset(pipeline, recipe, source)
else:
    for dataset in recipe.datasets:
        add_mined_dataset(pipeline, recipe, dataset, recipe.mining, existing_manifest(dataset_folder(recipe.output, dataset)))
proto = pipeline.to_runner_api(default_environment=EmbeddedPythonEnvironment.default())
open(out, "wb").write(proto.SerializeToString())
"""

# argv: proto, dataset. Runs the proto and prints its funnel and where pairmill's modules came from.
WORK = r"""
import json, sys
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.portability.api import beam_runner_api_pb2
from apache_beam.runners.portability.fn_api_runner import fn_runner
from pipelines.funnel import build_funnel, read_counters

proto = beam_runner_api_pb2.Pipeline.FromString(open(sys.argv[1], "rb").read())
result = fn_runner.FnApiRunner().run_via_runner_api(proto, PipelineOptions([]))
result.wait_until_finish()
counters, kind = read_counters(result)
packages = {"text", "schemas", "storage", "embedding", "filters", "mining", "pipelines"}
files = sorted({m.__file__ for name, m in list(sys.modules.items()) if name.split(".")[0] in packages and getattr(m, "__file__", None)})
print(json.dumps({"funnel": build_funnel(counters, [sys.argv[2]])[sys.argv[2]], "metrics": kind, "files": files, "path": sys.path}))
"""


def python(code: str, args: list[str], cwd: Path, home: Path, path: list[Path | str]) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh interpreter without its site-packages (-S): only ``path`` to import from."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "PYTHONPATH": os.pathsep.join(map(str, path)), "PYTHONNOUSERSITE": "1"}
    run = subprocess.run([sys.executable, "-S", "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return run


@pytest.mark.slow
def test_the_pickled_pipeline_runs_without_the_launchers_files(tmp_path: Path) -> None:
    deps = [p for p in sys.path if p.endswith("site-packages")]  # torch and the rest, not pairmill
    checkout, launcher_home = tmp_path / "checkout", tmp_path / "launcher-home"
    shutil.copytree(ROOT, checkout, ignore=shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__"))
    launcher_home.mkdir()
    site = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(site), str(checkout)],
                             capture_output=True, text=True)
    assert install.returncode == 0, install.stderr[-2000:]

    data = tmp_path / "data"
    data.mkdir()
    rows = english_pairs() + [{"q": f"Comment entretenir un objet {i} ?", "d": text} for i, text in enumerate(FRENCH)]
    (data / "a.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    recipe = data / "recipe.yaml"
    recipe.write_text(
        f"output: {data / 'out'}\nsources:\n  - {{dataset: qa, kind: jsonl, paths: [{data / 'a.jsonl'}], fields: {{query: q, document: d}}}}\n"
        "filters:\n  clean: {}\n  language: {}\n  dedup: {near: {}}\n  consistency: {}\n"
        "mining: {num_negatives: 2, range_max: 20, too_few: pad}\n"
    )
    worker_dir, worker_home = tmp_path / "worker", tmp_path / "worker-home"
    worker_dir.mkdir()
    worker_home.mkdir()

    def launch_and_work(command: str, dataset: str) -> dict:
        proto = tmp_path / f"{command}.pb"
        python(LAUNCH, [str(recipe), str(proto), command], cwd=checkout, home=launcher_home, path=[checkout, *deps])
        moved = tmp_path / "checkout-away"
        checkout.rename(moved)  # out of the worker's reach, as on another machine
        launcher_home.rename(tmp_path / "launcher-home-away")
        try:
            run = python(WORK, [str(proto), dataset], cwd=worker_dir, home=worker_home, path=[site, *deps])
        finally:
            moved.rename(checkout)
            (tmp_path / "launcher-home-away").rename(launcher_home)
        report = json.loads(run.stdout.strip().splitlines()[-1])
        assert report["files"] and all(f.startswith(str(site)) for f in report["files"]), report["files"]
        # The venv may live inside the checkout (as in CI): what must be absent is the checkout itself.
        assert not {Path(p).resolve() for p in report["path"] if p} & {ROOT.resolve(), checkout.resolve()}
        return report

    built = launch_and_work("build", "qa")
    by_stage = {stage["stage"]: stage for stage in built["funnel"]["stages"]}
    assert list(by_stage) == ["read", "clean", "language", "exact_dedup", "near_dedup", "consistency", "write"]
    assert by_stage["language"]["dropped"] == {"other_language": len(FRENCH)}  # the packaged model, found on the worker
    assert built["funnel"]["balanced"] and built["funnel"]["read"] == len(rows) and built["metrics"] == "committed"
    written = json.loads((data / "out" / "qa" / "manifest.json").read_text())["records"]
    assert written == built["funnel"]["written"] > 0

    mined = launch_and_work("mine", "qa_mined")
    assert mined["funnel"]["balanced"] and mined["funnel"]["read"] == written
    assert json.loads((data / "out" / "qa_mined" / "manifest.json").read_text())["records"] == mined["funnel"]["written"] > 0
