"""The build's output is pinned: a generated corpus gives the same bytes as the graph before packed shuffles.

The digests were produced by pairmill at commit 71c3c1f (records crossing every grouping one element
each, near-dup components in large/small-star rounds) on this corpus and these recipes; the packed graph
(issue 17) must write the same kept, dropped and rejected shards. A change that means to alter what a
build writes updates them, and says so.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
import zstandard

from benchmarks.build_throughput import write_corpus
from pipelines.build import run_build
from schemas.recipe import parse_recipe

PINNED = {
    "default": (5670, 330, "30ea7f56aa64d724f4f32f02fd516aa6432833f6a139f9760cf76ac6a1fde734"),
    "verify": (5652, 348, "2e5fa3392d51a2fed3e266b3feb2e75cfddc9038afb8d4139d12b7855ac71337"),
}
NEAR = {"default": {}, "verify": {"verify": True}}


def output_digest(output: Path, corpus: Path) -> str:
    """sha256 over every shard's name and decompressed bytes (kept, then dropped, then rejected), with the
    corpus folder (in each record's meta.file) written as CORPUS, so the digest does not depend on where it is."""
    digest = hashlib.sha256()
    for folder in ("bench", "_dropped/bench", "_rejected/bench"):
        for path in sorted((output / folder).glob("*.jsonl.zst")):
            digest.update(path.name.encode())
            with path.open("rb") as stream:
                data = zstandard.ZstdDecompressor().stream_reader(stream, read_across_frames=True).read()
            digest.update(data.replace(str(corpus).encode(), b"CORPUS"))
    return digest.hexdigest()


@pytest.mark.slow
@pytest.mark.parametrize("variant", sorted(PINNED))
def test_build_writes_the_pinned_shards(tmp_path: Path, variant: str) -> None:
    corpus = tmp_path / "corpus"
    write_corpus(corpus, 6000, seed=0, per_file=1000)
    raw: dict[str, Any] = {
        "output": str(tmp_path / "out"),
        "sources": [{"dataset": "bench", "kind": "jsonl", "paths": [str(corpus / "*.jsonl.gz")],
                     "fields": {"query": "question", "document": "answer", "id": "id"}}],
        "filters": {"clean": {}, "language": {}, "dedup": {"exact": "pair", "near": NEAR[variant]}},
        "shards": {"write_dropped": "all", "records_per_shard": 1000},
    }
    report = run_build(parse_recipe(raw, "pinned"), ["--direct_num_workers=2"])
    entry = report["datasets"]["bench"]
    assert (entry["written"], entry["dropped"], output_digest(tmp_path / "out", corpus)) == PINNED[variant]
