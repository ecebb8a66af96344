"""The fleet's catalogs: Vietnamese first, English by a toggle (``locale/vi.toml``, ``locale/en.toml``).

The same idea as the kiosk's catalogs (TOML, ``section.key``, NFC on load, a missing key drawn as
``⟦key⟧`` and logged so a test spots it), but the fleet's own: the center never imports the kiosk.
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
DEFAULT_LANGUAGE = "vi"
MISSING_MARK = "⟦{}⟧"


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = unicodedata.normalize("NFC", str(value))
    return flat


@cache
def catalog(language: str) -> dict[str, str]:
    if language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}; expected one of {LANGUAGES}")
    with (LOCALE_DIR / f"{language}.toml").open("rb") as handle:
        flat = _flatten(tomllib.load(handle))
    # a room's own catalog beside the main one (``vi.queue.toml``): fewer edits of one shared file
    for extra in sorted(LOCALE_DIR.glob(f"{language}.*.toml")):
        with extra.open("rb") as handle:
            more = _flatten(tomllib.load(handle))
        clash = sorted(set(more) & set(flat))
        if clash:
            raise ValueError(f"{extra.name}: keys already defined: {clash[:5]}")
        flat.update(more)
    return flat


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


class Translator:
    """``t("alarms.title")``, ``t("login.rate_limited", minutes=3)`` in one language."""

    def __init__(self, language: str = DEFAULT_LANGUAGE) -> None:
        self.language = language if language in LANGUAGES else DEFAULT_LANGUAGE

    def __call__(self, key: str, **values: Any) -> str:
        text = catalog(self.language).get(key)
        if text is None:
            log.error("missing translation %s for language %s", key, self.language)
            return MISSING_MARK.format(key)
        return text.format(**values) if values else text

    def has(self, key: str) -> bool:
        return key in catalog(self.language)

    def optional(self, key: str, fallback: str) -> str:
        """For codes that come from kiosks (device names, states): a label if we have one."""
        return catalog(self.language).get(key, fallback)
