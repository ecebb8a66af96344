"""The neutral base of every error this project raises on purpose.

Each layer owns its errors (drivers per device family, the kiosk, the agent, the center) as
subclasses of the kinds below; library errors (pyscard, pyserial, paho, sqlite) are translated at the
border where they happen. An error carries an English message a technician can act on (never
personal data) and a stable ``code`` for machines (command results, health, logs). What a citizen
sees for an error is decided by the kiosk (``kiosk.error_screens``); the exit code of a command by
``common.entry``. A programming error is not a ``MotcuaError``: it stays a plain Python exception.
"""

from __future__ import annotations


class MotcuaError(Exception):
    """Base of every error raised on purpose."""

    #: stable machine-readable code, snake case; subclasses override it
    code: str = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, str]:
        """For ``--json`` CLI output, control-socket answers and command results."""
        return {"type": type(self).__name__, "code": self.code, "message": self.message}


class ConfigError(MotcuaError):
    """Invalid configuration or arguments: the message names the key and what is expected."""

    code = "config"


class DeviceError(MotcuaError):
    """A device is missing, failed, or answered something we cannot use."""

    code = "device"


class DeviceUnavailableError(DeviceError):
    """The device is not connected or cannot be opened."""

    code = "device_unavailable"


class NetworkError(MotcuaError):
    """A remote party (broker, allocator, the kiosk app's socket, a back end) cannot be reached."""

    code = "network"


class StoreError(MotcuaError):
    """A local file or database cannot be opened or written (disk full, corrupted, permissions)."""

    code = "store"


class NotFoundError(MotcuaError):
    """The object does not exist, or lies outside the caller's scope (the center does not say which)."""

    code = "not_found"


class ConflictError(MotcuaError):
    """The write contradicts what is stored: a duplicate name, a version that does not grow."""

    code = "conflict"


class ValidationError(MotcuaError):
    """Input refused before anything is touched (a bad role, a bad address, a malformed form field)."""

    code = "invalid"


class PermissionDeniedError(MotcuaError):
    """The caller's role does not allow the action."""

    code = "permission_denied"
