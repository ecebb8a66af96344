"""Personal text a flow holds for one visit: an address, a phone number, a feedback's words.

While held, each value is registered in ``common.privacy.SESSION_VALUES``: log files write
``[redacted]`` for it and the journal refuses an event carrying it. It is wiped with the session (the
session holds this object) or as soon as the flow has sent it.
"""

from __future__ import annotations

from common.privacy import SESSION_VALUES
from kiosk.session import CitizenSession


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
