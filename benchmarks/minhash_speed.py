"""MinHash signature throughput on one core: pairmill against datasketch's ``MinHash.bulk`` and rensa,
on the same generated documents with num_perm=128 and 5-word shingles; then (``--stage N``) the whole
near-dedup Beam stage on N generated short documents on the local runner, with peak memory.

pairmill goes from text to signature (normalise, shingle, hash, permute), with each of its two shingle
hashes: SHA-1 (datasketch's default) and MurmurHash3 (datasketch given ``mmh3`` as its hashfunc). The peers
take token lists, so their documents are first shingled with ``filters.minhash.shingles`` (the reference
definition that pairmill's signatures match); both "shingles -> signature" and "text -> signature" times
are printed for them. pairmill's signatures are checked equal to datasketch's, per hash, on the timed
documents. rensa hashes with its own non-cryptographic function.

Usage: .venv/bin/python benchmarks/minhash_speed.py [--docs 20000] [--repeats 5] [--stage 1000000]
"""
from __future__ import annotations

import os

# One core for every library (numpy's BLAS is not used here, but rensa and any OpenMP code would spread).
for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS"):
    os.environ[variable] = "1"

import argparse  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from minhash_quality import NGRAM, NUM_PERM, generated_document, near_copy  # noqa: E402

from filters.minhash import MinHasher, ShingleHash, shingles  # noqa: E402

BATCH = 1024


