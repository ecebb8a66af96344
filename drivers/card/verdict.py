"""The verdict on a card: genuine, not verified, or failed, with a machine code and a reason for staff.

One verdict covers everything a read proves: passive authentication (data group hashes, the EF.SOD
signature, the document signer's certificate path to a CSCA of the trust folder, its CRL) and the chip
itself (chip authentication with DG14, or active authentication with DG15). Never rounded up:

- ``genuine``: the data is signed by a trusted CSCA's document signer AND the chip proved it holds the
  private key of its DG14 or DG15 (a clone with copied files cannot). Only then is the birth date
  trusted for priority.
- ``failed``: the card's own evidence contradicts it: altered data, a signature or certificate that does
  not verify, an expired or revoked document signer, a chip that fails chip or active authentication.
- ``not_verified``: what is needed to decide is missing: no trust folder, a CSCA the folder does not
  hold (or holds unusable), no EF.SOD, or a chip that offers no chip/active authentication.

Reasons are English for staff and logs and carry no personal data (certificate facts only).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Authenticity(StrEnum):
    """The outcome of the verdict (``IdentityRecord.authenticity``)."""

    GENUINE = "genuine"
    NOT_VERIFIED = "not_verified"
    FAILED = "failed"


@dataclass(frozen=True)
class Verdict:
    authenticity: Authenticity
    #: stable snake-case code for machines (events, the kiosk's mapping), e.g. ``ds_expired``
    code: str
    #: English, for staff and logs; never personal data
    reason: str

    @property
    def genuine(self) -> bool:
        return self.authenticity is Authenticity.GENUINE

    @property
    def birth_date_trusted(self) -> bool:
        """May the birth date be trusted, e.g. for priority for the elderly? Only on a genuine card."""
        return self.genuine

    def to_dict(self) -> dict[str, str]:
        return {"authenticity": self.authenticity.value, "code": self.code, "reason": self.reason}


def genuine(code: str, reason: str) -> Verdict:
    return Verdict(Authenticity.GENUINE, code, reason)


def not_verified(code: str, reason: str) -> Verdict:
    return Verdict(Authenticity.NOT_VERIFIED, code, reason)


def failed(code: str, reason: str) -> Verdict:
    return Verdict(Authenticity.FAILED, code, reason)


#: the verdict of a record no read has filled in yet
NOT_READ = not_verified("not_read", "no card has been read into this record")
NO_SOD = not_verified("no_sod", "the card has no readable EF.SOD: its data cannot be verified")


def overall(passive: Verdict, chip_auth: str, active_auth: str) -> Verdict:
    """Passive authentication's verdict combined with chip authentication (DG14) and active
    authentication (DG15); each of those is "passed", "failed", "not_supported" or "not_checked".

    Failures first (any proof against the card decides), then what could not be verified; genuine only
    when passive authentication is genuine and the chip authenticated itself.
    """
    if passive.authenticity is Authenticity.FAILED:
        return passive
    if chip_auth == "failed":
        return failed(
            "chip_auth_failed",
            "chip authentication failed: the chip does not prove it holds the DG14 key (cloned chip?)",
        )
    if active_auth == "failed":
        return failed(
            "active_auth_failed",
            "active authentication failed: the chip's signature does not verify with the DG15 key "
            "(cloned chip?)",
        )
    if passive.authenticity is Authenticity.NOT_VERIFIED:
        return passive
    if chip_auth == "passed":
        return genuine("verified", f"{passive.reason}; chip authentication passed")
    if active_auth == "passed":
        return genuine("verified", f"{passive.reason}; active authentication passed")
    return not_verified(
        "chip_not_authenticated",
        "the data is signed by a trusted issuer, but the chip was not authenticated (neither chip nor "
        "active authentication was performed): a copy of the chip cannot be ruled out",
    )
