"""Writes docs/recipe.md, the reference of every recipe key, from the dataclasses that validate them.

``python -m schemas.reference > docs/recipe.md``; a test fails when the committed file is stale.
Types and defaults are written as a recipe writes them (YAML), nested blocks link to their own table,
and a block's intro is its class docstring.
"""
from __future__ import annotations

import dataclasses
import re
import types
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import yaml

from schemas import recipe, sources

# (heading, class); each block's intro is its class docstring.
BLOCKS: list[tuple[str, type]] = [
    ("filters (and sources[].filters)", recipe.FiltersConfig),
    ("filters.clean", recipe.CleanConfig),
    ("filters.language", recipe.LanguageConfig),
    ("filters.dedup", recipe.DedupConfig),
    ("filters.dedup.near", recipe.MinHashConfig),
    ("filters.decontaminate", recipe.DecontaminateConfig),
    ("filters.decontaminate.against[]", recipe.EvaluationSource),
    ("filters.consistency", recipe.ConsistencyConfig),
    ("teacher", recipe.TeacherConfig),
    ("filters.consistency.teacher", recipe.ConsistencyTeacherConfig),
    ("mining", recipe.MiningConfig),
    ("shards", recipe.ShardsConfig),
    ("sources[].prefixes", recipe.Prefixes),
    ("sources[].fields (generic kinds)", sources.FieldMap),
]


def anchor(heading: str) -> str:
    """The link target GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    return "#" + re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def _link(cls: type) -> str:
    heading = next(name for name, c in BLOCKS if c is cls)
    return f"[`{heading.split(' ')[0]}`]({anchor(heading)})"


def _markdown(text: str) -> str:
    """Docstring/help text as table-safe Markdown: ``code`` as `code`, pipes escaped."""
    return text.replace("``", "`").replace("|", "\\|")


def _yaml(value: Any) -> str:
    """A value as a recipe writes it (``true``, ``null``, ``[en]``)."""
    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True).strip()
    return text.removesuffix("...").strip()


def type_text(tp: Any) -> str:
    """A field's type in words, as the recipe's YAML sees it; nested blocks link to their table."""
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(f"`{_yaml(a)}`" for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(type_text(a) for a in get_args(tp))
    if origin is list:
        return f"list of {type_text(get_args(tp)[0])}"
    if origin is dict:
        return f"mapping of {type_text(get_args(tp)[1])}"
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return f"block ({_link(tp)})"
    return {type(None): "null", str: "string", int: "integer", float: "number", bool: "true/false"}.get(tp, getattr(tp, "__name__", str(tp)))


def _nested(tp: Any) -> type | None:
    """The block class a field holds (directly or as ``Block | None``), if any."""
    options = get_args(tp) if get_origin(tp) in (Union, types.UnionType) else (tp,)
    return next((a for a in options if isinstance(a, type) and dataclasses.is_dataclass(a)), None)


def default_text(field: dataclasses.Field) -> str:
    if field.default is not dataclasses.MISSING:
        return f"`{_yaml(field.default)}`"
    if field.default_factory is not dataclasses.MISSING:
        value: Any = field.default_factory()
        return "its keys' defaults" if dataclasses.is_dataclass(value) else f"`{_yaml(value)}`"
    return "required"


def meaning_text(field: dataclasses.Field, tp: Any) -> str:
    help_text = _markdown(field.metadata.get("help", ""))
    block = _nested(tp)
    return help_text or (f"its keys are listed in {_link(block)}" if block else "")


def own_doc(cls: type) -> str:
    """The first line of a class's own docstring ('' for the signature dataclasses put there)."""
    doc = (cls.__doc__ or "").strip()
    return "" if not doc or doc.startswith(cls.__name__ + "(") else _markdown(doc.splitlines()[0])


def block_table(name: str, cls: type) -> str:
    hints = get_type_hints(cls)
    lines = [f"### `{name}`", ""]
    intro = own_doc(cls)
    if intro:
        lines += [intro, ""]
    lines += ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    for field in dataclasses.fields(cls):
        if not field.init or field.name == "options":
            continue
        tp = hints[field.name]
        lines.append(f"| `{field.name}` | {type_text(tp)} | {default_text(field)} | {meaning_text(field, tp)} |")
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
