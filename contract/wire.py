"""How payloads travel: UTF-8 JSON objects, bounded in size and depth, with UTC times and safe ids.

``loads_object`` is the only JSON reader of the contract. It checks the size *before* parsing, refuses
nesting deeper than ``MAX_DEPTH`` (a payload of 200 KB of ``[`` must not reach a recursive parser's
limit in a service's worker thread), refuses NaN/Infinity, duplicate keys and strings with a lone
surrogate (``"\\ud800"``: valid JSON, but no UTF-8 encoder takes it back), and raises ``ContractError``
and nothing else.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from typing import Any

from contract.errors import ContractError

#: deepest nesting of arrays/objects in any payload (the deepest message needs 6)
MAX_DEPTH = 16
#: no message of the contract is larger (blobs are raw bytes, not JSON, and have their own limit)
MAX_MESSAGE_BYTES = 256 * 1024

#: kiosk and center ids: lowercase, digits, dashes; a kiosk id is also its certificate's CN
ID_PATTERN = r"[a-z0-9][a-z0-9-]{1,62}"
ID_RE = re.compile(ID_PATTERN)
ID_HINT = "lowercase id: a-z, 0-9, - (2-63 characters)"
#: request ids of commands and ticket requests
REQUEST_ID_PATTERN = r"[A-Za-z0-9._:-]{1,64}"
REQUEST_ID_RE = re.compile(REQUEST_ID_PATTERN)
REQUEST_ID_HINT = "1-64 of A-Z a-z 0-9 . _ : -"
#: names a kiosk id can never take: the center's own identities and scopes (certificates, ACL, topics)
RESERVED_IDS = frozenset(
    {
        "fleet", "allocator", "counter", "center", "province", "admin", "broker", "root", "queue", "display",
        "provisioner", "enroll",
    }
)


def is_kiosk_id(value: object) -> bool:
    """A well-formed id that is not one of the center's reserved identities, nor one of their numbered
    instances (``fleet-2``: each fleet worker has a certificate of its own)."""
    if not isinstance(value, str) or ID_RE.fullmatch(value) is None:
        return False
    return value not in RESERVED_IDS and value.split("-", 1)[0] not in RESERVED_IDS


def now_iso(clock: datetime | None = None) -> str:
    """``2026-11-23T11:02:03.456+00:00``: UTC, milliseconds (a naive ``clock`` is taken as UTC)."""
    moment = clock or datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def parse_time(text: str, what: str) -> datetime:
    """An aware datetime from an ISO 8601 string, or ContractError."""
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise ContractError(f"{what}: expected an ISO 8601 time, got {str(text)[:40]!r}") from None
    if moment.tzinfo is None:
        raise ContractError(f"{what}: the time needs a zone (UTC: ...Z or +00:00)")
    return moment


def dumps(obj: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON (Vietnamese stays readable: no \\u escapes)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def _refuse_constant(name: str) -> Any:
    raise ContractError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # 1e999
        raise ContractError(f"number {text[:20]} is out of range")
    return value


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):  # two parsers could disagree on which one wins: refuse instead of guessing
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ContractError(f"key {key[:40]!r} appears twice")
            seen.add(key)
    return out


#: one decoder for every payload (json.loads with hooks would build one per call); decoding keeps no
#: state between calls, so threads can share it as they share json's own default decoder
_DECODER = json.JSONDecoder(
    parse_constant=_refuse_constant, parse_float=_finite_float, object_pairs_hook=_no_duplicates
)


#: the start of a ``\\uD800``-``\\uDFFF`` escape (one regex pass costs less than two byte searches)
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD]")


def _depth_ok(payload: bytes, limit: int) -> bool:
    """Whether brackets nest at most ``limit`` deep, outside strings (a linear scan, no recursion)."""
    if payload.count(b"[") + payload.count(b"{") <= limit:
        return True  # no deeper than the brackets there are (counted in C: the common case is instant)
    depth = 0
    in_string = escaped = False
    for byte in payload:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return False
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return True


def loads_object(payload: bytes, what: str, max_bytes: int = MAX_MESSAGE_BYTES) -> dict[str, Any]:
    """Parse a JSON object within ``max_bytes`` and ``MAX_DEPTH``, or raise ContractError naming ``what``."""
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise ContractError(f"{what}: expected bytes")
    size = len(payload)
    if size > max_bytes:
        raise ContractError(f"{what}: {size} bytes, more than the {max_bytes} allowed")
    data_bytes = bytes(payload)
    if not _depth_ok(data_bytes, MAX_DEPTH):
        raise ContractError(f"{what}: nested deeper than {MAX_DEPTH} levels")
    try:
        text = data_bytes.decode("utf-8")
        if text.startswith("\ufeff"):  # what json.loads refuses before decoding, with its words
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        data = _DECODER.decode(text)
    except ContractError as exc:
        raise ContractError(f"{what}: {exc.message}") from None
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ContractError(f"{what}: not UTF-8 JSON ({str(exc)[:80]})") from None
    if not isinstance(data, dict):
        raise ContractError(f"{what}: expected a JSON object")
    # a strict UTF-8 decode lets no surrogate through: only a \\uD800-\\uDFFF escape makes one
    if _SURROGATE_ESCAPE.search(data_bytes) and _has_lone_surrogate(data):
        raise ContractError(f"{what}: a string holds a lone surrogate (\\ud800-\\udfff), not text")
    return data


def _has_lone_surrogate(data: dict[str, Any]) -> bool:
    """Whether a key or string value holds a lone UTF-16 surrogate: JSON's ``\\ud800`` escape parses to
    a str that can never be encoded again, so SQLite, a log file or an answer would raise
    UnicodeEncodeError far from here (found by fuzz/contract.py). Iterative: the depth is bounded but a
    stack costs nothing."""
    stack: list[Any] = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def salvage_request_id(payload: bytes, max_bytes: int = MAX_MESSAGE_BYTES) -> str | None:
    """The request id of a message that failed validation, so the refusal can still be matched."""
    try:
        value = loads_object(payload, "message", max_bytes).get("request_id")
    except ContractError:
        return None
    return value if isinstance(value, str) and REQUEST_ID_RE.fullmatch(value) else None
