"""Fee payment codes: the VietQR (NAPAS, EMVCo merchant-presented) payload for a dossier's fee.

Importing this package does no I/O and loads no QR library; ``render_png`` loads segno on first use.
"""

from kiosk.payments.vietqr import (
    VietQrError,
    VietQrPayment,
    build_vietqr,
    crc16_ccitt_false,
    format_vnd,
    parse_vietqr,
    render_png,
)

__all__ = [
    "VietQrError",
    "VietQrPayment",
    "build_vietqr",
    "crc16_ccitt_false",
    "format_vnd",
    "parse_vietqr",
    "render_png",
]
