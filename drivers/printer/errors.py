"""Why a print did not happen; each carries the status that said so and when it was seen."""

from __future__ import annotations

from typing import Literal

from kiosk.errors import PaperOutError, PrinterError

from .model import PrinterStatus

Stage = Literal["before", "after"]


class PrinterPaperOutError(PaperOutError):
    """No paper: before printing (nothing printed) or after (the ticket may be torn off short)."""

    def __init__(self, message: str, *, status: PrinterStatus, stage: Stage) -> None:
        super().__init__(message)
        self.status = status
        self.stage = stage


class PrinterCoverOpenError(PrinterError):
    screen_key = "printer.cover_open"

    def __init__(self, message: str, *, status: PrinterStatus, stage: Stage) -> None:
        super().__init__(message)
        self.status = status
        self.stage = stage


class PrinterOfflineError(PrinterError):
    """The printer did not answer DLE EOT (switched off, unplugged) or reports itself offline."""

    screen_key = "printer.offline"

    def __init__(self, message: str, *, status: PrinterStatus, stage: Stage) -> None:
        super().__init__(message)
        self.status = status
        self.stage = stage


def failure(status: PrinterStatus, stage: Stage, device: str) -> PrinterError:
    """The exception for a status whose ``problem`` is set, with a message a technician can act on."""
    when = "before printing; nothing was printed" if stage == "before" else "after sending the ticket"
    if status.problem == "paper_out":
        return PrinterPaperOutError(f"{device}: out of paper {when}", status=status, stage=stage)
    if status.problem == "cover_open":
        return PrinterCoverOpenError(f"{device}: cover open {when}", status=status, stage=stage)
    return PrinterOfflineError(f"{device}: offline or not answering {when}", status=status, stage=stage)
