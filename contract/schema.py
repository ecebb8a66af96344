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

Each dataclass is compiled on first use into a reader: one check per field with its type's dispatch,
limits and regex decided then, so reading a message runs only the checks themselves.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import unicodedata
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from contract.errors import SchemaError

T = TypeVar("T")

#: longest string accepted where a field sets no ``max_len``
DEFAULT_MAX_LEN = 4096
#: most items in a list or table where a field sets no ``max_items``
DEFAULT_MAX_ITEMS = 1000


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


#: a compiled check of one value: ``(value, path) -> the value to keep``, or SchemaError naming ``path``
_Converter = Callable[[Any, str], Any]

#: the compiled reader of each dataclass, one table per leniency (it reaches nested tables). A class is
#: compiled on first use; two threads compiling the same one at once is harmless (equal results).
_READERS: dict[bool, dict[type, _Converter]] = {False: {}, True: {}}
#: a key the data does not have (None is a value)
_ABSENT = object()
#: a field without a default: its key must be there
_REQUIRED = object()
#: longest key of a table whose field sets no ``key_pattern``
_KEY_MAX_LEN = 64
#: what a Literal option can match by type (a float never: ``1.0`` is not ``Literal[1]``)
_LITERAL_TYPES = (str, int, bool)


def _converter(tp: Any, meta: Mapping[str, Any], lenient: bool, compiling: set[type]) -> _Converter:
    """The check of one value of type ``tp``: the type's dispatch and the field's limits decided here,
    once, so that reading a value runs only the checks it needs. ``compiling``: the dataclasses whose
    readers are being compiled (a class that contains itself is looked up when a value comes)."""
    if tp is str:
        return _string_converter(meta)
    if tp is int:
        return _number_converter(meta, integer=True)
    if tp is bool:
        return _boolean
    origin = get_origin(tp)
    if tp is Any:
        return _opaque
    if origin in (Union, types.UnionType):
        return _union_converter(tp, meta, lenient, compiling)
    if origin is Literal:
        return _literal_converter(tp)
    if origin in (list, tuple):
        return _sequence_converter(tp, meta, lenient, compiling, as_tuple=origin is tuple)
    if origin is dict:
        return _table_converter(tp, meta, lenient, compiling)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _nested_converter(tp, lenient, compiling)
    if tp is float:
        return _number_converter(meta, integer=False)
    if tp is Path:
        return _path
    return _unsupported_converter(tp)


