"""A seeded sample corpus in the sources' published formats, with planted defects whose ground truth is known.

``generate_demo_corpus`` writes, under one folder:

- ``stackexchange/<site>/Posts.xml`` and ``PostLinks.xml`` for two sites (the dump format, BOM included),
- ``quora/quora_duplicate_questions.tsv``,
- ``amazon/reviews_2018.json.gz`` (McAuley 2018 JSON lines, gzip as published) and
  ``amazon/reviews_2023.jsonl`` (2023 format),
- ``news/cnn_dailymail.jsonl`` (Hugging Face export: article, highlights, id),
- ``reddit/submissions.jsonl`` and ``reddit/comments.jsonl`` (Pushshift),
- ``ground_truth.json``: per source view (a file and the reader's pairing mode), the natural keys of the
  planted exact duplicates, near duplicates (with their word 5-gram Jaccard), non-English records and
  mismatched pairs, and how many pairs the reader should produce.

Text comes from topic vocabularies and sentence templates (demo/data/), so a query and its document share
words and a teacher's similarity means something. Everything is drawn from ``random.Random`` streams seeded
by ``seed`` and the source's name: the same seed writes byte-identical files.
"""
from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from demo.formats import amazon, news, quora, reddit, stackexchange
from demo.formats.common import Written
from demo.truth import ground_truth

# Base items per source at scale 1.0 (Stack Exchange: questions per site; Quora: rows, half of them duplicates).
BASE_COUNTS = {"stackexchange": 220, "quora": 800, "amazon_2018": 450, "amazon_2023": 450, "news": 300, "reddit": 480}


def generate_demo_corpus(folder: str | Path, seed: int = 0, scale: float = 1.0) -> dict[str, Any]:
    """Write the sample corpus and its ground_truth.json under ``folder``; return the ground truth."""
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    sources: dict[str, Any] = {}
    files: dict[str, dict[str, int]] = {}

    def count(source: str) -> int:
        return max(40, round(BASE_COUNTS[source] * scale))

    def rng(source: str) -> random.Random:
        return random.Random(f"{seed}:{source}")

    def add(written: Written) -> None:
        contents, views = written
        for name, (data, rows) in contents.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(data)
            files[name] = {"rows": rows}
        sources.update(views)

    for site in stackexchange.SITES:
        add(stackexchange.generate(rng(f"stackexchange/{site}"), site, count("stackexchange")))
    add(quora.generate(rng("quora"), count("quora")))
    add(amazon.generate_2018(rng("amazon_2018"), count("amazon_2018")))
    add(amazon.generate_2023(rng("amazon_2023"), count("amazon_2023")))
    add(news.generate(rng("news"), count("news")))
    add(reddit.generate(rng("reddit"), count("reddit")))
    truth = ground_truth(seed, scale, sources, files)
    (root / "ground_truth.json").write_text(json.dumps(truth, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return truth
