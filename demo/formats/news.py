"""The CNN/DailyMail file of the demo corpus, as in the Hugging Face export: JSON lines of article, highlights, id."""
from __future__ import annotations

import random
from typing import Any

from demo.formats.common import Written, jsonl
from demo.tables import CITIES, DAYS, EVENTS, FIRST_NAMES, LAST_NAMES, NEWS_FILLERS
from demo.text import TextWriter, near_duplicate
from demo.truth import LANGUAGES, View, plan

FILE = "news/cnn_dailymail.jsonl"


def generate(rng: random.Random, n: int) -> Written:
    """Articles whose highlights restate the article's own names, places and numbers."""
    w = TextWriter(rng)
    view = View(FILE, "news", "cnn_dailymail")

    def slots() -> dict[str, str]:
        city, country = rng.choice(CITIES)
        name, name2 = (f"{rng.choice(FIRST_NAMES)} {last}" for last in rng.sample(LAST_NAMES, 2))
        return {"city": city, "country": country, "name": name, "name2": name2, "day": rng.choice(DAYS),
                "count": str(rng.randint(12, 900)), "count2": str(rng.randint(40, 5000)), "year": str(rng.randint(1990, 2014)),
                "pct": str(rng.randint(3, 45)), "mag": f"{rng.uniform(5, 7.9):.1f}", "money": f"${rng.randint(2, 90)} million"}

    def story(event: str, filler_count: int) -> tuple[list[str], str]:
        facts, (sentences, highlights) = slots(), EVENTS[event]
        body = [w.sentence(s, facts) for s in sentences]
        for filler in rng.sample(NEWS_FILLERS, filler_count):
            body.insert(rng.randint(1, len(body)), w.sentence(filler, facts))
        body[0] = f"{facts['city'].upper()}, {facts['country']} (CNN) -- {body[0]}"
        return body, "\n".join(w.sentence(h, facts) + " ." for h in highlights)

    items, copies = [], []
    langs = iter(LANGUAGES * n)
    for kind in plan(rng, n):
        event = rng.choice(list(EVENTS))
        if kind == "non_english":
            lang = next(langs)
            item: dict[str, Any] = {"article": w.foreign_statements(lang, rng.randint(5, 7)),
                                    "highlights": "\n".join(s.rstrip(".") + " ." for s in w.foreign_statements(lang, 2))}
            view.plant("non_english", item, lang)
        else:
            article, highlights = story(event, rng.randint(7, 9) if kind == "near_source" else rng.randint(2, 6))
            item = {"article": article, "highlights": highlights}
            if kind == "mismatched":
                other = rng.choice([e for e in EVENTS if e != event])
                item["highlights"] = story(other, 0)[1]
                view.plant("mismatched", item, {"query_topic": other, "document_topic": event})
            elif kind != "clean":
                copies.append((kind, item))
        items.append(item)
    for kind, original in copies:
        copy: dict[str, Any] = {"highlights": original["highlights"]}
        if kind == "exact_source":
            copy["article"] = original["article"]
            view.plant("exact_duplicates", copy, original)
        else:
            copy["article"] = near_duplicate(rng, original["article"])
            view.near(copy, original, " ".join(copy["article"]), " ".join(original["article"]))
        position = next(i for i, item in enumerate(items) if item is original)
        items.insert(rng.randint(position + 1, len(items)), copy)
    rows = []
    for item in items:
        item["id"] = f"{rng.getrandbits(160):040x}"
        rows.append({"article": " ".join(item["article"]), "highlights": item["highlights"], "id": item["id"]})
    view.pairs = len(rows)
    return {FILE: (jsonl(rows), len(rows))}, {view.file: view.as_json(lambda item: item["id"])}
