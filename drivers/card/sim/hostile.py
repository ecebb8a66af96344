"""Hostile file contents for the virtual chip: structures a malicious card could send to the reader.

Only tests, fuzz seeds and ``CardFaults.deep_nesting`` use these; the reader never imports this module.
"""

from __future__ import annotations

from asn1crypto import core

from drivers.card import tlv

#: files ``CardFaults.deep_nesting`` can make hostile
DEEP_NESTING_FILES = ("DG13", "DG2", "DG14", "EF.CardAccess")
#: far deeper than any parser's bound, and deep enough to exhaust Python's default recursion limit
HOSTILE_DEPTH = 3000


def nested(depth: int, tag: int = 0x30, inner: bytes = b"\x05\x00") -> bytes:
    """``depth`` constructed elements inside each other around ``inner`` (NULL by default): the
    innermost element sits at level ``depth + 1``."""
    data = inner
    for _ in range(depth):
        data = tlv.encode(tag, data)
    return data


def _security_info_with(protocol: str, value: bytes) -> bytes:
    """A SecurityInfo {protocol, version 2, optional data ``value``} (DG14, EF.CardAccess): a protocol
    the reader supports, so its parser looks at the optional data."""
    oid = core.ObjectIdentifier(protocol).dump()
    return tlv.encode(0x30, oid + tlv.encode(0x02, b"\x02") + value)


def with_deep_nesting(name: str, data: bytes, depth: int = HOSTILE_DEPTH) -> bytes:
    """``data`` (a genuine file) with a ``depth``-level nested element added where its parser walks."""
    deep = nested(depth)
    if name == "DG13":  # a sibling of the DG13 SEQUENCE: the lenient parser looks for fields in it
        return tlv.encode(0x6D, tlv.parse_one(data, 0x6D).value + deep)
    if name == "DG2":  # before the biometric template, so the search for 5F2E descends into it first
        return tlv.encode(0x75, deep + tlv.parse_one(data, 0x75).value)
    if name == "DG14":
        infos = tlv.parse_one(tlv.parse_one(data, 0x6E).value, 0x31).value
        chip_auth = "0.4.0.127.0.7.2.2.3.2.2"  # id-CA-ECDH-AES-CBC-CMAC-128
        return tlv.encode(0x6E, tlv.encode(0x31, infos + _security_info_with(chip_auth, deep)))
    if name == "EF.CardAccess":
        infos = tlv.parse_one(data, 0x31).value
        pace = "0.4.0.127.0.7.2.2.4.2.2"  # id-PACE-ECDH-GM-AES-CBC-CMAC-128
        return tlv.encode(0x31, infos + _security_info_with(pace, deep))
    raise ValueError(f"deep nesting: no such file {name!r}; one of {', '.join(DEEP_NESTING_FILES)}")
