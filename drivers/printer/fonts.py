"""The raster font: Roboto from Kivy's wheel (Regular and Bold, every Vietnamese letter and tone).

Roboto over DejaVu Sans: both have every vowel with every tone plus Đ/đ, but Roboto is ~12 % narrower
on ticket text, which is fewer raster bytes per line, and Kivy ships both weights so no Debian font is
needed. DejaVu Sans (fonts-dejavu-core) is the fallback when Kivy is not installed.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import PrinterTextError

if TYPE_CHECKING:
    from PIL.ImageFont import FreeTypeFont

_DEBIAN = Path("/usr/share/fonts/truetype/dejavu")


def _kivy_fonts() -> Path | None:
    spec = importlib.util.find_spec("kivy")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "fonts"


@functools.cache
def font_path(weight: str = "regular") -> Path:
    """Path of the TTF for ``weight`` ("regular" | "bold"), Roboto first."""
    candidates: list[Path] = []
    kivy = _kivy_fonts()
    if kivy is not None:
        candidates.append(kivy / ("Roboto-Bold.ttf" if weight == "bold" else "Roboto-Regular.ttf"))
    candidates.append(_DEBIAN / ("DejaVuSans-Bold.ttf" if weight == "bold" else "DejaVuSans.ttf"))
    for path in candidates:
        if path.is_file():
            return path
    raise PrinterTextError("no font with Vietnamese glyphs found (Kivy's Roboto or Debian fonts-dejavu-core)")


@functools.cache
def load(weight: str, size: int) -> FreeTypeFont:
    """A cached FreeType font; the BASIC layout engine so output does not depend on libraqm being there.

    Text is NFC-normalised before drawing, so every Vietnamese letter is one precomposed code point and
    needs no mark positioning (decomposed input from an ID card would otherwise draw marks beside letters).
    """
    from PIL import ImageFont

    return ImageFont.truetype(str(font_path(weight)), size, layout_engine=ImageFont.Layout.BASIC)
