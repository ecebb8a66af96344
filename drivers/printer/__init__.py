"""Ticket and slip printing on ESC/POS thermal printers, plus the virtual printer.

The kiosk app uses only the names below. Importing this package is cheap: Pillow, segno and
python-escpos load on first use (python-escpos with its import side effects contained).
"""

from __future__ import annotations

from .errors import PrinterCoverOpenError, PrinterOfflineError, PrinterPaperOutError
from .model import DocumentContent, PrinterConfig, PrinterStatus, PrintReport, TicketContent
from .printer import TicketPrinter, device_events, open_printer, open_printers
from .simulator import VirtualPrinter

__all__ = [
    "DocumentContent",
    "PrintReport",
    "PrinterConfig",
    "PrinterCoverOpenError",
    "PrinterOfflineError",
    "PrinterPaperOutError",
    "PrinterStatus",
    "TicketContent",
    "TicketPrinter",
    "VirtualPrinter",
    "device_events",
    "open_printer",
    "open_printers",
]
