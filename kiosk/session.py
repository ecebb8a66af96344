"""One citizen's visit: everything personal lives here and dies with it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

log = logging.getLogger(__name__)


class Wipeable(Protocol):
    def wipe(self) -> None: ...


@dataclass
class Identity:
    """What the kiosk keeps of a verified ID card for one visit: only what a flow needs.

    The full card record (DG13, photo) is wiped as soon as this is extracted; this too is wiped when
    the session ends.
    """

    full_name: str
    birth_date: date | None
    authenticity: str  # the card's verdict: "genuine" | "not_verified" (drivers/card/verdict.py)
    #: only a genuine card's birth date may grant priority by age (a clone could carry any date)
    birth_date_trusted: bool = False

    def age_on(self, today: date) -> int | None:
        if self.birth_date is None:
            return None
        born = self.birth_date
        return today.year - born.year - ((today.month, today.day) < (born.month, born.day))

    def wipe(self) -> None:
        self.full_name = ""
        self.birth_date = None


@dataclass
class CitizenSession:
    language: str = "vi"
    identity: Identity | None = None
    #: the last ticket number issued in this visit, so a rating can be linked to it
    last_ticket: str | None = None
    _wipeables: list[Wipeable] = field(default_factory=list)

    def hold(self, item: Wipeable) -> None:
        """Register personal data held elsewhere (a card record, a photo) to be wiped with the session."""
        self._wipeables.append(item)

    def wipe(self) -> None:
        for item in self._wipeables:
            item.wipe()
        self._wipeables.clear()
        if self.identity is not None:
            self.identity.wipe()
            self.identity = None
        self.last_ticket = None
        log.info("citizen session wiped")
