"""Writes docs/recipe.md, the reference of every recipe key, from the dataclasses that validate them.

``python -m schemas.reference > docs/recipe.md``; a test fails when the committed file is stale.
"""
from __future__ import annotations

import dataclasses
from typing import Any, get_type_hints

from schemas import recipe, sources
from schemas.config import describe_type

BLOCKS: list[tuple[str, type]] = [
    ("filters.clean", recipe.CleanConfig),
    ("filters.language", recipe.LanguageConfig),
    ("filters.dedup", recipe.DedupConfig),
    ("filters.dedup.near", recipe.MinHashConfig),
    ("filters.consistency", recipe.ConsistencyConfig),
    ("teacher (inside consistency and mining)", recipe.TeacherConfig),
    ("mining", recipe.MiningConfig),
    ("shards", recipe.ShardsConfig),
    ("sources[].prefixes", recipe.Prefixes),
    ("sources[].fields (generic kinds)", sources.FieldMap),
]


def _default(field: dataclasses.Field) -> str:
    if field.default is not dataclasses.MISSING:
        return repr(field.default)
    if field.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        value: Any = field.default_factory()  # type: ignore[misc]
        return "defaults" if dataclasses.is_dataclass(value) else repr(value)
    return "required"


def block_table(name: str, cls: type) -> str:
    hints = get_type_hints(cls)
    lines = [f"### `{name}`", "", "| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    for field in dataclasses.fields(cls):
        if not field.init or field.name == "options":
            continue
        meaning = field.metadata.get("help", "") or (cls.__doc__ or "").strip().splitlines()[0]
        kind = describe_type(hints[field.name]).replace("|", "\\|")
        lines.append(f"| `{field.name}` | {kind} | `{_default(field)}` | {meaning} |")
    return "\n".join(lines)


def reference() -> str:
    parts = [
        "# Recipe reference",
        "",
        "Generated from `schemas/` by `python -m schemas.reference > docs/recipe.md`; every key a recipe may hold.",
        "A block set to `null` or left out is off; `{}` turns it on with these defaults.",
        "",
    ]
    parts += [block_table(name, cls) + "\n" for name, cls in BLOCKS]
    parts.append("## Reader kinds\n")
    parts += [block_table(f"kind: {kind}", cls) + "\n" for kind, cls in sorted(sources.SOURCE_OPTIONS.items())]
    return "\n".join(parts)


if __name__ == "__main__":
    print(reference(), end="")
