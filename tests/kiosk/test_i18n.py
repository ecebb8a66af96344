"""Catalogs: the same keys and placeholders in both languages, NFC text, every key the code uses."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from kiosk.i18n import MISSING_MARK, Translator, catalog, placeholders

ROOT = Path(__file__).resolve().parents[2]


def test_same_keys_and_placeholders() -> None:
    vi, en = catalog("vi"), catalog("en")
    assert set(vi) == set(en)
    for key in vi:
        assert placeholders(vi[key]) == placeholders(en[key]), key


def test_texts_are_nfc_and_vietnamese_is_not_english() -> None:
    for language in ("vi", "en"):
        for key, text in catalog(language).items():
            assert unicodedata.is_normalized("NFC", text), key
    same = [k for k in catalog("vi") if catalog("vi")[k] == catalog("en")[k]]
    assert same == [], f"untranslated in en.toml: {same}"


def test_every_key_used_in_code_exists() -> None:
    used: set[str] = set()
    pattern = re.compile(r"""(?:tr|tr_text|Translator\([^)]*\))\(\s*["']([a-z_]+\.[a-z_0-9]+)["']""")
    key_literals = re.compile(r"""(?:screen_key|error_key|message_key)\s*=\s*["']([a-z_]+\.[a-z_0-9]+)["']""")
    for folder in ("kiosk", "screens", "drivers", "edge_agent"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            used |= set(pattern.findall(text)) | set(key_literals.findall(text))
        for path in (ROOT / folder).rglob("*.kv"):
            used |= set(re.findall(r"""tr_text\("([a-z_]+\.[a-z_0-9]+)""", path.read_text(encoding="utf-8")))
    assert len(used) > 50
    missing = sorted(key for key in used if key not in catalog("vi"))
    assert missing == []


def test_missing_key_is_visible_not_silent() -> None:
    assert Translator("vi")("no.such_key") == MISSING_MARK.format("no.such_key")
    assert Translator("vi")("ticket.waiting", count=3) == "Đang chờ: 3 người"
