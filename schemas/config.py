"""Typed configuration blocks: a dataclass declares a block's keys, types and defaults; ``parse_block`` checks it.

Every error is a ``ConfigError`` whose one-line message names the file, the key and the bad value.
"""
from __future__ import annotations

import dataclasses
import re
import types
import typing
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A user mistake in a recipe or config file; the message is one line that says what and where."""


def describe_type(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(describe_type(a) for a in get_args(tp))
    if origin is list:
        return f"list of {describe_type(get_args(tp)[0])}"
    if origin is dict:
        return f"mapping of {describe_type(get_args(tp)[1])}"
    if dataclasses.is_dataclass(tp):
        return "mapping"
    return {type(None): "null", str: "string", int: "integer", float: "number", bool: "true/false"}.get(tp, str(tp))


def _convert(value: Any, tp: Any, where: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(tp) if a is not type(None)]
        if value is None and len(options) < len(get_args(tp)):
            return None
        if len(options) == 1:
            return _convert(value, options[0], where)
        for option in options:
            try:
                return _convert(value, option, where)
            except ConfigError:
                continue
        raise ConfigError(f"{where}: expected {describe_type(tp)}, got {value!r}")
    if tp is type(None):
        if value is None:
            return None
        raise ConfigError(f"{where}: expected null, got {value!r}")
    if origin is Literal:
        if value in get_args(tp):
            return value
        raise ConfigError(f"{where}: expected one of {describe_type(tp)}, got {value!r}")
    if origin is list:
        if isinstance(value, str) or not isinstance(value, list):
            raise ConfigError(f"{where}: expected {describe_type(tp)}, got {value!r}")
        (item_type,) = get_args(tp)
        return [_convert(v, item_type, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected {describe_type(tp)}, got {value!r}")
        _, value_type = get_args(tp)
        return {str(k): _convert(v, value_type, f"{where}.{k}") for k, v in value.items()}
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return parse_block(tp, value, where)
    if tp is bool and isinstance(value, bool):
        return value
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is str and isinstance(value, str):
        return value
    raise ConfigError(f"{where}: expected {describe_type(tp)}, got {value!r}")


def parse_block(cls: type[T], raw: Any, where: str) -> T:
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys and values of the wrong type.

    ``where`` is the position for messages, e.g. ``recipes/demo.yaml: filters.clean``. A field's
    ``metadata["check"]`` (a callable returning an error string or None) adds a value rule; a block's own
    ``check_block()`` method (same answer) a rule across its keys.
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping, got {raw!r}")
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"parse_block needs a dataclass, got {cls!r}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = get_type_hints(cls)
    for key in raw:
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise ConfigError(f"{where}: unknown key {key!r} (known keys: {known})")
    values: dict[str, Any] = {}
    for name, field in fields.items():
        if name not in raw:
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{where}: missing required key {name!r}")
            continue
        value = _convert(raw[name], hints[name], f"{where}.{name}")
        check = field.metadata.get("check")
        problem = check(value) if check else None
        if problem:
            raise ConfigError(f"{where}.{name}: {problem}, got {raw[name]!r}")
        values[name] = value
    block = cls(**values)
    check_block = getattr(block, "check_block", None)
    problem = check_block() if check_block else None
    if problem:
        raise ConfigError(f"{where}: {problem}")
    return block


def positive(value: Any) -> str | None:
    if isinstance(value, (int, float)) and value <= 0:
        return "must be greater than 0"
    return None


def non_negative(value: Any) -> str | None:
    if isinstance(value, (int, float)) and value < 0:
        return "must be 0 or more"
    return None


def fraction(value: Any) -> str | None:
    if isinstance(value, (int, float)) and not 0.0 <= value <= 1.0:
        return "must be between 0 and 1"
    return None


def setting(default: Any = dataclasses.MISSING, *, check: typing.Callable[[Any], str | None] | None = None, help: str = "") -> Any:
    """A dataclass field with a value rule and a help line (``help`` is what the README documents)."""
    metadata = {"check": check, "help": help}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def to_plain(block: Any) -> Any:
    """A config block back as plain YAML/JSON values."""
    if dataclasses.is_dataclass(block) and not isinstance(block, type):
        return dataclasses.asdict(block)
    return block


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads ``2e-5`` as a string; a learning rate or threshold written that way should be a number."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)[eE][-+]?\d+$"),
    list("-+0123456789."),
)


def parse_yaml(text: str, path: str, what: str) -> Any:
    """The content of a YAML document read from ``path``; bad YAML is a ConfigError naming the file and line.

    schemas/ does no IO: the caller reads the file (``storage.configs`` reads it on any Beam filesystem).
    """
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
        raise ConfigError(f"{where}: not valid YAML ({getattr(err, 'problem', None) or err})") from None
