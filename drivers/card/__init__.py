"""The ID-card (CCCD) stack: ICAO 9303 reader over PC/SC and a virtual chip, layered like JMRTD.

transport (PC/SC or in-process) -> access control (BAC) -> secure messaging -> file reader -> LDS
parsers -> passive authentication -> ``CardReaderService`` for the kiosk. Names are re-exported lazily
so that importing this package costs nothing (no pyscard, no cryptography until used).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "AccessKey": "drivers.card.keys",
    "access_keys_from_cccd_qr": "drivers.card.keys",
    "IdentityRecord": "drivers.card.identity",
    "Authenticity": "drivers.card.identity",
    "CardReaderService": "drivers.card.service",
    "ensure_pcscd": "drivers.card.pcscd",
    "VirtualCard": "drivers.card.sim.vicc",
    "CardProfile": "drivers.card.sim.profile",
    "CardFaults": "drivers.card.sim.chip",
    "load_profile": "drivers.card.sim.profile",
    "TestPki": "drivers.card.sim.pki",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from drivers.card.identity import Authenticity as Authenticity
    from drivers.card.identity import IdentityRecord as IdentityRecord
    from drivers.card.keys import AccessKey as AccessKey
    from drivers.card.keys import access_keys_from_cccd_qr as access_keys_from_cccd_qr
    from drivers.card.pcscd import ensure_pcscd as ensure_pcscd
    from drivers.card.service import CardReaderService as CardReaderService
    from drivers.card.sim.chip import CardFaults as CardFaults
    from drivers.card.sim.pki import TestPki as TestPki
    from drivers.card.sim.profile import CardProfile as CardProfile
    from drivers.card.sim.profile import load_profile as load_profile
    from drivers.card.sim.vicc import VirtualCard as VirtualCard


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'drivers.card' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
