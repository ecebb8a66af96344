"""Personal text a flow holds for one visit: an address, a phone number, a feedback's words.

While held, each value is registered in ``common.privacy.SESSION_VALUES``: log files write
``[redacted]`` for it and the journal refuses an event carrying it. It is wiped with the session (the
session holds this object) or as soon as the flow has sent it.
"""

from __future__ import annotations

from common.privacy import SESSION_VALUES
from kiosk.flows.base import Effect
from kiosk.session import CitizenSession

#: what the phone field takes as typed (``normalize_phone`` judges it when the citizen goes on)
PHONE_TYPED_MAX = 20


class HeldValues:
    def __init__(self, session: CitizenSession) -> None:
        self._values: dict[str, str] = {}
        session.hold(self)

    def get(self, key: str) -> str:
        return self._values.get(key, "")

    def set(self, key: str, value: str) -> None:
        old = self._values.pop(key, "")
        if old:
            SESSION_VALUES.discard([old])
        if value:
            SESSION_VALUES.add([value])
            self._values[key] = value

    def wipe(self) -> None:
        values, self._values = list(self._values.values()), {}
        SESSION_VALUES.discard(values)

    def __repr__(self) -> str:
        return f"HeldValues(keys={sorted(self._values)})"


class PhoneEntry:
    """The phone number a flow asks for in its ``phone`` state (delivery, feedback): typed into the
    flow's ``HeldValues``; each flow checks it in its own way when the citizen goes on."""

    _held: HeldValues
    state: str
    error_key: str | None

    @property
    def phone(self) -> str:
        return self._held.get("phone")

    def do_set_phone(self, text: str) -> list[Effect]:
        if self.state == "phone":
            self._held.set("phone", text[:PHONE_TYPED_MAX])
            self.error_key = None
        return []
