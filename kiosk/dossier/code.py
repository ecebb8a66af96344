"""Dossier codes from receipts: ``<agency code>-YYMMDD-NNNN`` (Thông tư 01/2018/TT-VPCP, Điều 19).

A receipt's QR or barcode carries the code bare, as a parameter of a URL, as JSON, or as a labelled
line ("Mã hồ sơ: ..."). Anything else (a garbled scan, a payment QR, a web link) must end as
``InvalidDossierCode`` -- never as a look-up of something that is not a dossier code, so every rule
below prefers rejecting to guessing: a payload that carries two different codes is rejected too.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from kiosk.errors import KioskError

#: Longest scan we look at: receipts carry short payloads; a megabyte of text is an attack or noise.
MAX_INPUT_CHARS = 2048

#: Agency code: dot-separated upper-case alphanumeric segments, e.g. ``000.00.10.H12`` or ``G22.35``.
_AGENCY = r"[A-Z0-9]{1,8}(?:\.[A-Z0-9]{1,8}){0,5}"
#: ASCII only: ``\d`` would accept Arabic-Indic and full-width digits.
_CODE_RE = re.compile(rf"(?P<agency>{_AGENCY})-(?P<date>[0-9]{{6}})-(?P<seq>[0-9]{{4,7}})", re.ASCII)

#: Names under which receipts and province portals put the code (compared case- and accent-folded).
CODE_KEYS = frozenset(
    {
        "code",
        "dossiercode",
        "dossier",
        "dossier_code",
        "mahoso",
        "ma_ho_so",
        "ma",
        "hoso",
        "sohoso",
        "so_ho_so",
        "mahs",
        "ma_hs",
        "id",
    }
)

#: What the on-screen keyboard shows as a format hint.
FORMAT_HINT = "000.00.10.H12-210901-0001"


class InvalidDossierCode(KioskError):
    """The scanned or typed text is not a dossier code (screen: "Mã QR này không phải mã hồ sơ")."""

    code = "not_a_dossier_code"


@dataclass(frozen=True, order=True)
class DossierCode:
    """A validated dossier code; ``str()`` gives the canonical form sent to the back end."""

    agency: str
    received_on: date
    sequence: str

    @property
    def text(self) -> str:
        return f"{self.agency}-{self.received_on:%y%m%d}-{self.sequence}"

    def __str__(self) -> str:
        return self.text


def _fold(key: str) -> str:
    """``Mã hồ sơ`` -> ``mahoso``: compare keys without accents, case, spaces or dashes."""
    decomposed = unicodedata.normalize("NFKD", key.replace("đ", "d").replace("Đ", "D"))
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"[\s\-]", "", plain.lower())


def _match_bare(text: str) -> DossierCode | None:
    """The whole text is one code (typed codes may be lower case: agency letters are upper-cased)."""
    match = _CODE_RE.fullmatch(text.strip().upper())
    if match is None:
        return None
    raw_date = match["date"]
    try:
        received = date(2000 + int(raw_date[:2]), int(raw_date[2:4]), int(raw_date[4:]))
    except ValueError:
        return None  # 210231 is not a day: a garbled scan, not a code
    return DossierCode(match["agency"], received, match["seq"])


def _json_candidates(value: Any, depth: int = 0) -> Iterator[str]:
    """String values under code-like keys, in objects nested at most three levels."""
    if depth > 3:
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, str) and _fold(str(key)) in CODE_KEYS:
                yield item
            elif isinstance(item, dict | list):
                yield from _json_candidates(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            yield from _json_candidates(item, depth + 1)


def _url_candidates(text: str) -> Iterator[str]:
    """Query parameters under code-like keys, else any parameter or the last path segment."""
    parts = urlsplit(text)
    params = parse_qsl(parts.query, keep_blank_values=True) + parse_qsl(parts.fragment)
    named = [value for key, value in params if _fold(key) in CODE_KEYS]
    if named:
        yield from named
        return
    yield from (value for _, value in params)
    segments = [s for s in parts.path.split("/") if s]
    if segments:
        yield unquote(segments[-1])


def _label_candidates(text: str) -> Iterator[str]:
    """Lines like ``Mã hồ sơ: 000.00.10.H12-210901-0001`` on multi-line receipt QRs."""
    for line in text.splitlines():
        label, sep, value = line.partition(":")
        if sep and _fold(label) in CODE_KEYS:
            yield value


def _unique(candidates: Iterator[str]) -> DossierCode | None:
    codes = {code for code in map(_match_bare, candidates) if code is not None}
    if len(codes) == 1:
        return codes.pop()
    return None  # none, or two different codes: refusing beats looking up the wrong one


def parse_dossier_code(text: str) -> DossierCode:
    """Find the one dossier code in a scan or typed text, or raise ``InvalidDossierCode``."""
    if not isinstance(text, str):
        raise InvalidDossierCode(f"scan is {type(text).__name__}, not text")
    if len(text) > MAX_INPUT_CHARS:
        raise InvalidDossierCode(f"scan of {len(text)} characters is too long for a receipt")
    text = unicodedata.normalize("NFC", text).strip().lstrip("\ufeff")
    if not text:
        raise InvalidDossierCode("empty scan")
    if any(unicodedata.category(c) == "Cc" and c not in "\r\n\t" for c in text):
        raise InvalidDossierCode("scan contains control characters")
    code = _match_bare(text)
    if code is None and text[0] in "{[":
        try:
            code = _unique(_json_candidates(json.loads(text)))
        except (ValueError, RecursionError):
            code = None
    elif code is None and re.match(r"(?i)^https?://", text):
        try:
            code = _unique(_url_candidates(text))
        except ValueError:  # urlsplit: "Invalid IPv6 URL", a netloc that changes under NFKC...
            code = None
    elif code is None and ("\n" in text or ":" in text):
        code = _unique(_label_candidates(text))
    if code is None:
        # Never the text itself: a citizen may hold up the QR of their ID card (number, name, address).
        raise InvalidDossierCode(f"not a dossier code ({_shape(text)} of {len(text)} characters)")
    return code


def _shape(text: str) -> str:
    """What kind of scan it was, for logs, without any of its content."""
    if text[0] in "{[":
        return "JSON-like text"
    if re.match(r"(?i)^[a-z][a-z0-9+.-]*:", text):
        return "URL-like text"
    if text.count("|") >= 3:
        return "|-separated text"
    return "text"
