"""What a key of the on-screen text keyboard does to the text (screens/keyboard.py), without a window."""

from __future__ import annotations

import unicodedata
from functools import reduce

from hypothesis import given
from hypothesis import strategies as st

from screens.keyboard import BACKSPACE, DIGITS, LETTERS, SPACE, TONE_MARKS, compose


def typed(*keys: str, limit: int = 200) -> str:
    return reduce(lambda text, key: compose(text, key, limit), keys, "")


def test_a_mark_goes_on_the_letter_just_typed() -> None:
    assert typed("đ", "ư", "ơ", "à", "n", "g") == "đường"
    assert typed("l", "ơ", "ạ", "i") == "lợi"
    assert typed("t", "i", "ê", "á", "n", "g") == "tiếng"  # ê keeps its hat


def test_a_second_mark_replaces_the_first() -> None:
    assert typed("a", "á", "à") == "à"
    assert typed("ơ", "á", "ạ") == "ợ"  # the horn stays


def test_a_mark_after_no_vowel_types_its_own_letter() -> None:
    assert typed("b", "á") == "bá"
    assert typed("á") == "á"
    assert typed("1", "ả") == "1ả"


def test_space_backspace_and_the_limit() -> None:
    assert typed(SPACE, "a", SPACE, SPACE, "b") == "a b"  # no leading or double space
    assert typed("a", "b", BACKSPACE) == "a"
    assert typed(BACKSPACE) == ""
    assert typed("a", "b", "c", limit=2) == "ab"


def test_every_key_fits_seven_a_row() -> None:
    assert all(len(row) <= 7 for row in (*LETTERS, *DIGITS))
    letters = [k for row in LETTERS for k in row]
    assert len(letters) == len(set(letters)) == 35
    assert set(TONE_MARKS) <= set(letters)


_KEYS = st.sampled_from([k for row in (*LETTERS, *DIGITS) for k in row] + [SPACE, BACKSPACE])


@given(st.lists(_KEYS, max_size=80))
def test_any_keys_give_nfc_text_within_the_limit(keys: list[str]) -> None:
    text = typed(*keys, limit=50)
    assert len(text) <= 50 and unicodedata.is_normalized("NFC", text)
    assert "  " not in text and not text.startswith(" ")
    assert "\b" not in text