def _boolean(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(path, "true or false", value)
    return value


def _opaque(value: Any, path: str) -> Any:
    return value


def _path(value: Any, path: str) -> Path:
    if not isinstance(value, str) or not value or "\x00" in value or len(value) > 4096:
        raise _fail(path, "a path", value)
    return Path(value)


def _unsupported_converter(tp: Any) -> _Converter:
    def unsupported(value: Any, path: str) -> Any:
        raise TypeError(f"{path}: unsupported field type {tp!r}")  # a bug in a schema, not in the data

    return unsupported


def _string_converter(meta: Mapping[str, Any]) -> _Converter:
    limit = meta.get("max_len", DEFAULT_MAX_LEN)
    pattern = meta.get("pattern")
    matches = re.compile(pattern).fullmatch if pattern else None
    hint = meta.get("pattern_hint", f"text matching {pattern}")
    text = bool(meta.get("text"))
    time = bool(meta.get("time"))

    if matches is None and not text and not time:

        def plain(value: Any, path: str) -> str:
            if not isinstance(value, str):
                raise _fail(path, "a string", value)
            if len(value) > limit:
                raise SchemaError(f"{path}: at most {limit} characters, got {len(value)}")
            return value

        return plain

    def checked(value: Any, path: str) -> str:
        if not isinstance(value, str):
            raise _fail(path, "a string", value)
        if len(value) > limit:
            raise SchemaError(f"{path}: at most {limit} characters, got {len(value)}")
        if matches is not None and matches(value) is None:
            raise _fail(path, hint, value)
        if text:
            bad = unsafe_characters(value)
            if bad:
                shown = ", ".join(bad[:3])
                raise SchemaError(f"{path}: control or format characters are not allowed ({shown})")
        if time:
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                raise _fail(path, "an ISO 8601 time", value) from None
            if moment.tzinfo is None:
                raise SchemaError(f"{path}: the time needs a zone (UTC: ...Z or +00:00)")
        return value

    return checked


def _number_converter(meta: Mapping[str, Any], *, integer: bool) -> _Converter:
    low, high = meta.get("min"), meta.get("max")
    # infinite stand-ins for absent bounds: one comparison each way, exact for ints of any size
    floor = -math.inf if low is None else low
    ceiling = math.inf if high is None else high

    if integer:

        def whole(value: Any, path: str) -> int:
            if type(value) is not int and (isinstance(value, bool) or not isinstance(value, int)):
                raise _fail(path, "an integer", value)
            if value < floor or value > ceiling:
                raise _range_error(path, value, low, high)
            return value

        return whole

    def real(value: Any, path: str) -> float:
        if type(value) is not float and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise _fail(path, "a number", value)
        try:
            finite = math.isfinite(value)
        except OverflowError:  # an int no float can hold (JSON and TOML allow hundreds of digits)
            finite = False
        if not finite:
            raise _fail(path, "a number", value)
        if value < floor or value > ceiling:
            raise _range_error(path, value, low, high)
        return float(value)

    return real


def _range_error(path: str, value: float, low: Any, high: Any) -> SchemaError:
    bounds = (
        f"between {low} and {high}"
        if low is not None and high is not None
        else (f"at least {low}" if low is not None else f"at most {high}")
    )
    return _fail(path, f"a number {bounds}", value)


def _union_converter(tp: Any, meta: Mapping[str, Any], lenient: bool, compiling: set[type]) -> _Converter:
    options = get_args(tp)
    nullable = type(None) in options
    candidates = [_converter(o, meta, lenient, compiling) for o in options if o is not type(None)]
    if len(candidates) == 1:
        # ``X | None``: X's own error names the deepest bad key (e.g. inside a nested table).
        only = candidates[0]

        def optional(value: Any, path: str) -> Any:
            if value is None and nullable:
                return None
            return only(value, path)

        return optional

    def union(value: Any, path: str) -> Any:
        if value is None and nullable:
            return None
        for candidate in candidates:
            try:
                return candidate(value, path)
            except SchemaError:
                continue
        raise _fail(path, _describe(tp), value)

    return union


def _literal_converter(tp: Any) -> _Converter:
    allowed = get_args(tp)

    def literal(value: Any, path: str) -> Any:
        if type(value) not in _LITERAL_TYPES or value not in allowed:
            raise _fail(path, _describe(tp), value)
        return value

    return literal


def _sequence_converter(
    tp: Any, meta: Mapping[str, Any], lenient: bool, compiling: set[type], *, as_tuple: bool
) -> _Converter:
    limit = meta.get("max_items", DEFAULT_MAX_ITEMS)
    item = _converter(get_args(tp)[0], {}, lenient, compiling)

    def sequence(value: Any, path: str) -> Any:
        if not isinstance(value, (list, tuple)):  # a tuple of types: ``list | tuple`` is built per call
            raise _fail(path, _describe(tp), value)
        if len(value) > limit:
            raise SchemaError(f"{path}: at most {limit} items, got {len(value)}")
        items = [item(v, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if as_tuple else items

    return sequence


def _table_converter(tp: Any, meta: Mapping[str, Any], lenient: bool, compiling: set[type]) -> _Converter:
    limit = meta.get("max_items", DEFAULT_MAX_ITEMS)
    patterned_keys = "key_pattern" in meta
    key = _string_converter({"pattern": meta["key_pattern"]} if patterned_keys else {"max_len": _KEY_MAX_LEN})
    item = _converter(get_args(tp)[1], {}, lenient, compiling)

    def table(value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise _fail(path, _describe(tp), value)
        if len(value) > limit:
            raise SchemaError(f"{path}: at most {limit} entries, got {len(value)}")
        out = {}
        for k, v in value.items():
            # the key first (a bad key is reported before its value); a plain key checked here, the
            # converter called only to refuse it in its words
            if patterned_keys or not isinstance(k, str) or len(k) > _KEY_MAX_LEN:
                key(k, f"{path} key")
            out[k] = item(v, f"{path}.{k}")
        return out

    def opaque_table(value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise _fail(path, _describe(tp), value)
        if len(value) > limit:
            raise SchemaError(f"{path}: at most {limit} entries, got {len(value)}")
        for k in value:
            if patterned_keys or not isinstance(k, str) or len(k) > _KEY_MAX_LEN:
                key(k, f"{path} key")
        return dict(value)  # the values are kept as they are: only the keys needed checking

    return opaque_table if item is _opaque else table


def _nested_converter(cls: type, lenient: bool, compiling: set[type]) -> _Converter:
    readers = _READERS[lenient]
    read = readers.get(cls)
    if read is None and cls not in compiling:
        try:
            read = readers[cls] = _reader(cls, lenient, compiling)
        except Exception:  # e.g. hints that do not resolve: as before, that fails only when a value comes
            read = None
    if read is not None:
        return read

    def nested(value: Any, path: str) -> Any:
        # looked up per value: a class that contains itself (or failed to compile) is read once it is there
        read = readers.get(cls)
        if read is None:
            return parse_dataclass(cls, value, path, lenient=lenient)
        return read(value, path)

    return nested


def _init_only_stores(cls: type) -> bool:
    """Whether ``cls(**fields)`` only stores each field in the instance (an absent one's default, or its
    factory's value): a frozen dataclass with the generated ``__init__``, taking exactly its fields,
    no ``__post_init__``, nothing between the class call and ``object.__new__``, and no descriptor
    (slots, properties) where a field is stored. The reader then fills the instance's ``__dict__``
    itself: the same instance, without the frozen ``__init__``'s ``object.__setattr__`` per field
    (a third of the cost of reading a small table)."""
    params = getattr(cls, "__dataclass_params__", None)
    init = cls.__dict__.get("__init__")
    code = getattr(init, "__code__", None)
    if params is None or not (params.frozen and params.init) or code is None:
        return False
    if code.co_filename != "<string>":  # dataclasses compiles the __init__ it writes from a string
        return False  # one written by hand
    fields = dataclasses.fields(cls)
    takes = code.co_varnames[1 : code.co_argcount + code.co_kwonlyargcount]  # InitVars are arguments too
    if takes != tuple(f.name for f in fields) or not all(f.init for f in fields):
        return False
    if hasattr(cls, "__post_init__") or cls.__new__ is not object.__new__:
        return False
    if type(cls).__call__ is not type.__call__:  # a metaclass that does more than __new__ and __init__
        return False
    return not any(
        hasattr(type(vars(base)[f.name]), "__set__")  # a slot or a property: stored through it
        for base in cls.__mro__
        for f in fields
        if f.name in vars(base)
    )


def _reader(cls: type, lenient: bool, compiling: set[type] | None = None) -> _Converter:
    """Compile the reader of dataclass ``cls``: its fields' checks, in the order they are declared."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    hints = get_type_hints(cls)
    compiling = (compiling or set()) | {cls}
    fields = [f for f in dataclasses.fields(cls) if f.init]
    names = frozenset(f.name for f in fields)
    expected = ", ".join(sorted(names))
    hint_of = {f.name: hints[f.name] for f in fields}
    # per field: its name, its check, and what an absent key means: _REQUIRED (an error), else the
    # (default, factory) pair that __init__ would use
    plan: tuple[tuple[str, _Converter, Any], ...] = tuple(
        (
            f.name,
            _converter(hints[f.name], f.metadata, lenient, compiling),
            _REQUIRED
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            else (f.default, None if f.default_factory is dataclasses.MISSING else f.default_factory),
        )
        for f in fields
    )
    direct = _init_only_stores(cls)
    new = object.__new__

    def read(data: Any, path: str) -> Any:
        if not isinstance(data, dict):
            raise _fail(path or "(top level)", "a table", data)
        if not lenient and not names.issuperset(data):
            unknown = sorted(str(k) for k in set(data) - names)
            where = f"{path}.{unknown[0]}" if path else unknown[0]
            raise SchemaError(f"{where}: unknown key; expected one of: {expected}")
        prefix = f"{path}." if path else ""
        if direct:  # the instance's own __dict__ is filled, in the declared order, as __init__ would
            instance = new(cls)
            values = instance.__dict__
        else:
            values = {}
        for name, convert, absent in plan:
            value = data.get(name, _ABSENT)
            if value is not _ABSENT:
                values[name] = convert(value, prefix + name)
            elif absent is _REQUIRED:
                raise SchemaError(f"{prefix}{name}: missing; expected {_describe(hint_of[name])}")
            elif direct:
                default, factory = absent
                try:
                    values[name] = default if factory is None else factory()
                except ValueError as exc:  # as if raised in __init__
                    raise SchemaError(f"{path or '(top level)'}: {exc}") from exc
        if direct:
            return instance
        try:
            return cls(**values)
        except ValueError as exc:  # __post_init__ cross-field checks name the key themselves
            raise SchemaError(f"{path or '(top level)'}: {exc}") from exc

    return read


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
    readers = _READERS[lenient]
    read = readers.get(cls)
    if read is None:
        if not isinstance(data, dict):  # refused before the class is looked at, as always
            raise _fail(path or "(top level)", "a table", data)
        read = readers[cls] = _reader(cls, lenient)
    instance: T = read(data, path)
    return instance


#: what to_data returns as it is, by exact type (a subclass, e.g. an enum, takes the general way)
_PLAIN_TYPES = frozenset({str, int, float, bool, type(None)})
#: per dataclass: whether it leaves out None (OMIT_NONE), and each field's name and whether a None in
#: it is written anyway (its default is not None). Built on first use, like the readers.
_WRITE_PLANS: dict[type, tuple[bool, tuple[tuple[str, bool], ...]]] = {}


def to_data(obj: Any) -> Any:
    """The inverse of parse_dataclass: plain dicts/lists/str, suitable for JSON and TOML.

    In a dataclass that sets ``OMIT_NONE = True``, an optional field (default None) that is None is
    left out: absent and null mean the same to the parser, and a part of the heartbeat sent every 30 s
    by 10,000 kiosks should not carry empty keys. Elsewhere null stays explicit.
    """
    kind = type(obj)
    if kind in _PLAIN_TYPES:
        return obj
    plan = _WRITE_PLANS.get(kind)
    if plan is None:
        if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
            return _container_to_data(obj)
        plan = _WRITE_PLANS[kind] = (
            bool(getattr(kind, "OMIT_NONE", False)),
            tuple((f.name, f.default is not None) for f in dataclasses.fields(obj)),
        )
    omit, fields = plan
    out: dict[str, Any] = {}
    for name, none_written in fields:
        value = getattr(obj, name)
        if value is not None:
            out[name] = to_data(value)
        elif none_written or not omit:
            out[name] = None
    return out


def _container_to_data(obj: Any) -> Any:
    if isinstance(obj, (list, tuple)):
        return [to_data(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_data(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj
