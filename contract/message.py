"""The base of every message type: one frozen dataclass, one way to build its payload, one to parse it.

``parse`` takes the raw bytes of an MQTT payload and returns the typed message or raises
``ContractError`` (nothing else, whatever the bytes). ``to_payload`` is the only way a payload is
built. The ``schema`` field (``"status/1"``) names the type and its major version:

- a consumer accepts the current major and the previous one (``upgrade_previous`` turns an old
  message into the current shape), so a province can upgrade its kiosks over weeks;
- a minor change only adds optional fields: reports from kiosks are parsed leniently (unknown keys
  ignored), while what the center sends to a kiosk (``STRICT``) refuses unknown keys, so a typo in a
  command is an error, not a silent no-op.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Self

from contract.errors import ContractError
from contract.schema import parse_dataclass, to_data
from contract.wire import dumps, loads_object


class Message:
    """Mixin for the frozen dataclasses of the contract (see the module docstring)."""

    SCHEMA: ClassVar[str]
    #: largest payload accepted (and built) for this type
    MAX_BYTES: ClassVar[int] = 16 * 1024
    #: unknown keys refused (center -> kiosk) instead of ignored (kiosk -> center reports)
    STRICT: ClassVar[bool] = False

    @classmethod
    def type_name(cls) -> str:
        return cls.SCHEMA.split("/", 1)[0]

    @classmethod
    def major(cls) -> int:
        return int(cls.SCHEMA.split("/", 1)[1])

    @classmethod
    def upgrade_previous(cls, data: dict[str, Any]) -> dict[str, Any] | None:
        """The data of a message of the previous major version in the current shape; None when this
        type has no previous major (then such a message is refused)."""
        return None

    @classmethod
    def parse(cls, payload: bytes) -> Self:
        return cls.from_data(loads_object(payload, cls.type_name(), cls.MAX_BYTES))

    @classmethod
    def body_of(cls, data: Any) -> dict[str, Any]:
        """``data`` without its ``schema`` after checking it: this major, or the previous one upgraded."""
        name = cls.type_name()
        if not isinstance(data, dict):
            raise ContractError(f"{name}: expected a JSON object")
        body = dict(data)
        schema = body.pop("schema", None)
        if schema != cls.SCHEMA:
            previous = f"{name}/{cls.major() - 1}"
            upgraded = cls.upgrade_previous(body) if schema == previous else None
            if upgraded is None:
                raise ContractError(f"{name}.schema: expected {cls.SCHEMA!r}, got {str(schema)[:40]!r}")
            body = upgraded
        return body

    @classmethod
    def from_data(cls, data: Any) -> Self:
        """The typed message of already-decoded JSON (e.g. an element of a larger document)."""
        message: Self = parse_dataclass(cls, cls.body_of(data), cls.type_name(), lenient=not cls.STRICT)
        return message

    def to_data(self) -> dict[str, Any]:
        if not dataclasses.is_dataclass(self):
            raise TypeError(f"{type(self).__name__} must be a dataclass")
        body: dict[str, Any] = {"schema": self.SCHEMA}
        body.update(to_data(self))
        return body

    def to_payload(self) -> bytes:
        payload = dumps(self.to_data())
        if len(payload) > self.MAX_BYTES:
            raise ContractError(
                f"{self.type_name()}: {len(payload)} bytes, more than the {self.MAX_BYTES} allowed"
            )
        return payload
