"""Widgets every screen uses: big touch targets, text that wraps, hand-drawn rating faces.

Sizes are in design pixels of the 1080x1920 portrait layout times ``app.u`` (window height / 1920),
so the same layout fits the hall's screen and a technician's laptop window.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kivy.app import App
from kivy.clock import Clock
from kivy.graphics import Color, Ellipse, Line
from kivy.properties import NumericProperty, StringProperty
from kivy.uix.behaviors import ButtonBehavior
from kivy.uix.button import Button
from kivy.uix.gridlayout import GridLayout
from kivy.uix.label import Label
from kivy.uix.widget import Widget
from kivy.utils import escape_markup

# Every text colour has at least 7:1 contrast with its background (WCAG AAA), white on a button or
# dark on the page (0.96, 0.97, 0.99); tests/ui measure it on the rendered screens (docs/ux.md).
BLUE = (0.05, 0.28, 0.63, 1)  # 8.6:1 with white
DARK = (0.1, 0.1, 0.12, 1)  # 16:1 on the page
GREY = (0.3, 0.3, 0.34, 1)  # 8.4:1: secondary buttons and small print, never a disabled look
RED = (0.6, 0.05, 0.05, 1)  # 8.7:1
GREEN = (0.02, 0.33, 0.1, 1)  # 9.2:1
AMBER = (0.45, 0.23, 0.0, 1)  # 9.0:1: priority and chosen items (dark amber: white text stays legible)
PAGE = (0.96, 0.97, 0.99, 1)
#: a light panel behind a notice or a result card (dark text on it: > 13:1)
PANEL = (0.86, 0.9, 0.97, 1)
WARM_PANEL = (1, 0.95, 0.8, 1)
#: smallest text a citizen must read and smallest touch target, in design pixels (issue 14)
MIN_TEXT = 40
MIN_TARGET = 120
#: the "Chữ lớn" mode's factor on every text
LARGE_TEXT = 1.3


def esc(value: object) -> str:
    """Text shown inside a ``markup=True`` label exactly as written: a pushed service name, an
    official's name, the province's dossier fields or what a citizen typed may hold ``[``, ``]`` or
    ``&``, which Kivy would otherwise read as tags (``[size=300]``, ``[color=...]``)."""
    return str(escape_markup(str(value)))


def u() -> float:
    app = App.get_running_app()
    return float(app.u) if app is not None else 0.5


def text_scale() -> float:
    """1, or ``LARGE_TEXT`` while the citizen asked for large text."""
    app = App.get_running_app()
    return LARGE_TEXT if app is not None and getattr(app, "large_text", False) else 1.0


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
            font_size=size * u() * text_scale(),
            color=color,
            bold=bold,
            halign=halign,
            valign="middle",
            size_hint_y=None,
            **kwargs,
        )
        #: design size before "Chữ lớn": what the size checks compare with MIN_TEXT
        self.design_size = size
        self.bind(width=self._wrap, texture_size=self._grow)
        self._wrap()

    def _wrap(self, *_: Any) -> None:
        self.text_size = (self.width - 20 * u(), None)

    def _grow(self, *_: Any) -> None:
        self.height = self.texture_size[1] + 16 * u()


class BigButton(Button):
    """A touch target at least ``MIN_TARGET`` design pixels each way (elderly fingers, gloves, haste);
    it grows with its text so a wrapped label never spills out."""

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
            font_size=size * u() * text_scale(),
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
        self.design_size = size
        self._min_height = height * u()
        self.bind(size=self._wrap, texture_size=self._grow)
        self._on_tap = on_tap
        self._wrap()

    def _wrap(self, *_: Any) -> None:
        self.text_size = (self.width - 40 * u(), None)

    def natural_height(self) -> float:
        return float(max(self._min_height, self.texture_size[1] + 40 * u()))

    def _grow(self, *_: Any) -> None:
        if self.size_hint_y is None:
            self.height = max(self.natural_height(), getattr(self, "row_height", 0.0))

    def on_release(self) -> None:
        self._on_tap()


class EvenGrid(GridLayout):
    """A grid of big buttons, each row as tall as its tallest (a wrapped label makes its whole row
    taller, so the row lines up and nothing is ragged)."""

    def __init__(self, cols: int, spacing: float = 20, **kwargs: Any) -> None:
        super().__init__(cols=cols, size_hint_y=None, spacing=spacing * u(), **kwargs)
        self.bind(minimum_height=self.setter("height"))

    def add_widget(self, widget: Any, *args: Any, **kwargs: Any) -> None:
        super().add_widget(widget, *args, **kwargs)
        if isinstance(widget, BigButton):  # a cell with an officer's photo keeps its own height
            widget.bind(texture_size=self._even, width=self._even)
            self._even()

    def _even(self, *_: Any) -> None:
        # Row by row: one wrapped name makes its own row taller, not every row of the grid (on the
        # home screen that cost a whole button's height and pushed the last row off the screen).
        cells = list(reversed(self.children))  # Kivy keeps children last-added first
        cols = int(self.cols or 1)
        for start in range(0, len(cells), cols):
            buttons = [c for c in cells[start : start + cols] if isinstance(c, BigButton)]
            if not buttons:
                continue
            tallest = max(b.natural_height() for b in buttons)
            for button in buttons:
                button.row_height = tallest
                button._grow()


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
        redraw = Clock.create_trigger(self._draw)
        self.bind(pos=redraw, size=redraw)

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
        repaint = Clock.create_trigger(self._paint)
        self.bind(pos=repaint, size=repaint)

    def _paint(self, *_: Any) -> None:
        from kivy.graphics import Rectangle

        self.canvas.before.clear()
        with self.canvas.before:
            Color(*self._background)
            Rectangle(pos=self.pos, size=self.size)


class IconButton(BigButton):
    """A big button with a white line icon on its left (drawn: no icon font or image files needed)."""

    ICON = 80  # design pixels

    def __init__(
        self, text: str, on_tap: Callable[[], None], icon: str, *, above: bool = False, **kwargs: Any
    ) -> None:
        self.icon = icon
        self.above = above  # the icon over the text (half-width buttons), else on the left
        super().__init__(text, on_tap, **kwargs)
        # Drawn on the frame after the last move: a grid that evens its rows moves a button several
        # times in one layout pass, and an icon drawn in between stayed behind.
        self._redraw = Clock.create_trigger(self._draw_icon)
        self.bind(pos=self._redraw, size=self._redraw, texture_size=self._redraw)

    def _wrap(self, *_: Any) -> None:
        if self.above:
            self.text_size = (self.width - 40 * u(), None)
            self.padding = [0, (self.ICON + 16) * u(), 0, 0]  # the icon sits in the top padding
        else:
            # Centred text, clear of the icon's square on the left (and as much on the right).
            self.text_size = (max(10.0, self.width - 2 * (self.ICON + 40) * u()), None)

    def _draw_icon(self, *_: Any) -> None:
        from kivy.graphics import Rectangle

        self.canvas.after.clear()
        side = self.ICON * u()
        if self.above:
            x = self.center_x - side / 2
            y = self.center_y + self.texture_size[1] / 2 - side
        else:
            x = self.x + 30 * u()
            y = self.center_y - side / 2
        w = max(2.0, side * 0.07)
        with self.canvas.after:
            Color(1, 1, 1, 1)
            if self.icon == "ticket":  # a slip with lines of text
                Line(rectangle=(x + side * 0.2, y, side * 0.6, side), width=w)
                for i in range(3):
                    yy = y + side * (0.3 + 0.2 * i)
                    Line(points=[x + side * 0.32, yy, x + side * 0.68, yy], width=w * 0.8)
            elif self.icon == "search":  # a magnifier
                Line(circle=(x + side * 0.42, y + side * 0.58, side * 0.3), width=w)
                Line(
                    points=[x + side * 0.63, y + side * 0.37, x + side * 0.95, y + side * 0.05], width=w * 1.4
                )
            elif self.icon == "face":  # a smile
                Line(circle=(x + side / 2, y + side / 2, side * 0.45), width=w)
                Ellipse(pos=(x + side * 0.3, y + side * 0.55), size=(side * 0.1, side * 0.1))
                Ellipse(pos=(x + side * 0.6, y + side * 0.55), size=(side * 0.1, side * 0.1))
                Line(circle=(x + side / 2, y + side * 0.5, side * 0.25, 120, 240), width=w)
            elif self.icon == "card":  # an ID card with its chip
                Line(rectangle=(x, y + side * 0.2, side, side * 0.6), width=w)
                Rectangle(pos=(x + side * 0.12, y + side * 0.42), size=(side * 0.2, side * 0.16))
            elif self.icon == "priority":  # a person with a walking stick
                Line(circle=(x + side * 0.45, y + side * 0.85, side * 0.12), width=w)
                Line(points=[x + side * 0.45, y + side * 0.72, x + side * 0.45, y + side * 0.35], width=w)
                Line(points=[x + side * 0.45, y + side * 0.35, x + side * 0.3, y], width=w)
                Line(points=[x + side * 0.45, y + side * 0.35, x + side * 0.6, y], width=w)
                Line(points=[x + side * 0.45, y + side * 0.6, x + side * 0.75, y + side * 0.45], width=w)
                Line(points=[x + side * 0.75, y + side * 0.5, x + side * 0.8, y], width=w)


class CardReaderPicture(Widget):
    """Where the card goes: the kiosk's front with the reader below the screen and a card above it."""

    def __init__(self, height: float = 360, **kwargs: Any) -> None:
        super().__init__(size_hint_y=None, height=height * u(), **kwargs)
        redraw = Clock.create_trigger(self._draw)
        self.bind(pos=redraw, size=redraw)

    def _draw(self, *_: Any) -> None:
        from kivy.graphics import Rectangle

        self.canvas.clear()
        s = self.height
        x = self.center_x - s * 0.6
        y = self.y
        with self.canvas:
            Color(*BLUE)
            Line(rectangle=(x, y + s * 0.35, s * 1.2, s * 0.62), width=3)  # the screen
            Color(*DARK)
            Rectangle(pos=(x + s * 0.25, y + s * 0.05), size=(s * 0.7, s * 0.14))  # the reader
            Color(*AMBER)
            Line(points=[self.center_x, y + s * 0.33, self.center_x, y + s * 0.22], width=4)  # arrow
            Line(
                points=[
                    self.center_x - s * 0.05,
                    y + s * 0.27,
                    self.center_x,
                    y + s * 0.21,
                    self.center_x + s * 0.05,
                    y + s * 0.27,
                ],
                width=4,
            )
            Color(*GREEN)
            Rectangle(pos=(x + s * 0.38, y + s * 0.16), size=(s * 0.44, s * 0.06))  # the card on it


