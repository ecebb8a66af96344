"""The guards of every exit (security review item 6): the journal looks at keys in any spelling and at
values; log text loses whatever is shaped like personal data; tracebacks keep where, not what; reprs
of what holds personal data show none of it."""

from __future__ import annotations

import dataclasses
import logging
from datetime import date, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest

from common.journal import EventJournal, PrivacyError
from common.privacy import SESSION_VALUES, ScrubbingFormatter, safe_traceback, scrub_text
from contract.events import DeviceFault, EventPayload, JournalRecovered, Lookup, TicketIssued

QR = "079123456789|123456789|Nguyễn Văn An|01011990|Nam|Hà Nội|01012021"


@dataclasses.dataclass(frozen=True)
class Careless(EventPayload):
    """What a careless new payload type could carry: free-form data the journal must check itself."""

    KIND: ClassVar[str] = "device_fault"
    device: str = "printer"
    problem: str = "offline"
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


@pytest.fixture
def journal(tmp_path: Path):
    made = EventJournal(tmp_path / "events.sqlite")
    yield made
    made.close()


@pytest.mark.parametrize(
    "key",
    ["fullName", "FullName", "full-name", "ho_ten", "hoTen", "họ_tên", "HO_TEN", "dob", "DOB", "cccd",
     "so_cccd", "soCCCD", "ngay_sinh", "ngaySinh", "dia_chi", "diaChi", "que_quan", "noi_thuong_tru",
     "so_dien_thoai", "citizen_full_name", "IDNumber", "idNumber", "dateOfBirth", "placeOfResidence",
     "gioi_tinh", "dan_toc", "photo", "mrz", "can_cuoc"],
)
def test_keys_naming_personal_data_are_refused_in_any_spelling(journal, key):
    with pytest.raises(PrivacyError, match=r"payload\.extra\.inner"):
        journal.append(Careless(extra={"inner": {key: "x"}}))
    assert journal.count() == 0


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("card 079123456789 read", "CCCD/CMND-shaped number"),
        ("old id 123456789", "CCCD/CMND-shaped number"),
        (QR, "CCCD/CMND-shaped number"),
        ("IDVNM1234567897079123456789<<<", "MRZ-shaped"),
        ("NGUYEN<<VAN<AN<<<<<<<<<<<<<<<<", "MRZ-shaped"),
        ("Nguyễn Văn An 01/01/1990", "a date next to a name"),
        ("TRAN THI BICH NGOC born 1990-11-03", "a date next to a name"),
        ("dossier 000.00.10.H12-210901-0001 not found", "a dossier code"),
    ],
)
def test_values_shaped_like_personal_data_are_refused(journal, value, why):
    with pytest.raises(PrivacyError, match=why) as caught:
        journal.append(Careless(extra={"note": value}))
    assert value not in str(caught.value)  # the refusal never quotes what it refused
    with pytest.raises(PrivacyError):
        journal.append(Careless(extra={"list": [1, {"deep": value}]}))
    assert journal.count() == 0


def test_a_value_of_the_current_session_is_refused_until_the_session_is_wiped(journal):
    from kiosk.session import CitizenSession, Identity

    session = CitizenSession()
    session.identity = Identity("Lê Hoàng Nam", date(1990, 3, 4), "genuine")
    for value in ("Lê Hoàng Nam", "lê hoàng nam", "for Nam", "04031990", "1990-03-04"):
        with pytest.raises(PrivacyError, match="current citizen's identity"):
            journal.append(Careless(extra={"note": value}))
    journal.append(Careless(extra={"note": "nam"}))  # a name's word counts as written, not in any case
    session.wipe()
    assert not SESSION_VALUES
    journal.append(Careless(extra={"note": "for Nam"}))  # not personal any more: no such session
    session.identity = Identity("Nguyễn Văn An", None, "genuine")
    journal.append(DeviceFault("printer", "offline", "an error on the line"))  # English "an" is no name
    session.wipe()


def test_the_events_the_kiosk_really_writes_pass(journal):
    journal.append(TicketIssued("A012", "HOTICH", priority=True, identified=True, day="2026-11-23"))
    journal.append(Lookup("not_found", "camera", agency_code="000.00.10.H12", latency_ms=48.2))
    journal.append(DeviceFault("printer", "paper_out", "ticket printer (usb 04b8:0e15): out of paper"))
    # The journal's own event names a file stamped to the microsecond (12 digits in a row).
    journal.append(JournalRecovered("events.sqlite.corrupt-20261123T110459924007Z", "malformed"))
    assert journal.count() == 4


