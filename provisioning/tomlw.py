"""Writing TOML (the standard library only reads it): the shapes a kiosk file has, nothing more.

Tables, arrays of tables, strings, integers, floats, booleans and lists of those. What it writes is read
back by ``tomllib`` to the same data (tested).
"""

from __future__ import annotations

import math
from typing import Any

_BARE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def _key(key: str) -> str:
    return key if key and set(key) <= _BARE else _string(key)


def _string(value: str) -> str:
    out = ['"']
    for char in value:
        code = ord(char)
        if char == '"':
            out.append('\\"')
        elif char == "\\":
            out.append("\\\\")
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("TOML here takes finite numbers only")
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _table(data: dict[str, Any], path: list[str], out: list[str]) -> None:
    scalars = [
        (k, v)
        for k, v in data.items()
        if v is not None and not isinstance(v, dict) and not _is_table_array(v)
    ]
    for key, value in scalars:
        out.append(f"{_key(key)} = {_value(value)}")
    for key, value in data.items():
        if isinstance(value, dict):
            name = ".".join(_key(p) for p in [*path, key])
            out.append("")
            out.append(f"[{name}]")
            _table(value, [*path, key], out)
        elif _is_table_array(value):
            name = ".".join(_key(p) for p in [*path, key])
            for item in value:
                out.append("")
                out.append(f"[[{name}]]")
                _table(item, [*path, key], out)


def dumps(data: dict[str, Any], header: str = "") -> str:
    out: list[str] = [f"# {line}" if line else "#" for line in header.splitlines()]
    _table(data, [], out)
    return "\n".join(out).lstrip("\n") + "\n"
