"""Errors of the printers: why a print did not happen, with the status that said so and when."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from common.errors import DeviceError, DeviceUnavailableError

if TYPE_CHECKING:
    from .model import PrinterStatus

Stage = Literal["before", "after"]


class PrinterError(DeviceError):
    """A printer failed or cannot print now."""

    code = "printer_error"


class PrinterUnavailableError(PrinterError, DeviceUnavailableError):
    """The printer cannot be opened (not connected, wrong port or address, no permission)."""

    code = "printer_unavailable"


class PrinterStateError(PrinterError):
    """The printer reported a state that stops printing; ``status`` and ``stage`` say which and when."""

    def __init__(self, message: str, *, status: PrinterStatus | None = None, stage: Stage = "before") -> None:
        super().__init__(message)
        self.status = status
        self.stage = stage


class PrinterPaperOutError(PrinterStateError):
    """No paper: before printing (nothing printed) or after (the ticket may be torn off short)."""

    code = "printer_paper_out"


class PrinterCoverOpenError(PrinterStateError):
    code = "printer_cover_open"


class PrinterOfflineError(PrinterStateError):
    """The printer did not answer DLE EOT (switched off, unplugged) or reports itself offline."""

    code = "printer_offline"


class PrinterTextError(PrinterError):
    """Text the printer cannot render (a glyph missing from the font, an unsupported code page)."""

    code = "printer_text"


def failure(status: PrinterStatus, stage: Stage, device: str) -> PrinterStateError:
    """The exception for a status whose ``problem`` is set, with a message a technician can act on."""
    when = "before printing; nothing was printed" if stage == "before" else "after sending the ticket"
    if status.problem == "paper_out":
        return PrinterPaperOutError(f"{device}: out of paper {when}", status=status, stage=stage)
    if status.problem == "cover_open":
        return PrinterCoverOpenError(f"{device}: cover open {when}", status=status, stage=stage)
    return PrinterOfflineError(f"{device}: offline or not answering {when}", status=status, stage=stage)
