"""Decontamination (filters/decontaminate.py), measured three ways in one run:

1. **Planted overlap in real pairs**: texts of the MS MARCO BEIR subset (../shared/realdata) planted into the
   real pairs of Quora, Amazon reviews and AG News, on the query or the document side: verbatim copies, case and
   punctuation variants, and passages trimmed by a sentence with a few words changed. Prints the share of
   planted pairs dropped (the goal: at least 99%) and of the other real pairs (at most 0.5%).
2. **The index at scale**: an index over ``--eval-texts`` generated passages (default a million, words drawn
   from a large vocabulary by Zipf's law): the time to build it, its size in memory per evaluation text, and
   the launcher's peak RSS.
3. **Speed beside exact dedup**: a build of ``--records`` generated records (benchmarks/build_throughput.py's
   corpus) with exact dedup and decontamination against that index, both in the same run: each stage's worker
   seconds per record (Beam's execution time of the stage).

    .venv/bin/python benchmarks/decontamination.py                       # all three, default sizes
    .venv/bin/python benchmarks/decontamination.py --eval-texts 100000 --records 50000
"""
from __future__ import annotations

import argparse
import json
import random
import re
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.build_throughput import write_corpus
from benchmarks.mining_realdata import load_sources
from filters.decontaminate import DecontaminateFilter, build_index, index_from_texts
from pipelines.build import run_build
from schemas.config import parse_block
from schemas.recipe import DecontaminateConfig, parse_recipe
from schemas.record import PairRecord
from storage.texts import BEIR_CORPUS, BEIR_QUERIES, beir_rows, beir_text

REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"
MSMARCO = REALDATA / "beir" / "msmarco_subset"
VARIANTS = ("verbatim", "case_punctuation", "trimmed")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
# Words a trimmed copy's changed words are replaced by.
REPLACEMENTS = ("often", "several", "however", "usually", "also", "many", "simply", "largely", "rarely", "again")


def case_punctuation_variant(text: str, rng: random.Random) -> str:
    """The text with its words' case changed and its punctuation dropped, changed or doubled."""
    words = []
    for word in text.split():
        word = rng.choice([word.upper(), word.lower(), word.title(), word])
        word = re.sub(r"[.,;:!?]", lambda m: rng.choice(["", "!", " -", m.group() * 2]), word)
        words.append(word)
    return "  ".join(words) if rng.random() < 0.5 else " ".join(words)


def trimmed_variant(text: str, rng: random.Random) -> str | None:
    """The text without its first or its last sentence, and two or three of the remaining words replaced (None
    for a text of fewer than three sentences, which trimming would halve or empty)."""
    sentences = SENTENCE_END.split(text.strip())
    if len(sentences) < 3:
        return None
    kept = sentences[1:] if rng.random() < 0.5 else sentences[:-1]
    words = " ".join(kept).split()
    for position in rng.sample(range(len(words)), min(rng.choice([2, 3]), len(words))):
        words[position] = rng.choice(REPLACEMENTS)
    return " ".join(words)


def planted_pairs(real: list[PairRecord], passages: list[str], queries: list[str], count: int, seed: int = 0) -> list[tuple[PairRecord, str]]:
    """``count`` real pairs with one side replaced by a variant of an evaluation text, with the variant's kind:
    passages on either side in every variant, queries (short) verbatim or in case and punctuation."""
    rng = random.Random(seed)
    planted = []
    while len(planted) < count:
        base = rng.choice(real)
        side = rng.choice(["query", "document"])
        variant = rng.choice(VARIANTS)
        source = rng.choice(queries) if variant != "trimmed" and rng.random() < 0.2 else rng.choice(passages)
        text = {"verbatim": lambda t: t, "case_punctuation": lambda t: case_punctuation_variant(t, rng),
                "trimmed": lambda t: trimmed_variant(t, rng)}[variant](source)
        if text is None:
            continue
        record = {**base, "id": f"planted/{len(planted)}", side: text, "meta": {}}
        planted.append((record, f"{variant}:{side}"))
    return planted


def real_pairs() -> list[PairRecord]:
    return [r for records in load_sources(REALDATA).values() for r in records]


def msmarco_texts() -> tuple[list[str], list[str]]:
    return [beir_text(r) for r in beir_rows(str(MSMARCO), BEIR_CORPUS)], [beir_text(r) for r in beir_rows(str(MSMARCO), BEIR_QUERIES)]


def planted_check(planted_count: int = 3000, seed: int = 0) -> dict[str, Any]:
    """Part 1: the shares of planted and of other real pairs that the default stage drops."""
    passages, queries = msmarco_texts()
    config = parse_block(DecontaminateConfig, {"against": [{"path": str(MSMARCO), "name": "msmarco"}]}, "benchmark")
    index = index_from_texts([("msmarco", passages + queries)], config.ngram, near=config.containment is not None)
    stage = DecontaminateFilter(config, "", index)
    real = real_pairs()
    planted = planted_pairs(real, passages, queries, planted_count, seed)
    planted_verdicts = stage.check_batch([r for r, _ in planted])
    real_verdicts = stage.check_batch([{**r, "meta": {}} for r in real])
    by_kind: dict[str, list[int]] = {}
    for (_, kind), verdict in zip(planted, planted_verdicts, strict=True):
        counts = by_kind.setdefault(kind, [0, 0])
        counts[0] += verdict is not None
        counts[1] += 1
    missed = [(r, kind) for (r, kind), v in zip(planted, planted_verdicts, strict=True) if v is None]
    return {
        "planted": len(planted), "planted_dropped_share": sum(v is not None for v in planted_verdicts) / len(planted),
        "by_kind": {kind: f"{dropped}/{total}" for kind, (dropped, total) in sorted(by_kind.items())},
        "real": len(real), "real_dropped": sum(v is not None for v in real_verdicts),
        "real_dropped_share": sum(v is not None for v in real_verdicts) / len(real),
        "missed_examples": [{"kind": kind, "query": r["query"][:160], "document": r["document"][:160]} for r, kind in missed[:3]],
    }


