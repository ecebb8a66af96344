"""One exception family for the whole project.

Each layer raises its own subclass; library errors (pyscard, pyserial, paho, sqlite) are translated at
the border where they happen. Every error carries an English message for logs and technicians, an
optional catalog key for the Vietnamese text a citizen sees, and an exit code for the CLI.
"""

from __future__ import annotations


class KioskError(Exception):
    """Base of every error this project raises on purpose."""

    exit_code: int = 1
    #: catalog key of the message shown on screen; screens fall back to ``error.generic``
    screen_key: str = "error.generic"

    def __init__(self, message: str, *, screen_key: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if screen_key is not None:
            self.screen_key = screen_key

    def to_dict(self) -> dict[str, str]:
        """Machine-readable form for ``--json`` CLI output and command results."""
        return {"type": type(self).__name__, "message": self.message, "screen_key": self.screen_key}


class ConfigError(KioskError):
    """Invalid configuration: the message names the key and what is expected."""

    exit_code = 78  # EX_CONFIG


class DeviceError(KioskError):
    """A device is missing, failed, or answered something we cannot use."""

    exit_code = 74  # EX_IOERR
    screen_key = "error.device"


class DeviceUnavailableError(DeviceError):
    """The device is not connected or cannot be opened."""

    exit_code = 69  # EX_UNAVAILABLE


class PrinterError(DeviceError):
    screen_key = "printer.error"


class PaperOutError(PrinterError):
    screen_key = "printer.paper_out"


class ScannerError(DeviceError):
    screen_key = "scanner.error"


class CardError(DeviceError):
    """Base of the ID-card stack's errors (transport, access control, secure messaging, parsing)."""

    screen_key = "card.read_failed"


class NetworkError(KioskError):
    """A remote system (broker, allocator, province back end) cannot be reached."""

    exit_code = 69
    screen_key = "error.network"


class FlowError(KioskError):
    """A flow was asked for a transition its current state does not allow (a programming error)."""