class CardFrontPicture(Widget):
    """The card's front with its 6-digit number marked (the CAN, printed at the bottom right)."""

    def __init__(self, height: float = 220, **kwargs: Any) -> None:
        super().__init__(size_hint_y=None, height=height * u(), **kwargs)
        redraw = Clock.create_trigger(self._draw)
        self.bind(pos=redraw, size=redraw)

    def _draw(self, *_: Any) -> None:
        from kivy.graphics import Rectangle

        self.canvas.clear()
        h = self.height
        w = h * 1.58  # ID-1 card proportions
        x = self.center_x - w / 2
        y = self.y
        with self.canvas:
            Color(*PANEL)
            Rectangle(pos=(x, y), size=(w, h))
            Color(*BLUE)
            Line(rectangle=(x, y, w, h), width=2)
            Color(*GREY)
            Rectangle(pos=(x + w * 0.06, y + h * 0.3), size=(w * 0.22, h * 0.5))  # the photo
            for i in range(3):
                Rectangle(pos=(x + w * 0.34, y + h * (0.65 - 0.15 * i)), size=(w * 0.5, h * 0.05))
            Color(*RED)
            Line(rectangle=(x + w * 0.62, y + h * 0.06, w * 0.32, h * 0.16), width=3)  # the 6 digits