def test_log_text_loses_everything_shaped_like_personal_data():
    text = "\n".join(
        [
            "2026-11-23 11:02:03,456 INFO kiosk.core: first line stays",
            f"scan was {QR}",
            "card read for 079203001234 ok, old id 025123456",
            "citizen Nguyễn Văn An, born 01/01/1990, lives in Hà Nội",
            "TRAN THI BICH NGOC 1990-11-03",
            "mrz IDVNM0790900098760790900098<<1",
            "no dossier 000.00.10.H12-210901-9999 in the demo store",
            "offline number A801 (HOTICH, 2026-11-23)",
        ]
    )
    out = scrub_text(text, today=date(2026, 11, 23))
    lines = out.split("\n")
    assert lines[0] == "2026-11-23 11:02:03,456 INFO kiosk.core: first line stays"
    assert lines[1] == "[redacted: a line with an ID card's QR text]"  # the whole line, not just numbers
    for gone in ("079123456789", "Nguyễn", "Văn An", "01011990", "Hà Nội", "079203001234", "025123456",
                 "01/01/1990", "TRAN THI", "1990-11-03", "IDVNM", "210901-9999"):
        assert gone not in out, gone
    assert "000.00.10.H12-[redacted-dossier]" in out  # the agency part is not personal
    assert lines[-1] == "offline number A801 (HOTICH, 2026-11-23)"  # a ticket's day is not a birth date


def test_a_traceback_says_where_never_what():
    def parse(text: str) -> None:
        try:
            int(text)
        except ValueError as exc:
            raise KeyError(f"cannot use {text!r}") from exc

    try:
        parse(QR)
    except KeyError as exc:
        shown = safe_traceback(exc)
    assert "Nguyễn" not in shown and "079123456789" not in shown
    assert "builtins.ValueError (message withheld" in shown and "builtins.KeyError (message withheld" in shown
    assert "in parse" in shown and "test_guards.py" in shown


def test_the_log_files_formatter_scrubs_messages_and_tracebacks():
    record = logging.LogRecord("kiosk.x", logging.ERROR, __file__, 1, "scan %s", (QR,), None)
    try:
        raise ValueError(QR)
    except ValueError as exc:
        record.exc_info = (type(exc), exc, exc.__traceback__)
    shown = ScrubbingFormatter("%(message)s").format(record)
    assert "079123456789" not in shown and "Nguyễn" not in shown and "ValueError" in shown


def test_reprs_hide_personal_data():
    from drivers.card.identity import IdentityRecord
    from drivers.card.lds import Dg13, FaceImage
    from drivers.card.mrz import Td1
    from drivers.card.sim.profile import PROFILES_DIR, load_profile
    from drivers.printer import TicketContent
    from kiosk.flows.identify import ReadCard
    from kiosk.flows.ticket import IssueTicket
    from kiosk.session import CitizenSession, Identity

    name, born = "Trần Thị Bích Ngọc", date(1990, 11, 3)
    session = CitizenSession()
    session.identity = Identity(name, born, "genuine")
    objects = [
        Identity(name, born, "genuine"),
        session,
        IdentityRecord(id_number="079190009876", full_name=name, birth_date=born),
        Td1("ID", "VNM", "190009876", "079190009876", "901103", "F", "301103", "VNM", "", "TRAN", "THI<BICH"),
        Dg13(values={2: [name], 1: ["079190009876"]}),
        FaceImage(b"\xff\xd8\xff-face-bytes", "image/jpeg"),
        load_profile(PROFILES_DIR / "married.toml"),
        TicketContent("Trung tâm", "Hộ tịch", "A001", ["1"], datetime(2026, 11, 23), None, citizen_name=name),
        IssueTicket("HOTICH", False, "vi", name),
        ReadCard(cccd_qr=QR),
    ]
    for item in objects:
        shown = repr(item)
        for secret in (name, "Trần", "079190009876", "190009876", "1990", "TRAN", "face-bytes", "Nguyễn"):
            assert secret not in shown, f"{type(item).__name__}: {shown}"
    session.wipe()