def best_seconds(runs: dict[str, Callable[[], Any]], repeats: int) -> dict[str, tuple[float, Any]]:
    """Per method, the fastest of ``repeats`` runs and its result. The methods take turns, so a change in
    the load of the (shared) machine falls on all of them alike; the minimum is the least disturbed run."""
    best: dict[str, tuple[float, Any]] = {name: (float("inf"), None) for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            started = time.perf_counter()
            result = run()
            best[name] = min(best[name], (time.perf_counter() - started, result), key=lambda pair: pair[0])
    return best


def pairmill_signatures(texts: list[str], shingle_hash: ShingleHash) -> np.ndarray:
    hasher = MinHasher(NUM_PERM, 1, NGRAM, shingle_hash=shingle_hash)
    return np.vstack([hasher.signatures(texts[i : i + BATCH]) for i in range(0, len(texts), BATCH)])


def signature_speed(label: str, texts: list[str], repeats: int) -> None:
    import mmh3
    from datasketch import MinHash
    from rensa import RMinHash

    def murmur3_hash32(data: bytes) -> int:
        return mmh3.hash(data, signed=False)

    token_lists = [shingles(t, NGRAM) for t in texts]
    byte_lists = [[s.encode("utf-8") for s in tokens] for tokens in token_lists]
    for shingle_hash in ("sha1", "murmur3"):  # compiled before timing
        pairmill_signatures(texts[:10], shingle_hash)
    timed = best_seconds(
        {
            "shingles": lambda: [shingles(t, NGRAM) for t in texts],
            "pairmill sha1": lambda: pairmill_signatures(texts, "sha1"),
            "pairmill murmur3": lambda: pairmill_signatures(texts, "murmur3"),
            "datasketch sha1": lambda: MinHash.bulk(byte_lists, num_perm=NUM_PERM),
            "datasketch murmur3": lambda: MinHash.bulk(byte_lists, num_perm=NUM_PERM, hashfunc=murmur3_hash32),
            "rensa": lambda: RMinHash.digest_matrix_from_token_sets(token_lists, NUM_PERM, 1),
        },
        repeats,
    )
    seconds = {name: best for name, (best, _) in timed.items()}
    for shingle_hash in ("sha1", "murmur3"):
        ours, theirs = timed[f"pairmill {shingle_hash}"][1], timed[f"datasketch {shingle_hash}"][1]
        assert all(np.array_equal(s, m.hashvalues) for s, m in zip(ours, theirs, strict=True)), f"{shingle_hash} signatures differ from datasketch"

    shingle_count = sum(map(len, token_lists))
    print(f"\n{label}: {len(texts)} documents, {shingle_count / len(texts):.0f} shingles per document on average")
    print(f"  {'method':<48} {'docs/s':>10}")
    rows = [
        ("pairmill sha1, text -> signature", seconds["pairmill sha1"]),
        ("pairmill murmur3, text -> signature", seconds["pairmill murmur3"]),
        ("datasketch MinHash.bulk sha1, shingles -> sig.", seconds["datasketch sha1"]),
        ("datasketch MinHash.bulk mmh3, shingles -> sig.", seconds["datasketch murmur3"]),
        ("rensa RMinHash digest matrix, shingles -> sig.", seconds["rensa"]),
        ("shingling in Python (the peers' input)", seconds["shingles"]),
    ]
    for name, took in rows:
        print(f"  {name:<48} {len(texts) / took:>10,.0f}")
    print("  pairmill's speed over the peer (above 1: pairmill is faster)")
    ratios = [
        ("sha1: over datasketch bulk, shingles -> sig.", "pairmill sha1", seconds["datasketch sha1"]),
        ("sha1: over datasketch, text -> sig.", "pairmill sha1", seconds["datasketch sha1"] + seconds["shingles"]),
        ("murmur3: over datasketch bulk (mmh3), shingles -> sig.", "pairmill murmur3", seconds["datasketch murmur3"]),
        ("sha1: over rensa, shingles -> sig.", "pairmill sha1", seconds["rensa"]),
        ("murmur3: over rensa, shingles -> sig.", "pairmill murmur3", seconds["rensa"]),
        ("murmur3: over rensa, text -> sig.", "pairmill murmur3", seconds["rensa"] + seconds["shingles"]),
    ]
    for name, ours_name, peer in ratios:
        print(f"    {name:<56} {peer / seconds[ours_name]:>6.2f}x")


def generated_texts(count: int, sentences: tuple[int, int], seed: int) -> list[str]:
    rng = random.Random(seed)
    return [generated_document(rng, sentences) for _ in range(count)]


def stage_records(shard: int, per_shard: int) -> Iterator[dict[str, Any]]:
    """One shard of short generated documents; about 1 in 10 is an edited or exact copy of an earlier one."""
    from schemas.record import new_record

    rng = random.Random(shard)
    recent: list[str] = []
    for i in range(per_shard):
        if recent and rng.random() < 0.1:
            text = near_copy(rng.choice(recent), rng)
        else:
            text = generated_document(rng, (1, 3))
            recent = [*recent, text][-100:]
        yield new_record("bench", f"{shard:05d}-{i:06d}", "", text, file="generated", row=i)


class PeakMemory:
    """Samples the resident memory of this process and its children (the runner's workers) every 0.2 s."""

    def __init__(self) -> None:
        import psutil

        self.process = psutil.Process()
        self.peak = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.sample, daemon=True)

    def sample(self) -> None:
        while not self.stop.is_set():
            processes = [self.process, *self.process.children(recursive=True)]
            total = 0
            for p in processes:
                try:
                    total += p.memory_info().rss
                except Exception:  # a worker that just exited
                    continue
            self.peak = max(self.peak, total)
            self.stop.wait(0.2)

    def __enter__(self) -> PeakMemory:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def stage_speed(count: int) -> None:
    import apache_beam as beam

    from pipelines.funnel import counter_values
    from pipelines.near_dedup import NearDedup
    from pipelines.options import make_pipeline
    from schemas.recipe import MinHashConfig

    # The runner's worker processes import this script's helpers by module name.
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "benchmarks"), os.environ.get("PYTHONPATH", "")])
    shards = max(1, count // 10_000)
    per_shard = count // shards
    started = time.perf_counter()
    with PeakMemory() as memory:
        pipeline = make_pipeline([])  # the local default runner
        output = (
            pipeline
            | beam.Create(list(range(shards)))
            | beam.FlatMap(stage_records, per_shard)
            | NearDedup("bench", MinHashConfig())
        )
        output.kept | "count kept" >> beam.combiners.Count.Globally()
        result = pipeline.run()
        result.wait_until_finish()
    seconds = time.perf_counter() - started
    counters = {name.split("|", 2)[2]: value for name, value in counter_values(result).items()}
    print(f"\nnear-dedup stage, local runner ({os.cpu_count()} workers): {shards * per_shard:,} short documents")
    print(f"  {seconds:.0f} s, {shards * per_shard / seconds:,.0f} docs/s, peak memory {memory.peak / 2**30:.2f} GiB (all processes)")
    print(f"  counters: {counters}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=20000, help="documents per signature benchmark (0: skip it)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--stage", type=int, default=0, help="also run the Beam stage on this many documents")
    args = parser.parse_args()
    if args.docs:
        signature_speed("short documents (1-3 sentences)", generated_texts(args.docs, (1, 3), 1), args.repeats)
        signature_speed("long documents (8-30 sentences)", generated_texts(args.docs // 5, (8, 30), 2), args.repeats)
    if args.stage:
        stage_speed(args.stage)


if __name__ == "__main__":
    main()
