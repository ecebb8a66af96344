"""Build frozen dataclasses from JSON/TOML data, with errors that name the key and the fix.

One validator for every source of structured data: the kiosk's TOML file, the agent's, configuration
pushed by the center, and every MQTT message of the contract. Supported field types: str, int,
float, bool, Literal[...], Path, nested dataclasses, ``list[T]``, ``tuple[T, ...]``, ``dict[str, T]``,
``T | None`` and ``Any`` (an opaque JSON value, still bounded in size by the message it came in).

Per-field limits go in ``field(metadata={...})``: ``min``/``max`` (numbers), ``pattern`` and
``pattern_hint`` (strings), ``max_len`` (strings; default ``DEFAULT_MAX_LEN``), ``text`` (free text a
person wrote: control and format characters refused, line breaks allowed), ``time`` (ISO 8601 with a
zone), ``max_items`` (lists and tables; default ``DEFAULT_MAX_ITEMS``). Anything else a value can be
is refused with ``SchemaError``: no other exception escapes for bad data.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
import unicodedata
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from contract.errors import SchemaError

T = TypeVar("T")

#: longest string accepted where a field sets no ``max_len``
DEFAULT_MAX_LEN = 4096
#: most items in a list or table where a field sets no ``max_items``
DEFAULT_MAX_ITEMS = 1000

_HINTS_CACHE: dict[type, dict[str, Any]] = {}
_FIELDS_CACHE: dict[type, dict[str, dataclasses.Field[Any]]] = {}


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


def _fail(path: str, expected: str, value: Any) -> SchemaError:
    try:
        shown = repr(value)
    except Exception:  # a value whose repr fails is shown by its type only
        shown = f"<{type(value).__name__}>"
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return SchemaError(f"{path}: expected {expected}, got {shown}")


def unsafe_characters(text: str, *, allow_newlines: bool = True) -> list[str]:
    """Control and format characters of ``text`` (Unicode Cc and Cf), as ``U+XXXX`` names.

    Line breaks and tabs are allowed where ``allow_newlines``: a notice may have two lines.
    """
    allowed = {"\n", "\t", "\r"} if allow_newlines else set()
    found = []
    for char in text:
        if char in allowed:
            continue
        if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn") or char in "\u2028\u2029":
            found.append(f"U+{ord(char):04X}")
    return found


def _hints(cls: type) -> dict[str, Any]:
    hints = _HINTS_CACHE.get(cls)
    if hints is None:
        hints = _HINTS_CACHE[cls] = get_type_hints(cls)
    return hints


def _init_fields(cls: type) -> dict[str, dataclasses.Field[Any]]:
    found = _FIELDS_CACHE.get(cls)
    if found is None:
        found = _FIELDS_CACHE[cls] = {f.name: f for f in dataclasses.fields(cls) if f.init}
    return found


def _convert(tp: Any, value: Any, path: str, meta: typing.Mapping[str, Any], lenient: bool) -> Any:
    # the plain types first: most fields are, and an identity test costs less than get_origin
    if tp is str:
        return _string(value, path, meta)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(path, "an integer", value)
        _check_range(path, value, meta)
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise _fail(path, "true or false", value)
        return value
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        options = get_args(tp)
        if value is None and type(None) in options:
            return None
        candidates = [option for option in options if option is not type(None)]
        if len(candidates) == 1:
            # ``X | None``: X's own error names the deepest bad key (e.g. inside a nested table).
            return _convert(candidates[0], value, path, meta, lenient)
        for option in candidates:
            try:
                return _convert(option, value, path, meta, lenient)
            except SchemaError:
                continue
        raise _fail(path, _describe(tp), value)
    if origin is Literal:
        if type(value) not in (str, int, bool) or value not in get_args(tp):
            raise _fail(path, _describe(tp), value)
        return value
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise _fail(path, _describe(tp), value)
        limit = meta.get("max_items", DEFAULT_MAX_ITEMS)
        if len(value) > limit:
            raise SchemaError(f"{path}: at most {limit} items, got {len(value)}")
        item_type = get_args(tp)[0]
        items = [_convert(item_type, v, f"{path}[{i}]", {}, lenient) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise _fail(path, _describe(tp), value)
        limit = meta.get("max_items", DEFAULT_MAX_ITEMS)
        if len(value) > limit:
            raise SchemaError(f"{path}: at most {limit} entries, got {len(value)}")
        key_meta = {"pattern": meta["key_pattern"]} if "key_pattern" in meta else {"max_len": 64}
        value_type = get_args(tp)[1]
        out = {}
        for k, v in value.items():
            key = _convert(str, k, f"{path} key", key_meta, lenient)
            out[key] = _convert(value_type, v, f"{path}.{k}", {}, lenient)
        return out
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return parse_dataclass(tp, value, path, lenient=lenient)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise _fail(path, "a number", value)
        _check_range(path, value, meta)
        return float(value)
    if tp is Path:
        if not isinstance(value, str) or not value or "\x00" in value or len(value) > 4096:
            raise _fail(path, "a path", value)
        return Path(value)
    raise TypeError(f"{path}: unsupported field type {tp!r}")  # a bug in a schema, not in the data


def _string(value: Any, path: str, meta: typing.Mapping[str, Any]) -> str:
    if not isinstance(value, str):
        raise _fail(path, "a string", value)
    limit = meta.get("max_len", DEFAULT_MAX_LEN)
    if len(value) > limit:
        raise SchemaError(f"{path}: at most {limit} characters, got {len(value)}")
    pattern = meta.get("pattern")
    if pattern and not re.fullmatch(pattern, value):
        raise _fail(path, meta.get("pattern_hint", f"text matching {pattern}"), value)
    if meta.get("text"):
        bad = unsafe_characters(value)
        if bad:
            raise SchemaError(f"{path}: control or format characters are not allowed ({', '.join(bad[:3])})")
    if meta.get("time"):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise _fail(path, "an ISO 8601 time", value) from None
        if moment.tzinfo is None:
            raise SchemaError(f"{path}: the time needs a zone (UTC: ...Z or +00:00)")
    return value


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
    """A TOML file as data, or SchemaError saying why it cannot be read (missing, not TOML)."""
    import tomllib

    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as exc:
        raise SchemaError(f"configuration file {path} does not exist") from exc
    except OSError as exc:
        raise SchemaError(f"configuration file {path} cannot be read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SchemaError(f"{path}: not valid TOML: {exc}") from exc


def parse_dataclass(cls: type[T], data: Any, path: str = "", *, lenient: bool = False) -> T:
    """Return ``cls(**data)`` after checking every key and value.

    Unknown keys are errors (typos in a file, or an argument the center did not mean), unless
    ``lenient``: a report from a newer kiosk may carry fields added in a later minor version.
    """
    if not isinstance(data, dict):
        raise _fail(path or "(top level)", "a table", data)
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    hints = _hints(cls)
    fields = _init_fields(cls)
    if not lenient:
        unknown = sorted(str(k) for k in set(data) - set(fields))
        if unknown:
            where = f"{path}.{unknown[0]}" if path else unknown[0]
            raise SchemaError(f"{where}: unknown key; expected one of: {', '.join(sorted(fields))}")
    kwargs: dict[str, Any] = {}
    for name, field in fields.items():
        key_path = f"{path}.{name}" if path else name
        if name not in data:
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                raise SchemaError(f"{key_path}: missing; expected {_describe(hints[name])}")
            continue
        kwargs[name] = _convert(hints[name], data[name], key_path, field.metadata, lenient)
    try:
        return cls(**kwargs)
    except ValueError as exc:  # __post_init__ cross-field checks name the key themselves
        raise SchemaError(f"{path or '(top level)'}: {exc}") from exc


def to_data(obj: Any) -> Any:
    """The inverse of parse_dataclass: plain dicts/lists/str, suitable for JSON and TOML.

    In a dataclass that sets ``OMIT_NONE = True``, an optional field (default None) that is None is
    left out: absent and null mean the same to the parser, and a part of the heartbeat sent every 30 s
    by 10,000 kiosks should not carry empty keys. Elsewhere null stays explicit.
    """
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        omit = getattr(obj, "OMIT_NONE", False)
        return {
            f.name: to_data(value)
            for f in dataclasses.fields(obj)
            if (value := getattr(obj, f.name)) is not None or not omit or f.default is not None
        }
    if isinstance(obj, list | tuple):
        return [to_data(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_data(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj
