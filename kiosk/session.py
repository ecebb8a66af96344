"""One citizen's visit: everything personal lives here and dies with it.

While an identity is held, its values (the name, its words, the birth date in the forms it is written)
are registered in ``common.privacy.SESSION_VALUES``: the journal refuses an event carrying one, and the
log files write ``[redacted]`` instead. Wiping the session releases them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

from common.privacy import SESSION_VALUES

log = logging.getLogger(__name__)


class Wipeable(Protocol):
    def wipe(self) -> None: ...


def date_forms(day: date) -> list[str]:
    """How a birth date is written: on the card's QR, on screens and tickets, in ISO."""
    return [
        day.strftime("%d%m%Y"),
        day.strftime("%d/%m/%Y"),
        f"{day.day}/{day.month}/{day.year}",
        day.strftime("%d-%m-%Y"),
        day.strftime("%d.%m.%Y"),
        day.isoformat(),
    ]


@dataclass
class Identity:
    """What the kiosk keeps of a verified ID card for one visit: only what a flow needs.

    The full card record (DG13, photo) is wiped as soon as this is extracted; this too is wiped when
    the session ends. ``repr`` shows neither the name nor the birth date.
    """

    full_name: str = field(repr=False)
    birth_date: date | None = field(repr=False)
    authenticity: str  # the card's verdict: "genuine" | "not_verified" (drivers/card/verdict.py)
    #: only a genuine card's birth date may grant priority by age (a clone could carry any date)
    birth_date_trusted: bool = False
    #: the card's sex field as printed ("Nam" / "Nữ"): only for "Kính chào ông / bà" on the screen
    sex: str = field(default="", repr=False)

    def age_on(self, today: date) -> int | None:
        if self.birth_date is None:
            return None
        born = self.birth_date
        return today.year - born.year - ((today.month, today.day) < (born.month, born.day))

    def sensitive_values(self) -> Iterator[str]:
        if self.full_name:
            yield self.full_name
        if self.birth_date is not None:
            yield from date_forms(self.birth_date)

    @property
    def honorific_key(self) -> str | None:
        """The catalog key of "ông" / "bà", or None when the card does not say."""
        sex = self.sex.strip().lower()
        if sex in ("nam", "m", "male"):
            return "identify.mister"
        if sex in ("nữ", "nu", "f", "female"):
            return "identify.madam"
        return None

    def wipe(self) -> None:
        self.full_name = ""
        self.birth_date = None
        self.sex = ""


class _HeldIdentity:
    """The session's identity and the values it registered, released together."""

    def __init__(self, identity: Identity) -> None:
        self.identity = identity
        self.values = list(identity.sensitive_values())
        SESSION_VALUES.add(self.values)

    def release(self) -> None:
        self.identity.wipe()
        SESSION_VALUES.discard(self.values)
        self.values = []


@dataclass
class CitizenSession:
    language: str = "vi"
    #: the last ticket number issued in this visit, so a rating can be linked to it
    last_ticket: str | None = None
    _held: _HeldIdentity | None = field(default=None, repr=False)
    _wipeables: list[Wipeable] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        # One visit at a time: what an earlier session object left registered is not current any more.
        SESSION_VALUES.clear()

    @property
    def identity(self) -> Identity | None:
        return self._held.identity if self._held is not None else None

    @identity.setter
    def identity(self, identity: Identity | None) -> None:
        previous, self._held = self._held, (_HeldIdentity(identity) if identity is not None else None)
        if previous is not None and (identity is None or previous.identity is not identity):
            previous.release()

    def hold(self, item: Wipeable) -> None:
        """Register personal data held elsewhere (a card record, a printed ticket's image) to be wiped
        with the session (any thread)."""
        with self._lock:
            self._wipeables.append(item)

    def wipe(self) -> None:
        """Wipe everything personal. The session may go on (an identified citizen who went home)."""
        with self._lock:
            items, self._wipeables = self._wipeables, []
        for item in items:
            try:
                item.wipe()
            except Exception as exc:  # one holder failing must not keep the others' data
                log.error("wiping %s failed: %s", type(item).__name__, type(exc).__name__)
        self.identity = None
        self.last_ticket = None
        log.info("citizen session wiped")
