"""Translation catalogs: Vietnamese first, English by a toggle.

Catalogs are TOML files in ``kiosk/locale`` (``[section] key = "text"``, looked up as
``"section.key"``); every text is NFC-normalised on load so what is compared, printed and drawn is one
form of each Vietnamese letter. A missing key renders as ``⟦key⟧`` and is logged, so a test can spot it
on screen instead of a silent fallback.
"""

from __future__ import annotations

import logging
import string
import tomllib
import unicodedata
from functools import cache
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

LOCALE_DIR = Path(__file__).with_name("locale")
LANGUAGES = ("vi", "en")
MISSING_MARK = "⟦{}⟧"


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = nfc(str(value))
    return flat


@cache
def catalog(language: str) -> dict[str, str]:
    if language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}; expected one of {LANGUAGES}")
    with (LOCALE_DIR / f"{language}.toml").open("rb") as handle:
        return _flatten(tomllib.load(handle))


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


class Translator:
    """``tr("ticket.waiting", count=3)`` in the current language."""

    def __init__(self, language: str = "vi") -> None:
        self.language = language

    def __call__(self, key: str, **values: Any) -> str:
        text = catalog(self.language).get(key)
        if text is None:
            log.error("missing translation %s for language %s", key, self.language)
            return MISSING_MARK.format(key)
        return nfc(text.format(**values)) if values else text

    def has(self, key: str) -> bool:
        return key in catalog(self.language)
