"""What Dataflow's --setup_file does: build the sdist, install it in a clean virtualenv with a plain
``pip install`` (no extra step), run a build with every filter on from outside the source tree, and check
the code, the language model and the fastText binding all came with that install."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

THINGS = ["espresso machine", "bicycle chain", "cast iron pan", "laptop battery", "garden hose", "wool sweater",
          "leather boot", "kitchen knife", "wooden table", "car windshield"]
ACTIONS = ["clean", "repair", "store"]
FRENCH = [
    "Il faut d'abord laisser refroidir l'appareil, puis le nettoyer doucement avec un chiffon humide et du savon.",
    "La meilleure méthode consiste à démonter la pièce, à la tremper dans l'eau chaude et à la sécher au soleil.",
    "Nous conseillons de ranger cet objet dans un endroit sec et frais, loin de la lumière directe du soleil.",
]

# Run inside the clean venv: where the code and the model come from, which distributions provide the
# `fasttext` module, and the fastText bindings anywhere in pairmill's requirement closure.
PROBE = r"""
import importlib.metadata as md, json, re, pipelines, fasttext
from filters.language import default_model_path, fasttext_bindings, load_model
load_model(None)  # loads the packaged model and checks batch predict with probabilities
def norm(name): return re.sub(r"[-_.]+", "-", name).lower()
seen, todo = set(), ["pairmill"]
while todo:
    name = norm(todo.pop())
    if name in seen:
        continue
    seen.add(name)
    try:
        requires = md.requires(name) or []
    except md.PackageNotFoundError:
        continue
    todo += [re.match(r"[A-Za-z0-9._-]+", r).group(0) for r in requires if "extra ==" not in r]
print(json.dumps({"pipelines": pipelines.__file__, "model": default_model_path(), "fasttext": fasttext.__file__,
                  "bindings": fasttext_bindings(), "closure": sorted(n for n in seen if "fasttext" in n)}))
"""


def english_pairs() -> list[dict[str, str]]:
    return [
        {"q": f"How do I {action} a {thing} at home without damaging it?",
         "d": f"To {action} a {thing}, start slowly and carefully, follow the maker's instructions, and never rush the last step."}
        for thing in THINGS for action in ACTIONS
    ]


@pytest.mark.slow
def test_sdist_installs_whole_and_builds_every_filter_outside_the_tree(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "setup.py", "-q", "sdist", "-d", str(tmp_path / "dist")], cwd=ROOT, check=True, capture_output=True)
    (sdist,) = (tmp_path / "dist").glob("pairmill-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = archive.getnames()
    assert any(n.endswith("filters/data/lid.176.ftz") for n in names) and any(n.endswith("filters/data/NOTICE.md") for n in names)

    env_dir = tmp_path / "clean-venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True, check=True)
    site = purelib.stdout.strip()
    # Dependencies come from the project's environment (as a plain path, so its editable pairmill is not
    # seen), so that the install needs no download of torch and the rest; pairmill itself only from the sdist.
    deps = [p for p in sys.path if p.endswith("site-packages")]
    Path(site, "deps.pth").write_text("\n".join(deps) + "\n")
    # A plain install, as --setup_file does: pip resolves every requirement; nothing is added by hand after it.
    install = subprocess.run([str(python), "-m", "pip", "install", str(sdist)], capture_output=True, text=True)
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-2000:]
    installed = [line for line in install.stdout.splitlines() if line.startswith("Successfully installed")]
    assert installed and "fasttext" not in installed[0], installed  # no second binding pulled in

    data = tmp_path / "data"
    data.mkdir()
    english = english_pairs()
    rows = english + [{"q": f"Comment entretenir un objet {i} ?", "d": text} for i, text in enumerate(FRENCH)]
    (data / "a.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (data / "recipe.yaml").write_text(
        f"output: {data / 'out'}\nsources:\n  - {{dataset: qa, kind: jsonl, paths: [{data / 'a.jsonl'}], fields: {{query: q, document: d}}}}\n"
        "filters:\n  clean: {}\n  language: {}\n  dedup: {near: {}}\n  consistency: {}\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    probe = subprocess.run([str(python), "-c", PROBE], cwd=data, env=env, capture_output=True, text=True)
    assert probe.returncode == 0, probe.stderr[-2000:]
    where = json.loads(probe.stdout.strip().splitlines()[-1])
    assert where["pipelines"].startswith(site)
    assert where["model"] == str(Path(site, "filters", "data", "lid.176.ftz"))  # the packaged model, not another wheel's
    assert where["bindings"] == ["fasttext-numpy2"], where  # exactly one distribution provides `fasttext`
    assert where["closure"] == ["fasttext-numpy2"], where  # and it is the only binding pairmill's requirements reach
    check = subprocess.run([str(python), "-m", "filters.language", "--self-check"], cwd=data, env=env, capture_output=True, text=True)
    assert check.returncode == 0 and "passed" in check.stdout, check.stderr[-2000:]

    run = subprocess.run([str(env_dir / "bin" / "pairmill"), "build", str(data / "recipe.yaml")], cwd=data, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    funnel = json.loads((data / "out" / "_funnel" / "qa.json").read_text())
    by_stage = {stage["stage"]: stage for stage in funnel["stages"]}
    assert list(by_stage) == ["read", "clean", "language", "exact_dedup", "near_dedup", "consistency", "write"]
    assert by_stage["language"]["dropped"] == {"other_language": len(FRENCH)}  # the packaged model at work
    assert funnel["balanced"] and funnel["read"] == len(rows)
    assert json.loads((data / "out" / "qa" / "manifest.json").read_text())["records"] == funnel["written"] > 0