def write_eval_texts(path: Path, count: int, seed: int) -> None:
    """``count`` passages of 20 to 90 words as JSON lines (``text``), the evaluation set of parts 2 and 3: words drawn
    from a vocabulary of 100,000 made-up words by Zipf's law (frequency ~ 1/rank, as in English text), so the
    passages repeat common short phrases as real ones do and their 13-grams are distinct; none of them is in
    part 3's corpus."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    vocabulary = ["".join(rng.choice(letters, size=rng.integers(2, 10))) for _ in range(100_000)]
    weights = 1.0 / np.arange(1, len(vocabulary) + 1)
    weights /= weights.sum()
    lengths = rng.integers(20, 91, size=count)
    words = rng.choice(len(vocabulary), size=int(lengths.sum()), p=weights)
    with open(path, "w", encoding="utf-8") as f:
        start = 0
        for length in lengths.tolist():
            text = " ".join(vocabulary[w] for w in words[start : start + length]).capitalize() + "."
            start += length
            f.write(json.dumps({"text": text}) + "\n")


def index_at_scale(eval_file: Path, folder: Path) -> dict[str, Any]:
    """Part 2: build the index of ``eval_file`` into ``folder``; its build time and size."""
    config = parse_block(DecontaminateConfig, {"against": [{"path": str(eval_file), "format": "jsonl", "name": "generated"}]}, "benchmark")
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    index = build_index(config, str(folder))
    seconds = time.perf_counter() - started
    texts = index.sets[0]["texts"]
    in_memory = index.nbytes
    return {"texts": texts, "distinct_shingles": len(index.shared.fingerprints), "distinct_near_shingles": len(index.near.fingerprints) if index.near else 0,
            "build_s": round(seconds, 1),
            "index_bytes": in_memory, "bytes_per_text": round(in_memory / texts, 1),
            "launcher_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "launcher_peak_rss_before_mib": round(rss_before / 1024)}


def speed_beside_exact_dedup(corpus: Path, eval_file: Path, output: Path, records: int, workers: int) -> dict[str, Any]:
    """Part 3: one build with exact dedup and decontamination; each stage's worker seconds per record."""
    recipe = parse_recipe({
        "output": str(output),
        "sources": [{"dataset": "bench", "kind": "jsonl", "paths": [str(corpus / "*.jsonl.gz")],
                     "fields": {"query": "question", "document": "answer", "id": "id"}}],
        "filters": {"dedup": {"exact": "pair"},
                    "decontaminate": {"against": [{"path": str(eval_file), "format": "jsonl", "name": "generated"}]}},
        "shards": {"write_dropped": "none"},
    }, "benchmark")
    started = time.perf_counter()
    report = run_build(recipe, [f"--direct_num_workers={workers}"], overwrite=True)
    wall = time.perf_counter() - started
    entry = report["datasets"]["bench"]
    seconds = entry["stage_seconds"]
    exact, decontaminate = seconds.get("exact_dedup", 0.0), seconds.get("decontaminate", 0.0)
    return {"records": records, "wall_s": round(wall, 1), "balanced": entry["balanced"],
            "exact_dedup_us_per_record": round(exact / records * 1e6, 1), "decontaminate_us_per_record": round(decontaminate / records * 1e6, 1),
            "decontaminate_vs_exact_dedup": round(decontaminate / exact, 2) if exact else None,
            "decontaminate_dropped": sum(n for s in entry["stages"] if s["stage"] == "decontaminate" for n in s["dropped"].values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--planted", type=int, default=3000, help="planted pairs in part 1")
    parser.add_argument("--eval-texts", type=int, default=1_000_000, help="generated evaluation texts indexed in parts 2 and 3")
    parser.add_argument("--records", type=int, default=200_000, help="records built in part 3")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--work", type=Path, default=None, help="working folder (default: a temporary one)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="decontamination-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print("1. planted overlap in real pairs:", json.dumps(planted_check(args.planted), indent=2))
    eval_file = work / f"eval-zipf-{args.eval_texts}.jsonl"
    if not eval_file.exists():
        write_eval_texts(eval_file, args.eval_texts, seed=1)
    print("2. index at scale:", json.dumps(index_at_scale(eval_file, work / "index"), indent=2))
    corpus = work / f"corpus-{args.records}"
    write_corpus(corpus, args.records, seed=0)
    print("3. speed beside exact dedup:", json.dumps(speed_beside_exact_dedup(corpus, eval_file, work / "out", args.records, args.workers), indent=2))


if __name__ == "__main__":
    main()
