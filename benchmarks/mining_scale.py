"""Hard-negative mining at scale on the CPU: N queries against N documents with the default teacher.

Texts are real pairs from ../shared/realdata, made distinct by joining each with a seeded random second
text, so the search sees N different queries and N different documents. Prints the time of embedding
(queries + documents), of the whole mining call, the peak RSS, and a clearly labelled extrapolation to
1M x 1M (embedding grows linearly, search quadratically).

    .venv/bin/python benchmarks/mining_scale.py --size 100000
"""
from __future__ import annotations

import argparse
import random
import resource
import time

from mining_realdata import pair_pool

from embedding.models import get_teacher
from mining.negatives import mine_hard_negatives
from schemas.recipe import MiningConfig, TeacherConfig
from schemas.record import PairRecord, new_record


def synthetic_pairs(size: int, seed: int = 0) -> list[PairRecord]:
    pool = pair_pool()
    rng = random.Random(seed)
    records = []
    for i in range(size):
        query, document = pool[i % len(pool)]
        other_query, other_document = pool[rng.randrange(len(pool))]
        records.append(new_record("scale", str(i), f"{query} {other_query}", f"{document} {other_document}", "synthetic", i))
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000, help="queries = documents")
    parser.add_argument("--target", type=int, default=1_000_000, help="size to extrapolate to")
    args = parser.parse_args()

    records = synthetic_pairs(args.size)
    teacher = get_teacher(TeacherConfig())
    teacher.encode(["warm up"])
    start = time.perf_counter()
    teacher.encode_queries([r["query"] for r in records])
    teacher.encode_documents([r["document"] for r in records])
    embed_s = time.perf_counter() - start
    start = time.perf_counter()
    result = mine_hard_negatives(records, None, teacher, MiningConfig())
    total_s = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    search_s = max(total_s - embed_s, 0.0)
    scale = args.target / args.size
    print(f"size {args.size} queries x {args.size} documents, default teacher, CPU")
    print(f"embedding (queries + documents)   {embed_s:8.1f} s  ({2 * args.size / embed_s:,.0f} texts/s)")
    print(f"mine_hard_negatives end to end    {total_s:8.1f} s  ({args.size / total_s:,.0f} queries/s)")
    print(f"  of which search + selection     {search_s:8.1f} s")
    print(f"peak RSS                          {peak_mb:8.0f} MB")
    print(f"outcomes                          {dict(result.outcomes)}")
    print(f"EXTRAPOLATED to {args.target} x {args.target} (not measured): embedding {embed_s * scale / 60:.1f} min "
          f"+ search {search_s * scale**2 / 3600:.1f} h = {(embed_s * scale + search_s * scale**2) / 3600:.1f} h on this CPU")


if __name__ == "__main__":
    main()
