"""The demo corpus's text generator: sentences and documents about a topic, near-duplicate edits, word shingles."""
from __future__ import annotations

import html
import random
import re
from collections import defaultdict

from demo.tables import EDIT_WORDS, FOREIGN, OPENERS, TITLE_GROUPS, Topic

NEAR_JACCARD = (0.85, 0.95)
SHINGLE_WORDS = 5
MAX_UNPLANTED_JACCARD = 0.45  # generated documents of one topic stay below this similarity unless planted


def document_words(text: str) -> list[str]:
    """Lowercased word tokens of a text, after dropping HTML tags and unescaping entities."""
    return re.findall(r"\w+", html.unescape(re.sub(r"<[^>]+>", " ", text)).lower())


def shingles(text: str, n: int = SHINGLE_WORDS) -> set[tuple[str, ...]]:
    """The set of word n-grams of a text (see ``document_words``); a text shorter than n is one shingle."""
    words = document_words(text)
    return {tuple(words[i:i + n]) for i in range(max(1, len(words) - n + 1))}


def shingle_jaccard(a: str, b: str, n: int = SHINGLE_WORDS) -> float:
    """Jaccard similarity of the word n-gram shingle sets of two texts."""
    sa, sb = shingles(a, n), shingles(b, n)
    return len(sa & sb) / len(sa | sb)


def _too_close(a: set[tuple[str, ...]], b: set[tuple[str, ...]]) -> bool:
    shared = len(a & b)
    return shared >= MAX_UNPLANTED_JACCARD * (len(a) + len(b) - shared)


class TextWriter:
    """Sentences and documents about one topic, drawn from one seeded random stream."""

    def __init__(self, rng: random.Random, distinct: bool = True):
        """``distinct``: keep documents apart (see ``sentences``); off for streams that must not grow in memory."""
        self.rng = rng
        self.distinct = distinct
        self.foreign_used: set[tuple[str, ...]] = set()
        self.used_sentences: set[str] = set()
        self.topic_shingles: dict[str, list[set[tuple[str, ...]]]] = defaultdict(list)

    def slots(self, topic: Topic) -> dict[str, str]:
        """A random filling of a template's slots from the topic's words."""
        thing, thing2 = self.rng.sample(topic.things, 2)
        action, action2 = self.rng.sample(topic.actions, 2)
        return {"thing": thing, "thing2": thing2, "action": action, "action2": action2, "product": topic.name,
                "problem": self.rng.choice(topic.problems), "fact": self.rng.choice(topic.facts),
                "n": str(self.rng.randint(2, 12))}

    def sentence(self, template: str, slots: dict[str, str], opener: bool = False) -> str:
        """The template filled, capitalised, and with ``opener`` sometimes one of the OPENERS in front."""
        text = template.format(**slots)
        if opener and self.rng.random() < 0.2:
            text = self.rng.choice(OPENERS) + (text if text.startswith("I ") else text[0].lower() + text[1:])
        return text[0].upper() + text[1:]

    def sentences(self, templates: list[str], topic: Topic, count: int, intent: dict[str, str]) -> list[str]:
        """``count`` sentences; most share the intent's thing, action and problem so the document stays on it.

        Sentences already written are avoided while the templates offer others, and a draw that comes too close
        to an earlier document of the topic is redrawn: ordinary documents must not look like near duplicates.
        """
        earlier = self.topic_shingles[topic.name]
        for _ in range(50):
            picks = self.rng.sample(templates, min(count, len(templates)))
            picks += [self.rng.choice(templates) for _ in range(count - len(picks))]
            cores, out = [], []
            for template in picks:
                for _ in range(5):
                    slots = self.slots(topic)
                    if self.rng.random() < 0.6:
                        slots.update({key: intent[key] for key in ("thing", "action", "problem")})
                        if slots["thing2"] == slots["thing"]:
                            slots["thing2"] = next(t for t in topic.things if t != slots["thing"])
                    core = template.format(**slots)
                    if not self.distinct or core not in self.used_sentences:
                        break
                cores.append(core)
                out.append(self.sentence(template, slots, opener=True))
            if not self.distinct:
                return out
            made = shingles(" ".join(out))
            if not any(_too_close(made, other) for other in earlier):
                break
        self.used_sentences.update(cores)
        earlier.append(made)
        return out

    def paragraphs(self, sentences: list[str]) -> list[str]:
        """The sentences grouped into paragraphs of one to three."""
        out, i = [], 0
        while i < len(sentences):
            size = self.rng.randint(1, 3)
            out.append(" ".join(sentences[i:i + size]))
            i += size
        return out

    def foreign(self, lang: str, kind: str) -> str:
        """A sentence in ``lang`` of a kind of demo/data/foreign.txt ("question", "statement" or "short")."""
        return self.rng.choice(FOREIGN[lang][kind])

    def foreign_statements(self, lang: str, count: int) -> list[str]:
        """Statements in ``lang`` in an order no earlier call returned."""
        for _ in range(1000):
            made = tuple(self.rng.sample(FOREIGN[lang]["statement"], count))
            if made not in self.foreign_used:
                self.foreign_used.add(made)
                return list(made)
        raise RuntimeError(f"the {lang} sentences ran out of distinct documents")

    def title(self, topic: Topic, slots: dict[str, str], group: int | None = None) -> tuple[str, int]:
        """A question title from one of the TITLE_GROUPS (``group``, or a random one) and the group's index."""
        group = self.rng.randrange(len(TITLE_GROUPS)) if group is None else group
        return self.sentence(self.rng.choice(TITLE_GROUPS[group]), slots), group


def near_duplicate(rng: random.Random, paragraphs: list[str]) -> list[str]:
    """A copy with word edits and a truncated end, at a word 5-gram Jaccard inside NEAR_JACCARD."""
    low, high = NEAR_JACCARD
    target = rng.uniform(low, high)
    original = " ".join(paragraphs)
    original_shingles = shingles(original)
    words = [p.split(" ") for p in paragraphs]
    similarity, failures = 1.0, 0
    while similarity > target and failures < 50:
        trial = [list(p) for p in words]
        paragraph = trial[rng.randrange(len(trial))]
        op = rng.choice(("substitute", "insert", "delete", "truncate")) if similarity > target + 0.03 else "truncate"
        if op == "truncate":
            paragraph = trial[-1]
            paragraph.pop()
        elif op == "insert":
            paragraph.insert(rng.randrange(len(paragraph) + 1), rng.choice(EDIT_WORDS))
        elif op == "delete":
            paragraph.pop(rng.randrange(len(paragraph)))
        else:
            paragraph[rng.randrange(len(paragraph))] = rng.choice(EDIT_WORDS)
        trial = [p for p in trial if p]
        edited = shingles(" ".join(" ".join(p) for p in trial))
        score = len(edited & original_shingles) / len(edited | original_shingles)
        if score >= low:
            words, similarity, failures = trial, score, 0
        else:
            failures += 1
    if similarity > high:
        raise ValueError(f"document too short for a near duplicate: {len(document_words(original))} words")
    return [" ".join(p) for p in words]
