"""Real pairs for the teacher, consistency and mining benchmarks, read straight from ../shared/realdata.

Quora duplicates (question1 -> question2 where is_duplicate = 1), Amazon Fashion reviews (summary ->
reviewText) and AG News (title -> description), parsed with the standard library only.
"""
from __future__ import annotations

import csv
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from schemas.record import PairRecord, new_record  # noqa: E402

REALDATA = ROOT.parent / "shared" / "realdata"
QUORA = "quora/quora_duplicate_questions_first2000.tsv"
AMAZON = "amazon_reviews/AMAZON_FASHION_5.json"
AG_NEWS = "news/ag_news_test.csv"


def quora_pairs(root: Path) -> list[PairRecord]:
    with open(root / QUORA, encoding="utf-8", newline="") as f:
        return [
            new_record("quora", row["id"], row["question1"], row["question2"], QUORA, i)
            for i, row in enumerate(csv.DictReader(f, delimiter="\t"))
            if row["is_duplicate"] == "1" and row["question1"].strip() and row["question2"].strip()
        ]


def amazon_pairs(root: Path) -> list[PairRecord]:
    records = []
    with open(root / AMAZON, encoding="utf-8") as f:
        for i, line in enumerate(f):
            review = json.loads(line)
            summary, text = review.get("summary", "").strip(), review.get("reviewText", "").strip()
            if summary and text:
                records.append(new_record("amazon", str(i), summary, text, AMAZON, i))
    return records


def ag_news_pairs(root: Path) -> list[PairRecord]:
    with open(root / AG_NEWS, encoding="utf-8", newline="") as f:
        return [
            new_record("ag_news", str(i), row["title"], row["description"], AG_NEWS, i)
            for i, row in enumerate(csv.DictReader(f))
            if row["title"].strip() and row["description"].strip()
        ]


def load_sources(root: Path = REALDATA) -> dict[str, list[PairRecord]]:
    """Pairs per source, in file order."""
    if not root.is_dir():
        raise SystemExit(f"{root}: the shared real-format sample data is not there")
    return {"quora": quora_pairs(root), "amazon": amazon_pairs(root), "ag_news": ag_news_pairs(root)}


def pair_pool(root: Path = REALDATA, generated: int = 20000, seed: int = 0) -> list[tuple[str, str]]:
    """(query, document) texts: the real sources where ../shared/realdata is there, else ``generated`` pairs
    written from the demo corpus's word tables (a GPU machine gets the checkout without ../shared)."""
    if root.is_dir():
        return [(r["query"], r["document"]) for records in load_sources(root).values() for r in records]
    from demo.tables import TOPICS

    topics = [t for group in TOPICS.values() for t in group]
    rng = random.Random(seed)
    pool = []
    for _ in range(generated):
        topic = rng.choice(topics)
        thing, other = rng.sample(topic.things, 2)
        query = f"how do I {rng.choice(topic.actions)} the {thing} of my {topic.name}?"
        sentences = [f"The {rng.choice(topic.things)} {rng.choice(topic.problems)}." for _ in range(rng.randint(2, 8))]
        document = f"To {rng.choice(topic.actions)} the {thing}, first check the {other}. " + " ".join(sentences)
        pool.append((query, document))
    return pool
