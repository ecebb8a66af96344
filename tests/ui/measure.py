"""What the window tests measure on every citizen screen (issue 14): text at least 40 design pixels,
touch targets at least 120 design pixels each way, and the contrast of every text with its
background, read from the rendered screenshot (not from the colours the code asked for).

The contrast is WCAG's: (L1 + 0.05) / (L2 + 0.05) of the relative luminances. For each text widget
the crop of the screenshot under it gives the background (its most common colour) and the text
colour (the 99th percentile of the pixels' contrast with that background: anti-aliased edges are
lighter, a stray pixel cannot decide alone).
"""

from __future__ import annotations

import os
import re
import subprocess
import unicodedata
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from screens.harness import KioskDriver, shown_text

MIN_TEXT = 40  # design pixels
MIN_TARGET = 120
MIN_CONTRAST = 7.0
#: share of the words drawn on a screen that tesseract must read back (its misreads of stacked marks
#: are folded away; what is left unread is mostly small grey lines, the keys of the on-screen keyboard
#: and very large digits). Seen on every screen of tests/ui: 67–96 % (the keyboard screens lowest).
MIN_READ_SHARE = 0.6
#: screens for staff, not citizens: the size rules do not apply (contrast does)
STAFF_SCREENS = {"technician"}
_SIZE_TAG = re.compile(r"\[size=(\d+)\]")


def _channel(c: float) -> float:
    c /= 255.0
    return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4


