"""Text that may be printed: the one filter every text field passes before it becomes printer bytes.

Ticket and slip fields come from places the printer cannot trust: the center's configuration, the
citizen's ID card, the province's look-up system. In native mode the printer reads text bytes as
commands when they are control codes (``ESC p`` pulses the cash drawer, ``ESC d 255`` feeds a metre
of paper, ``GS V`` cuts), and Unicode format characters (bidi overrides, zero-width characters) make
printed text differ from what was checked. So, for raster and native mode alike:

- NFC, so Vietnamese stays one precomposed code point per letter;
- tab, line and paragraph breaks become a space (the layout does its own wrapping);
- every other "other" character (Unicode category C: Cc controls C0/C1, Cf format characters such
  as U+202E or U+200B, Cs lone surrogates, Co private use, Cn unassigned) is removed;
- a run of more than two combining marks on one letter is cut to two (Vietnamese needs at most
  two, and only before NFC; a stack of hundreds would overprint the lines above);
- each field is cut to a length (with "…").
"""

from __future__ import annotations

import unicodedata

from .errors import PrinterError

#: longest field (a name, a service, one label or value of a slip); real ones are under 100
MAX_FIELD_CHARS = 200
#: longest line element after fields were joined ("label: value")
MAX_LINE_CHARS = 2 * MAX_FIELD_CHARS + 8
#: label/value lines of one slip; more are replaced by one "…" line
MAX_DOCUMENT_LINES = 60
#: counters listed on one ticket
MAX_COUNTERS = 16
#: QR payload in UTF-8 bytes: a ticket or dossier link is ~60; at 6 dots a module a bigger symbol
#: no longer fits the paper
MAX_QR_BYTES = 512
#: combining marks kept on one base letter
MAX_COMBINING = 2

ELLIPSIS = "…"
_BREAKS = {"\t", "\n", "\v", "\f", "\r", "\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\u2028", "\u2029"}


class PrinterContentError(PrinterError):
    """Content the printer refuses to print as given (a QR payload too long or not encodable);
    nothing is sent."""

    code = "printer_content_refused"


def printable(text: str, limit: int = MAX_FIELD_CHARS) -> str:
    """``text`` as it may be printed (see the module doc); idempotent."""
    out: list[str] = []
    marks = 0
    for ch in unicodedata.normalize("NFC", str(text)):
        if ch in _BREAKS:
            out.append(" ")
            marks = 0
            continue
        category = unicodedata.category(ch)
        if category[0] == "C":
            continue
        if unicodedata.combining(ch) or category in ("Mn", "Me"):
            if marks >= MAX_COMBINING or not out:
                continue
            marks += 1
        else:
            marks = 0
        out.append(ch)
    # Removing a character may have put a letter and a mark side by side: compose them.
    cleaned = unicodedata.normalize("NFC", "".join(out)).strip()
    if len(cleaned) > limit:
        cleaned = cleaned[: max(0, limit - 1)].rstrip() + ELLIPSIS
    return cleaned


def qr_payload(data: str) -> bytes:
    """A QR payload as the printer stores it (UTF-8), or PrinterContentError. Not filtered: GS ( k
    carries its length, so the printer never reads the payload as commands; but a payload that cannot
    be encoded or does not fit the paper is refused rather than cut (a cut link points elsewhere)."""
    try:
        raw = str(data).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise PrinterContentError(f"QR payload is not valid text ({exc.reason})") from exc
    if len(raw) > MAX_QR_BYTES:
        raise PrinterContentError(f"QR payload of {len(raw)} bytes; at most {MAX_QR_BYTES} fit the paper")
    return raw
