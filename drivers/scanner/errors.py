"""Errors of the QR scanners (camera, serial line scanner, decoders)."""

from __future__ import annotations

from common.errors import DeviceError, DeviceUnavailableError


class ScannerError(DeviceError):
    """A scanner or its decoder failed."""

    code = "scanner_error"


class ScannerUnavailable(ScannerError, DeviceUnavailableError):
    """The configured scanner cannot be opened (unplugged, or its backend is not installed)."""

    code = "scanner_unavailable"
