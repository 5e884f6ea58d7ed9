"""What Dataflow's --setup_file does: build the sdist, install it in a clean virtualenv, run a build from
outside the source tree, and check the code came from the installed package."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_sdist_installs_and_builds_outside_the_tree(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "setup.py", "-q", "sdist", "-d", str(tmp_path / "dist")], cwd=ROOT, check=True, capture_output=True)
    (sdist,) = (tmp_path / "dist").glob("pairmill-*.tar.gz")
    env_dir = tmp_path / "clean-venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True, check=True)
    site = purelib.stdout.strip()
    # Dependencies come from the project's environment (as a plain path, so its editable pairmill is not seen);
    # pairmill itself only from the sdist.
    deps = [p for p in sys.path if p.endswith("site-packages")]
    Path(site, "deps.pth").write_text("\n".join(deps) + "\n")
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(sdist)], check=True, capture_output=True)

    data = tmp_path / "data"
    data.mkdir()
    (data / "a.jsonl").write_text("".join(json.dumps({"q": f"question {i}", "d": f"answer {i}"}) + "\n" for i in range(20)))
    (data / "recipe.yaml").write_text(
        f"output: {data / 'out'}\nsources:\n  - {{dataset: qa, kind: jsonl, paths: [{data / 'a.jsonl'}], fields: {{query: q, document: d}}}}\n"
        "filters:\n  clean: {}\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = subprocess.run([str(python), "-c", "import pipelines, schemas; print(pipelines.__file__)"],
                           cwd=data, env=env, capture_output=True, text=True, check=True)
    assert where.stdout.startswith(site)
    run = subprocess.run([str(env_dir / "bin" / "pairmill"), "build", str(data / "recipe.yaml")], cwd=data, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert json.loads((data / "out" / "qa" / "manifest.json").read_text())["records"] == 20
