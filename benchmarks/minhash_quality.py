"""Near-duplicate detection quality: pairmill's MinHash LSH (with and without exact verification) against
datasketch's MinHashLSH in memory, on the same documents, at Jaccard threshold 0.8.

Corpora: a generated one (sentences from a small seeded grammar, with planted near-duplicates made by
word substitutions, insertions, deletions and truncations at graded strengths) and, when
../shared/realdata is there, Quora questions, Amazon Fashion review texts and AG News descriptions.

Ground truth is exact: every pair of documents that share at least one shingle (an inverted index over
5-word shingles, so no pair with Jaccard > 0 is missed) has its Jaccard computed; a document "is a
duplicate" when some other document reaches 0.8. Scores are precision, recall and F1 of that label.
The Beam stage itself is then run on each corpus and its drop decisions are scored against the exact
answer (all but the smallest id of each connected component of the >= 0.8 graph).

Usage: .venv/bin/python benchmarks/minhash_quality.py [--generated 4000] [--no-stage]
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from filters.minhash import MinHasher, band_hashes, jaccard, lsh_parameters, shingles  # noqa: E402
from schemas.recipe import MinHashConfig  # noqa: E402

THRESHOLD = 0.8
NGRAM = 5
NUM_PERM = 128

SUBJECTS = [
    "the barista", "my neighbour", "a small cafe", "the old machine", "our team", "this recipe", "the grinder", "every customer", "the roaster",
    "a new study",
]
VERBS = ["prefers", "recommends", "ruins", "improves", "needs", "ignores", "describes", "measures", "changes", "tests", "compares", "serves"]
OBJECTS = [
    "dark roast beans", "a finer grind", "fresh cold water", "the pour over method", "a longer brew time", "whole milk foam", "the paper filter",
    "a ceramic cup", "light roast from Ethiopia", "the burr setting", "a cleaner portafilter", "single origin beans",
]
TAILS = [
    "before the morning rush", "without any sugar", "for a stronger taste", "at a lower temperature", "every other week", "in most home kitchens",
    "after the first crack", "when the water is soft", "for reasons nobody explains", "despite the price",
]


def sentence(rng: random.Random) -> str:
    words = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(TAILS)}"
    return words[0].upper() + words[1:] + rng.choice([".", ".", ".", "!", "?"])


def generated_document(rng: random.Random, sentences: tuple[int, int]) -> str:
    return " ".join(sentence(rng) for _ in range(rng.randint(*sentences)))


def near_copy(text: str, rng: random.Random) -> str:
    """An edited copy: word substitutions, insertions, deletions or a truncation, at a random strength."""
    words = text.split()
    strength = rng.choice([0.0, 0.01, 0.02, 0.03, 0.05, 0.08, 0.12])
    edits = max(1, round(strength * len(words))) if strength else 0
    kind = rng.choice(["substitute", "insert", "delete", "truncate", "mixed"])
    for _ in range(edits):
        action = kind if kind != "mixed" else rng.choice(["substitute", "insert", "delete"])
        position = rng.randrange(len(words))
        if action == "substitute":
            words[position] = rng.choice(VERBS + TAILS[0].split())
        elif action == "insert":
            words.insert(position, rng.choice(["really", "also", "honestly", "still", "often"]))
        elif action == "delete" and len(words) > 1:
            del words[position]
    if kind == "truncate":
        words = words[: max(1, len(words) - round(len(words) * strength * 2))]
    return " ".join(words)


def generated_corpus(count: int, seed: int = 0) -> list[str]:
    """``count`` base documents of 2-8 sentences; about a third of them get one or two edited copies."""
    rng = random.Random(seed)
    documents = [generated_document(rng, (2, 8)) for _ in range(count)]
    copies = [near_copy(rng.choice(documents), rng) for _ in range(count // 2)]
    corpus = documents + copies
    rng.shuffle(corpus)
    return corpus


def real_corpora() -> dict[str, list[str]]:
    from mining_realdata import REALDATA, load_sources

    if not REALDATA.is_dir():
        return {}
    sources = load_sources(REALDATA)
    return {
        "quora questions": [text for r in sources["quora"] for text in (r["query"], r["document"])],
        "amazon reviewText": [r["document"] for r in sources["amazon"]],
        "ag_news descriptions": [r["document"] for r in sources["ag_news"]],
    }


def exact_duplicate_pairs(texts: list[str]) -> list[tuple[int, int]]:
    """Every pair with Jaccard >= THRESHOLD, found among all pairs that share a shingle."""
    sets = [set(shingles(t, NGRAM)) for t in texts]
    index: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(sets):
        for shingle in s:
            index[shingle].append(i)
    pairs = []
    for i, s in enumerate(sets):
        candidates = {j for shingle in s for j in index[shingle] if j > i}
        for j in candidates:
            shared = len(s & sets[j])
            if shared / (len(s) + len(sets[j]) - shared) >= THRESHOLD:
                pairs.append((i, j))
    return pairs


def scores(predicted: set[int], truth: set[int]) -> tuple[float, float, float]:
    hits = len(predicted & truth)
    precision = hits / len(predicted) if predicted else 1.0
    recall = hits / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def pairmill_duplicates(texts: list[str], verify: bool) -> set[int]:
    """Documents that share an LSH bucket with another one (whose exact Jaccard reaches 0.8, with verify)."""
    bands, rows = lsh_parameters(THRESHOLD, NUM_PERM, None, None, verify)
    sketches = MinHasher(NUM_PERM, 1, NGRAM).sketch(texts, fingerprints=verify)
    buckets: dict[int, list[int]] = defaultdict(list)
    for i, (hashes, empty) in enumerate(zip(band_hashes(sketches, bands, rows).tolist(), sketches.empty, strict=True)):
        for key in [] if empty else hashes:
            buckets[key].append(i)
    fingerprints = sketches.fingerprints  # taken exactly when verify
    found: set[int] = set()
    for members in buckets.values():
        for a in members:
            for b in members:
                if a < b and (fingerprints is None or jaccard(fingerprints[a], fingerprints[b]) >= THRESHOLD):
                    found.update((a, b))
    return found


def datasketch_duplicates(texts: list[str]) -> set[int]:
    from datasketch import MinHash, MinHashLSH

    shingled = [[s.encode("utf-8") for s in shingles(t, NGRAM)] for t in texts]
    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM)
    signatures = MinHash.bulk(shingled, num_perm=NUM_PERM)
    with lsh.insertion_session() as session:
        for i, (tokens, signature) in enumerate(zip(shingled, signatures, strict=True)):
            if tokens:
                session.insert(i, signature)
    return {i for i, (tokens, signature) in enumerate(zip(shingled, signatures, strict=True)) if tokens and set(lsh.query(signature)) - {i}}


def expected_drops(pairs: list[tuple[int, int]], count: int) -> set[int]:
    """All but the smallest index of each connected component of the exact duplicate graph."""
    parent = list(range(count))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in pairs:
        ra, rb = root(a), root(b)
        parent[max(ra, rb)] = min(ra, rb)
    return {i for i in range(count) if root(i) != i}


def stage_drops(texts: list[str], verify: bool) -> set[int]:
    """Run the Beam stage (FnApiRunner, in process) and return the indexes it dropped."""
    import apache_beam as beam

    from pipelines.near_dedup import NearDedup
    from schemas.record import new_record

    records = [new_record("bench", f"{i:07d}", "", text, file="generated", row=i) for i, text in enumerate(texts)]
    with tempfile.TemporaryDirectory() as folder:
        with beam.Pipeline(runner="FnApiRunner") as pipeline:
            output = pipeline | beam.Create(records) | NearDedup("bench", MinHashConfig(verify=verify))
            output.dropped | beam.Map(lambda d: d["record"]["id"].rsplit("/", 1)[1]) | beam.io.WriteToText(f"{folder}/dropped")
        return {int(line) for path in Path(folder).glob("dropped*") for line in path.read_text().split()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generated", type=int, default=4000, help="base documents in the generated corpus")
    parser.add_argument("--no-stage", action="store_true", help="skip running the Beam stage")
    args = parser.parse_args()
    corpora = {"generated": generated_corpus(args.generated), **real_corpora()}
    print(
        f"threshold {THRESHOLD}, {NGRAM}-word shingles, num_perm {NUM_PERM}, bands x rows "
        f"{lsh_parameters(THRESHOLD, NUM_PERM, None, None)} ({lsh_parameters(THRESHOLD, NUM_PERM, None, None, True)} with verify)"
    )
    header = f"{'corpus':<22} {'docs':>6} {'dups':>6}  {'method':<26} {'precision':>9} {'recall':>7} {'F1':>6}"
    print(header)
    for name, texts in corpora.items():
        started = time.perf_counter()
        pairs = exact_duplicate_pairs(texts)
        truth = {i for pair in pairs for i in pair}
        truth_seconds = time.perf_counter() - started
        methods = {
            "pairmill LSH": pairmill_duplicates(texts, verify=False),
            "pairmill LSH + verify": pairmill_duplicates(texts, verify=True),
            "datasketch MinHashLSH": datasketch_duplicates(texts),
        }
        for method, predicted in methods.items():
            p, r, f = scores(predicted, truth)
            print(f"{name:<22} {len(texts):>6} {len(truth):>6}  {method:<26} {p:>9.4f} {r:>7.4f} {f:>6.4f}")
        if not args.no_stage:
            drops = expected_drops(pairs, len(texts))
            for verify in (False, True):
                p, r, f = scores(stage_drops(texts, verify), drops)
                method = f"Beam stage drops{' + verify' if verify else ''}"
                print(f"{name:<22} {len(texts):>6} {len(drops):>6}  {method:<26} {p:>9.4f} {r:>7.4f} {f:>6.4f}")
        print(f"{'':<22} (ground truth: {len(pairs)} pairs >= {THRESHOLD} in {truth_seconds:.1f}s)")


if __name__ == "__main__":
    main()
