"""Errors of the kiosk app's own layer, on the neutral base of ``common.errors``.

Device errors belong to their driver family (``drivers.card.errors``, ``drivers.printer.errors``,
``drivers.scanner``); what a citizen sees for any error is one table, ``kiosk.error_screens``.
"""

from __future__ import annotations

from common.errors import MotcuaError


class KioskError(MotcuaError):
    """Base of the errors the kiosk's own modules raise (ticketing, ratings, look-ups, the journal)."""

    code = "kiosk"


class FlowError(RuntimeError):
    """A flow was asked for a transition its current state does not allow: a programming error, so not
    a ``MotcuaError`` (the core logs it with its traceback and returns the citizen home)."""
