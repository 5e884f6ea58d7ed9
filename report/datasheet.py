"""The decontamination datasheet of each built dataset: which evaluation sets its pairs were checked against,
how many pairs overlapped each set and on which side, and a few of them.

It is made from what the build knows: the evaluation sets and options (``report.json``'s ``decontamination``,
written by the launcher when it built the index), the funnel's ``overlap:<set>:<side>`` drop reasons
(``filters.decontaminate``) and the dropped rows written under ``OUT/_dropped``. ``report.json`` carries it
per dataset (``datasheets``), the report page shows it, and ``pairmill inspect`` prints it.
"""
from __future__ import annotations

from typing import Any

from filters.decontaminate import parse_overlap_reason
from schemas.record import DroppedRecord
from schemas.stages import DECONTAMINATE

SIDES = ("query", "document", "both")
EXAMPLE_CHARS = 200


def _clip(text: str) -> str:
    return text if len(text) <= EXAMPLE_CHARS else text[: EXAMPLE_CHARS - 1] + "…"


def datasheet(checked: dict[str, Any] | None, entry: dict[str, Any], dropped: dict[tuple[str, str], list[DroppedRecord]] | None) -> dict[str, Any]:
    """One dataset's datasheet. ``checked`` is the build's record of what the dataset was checked against (None:
    not decontaminated); ``entry`` its funnel entry; ``dropped`` a few dropped rows per (stage, reason)."""
    if checked is None:
        return {"checked": False, "against": [], "overlaps": {}, "examples": {}}
    overlaps: dict[str, dict[str, int]] = {s["name"]: {**dict.fromkeys(SIDES, 0), "pairs": 0} for s in checked["against"]}
    examples: dict[str, list[dict[str, str]]] = {}
    for stage in entry["stages"]:
        if stage["stage"] != DECONTAMINATE:
            continue
        for reason, count in stage["dropped"].items():
            parsed = parse_overlap_reason(reason)
            if parsed is None or parsed[0] not in overlaps:
                continue
            name, side = parsed
            overlaps[name][side] += count
            overlaps[name]["pairs"] += count
            for row in (dropped or {}).get((DECONTAMINATE, reason), []):
                record = row["record"]
                examples.setdefault(name, []).append({"id": record["id"], "side": side, "query": _clip(record["query"]),
                                                      "document": _clip(record["document"])})
    return {
        "checked": True,
        "against": [{key: s[key] for key in ("name", "path", "format", "texts")} for s in checked["against"]],
        "ngram": checked["ngram"],
        "sides": checked["sides"],
        "queries_only": checked["queries_only"],
        "overlaps": overlaps,
        "examples": examples,
    }


def format_datasheet(dataset: str, sheet: dict[str, Any]) -> str:
    """The datasheet as lines for the console (``pairmill inspect``)."""
    if not sheet["checked"]:
        return f"decontamination of {dataset}: not checked against any evaluation set"
    lines = [f"decontamination of {dataset}: {sheet['sides']} side(s) checked, shared n-grams of {sheet['ngram']} words"
             + (f", queries only against {', '.join(sheet['queries_only'])}" if sheet["queries_only"] else "")]
    for source in sheet["against"]:
        counts = sheet["overlaps"][source["name"]]
        sides = ", ".join(f"{side} {counts[side]:,}" for side in SIDES if counts[side])
        lines.append(f"  {source['name']} ({source['format']} {source['path']}, {source['texts']:,} texts): "
                     f"{counts['pairs']:,} pairs dropped" + (f" ({sides})" if sides else ""))
        for example in sheet["examples"].get(source["name"], [])[:3]:
            lines.append(f"    {example['id']} [{example['side']}] query: {example['query']!r} document: {example['document']!r}")
    return "\n".join(lines)
