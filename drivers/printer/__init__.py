"""Ticket and slip printing on ESC/POS thermal printers, plus the virtual printer.

The kiosk app uses only the names below. Importing this package is cheap: Pillow, segno and
python-escpos load on first use (python-escpos with its import side effects contained).
"""

from __future__ import annotations

from .errors import (
    PrinterCoverOpenError,
    PrinterError,
    PrinterOfflineError,
    PrinterPaperOutError,
    PrinterStateError,
    PrinterTextError,
    PrinterUnavailableError,
)
from .model import DocumentContent, PrinterConfig, PrinterStatus, PrintReport, TicketContent
from .printer import TicketPrinter, open_printer, open_printers
from .simulator import VirtualPrinter

__all__ = [
    "DocumentContent",
    "PrintReport",
    "PrinterConfig",
    "PrinterCoverOpenError",
    "PrinterError",
    "PrinterOfflineError",
    "PrinterPaperOutError",
    "PrinterStateError",
    "PrinterStatus",
    "PrinterTextError",
    "PrinterUnavailableError",
    "TicketContent",
    "TicketPrinter",
    "VirtualPrinter",
    "open_printer",
    "open_printers",
]
