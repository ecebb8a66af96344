"""Widgets every screen uses: big touch targets, text that wraps, hand-drawn rating faces.

Sizes are in design pixels of the 1080x1920 portrait layout times ``app.u`` (window height / 1920),
so the same layout fits the hall's screen and a technician's laptop window.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kivy.app import App
from kivy.graphics import Color, Ellipse, Line
from kivy.properties import NumericProperty, StringProperty
from kivy.uix.behaviors import ButtonBehavior
from kivy.uix.button import Button
from kivy.uix.label import Label
from kivy.uix.widget import Widget

BLUE = (0.05, 0.28, 0.63, 1)
DARK = (0.1, 0.1, 0.12, 1)
GREY = (0.45, 0.45, 0.5, 1)
RED = (0.72, 0.11, 0.11, 1)
GREEN = (0.11, 0.5, 0.2, 1)
AMBER = (0.85, 0.55, 0.0, 1)


def u() -> float:
    app = App.get_running_app()
    return float(app.u) if app is not None else 0.5


class Text(Label):
    """A label that wraps to its width and grows to its text's height."""

    def __init__(
        self,
        text: str = "",
        size: float = 44,
        color: tuple[float, ...] = DARK,
        bold: bool = False,
        halign: str = "center",
        **kwargs: Any,
    ) -> None:
        super().__init__(
            text=text,
            font_size=size * u(),
            color=color,
            bold=bold,
            halign=halign,
            valign="middle",
            size_hint_y=None,
            **kwargs,
        )
        self.bind(width=self._wrap, texture_size=self._grow)
        self._wrap()

    def _wrap(self, *_: Any) -> None:
        self.text_size = (self.width - 20 * u(), None)

    def _grow(self, *_: Any) -> None:
        self.height = self.texture_size[1] + 16 * u()


class BigButton(Button):
    """A touch target at least 160 design pixels high (elderly fingers, gloves, haste)."""

    action = StringProperty("")

    def __init__(
        self,
        text: str,
        on_tap: Callable[[], None],
        color: tuple[float, ...] = BLUE,
        size: float = 52,
        height: float = 180,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            text=text,
            font_size=size * u(),
            background_normal="",
            background_down="",
            background_color=color,
            color=(1, 1, 1, 1),
            halign="center",
            valign="middle",
            size_hint_y=None,
            height=height * u(),
            **kwargs,
        )
        self.bind(size=self._wrap)
        self._on_tap = on_tap
        self._wrap()

    def _wrap(self, *_: Any) -> None:
        self.text_size = (self.width - 40 * u(), None)

    def on_release(self) -> None:
        self._on_tap()


class Face(ButtonBehavior, Widget):
    """A face drawn with lines (no emoji font needed): ``mood`` -1 (sad) .. 1 (happy)."""

    mood = NumericProperty(0.0)
    level = NumericProperty(0)

    def __init__(
        self, mood: float, colour: tuple[float, ...], on_tap: Callable[[], None], **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.mood = mood
        self._colour = colour
        self._on_tap = on_tap
        self.bind(pos=self._draw, size=self._draw)

    def _draw(self, *_: Any) -> None:
        self.canvas.clear()
        d = min(self.width, self.height) * 0.9
        x = self.center_x - d / 2
        y = self.center_y - d / 2
        with self.canvas:
            Color(*self._colour)
            Ellipse(pos=(x, y), size=(d, d))
            Color(1, 1, 1, 1)
            eye = d * 0.1
            Ellipse(pos=(x + d * 0.3 - eye / 2, y + d * 0.6), size=(eye, eye))
            Ellipse(pos=(x + d * 0.7 - eye / 2, y + d * 0.6), size=(eye, eye))
            # Mouth: a parabola whose curvature is the mood.
            points: list[float] = []
            for i in range(21):
                t = i / 20
                px = x + d * (0.28 + 0.44 * t)
                py = y + d * 0.32 + self.mood * d * 0.14 * (4 * (t - 0.5) ** 2 - 1)
                points += [px, py]
            Line(points=points, width=max(2.0, d * 0.03))

    def on_release(self) -> None:
        self._on_tap()


class Panel(Text):
    """Text on a coloured panel: a notice where a button would be (e.g. no paper: no ticket button)."""

    def __init__(self, text: str, background: tuple[float, ...], **kwargs: Any) -> None:
        super().__init__(text, **kwargs)
        self._background = background
        self.bind(pos=self._paint, size=self._paint)

    def _paint(self, *_: Any) -> None:
        from kivy.graphics import Rectangle

        self.canvas.before.clear()
        with self.canvas.before:
            Color(*self._background)
            Rectangle(pos=self.pos, size=self.size)
