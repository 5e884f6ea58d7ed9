"""The Quora question pairs file of the demo corpus (quora_duplicate_questions.tsv, tab-separated as published)."""
from __future__ import annotations

import csv
import io
import random
from typing import Any

from demo.formats.common import Written
from demo.tables import TITLE_GROUPS, TOPICS, Topic
from demo.text import TextWriter
from demo.truth import LANGUAGES, View, plan

FILE = "quora/quora_duplicate_questions.tsv"


def generate(rng: random.Random, n: int) -> Written:
    """The TSV of ``n`` question pairs (half of them duplicates) and the planted copies, with its ground truth."""
    w = TextWriter(rng)
    topics = [topic for domain in TOPICS.values() for topic in domain]
    view = View(FILE, "quora", "duplicates",
                notes={"near_duplicates_note": "questions are too short for word 5-gram near duplicates"})
    seen: set[tuple[str, str]] = set()

    def question_pair(topic: Topic, other: Topic | None, lang: str | None = None) -> tuple[str, str]:
        """Two questions: paraphrases from one title group, or ``other``'s question, or a question in ``lang``."""
        for _ in range(100):
            slots = w.slots(topic)
            first, second = rng.sample(rng.choice(TITLE_GROUPS), 2)
            if lang:
                question = w.foreign(lang, "question")
                pair = (question, question + " " + w.foreign(lang, "statement"))
            else:
                pair = (w.sentence(first, slots),
                        w.sentence(second, slots) if other is None else w.title(other, w.slots(other))[0])
            if pair not in seen and pair[0] != pair[1]:
                seen.add(pair)
                return pair
        raise RuntimeError("the question templates ran out of distinct pairs")

    items: list[dict[str, Any]] = []
    copies = []
    langs = iter(LANGUAGES * n)
    positives = n // 2
    for kind in plan(rng, positives, near=False) + ["negative"] * (n - positives):
        topic, t = rng.choice(topics), rng.random()
        other = rng.choice([x for x in topics if x is not topic])
        item: dict[str, Any] = {"t": t, "is_duplicate": 1}
        if kind == "non_english":
            lang = next(langs)
            item["pair"] = question_pair(topic, None, lang)
            view.plant("non_english", item, lang)
        elif kind == "mismatched":
            item["pair"] = question_pair(topic, other)
            view.plant("mismatched", item, {"query_topic": topic.name, "document_topic": other.name})
        elif kind == "negative":
            unrelated = other if rng.random() < 0.3 else rng.choice([x for x in topics if x.subreddit == topic.subreddit])
            item["pair"], item["is_duplicate"] = question_pair(topic, unrelated), 0
        else:
            item["pair"] = question_pair(topic, None)
            if kind == "exact_source":
                copies.append(item)
        items.append(item)
    for original in copies:
        copy = {"t": original["t"] + rng.uniform(0, 1 - original["t"]), "pair": original["pair"], "is_duplicate": 1}
        view.plant("exact_duplicates", copy, original)
        items.append(copy)
    items.sort(key=lambda item: item["t"])
    qids: dict[str, int] = {}
    rows: list[list[Any]] = [["id", "qid1", "qid2", "question1", "question2", "is_duplicate"]]
    for number, item in enumerate(items):
        item["id"] = number
        q1, q2 = item["pair"]
        rows.append([number, qids.setdefault(q1, len(qids) + 1), qids.setdefault(q2, len(qids) + 1), q1, q2,
                     item["is_duplicate"]])
    view.pairs = sum(item["is_duplicate"] for item in items)
    tsv = io.StringIO()
    csv.writer(tsv, dialect="excel-tab", lineterminator="\n").writerows(rows)
    return {FILE: (tsv.getvalue().encode(), len(rows) - 1)}, {view.file: view.as_json(lambda item: str(item["id"]))}

