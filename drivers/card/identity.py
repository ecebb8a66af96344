"""The identity the kiosk gets from a card: verified chip data, with ``wipe()`` for the end of a session.

Personal data lives only here, for one citizen session. ``to_json`` masks it unless asked otherwise,
and ``repr`` never shows it, so an accidental log line or traceback leaks nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import date
from typing import Any

from drivers.card.verdict import NOT_READ, Authenticity, Verdict

__all__ = ["PERSONAL_FIELDS", "Authenticity", "IdentityRecord", "Verdict"]

#: every field that carries personal data (not the verification results nor ``data_groups``)
PERSONAL_FIELDS = (
    "id_number",
    "document_number",
    "full_name",
    "birth_date",
    "sex",
    "nationality",
    "expiry_date",
    "issue_date",
    "ethnicity",
    "religion",
    "place_of_origin",
    "place_of_residence",
    "identifying_marks",
    "father_name",
    "mother_name",
    "spouse_name",
    "old_id_number",
    "photo",
    "photo_mime",
    "extra",
)


def _mask_text(value: str) -> str:
    return value[:1] + "*" * max(0, len(value) - 1) if value else value


@dataclass(repr=False)
class IdentityRecord:
    """Fields of DG13 (Vietnamese text) and DG1, with the verdict on the card."""

    id_number: str = ""
    document_number: str = ""
    full_name: str = ""
    birth_date: date | None = None
    sex: str = ""
    nationality: str = ""
    expiry_date: date | None = None  # None: "Không thời hạn" (no expiry)
    issue_date: date | None = None
    ethnicity: str = ""
    religion: str = ""
    place_of_origin: str = ""
    place_of_residence: str = ""
    identifying_marks: str = ""
    father_name: str = ""
    mother_name: str = ""
    spouse_name: str = ""
    old_id_number: str = ""
    photo: bytes | None = None
    photo_mime: str = ""
    #: DG13 fields this version does not name (number -> text), kept as read
    extra: dict[int, str] = field(default_factory=dict)
    #: genuine / not_verified / failed, with a code and a reason for staff (``verdict.py``)
    verdict: Verdict = NOT_READ
    #: "passed", "failed", "not_supported" (no DG15) or "not_checked"
    active_auth: str = "not_checked"
    #: DG14 chip authentication: "passed", "failed", "not_supported" or "not_checked"
    chip_auth: str = "not_checked"
    data_groups: tuple[int, ...] = ()

    @property
    def authenticity(self) -> Authenticity:
        return self.verdict.authenticity

    @property
    def authenticity_code(self) -> str:
        return self.verdict.code

    @property
    def authenticity_reason(self) -> str:
        return self.verdict.reason

    @property
    def birth_date_trusted(self) -> bool:
        """May the birth date be trusted for priority for the elderly? Only when the card is genuine
        (passive authentication with a trusted CSCA and an authenticated chip)."""
        return self.verdict.birth_date_trusted

    def __repr__(self) -> str:
        return (
            f"IdentityRecord(authenticity={self.authenticity.value}, active_auth={self.active_auth}, "
            f"chip_auth={self.chip_auth}, "
            "<personal data hidden>)"
        )

    def age_on(self, day: date) -> int | None:
        """Age in whole years (the ticket flow's priority for the elderly); None without a birth date."""
        if self.birth_date is None:
            return None
        born = self.birth_date
        return day.year - born.year - ((day.month, day.day) < (born.month, born.day))

    def wipe(self) -> None:
        """Overwrite every personal field (the photo buffer is zeroed where it is ours to zero)."""
        if isinstance(self.photo, bytearray):
            self.photo[:] = bytes(len(self.photo))
        for name in PERSONAL_FIELDS:
            current = getattr(self, name)
            if isinstance(current, str):
                setattr(self, name, "")
            elif isinstance(current, dict):
                current.clear()
            else:
                setattr(self, name, None)

    def is_wiped(self) -> bool:
        return all(getattr(self, name) in ("", None, {}) for name in PERSONAL_FIELDS)

    def to_json(self, *, show_personal_data: bool = False) -> dict[str, Any]:
        """The ``card read --json`` object (dates ISO 8601); personal fields masked unless asked."""
        out: dict[str, Any] = {}
        for item in fields(self):
            name = item.name
            if name in ("photo", "photo_mime", "extra"):
                continue
            value = getattr(self, name)
            if isinstance(value, date):
                value = value.isoformat() if show_personal_data else "****-**-**"
            elif isinstance(value, Verdict):
                out["authenticity"] = value.authenticity.value
                out["authenticity_code"] = value.code
                out["authenticity_reason"] = value.reason
                out["birth_date_trusted"] = value.birth_date_trusted
                continue
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, str) and name in PERSONAL_FIELDS and not show_personal_data:
                value = _mask_text(value)
            out[name] = value
        out["extra"] = {str(k): (v if show_personal_data else _mask_text(v)) for k, v in self.extra.items()}
        out["photo_bytes"] = len(self.photo) if self.photo else 0
        return out
