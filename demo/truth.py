"""The demo corpus's ground truth: which faults are planted where, and how a build's filters score against it."""
from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from demo.recipe import DEMO_SOURCES
from demo.text import NEAR_JACCARD, SHINGLE_WORDS, shingle_jaccard
from schemas.stages import DEDUP_STAGES
from storage.builds import iter_jsonl_zst, iter_records, side_folder
from storage.files import join, match

PLANT_RATES = {"exact_source": 0.05, "near_source": 0.05, "non_english": 0.05, "mismatched": 0.08}
LANGUAGES = ("fr", "de", "es")  # of the planted non-English records, in turn
PLANTED = ("exact_duplicates", "near_duplicates", "non_english", "mismatched")


def plan(rng: random.Random, n: int, near: bool = True) -> list[str]:
    """Kinds of n base items: clean, the source of an exact or near copy, non-English, or mismatched."""
    kinds = [kind for kind, rate in PLANT_RATES.items() if near or kind != "near_source"
             for _ in range(max(1, round(n * rate)))]
    kinds += ["clean"] * (n - len(kinds))
    rng.shuffle(kinds)
    return kinds


@dataclass
class View:
    """Ground truth of one source view: a file read in one pairing mode."""

    file: str
    kind: str
    mode: str
    pairs: int = 0
    entries: list[tuple[str, Any, Any]] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)

    def plant(self, category: str, item: Any, value: Any) -> None:
        """Record ``item`` as a planted fault of ``category`` (one of PLANTED), with what to know about it."""
        self.entries.append((category, item, value))

    def near(self, item: Any, original: Any, document: str, original_document: str) -> None:
        """Record ``item`` as a near duplicate of ``original``, with the Jaccard of their documents."""
        self.plant("near_duplicates", item, (original, round(shingle_jaccard(document, original_document), 4)))

    def as_json(self, key: Callable[[Any], str]) -> dict[str, Any]:
        """The view as ground_truth.json holds it, items named by their natural ``key``."""
        out: dict[str, Any] = {"file": self.file, "kind": self.kind, "mode": self.mode, "pairs": self.pairs,
                               **{category: {} for category in PLANTED}}
        for category, item, value in self.entries:
            if category == "exact_duplicates":
                value = key(value)
            elif category == "near_duplicates":
                value = {"original": key(value[0]), "jaccard": value[1]}
            out[category][key(item)] = value
        return {**out, **self.notes}


def ground_truth(seed: int, scale: float, sources: dict[str, Any], files: dict[str, dict[str, int]]) -> dict[str, Any]:
    """The ground_truth.json document: every source view's planted faults and every file's row count."""
    return {"seed": seed, "scale": scale, "near_duplicate_jaccard": list(NEAR_JACCARD),
            "jaccard": f"word {SHINGLE_WORDS}-gram shingle sets of the document text, lowercased \\w+ words "
                       "after removing HTML tags and unescaping entities",
            "sources": sources, "files": files}


def record_fates(output: Path, dataset: str) -> dict[str, str]:
    """Every record id of a built dataset -> 'kept' or the stage that dropped it."""
    fates = {record["id"]: "kept" for record in iter_records(str(output / dataset))}
    for path in match(join(side_folder(str(output), "dropped", dataset), "dropped-*.jsonl.zst")):
        for item in iter_jsonl_zst(path):
            fates[item["record"]["id"]] = item["stage"]
    return fates


def score_against_truth(output: Path, truth: dict[str, Any]) -> dict[str, dict[str, int]]:
    """How many planted faults the filters caught, and how many clean records they kept."""
    caught: dict[str, Counter[str]] = {kind: Counter() for kind in (*PLANTED, "clean")}
    for source, views in DEMO_SOURCES:
        dataset = source["dataset"]
        fates = record_fates(output, dataset)
        for view in views:
            planted = truth["sources"][view]
            faulty: set[str] = set()
            for kind in ("exact_duplicates", "near_duplicates"):
                for key, original in planted[kind].items():
                    original = original["original"] if isinstance(original, dict) else original
                    pair = [fates.get(f"{dataset}/{key}"), fates.get(f"{dataset}/{original}")]
                    caught[kind]["planted"] += 1
                    # Caught: one copy removed as a duplicate and the other not (whatever later stages did to it).
                    caught[kind]["caught"] += sum(f in DEDUP_STAGES for f in pair) == 1
                    faulty.update((key, original))
            for kind, stage in (("non_english", "language"), ("mismatched", "consistency")):
                for key in planted[kind]:
                    caught[kind]["planted"] += 1
                    caught[kind]["caught"] += fates.get(f"{dataset}/{key}") == stage
                    faulty.add(key)
            clean = [fate for record_id, fate in fates.items() if record_id.split("/", 1)[1] not in faulty]
            caught["clean"]["planted"] += len(clean)
            caught["clean"]["caught"] += clean.count("kept")
    return {kind: dict(counts) for kind, counts in caught.items()}


def format_truth(scores: dict[str, dict[str, int]]) -> str:
    """The scores as a table, one line per kind of fault: caught / planted."""
    names = {
        "exact_duplicates": "planted exact duplicates removed",
        "near_duplicates": "planted near duplicates removed",
        "non_english": "planted non-English records dropped by the language filter",
        "mismatched": "planted mismatched pairs dropped by the consistency filter",
        "clean": "clean records kept",
    }
    return "\n".join(f"  {names[k]:<58} {v.get('caught', 0):>5} / {v.get('planted', 0)}" for k, v in scores.items())
