"""The shard manifest (``manifest.json``) and the Nomic contrastors counts file (``counts.json``).

A dataset folder is complete only when its manifest exists: the manifest is written last.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from importlib import metadata
from typing import Any, Literal

# 2: a record's shard is text.hashing.bucket of its id (blake2b); 1 used sha1.
FORMAT_VERSION = 2
MANIFEST = "manifest.json"
WITHHELD_MANIFEST = "manifest.unbalanced.json"  # a build whose books did not balance
COUNTS = "counts.json"
SHARD_PATTERN = "shard-{index:05d}.jsonl.zst"
SHARD_FILE = re.compile(r"^shard-\d{5}\.jsonl\.zst$")  # the names SHARD_PATTERN makes


def pairmill_version() -> str:
    try:
        return metadata.version("pairmill")
    except metadata.PackageNotFoundError:
        return "unknown"


class ManifestError(ValueError):
    """A manifest that is missing, unreadable or inconsistent; the message names the file."""


@dataclass
class ShardInfo:
    file: str
    records: int
    bytes: int
    sha256: str


@dataclass
class Manifest:
    dataset: str
    objective: dict[str, Any]
    prefixes: dict[str, str]
    records: int
    shards: list[ShardInfo]
    recipe_hash: str
    pairmill_version: str
    format_version: int = FORMAT_VERSION
    parquet: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    def counts_json(self) -> str:
        """The layout the Nomic contrastors loader reads: per-file counts and the total."""
        counts = {"count_per_file": {s.file: s.records for s in self.shards}, "total_count": self.records}
        return json.dumps(counts, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str) -> Manifest:
        try:
            raw = json.loads(text)
            shards = [ShardInfo(**s) for s in raw.pop("shards")]
            manifest = cls(shards=shards, **raw)
        except (ValueError, TypeError, KeyError) as err:
            raise ManifestError(f"{where}: not a pairmill manifest ({err})") from None
        if manifest.format_version != FORMAT_VERSION:
            raise ManifestError(f"{where}: format_version {manifest.format_version} is not {FORMAT_VERSION}")
        if manifest.records != sum(s.records for s in manifest.shards):
            raise ManifestError(f"{where}: records {manifest.records} is not the sum of the shards' records")
        return manifest


def objective(kind: Literal["paired", "triplet", "labeled-pair"]) -> dict[str, Any]:
    columns = {
        "paired": ["query", "document"],
        "triplet": ["query", "document", "negatives"],
        "labeled-pair": ["query", "document", "label"],
    }[kind]
    return {"type": kind, "columns": columns}