def luminance(rgb: tuple[int, int, int]) -> float:
    r, g, b = (_channel(v) for v in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    la, lb = luminance(a), luminance(b)
    return (max(la, lb) + 0.05) / (min(la, lb) + 0.05)


@dataclass(frozen=True)
class Reading:
    screen: str
    text: str
    ratio: float
    foreground: tuple[int, int, int]
    background: tuple[int, int, int]


def _text_widgets(kiosk: KioskDriver) -> list[Any]:
    from kivy.uix.label import Label

    return [
        w
        for w in kiosk.visible_widgets()
        if isinstance(w, Label) and shown_text(w.text).strip() and w.width > 4 and w.height > 4
    ]


def check_sizes(kiosk: KioskDriver) -> list[str]:
    """Every text a citizen reads at least MIN_TEXT design pixels, every button at least MIN_TARGET
    each way; returns the offenders (empty: all good)."""
    from kivy.uix.button import Button

    if kiosk.core.screen in STAFF_SCREENS:
        return []
    u = kiosk.app.u
    scale = 1.3 if kiosk.app.large_text else 1.0
    problems: list[str] = []
    for widget in _text_widgets(kiosk):
        shown = shown_text(widget.text).strip().split("\n")[0][:40]
        # The screens' widgets know their design size ("Chữ lớn" multiplies it); the frame's (kv) do not.
        factor = scale if hasattr(widget, "design_size") else 1.0
        sizes = [
            widget.font_size / u / factor,
            *(int(n) / u / factor for n in _SIZE_TAG.findall(widget.text)),
        ]
        if min(sizes) < MIN_TEXT - 1:  # 1 px: sizes are rounded to whole window pixels
            problems.append(f"text {shown!r}: {min(sizes):.0f} px")
        if isinstance(widget, Button):
            w, h = widget.width / u, widget.height / u
            if min(w, h) < MIN_TARGET - 1:
                problems.append(f"target {shown!r}: {w:.0f}x{h:.0f} px")
    return problems


def read_contrast(kiosk: KioskDriver, png: Path) -> list[Reading]:
    """The contrast of each visible text on the screenshot ``png`` (taken of the current screen)."""
    from PIL import Image

    image = Image.open(png).convert("RGB")
    width, height = image.size
    readings: list[Reading] = []
    for widget in _text_widgets(kiosk):
        x0, y0 = widget.to_window(widget.x, widget.y)
        x1, y1 = widget.to_window(widget.right, widget.top)
        box = (
            max(0, int(x0) + 1),
            max(0, int(height - y1) + 1),
            min(width, int(x1) - 1),
            min(height, int(height - y0) - 1),
        )
        if box[2] - box[0] < 4 or box[3] - box[1] < 4:
            continue  # scrolled out of view
        cropped = image.crop(box)
        colours = cropped.getcolors(cropped.width * cropped.height) or []  # (count, colour), every colour
        counts = Counter({cast(tuple[int, int, int], colour): n for n, colour in colours})
        background = counts.most_common(1)[0][0]
        ink = sorted(
            (contrast(colour, background), n, colour) for colour, n in counts.items() if colour != background
        )
        if not ink:
            continue
        # The 99th percentile of the ink pixels' contrast, counted by pixel (colours are repeated).
        target = 0.99 * sum(n for _, n, _ in ink)
        seen, chosen = 0, ink[-1]
        for entry in ink:
            seen += entry[1]
            if seen >= target:
                chosen = entry
                break
        ratio, _, foreground = chosen
        shown = shown_text(widget.text).strip().split("\n")[0][:60]
        readings.append(Reading(kiosk.core.screen, shown, ratio, foreground, background))
    return readings


def look(kiosk: KioskDriver, name: str, table: list[Reading] | None = None) -> Path:
    """Shoot the screen, then fail on small text, small targets or contrast under 7:1."""
    png = kiosk.shot(name)
    problems = check_sizes(kiosk)
    assert not problems, f"{name}: {problems}"
    readings = read_contrast(kiosk, png)
    assert readings, f"{name}: no text measured"
    low = [r for r in readings if r.ratio < MIN_CONTRAST]
    assert not low, f"{name}: contrast under {MIN_CONTRAST}:1: {[(r.text, round(r.ratio, 1)) for r in low]}"
    if table is not None:
        table.extend(readings)
    record(png, readings)
    READER.submit(name, png, [shown_text(w.text) for w in _text_widgets(kiosk)])
    return png


def fold(text: str) -> str:
    """Lowercase letters without their marks ("đ" as "d"), ";" as ",": tesseract reads a stacked mark
    (ầ) as another (â) and ";" as ","; which glyphs are drawn is checked on the font itself (the window
    tests' check_screen)."""
    plain = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D").replace(";", ",")).lower()
    return "".join(c for c in plain if not unicodedata.combining(c))


def _words(texts: list[str]) -> set[str]:
    return {w for text in texts for w in re.findall(r"[a-z]{3,}", fold(text))}


class ScreenReader:
    """Every screen ``look`` shoots is read back by tesseract (``vie``: a reader we do not control), in
    the background while the test goes on; ``check`` (at the end of each window test) fails on a screen
    of which it read less than MIN_READ_SHARE of the words drawn. A screen drawn with the same words
    again is not read twice."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ocr")
        self._pending: list[tuple[str, set[str], Future[str]]] = []
        self._seen: set[frozenset[str]] = set()
        #: per screen read: (name, share of the words read back)
        self.results: list[tuple[str, float]] = []

    def submit(self, name: str, png: Path, texts: list[str]) -> None:
        words = _words(texts)
        if not words or frozenset(words) in self._seen:
            return
        self._seen.add(frozenset(words))
        self._pending.append((name, words, self._pool.submit(read_back, png)))

    def check(self) -> None:
        pending, self._pending = self._pending, []
        poor = []
        for name, words, future in pending:
            read = fold(future.result(timeout=120))
            share = sum(1 for w in words if w in read) / len(words)
            self.results.append((name, share))
            if share < MIN_READ_SHARE:
                missed = sorted(w for w in words if w not in read)
                poor.append(f"{name}: {share:.0%} read, missed {missed[:12]}")
        assert not poor, f"tesseract could not read these screens back: {poor}"


def read_back(png: Path) -> str:
    """Read at the hall's size, in grey (the test window is half of it), as a camera would see it."""
    import tempfile

    from PIL import Image

    with tempfile.TemporaryDirectory() as folder:
        grey = Path(folder) / "grey.png"
        image = Image.open(png).convert("L")
        image.resize((image.width * 2, image.height * 2), Image.Resampling.LANCZOS).save(grey)
        result = subprocess.run(
            ["tesseract", str(grey), "stdout", "-l", "vie"],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
            env={**os.environ, "OMP_THREAD_LIMIT": "1"},  # one core: the window test runs on the other
        )
    return unicodedata.normalize("NFC", result.stdout)


READER = ScreenReader()


def record(png: Path, readings: list[Reading]) -> None:
    """The lowest contrast of each screenshot, for docs/ux.md's table (artifacts/screens/contrast.tsv)."""
    lowest = min(readings, key=lambda r: r.ratio)
    low = lowest
    fields = (png.name, len(readings), f"{low.ratio:.1f}", low.text, low.foreground, low.background)
    line = "\t".join(str(f) for f in fields) + "\n"
    with (png.parent / "contrast.tsv").open("a", encoding="utf-8") as out:
        out.write(line)
