"""Build frozen dataclasses from TOML/JSON data, with errors that name the key and the fix.

One validator for every configuration source: the kiosk's TOML file, the agent's, and configuration
pushed by the center over MQTT. Supported field types: str, int, float, bool, Literal[...], Path,
nested dataclasses, ``list[T]``, ``tuple[T, ...]``, ``dict[str, T]`` and ``T | None``.
Per-field limits go in ``field(metadata={"min": .., "max": .., "pattern": ..})``.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from kiosk.errors import ConfigError

T = TypeVar("T")


def _describe(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in get_args(tp) if a is not type(None))
    if origin in (list, tuple):
        return f"a list of {_describe(get_args(tp)[0])}"
    if origin is dict:
        return f"a table of {_describe(get_args(tp)[1])}"
    if dataclasses.is_dataclass(tp):
        return "a table"
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false", Path: "a path"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _fail(path: str, expected: str, value: Any) -> ConfigError:
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return ConfigError(f"{path}: expected {expected}, got {shown}")


def _convert(tp: Any, value: Any, path: str, meta: typing.Mapping[str, Any]) -> Any:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        options = get_args(tp)
        if value is None and type(None) in options:
            return None
        candidates = [option for option in options if option is not type(None)]
        if len(candidates) == 1:
            # ``X | None``: X's own error names the deepest bad key (e.g. inside a nested table).
            return _convert(candidates[0], value, path, meta)
        for option in candidates:
            try:
                return _convert(option, value, path, meta)
            except ConfigError:
                continue
        raise _fail(path, _describe(tp), value)
    if origin is Literal:
        if value not in get_args(tp):
            raise _fail(path, _describe(tp), value)
        return value
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise _fail(path, _describe(tp), value)
        item_type = get_args(tp)[0]
        items = [_convert(item_type, v, f"{path}[{i}]", {}) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise _fail(path, _describe(tp), value)
        value_type = get_args(tp)[1]
        return {str(k): _convert(value_type, v, f"{path}.{k}", {}) for k, v in value.items()}
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return parse_dataclass(tp, value, path)
    if tp is bool:
        if not isinstance(value, bool):
            raise _fail(path, "true or false", value)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(path, "an integer", value)
        _check_range(path, value, meta)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _fail(path, "a number", value)
        _check_range(path, value, meta)
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise _fail(path, "a string", value)
        pattern = meta.get("pattern")
        if pattern and not re.fullmatch(pattern, value):
            raise _fail(path, meta.get("pattern_hint", f"text matching {pattern}"), value)
        return value
    if tp is Path:
        if not isinstance(value, str) or not value:
            raise _fail(path, "a path", value)
        return Path(value)
    raise TypeError(f"{path}: unsupported field type {tp!r}")  # a bug in a schema, not in the file


def _check_range(path: str, value: float, meta: typing.Mapping[str, Any]) -> None:
    low, high = meta.get("min"), meta.get("max")
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = (
            f"between {low} and {high}"
            if low is not None and high is not None
            else (f"at least {low}" if low is not None else f"at most {high}")
        )
        raise _fail(path, f"a number {bounds}", value)


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file as data, or ConfigError saying why it cannot be read (missing, not TOML)."""
    import tomllib

    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(f"configuration file {path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc


def parse_dataclass(cls: type[T], data: Any, path: str = "") -> T:
    """Return ``cls(**data)`` after checking every key and value; unknown keys are errors (typos)."""
    if not isinstance(data, dict):
        raise _fail(path or "(top level)", "a table", data)
    assert dataclasses.is_dataclass(cls)
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f"{path}.{unknown[0]}" if path else unknown[0]
        raise ConfigError(f"{where}: unknown key; expected one of: {', '.join(sorted(fields))}")
    kwargs: dict[str, Any] = {}
    for name, field in fields.items():
        key_path = f"{path}.{name}" if path else name
        if name not in data:
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{key_path}: missing; expected {_describe(hints[name])}")
            continue
        kwargs[name] = _convert(hints[name], data[name], key_path, field.metadata)
    try:
        return cls(**kwargs)
    except ValueError as exc:  # __post_init__ cross-field checks raise ValueError with the key in it
        raise ConfigError(f"{path or '(top level)'}: {exc}") from exc


def to_data(obj: Any) -> Any:
    """The inverse of parse_dataclass: plain dicts/lists/str, suitable for JSON and TOML."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_data(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, list | tuple):
        return [to_data(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_data(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj
