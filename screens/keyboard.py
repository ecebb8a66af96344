"""The on-screen keyboard for free text (an address, a feedback message) and what a key does to the text.

Vietnamese letters are keys of their own (ă â đ ê ô ơ ư) in alphabetical order, not QWERTY: a citizen
who has never typed finds a letter by the alphabet. The five tone marks are keys that put their mark
on the letter just typed ("đươ" then "à" gives "đườ"); typed after anything but a vowel, a mark key
types its own letter (á, à, ả, ã, ạ). Seven keys a row keeps every key 120 design pixels wide.

The text lives in the flow (``act("set_address", text=...)``): a key computes the new text from the
flow's and hands it back, so the screen keeps nothing.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from kivy.uix.boxlayout import BoxLayout
from kivy.uix.gridlayout import GridLayout

from screens.widgets import BLUE, GREEN, GREY, BigButton, u

if TYPE_CHECKING:
    from screens.app import KioskApp

COLUMNS = 7
#: key label -> the combining mark it puts on the letter before it
TONE_MARKS = {"á": "\u0301", "à": "\u0300", "ả": "\u0309", "ã": "\u0303", "ạ": "\u0323"}
#: the Vietnamese alphabet (no f, j, w, z), then the marks: five rows of seven
LETTERS = ["aăâbcdđ", "eêghikl", "mnoôơpq", "rstuưvx", ["y", *TONE_MARKS, ","]]
DIGITS = ["1234567", "890,./-", "()#"]
_VOWELS = set("aăâeêioôơuưy")
_ALL_MARKS = set(TONE_MARKS.values())
SPACE = " "
BACKSPACE = "\b"


def compose(text: str, key: str, limit: int) -> str:
    """``text`` after the key ``key`` (a character, a tone-mark key, SPACE or BACKSPACE)."""
    if key == BACKSPACE:
        return text[:-1]
    if key in TONE_MARKS:
        last = text[-1:]
        base = unicodedata.normalize("NFD", last)
        if last and base[0].lower() in _VOWELS:
            # One tone per letter: a second mark replaces the first (ơ keeps its horn, ê its hat).
            kept = "".join(c for c in base if c not in _ALL_MARKS)
            return text[:-1] + unicodedata.normalize("NFC", kept + TONE_MARKS[key])
        # after a consonant, a space or nothing: the key types its own letter
    if key == SPACE and (not text or text.endswith(SPACE)):
        return text  # no leading or double spaces: the flows collapse them anyway
    return (text + key)[:limit]


def keyboard(app: KioskApp, text: str, on_text: Callable[[str], None], *, digits: bool,
             on_page: Callable[[bool], None], limit: int) -> BoxLayout:
    """The keys: letters and marks (or digits and signs), then 123/abc, ".", space and Xóa."""
    box = BoxLayout(orientation="vertical", size_hint_y=None, spacing=8 * u())
    box.bind(minimum_height=box.setter("height"))

    def press(key: str) -> None:
        on_text(compose(text, key, limit))

    grid = GridLayout(cols=COLUMNS, size_hint_y=None, spacing=8 * u())
    grid.bind(minimum_height=grid.setter("height"))
    for row in DIGITS if digits else LETTERS:
        for char in row:
            colour = GREEN if char in TONE_MARKS else BLUE
            grid.add_widget(BigButton(char, partial(press, char), color=colour, size=52, height=120))
    box.add_widget(grid)
    last = BoxLayout(size_hint_y=None, height=120 * u(), spacing=8 * u())
    page = app.tr("keyboard.letters" if digits else "keyboard.digits")
    last.add_widget(BigButton(page, partial(on_page, not digits), color=GREY, size=44, height=120,
                              size_hint_x=1.4))
    last.add_widget(BigButton(".", partial(press, "."), size=52, height=120, size_hint_x=1))
    space = app.tr("keyboard.space")
    last.add_widget(BigButton(space, partial(press, SPACE), color=GREY, size=44, height=120, size_hint_x=3))
    last.add_widget(BigButton(app.tr("common.delete_one"), partial(press, BACKSPACE), color=GREY, size=44,
                              height=120, size_hint_x=1.6))
    box.add_widget(last)
    return box


def digit_pad(text: str, on_text: Callable[[str], None], app: KioskApp, *, limit: int = 20) -> GridLayout:
    """A phone number's keys: ten digits and Xóa, five a row."""
    pad = GridLayout(cols=COLUMNS - 1, size_hint_y=None, spacing=10 * u())
    pad.bind(minimum_height=pad.setter("height"))
    for digit in "1234567890":
        pad.add_widget(BigButton(digit, partial(on_text, (text + digit)[:limit]), size=56, height=125))
    pad.add_widget(
        BigButton(app.tr("common.delete_one"), partial(on_text, text[:-1]), color=GREY, size=44, height=125)
    )
    return pad
