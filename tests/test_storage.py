"""storage/: atomic writes, JSON round trips, manifests (finished, withheld, missing, invalid) and a build's datasets."""
from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import pytest

from schemas.config import ConfigError
from schemas.manifest import MANIFEST, WITHHELD_MANIFEST, Manifest, ManifestError, ShardInfo, objective
from storage.builds import (
    existing_manifest,
    find_datasets,
    read_manifest,
    read_manifest_file,
    side_folder,
    withheld_manifest,
    withhold,
)
from storage.files import exists, join, match, read_json, read_text, split, write_atomically, write_json, write_text


def manifest(dataset: str) -> Manifest:
    shard = ShardInfo(file="shard-00000.jsonl.zst", records=2, bytes=10, sha256="0" * 64)
    return Manifest(dataset=dataset, objective=objective("paired"), prefixes={"query": "", "document": ""}, records=2,
                    shards=[shard], recipe_hash="h", pairmill_version="test")


def write_manifest(folder: Path, dataset: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MANIFEST).write_text(manifest(dataset).to_json())


def test_atomic_write_shows_nothing_until_done_and_keeps_the_old_file_on_failure(tmp_path: Path) -> None:
    path = str(tmp_path / "a.json")

    def write(stream: BinaryIO) -> str:
        assert not exists(path)  # nothing under the final name while writing
        stream.write(b"first")
        return "done"

    assert write_atomically(path, write) == "done" and read_text(path) == "first"

    def fail(stream: BinaryIO) -> None:
        stream.write(b"half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        write_atomically(path, fail)
    assert read_text(path) == "first"
    write_text(path, "second")
    assert read_text(path) == "second"


def test_json_round_trip(tmp_path: Path) -> None:
    value = {"b": [1, 2.5, None], "a": {"text": "café ☕"}}
    path = str(tmp_path / "v.json")
    write_json(path, value)
    assert read_json(path) == value
    write_json(path, value, indent=2, sort_keys=True)
    assert read_json(path) == value and read_text(path).index('"a"') < read_text(path).index('"b"')


def test_paths_keep_the_form_they_were_given(tmp_path: Path) -> None:
    assert split("out/ds/manifest.json") == ("out/ds", "manifest.json")
    assert split("gs://bucket/out/ds/") == ("gs://bucket/out", "ds")
    assert side_folder("out", "dropped", "ds") == join("out", "_dropped", "ds")
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "b.txt").write_text("b")
    (tmp_path / "x" / "a.txt").write_text("a")
    assert match(join(str(tmp_path), "x", "*.txt")) == [str(tmp_path / "x" / "a.txt"), str(tmp_path / "x" / "b.txt")]


def test_manifest_reading_finished_withheld_missing_and_invalid(tmp_path: Path) -> None:
    folder = tmp_path / "ds"
    write_manifest(folder, "ds")
    assert read_manifest(str(folder)) == manifest("ds") == existing_manifest(str(folder))
    assert withheld_manifest(str(folder)) is None

    withhold(str(folder))
    assert not (folder / MANIFEST).exists() and (folder / WITHHELD_MANIFEST).exists()
    assert existing_manifest(str(folder)) is None and withheld_manifest(str(folder)) == manifest("ds")
    with pytest.raises(ManifestError, match="withheld") as withheld:
        read_manifest(str(folder))
    assert str(folder / MANIFEST) in str(withheld.value)

    missing = tmp_path / "nothing"
    for read in (lambda: read_manifest(str(missing)), lambda: read_manifest_file(str(missing / MANIFEST))):
        with pytest.raises(ManifestError) as err:
            read()
        assert str(err.value).startswith(f"{missing / MANIFEST}: no manifest") and "\n" not in str(err.value)

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / MANIFEST).write_text('{"dataset": "x"')
    with pytest.raises(ManifestError) as err:
        read_manifest(str(broken))
    assert str(err.value).startswith(f"{broken / MANIFEST}: not a pairmill manifest") and "\n" not in str(err.value)


def test_find_datasets_lists_a_builds_folders_but_not_its_side_folders(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_manifest(out / "b", "b")
    write_manifest(out / "a", "a")
    (out / "unfinished").mkdir()
    (out / "unfinished" / "shard-00000.jsonl.zst.tmp").write_bytes(b"")
    (out / "_dropped" / "a").mkdir(parents=True)
    (out / "_dropped" / "a" / "dropped-00000.jsonl.zst").write_bytes(b"")
    (out / "report.json").write_text("{}")
    assert find_datasets(str(out)) == [str(out / name) for name in ("a", "b", "unfinished")]
    assert find_datasets(str(out / "a")) == [str(out / "a")]
    with pytest.raises(ConfigError, match="no such folder"):
        find_datasets(str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match="neither a dataset folder"):
        find_datasets(str(out / "_dropped" / "a"))
