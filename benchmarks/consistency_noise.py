"""Noise removal by the consistency filter: plant wrong documents in real pairs, see what the filter removes.

For each real source in ../shared/realdata (Quora duplicates, Amazon Fashion summary -> review, AG News
title -> description), 20% of the pairs get another pair's document (a seeded rotation among them; a pair
whose new document has the same text as its own is not counted as planted). The filter runs per dataset
exactly as the Beam stage does (chunks by id hash, default teacher, keep rank < k) and we report precision
and recall of "removed = planted", the share of clean pairs removed, and the effect of the chunk size.

    .venv/bin/python benchmarks/consistency_noise.py
    .venv/bin/python benchmarks/consistency_noise.py --chunk-sizes 100000 2000 500 100 --k 1 2 5
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import random
import time
from collections import defaultdict

from mining_realdata import load_sources

from embedding.models import get_teacher
from filters.consistency import ConsistencyScorer, num_chunks
from schemas.recipe import ConsistencyConfig, TeacherConfig
from schemas.record import PairRecord
from text.hashing import bucket


def plant_noise(records: list[PairRecord], share: float, seed: int) -> tuple[list[PairRecord], set[str]]:
    """A copy of ``records`` where ``share`` of them carry a document rotated in from another planted pair."""
    noisy = copy.deepcopy(records)
    chosen = sorted(random.Random(seed).sample(range(len(noisy)), round(share * len(noisy))))
    documents = [noisy[i]["document"] for i in chosen]
    planted = set()
    for position, row in enumerate(chosen):
        new_document = documents[(position + 1) % len(documents)]
        if new_document != noisy[row]["document"]:
            planted.add(noisy[row]["id"])
        noisy[row]["document"] = new_document
    return noisy, planted


def removed_ids(records: list[PairRecord], scorer: ConsistencyScorer, chunk_size: int) -> set[str]:
    """What the consistency stage drops, chunking by id hash as the Beam stage does."""
    chunks = num_chunks(len(records), chunk_size)
    members: dict[int, list[PairRecord]] = defaultdict(list)
    for record in records:
        members[bucket(record["id"], chunks)].append(record)
    removed = set()
    for chunk in members.values():
        chunk = copy.deepcopy(chunk)
        removed |= {r["id"] for r, verdict in zip(chunk, scorer.check_batch(chunk), strict=True) if verdict is not None}
    return removed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--share", type=float, default=0.2, help="share of pairs given a wrong document")
    parser.add_argument("--k", type=int, nargs="+", default=[2])
    parser.add_argument("--chunk-sizes", type=int, nargs="+", default=[1_000_000, 2000, 500, 100])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    teacher = get_teacher(TeacherConfig())
    print(
        f"{'dataset':10} {'pairs':>6} {'planted':>7} {'k':>3} {'chunk':>8} {'removed':>8} "
        f"{'precision':>9} {'recall':>7} {'clean removed':>13} {'seconds':>8}"
    )
    for dataset, records in load_sources().items():
        noisy, planted = plant_noise(records, args.share, args.seed)
        # chunk sizes at or above the dataset size all mean one chunk: measure that once
        sizes = sorted({min(size, len(noisy)) for size in args.chunk_sizes}, reverse=True)
        for k in args.k:
            for chunk_size in sizes:
                scorer = ConsistencyScorer(dataclasses.replace(ConsistencyConfig(), k=k, chunk_size=chunk_size), teacher)
                start = time.perf_counter()
                removed = removed_ids(noisy, scorer, chunk_size)
                seconds = time.perf_counter() - start
                hits = len(removed & planted)
                precision = hits / len(removed) if removed else float("nan")
                recall = hits / len(planted)
                clean_removed = len(removed - planted) / (len(noisy) - len(planted))
                chunk = "all" if chunk_size >= len(noisy) else str(chunk_size)
                print(
                    f"{dataset:10} {len(noisy):6} {len(planted):7} {k:3} {chunk:>8} {len(removed):8} "
                    f"{precision:9.3f} {recall:7.3f} {clean_removed:13.3f} {seconds:8.2f}"
                )


if __name__ == "__main__":
    main()
