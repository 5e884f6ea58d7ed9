"""The demo corpus's word tables, loaded from the package data in demo/data/: topics, templates, names, foreign text."""
from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import yaml


@dataclass(frozen=True)
class Topic:
    """The words a topic's texts are made of (demo/data/topics.txt)."""

    name: str
    subreddit: str
    tags: list[str]
    things: list[str]
    actions: list[str]
    problems: list[str]
    facts: list[str]


def _data_text(name: str) -> str:
    return (files("demo") / "data" / name).read_text(encoding="utf-8")


def _table_lines(name: str) -> list[str]:
    """The lines of a table in demo/data/, without blank lines and # comments."""
    return [line for line in _data_text(name).splitlines() if line.strip() and not line.startswith("#")]


def _parse_topics(lines: list[str]) -> dict[str, list[Topic]]:
    blocks: dict[str, list[str]] = {}
    for line in lines:
        if line.startswith("["):
            domain = line.strip("[]")
            blocks[domain] = []
        elif line.startswith(" "):
            blocks[domain][-1] += " | " + line.strip()
        else:
            blocks[domain].append(line)
    topics = {}
    for domain, rows in blocks.items():
        fields = [[part.strip() for part in row.split("|")] for row in rows]
        topics[domain] = [Topic(name, sub, *([item.strip() for item in part.split(",")] for part in rest))
                          for name, sub, *rest in fields]
    return topics


def _parse_foreign(lines: list[str]) -> dict[str, dict[str, list[str]]]:
    kinds = {"?": "question", "-": "statement", "!": "short"}
    out: dict[str, dict[str, list[str]]] = {}
    for line in lines:
        if line.startswith("["):
            lang = line.strip("[]")
            out[lang] = {kind: [] for kind in kinds.values()}
        else:
            out[lang][kinds[line[0]]].append(line[2:])
    return out


def _parse_events(lines: list[str]) -> dict[str, tuple[list[str], list[str]]]:
    events: dict[str, tuple[list[str], list[str]]] = {}
    for line in lines:
        if not line.startswith(" "):
            events[line] = ([], [])
        elif line.strip().startswith("= "):
            events[list(events)[-1]][1].append(line.strip()[2:])
        else:
            events[list(events)[-1]][0].append(line.strip())
    return events


# Topics per domain ("cooking", "cycling", "products", "general").
TOPICS = _parse_topics(_table_lines("topics.txt"))
# Language -> "question" / "statement" / "short" -> real sentences in that language.
FOREIGN = _parse_foreign(_table_lines("foreign.txt"))
# News event -> (article sentences, highlights).
EVENTS = _parse_events(_table_lines("news_events.txt"))

_TEMPLATES: dict[str, Any] = yaml.safe_load(_data_text("templates.yaml"))
TITLE_GROUPS: list[list[str]] = _TEMPLATES["title_groups"]
REDDIT_TITLES: list[str] = _TEMPLATES["reddit_titles"]
QUESTION_BODY: list[str] = _TEMPLATES["question_body"]
ANSWER: list[str] = _TEMPLATES["answer"]
REVIEW_GOOD: list[str] = _TEMPLATES["review_good"]
REVIEW_BAD: list[str] = _TEMPLATES["review_bad"]
REVIEW_TITLE_GOOD: list[str] = _TEMPLATES["review_title_good"]
REVIEW_TITLE_BAD: list[str] = _TEMPLATES["review_title_bad"]
OPENERS: list[str] = _TEMPLATES["openers"]
NEWS_FILLERS: list[str] = _TEMPLATES["news_fillers"]
EDIT_WORDS: list[str] = _TEMPLATES["edit_words"]

_NAMES: dict[str, Any] = yaml.safe_load(_data_text("names.yaml"))
FIRST_NAMES: list[str] = _NAMES["first_names"]
LAST_NAMES: list[str] = _NAMES["last_names"]
CITIES: list[tuple[str, str]] = [(city, country) for city, country in _NAMES["cities"]]
DAYS: list[str] = _NAMES["days"]
