"""One read of one card, over any transport: SELECT, access control, files, passive/active authentication.

This is the protocol sequence, independent of PC/SC: the service runs it over pcscd, tests and the CPU
benchmark run it over ``DirectTransport``. It returns an ``IdentityRecord`` only when every step
succeeded: on any error the partial data is wiped and nothing half-read leaves this function.
"""

from __future__ import annotations

import datetime
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from drivers.card import aa, lds
from drivers.card.apdu import SW_DATA_OK, SW_OK, CommandApdu
from drivers.card.bac import perform_bac
from drivers.card.ca import parse_dg14, perform_chip_auth
from drivers.card.errors import (
    CardError,
    CardProtocolError,
    ChipAuthenticationError,
    MalformedDataError,
    NotIdCardError,
    SecureMessagingError,
    WrongKeyError,
)
from drivers.card.files import FileAccessError, FileReader
from drivers.card.identity import IdentityRecord
from drivers.card.keys import AccessKey
from drivers.card.pace import EF_CARD_ACCESS_SFI, PaceInfo, parse_card_access, perform_pace
from drivers.card.sm import SecureTransport
from drivers.card.sod import Sod, parse_sod, passive_authentication
from drivers.card.transport import CardTransport
from drivers.card.trust import TrustStore
from drivers.card.verdict import NO_SOD, overall

log = logging.getLogger(__name__)

SELECT_EMRTD = CommandApdu(0x00, 0xA4, 0x04, 0x0C, lds.EMRTD_AID)


@dataclass
class ReadOptions:
    with_photo: bool = False
    active_auth: bool = True
    block: int | None = None  # None: the largest the session's cipher fits (231 with 3DES, 223 with AES)
    chip_auth: bool = True  # DG14 chip authentication when the card offers it (then AA is skipped)
    pace: str = "auto"  # "auto": PACE for CAN keys; "prefer": also for MRZ keys if offered; "never"
    extended_block: int | None = None  # plaintext bytes per extended READ BINARY; None: short APDUs only
    trust: TrustStore | None = None  # None: nothing can be verified (the verdict says not_verified)
    at: datetime.datetime | None = None  # time of the certificate checks; None: now


@dataclass
class ReadReport:
    """Non-personal facts about a read: for the CLI's JSON, the technician screen and the benchmark."""

    timings_ms: dict[str, float] = field(default_factory=dict)
    apdu_count: int = 0
    key_label: str = ""
    keys_tried: int = 0
    access_control: str = ""  # "BAC" or "PACE-AES-brainpoolP256r1"...


class _Clock:
    def __init__(self, report: ReadReport) -> None:
        self.report = report
        self.last = time.perf_counter()

    def lap(self, step: str) -> None:
        now = time.perf_counter()
        self.report.timings_ms[step] = round((now - self.last) * 1000, 3)
        self.last = now


def select_application(transport: CardTransport) -> None:
    answer = transport.transmit(SELECT_EMRTD)
    if answer.sw != SW_OK:
        raise NotIdCardError(f"no eMRTD application on this card (SELECT answered {answer.sw:04X})")


def read_card_access(transport: CardTransport) -> list[PaceInfo]:
    """PACE parameters from EF.CardAccess (read in the clear by its short file id); [] when absent."""
    answer = transport.transmit(CommandApdu(0x00, 0xB0, 0x80 | EF_CARD_ACCESS_SFI, 0x00, le=256))
    if answer.sw not in SW_DATA_OK or not answer.data:
        return []
    try:
        return parse_card_access(answer.data)
    except MalformedDataError as exc:
        log.warning("EF.CardAccess unusable, PACE not offered: %s", exc.message)
        return []


def open_secure_channel(
    transport: CardTransport,
    keys: Sequence[AccessKey],
    report: ReadReport,
    pace: str = "auto",
    random: Callable[[int], bytes] = os.urandom,
) -> SecureTransport:
    """Select the eMRTD application and open a secure channel with the first key the card accepts.

    CAN keys go through PACE; MRZ keys through BAC, or PACE when ``pace == "prefer"`` and EF.CardAccess
    offers it. WrongKeyError only after every key was refused; NotIdCardError when there is no eMRTD
    application at all.
    """
    if not keys:
        raise WrongKeyError("no access key given")
    app_selected = False
    offered: list[PaceInfo] | None = None
    for index, key in enumerate(keys):
        report.keys_tried = index + 1
        if pace != "never" and (key.kind == "can" or pace == "prefer"):
            if offered is None:
                offered = read_card_access(transport)
            if offered:
                try:
                    session = perform_pace(transport, key, offered[0])
                except WrongKeyError:
                    continue
                secure = SecureTransport(transport, session)
                select_application(secure)
                report.key_label = key.label or key.kind
                report.access_control = f"PACE-{offered[0].cipher.upper()}-{offered[0].curve.name}"
                return secure
        if key.kind != "mrz":
            log.info("CAN key skipped: the card offers no PACE (EF.CardAccess)")
            continue
        if not app_selected:
            select_application(transport)
            app_selected = True
        try:
            session = perform_bac(transport, key, random)
        except WrongKeyError:
            continue
        report.key_label = key.label or key.kind
        report.access_control = "BAC"
        return SecureTransport(transport, session)
    if not app_selected:
        select_application(transport)  # tells "not an ID card" apart from "wrong keys"
    raise WrongKeyError(f"the card refused all {len(keys)} access keys")


def active_authentication(secure: CardTransport, dg15: bytes) -> str:
    """INTERNAL AUTHENTICATE with an 8-byte challenge, checked with the DG15 key (ECDSA or RSA)."""
    key = serialization.load_der_public_key(lds.parse_dg15(dg15))
    if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        return "not_supported"
    challenge = os.urandom(8)
    answer = secure.transmit(CommandApdu(0x00, 0x88, 0x00, 0x00, challenge, le=256))
    if answer.sw != SW_OK:
        return "failed"
    return "passed" if aa.verify(key, challenge, answer.data) else "failed"


def chip_authentication(secure: SecureTransport, dg14: bytes) -> str:
    """Chip authentication from DG14; on success the channel continues with the new keys."""
    infos = parse_dg14(dg14)
    if not infos:
        return "not_supported"
    try:
        infos[0].public_key()
    except MalformedDataError as exc:
        # DG14 is vouched for by EF.SOD later; a key this reader cannot use is its limit, not the
        # card's fault: no chip authentication (active authentication then runs when DG15 exists)
        log.warning("chip authentication not possible: %s", exc.message)
        return "not_supported"
    session = perform_chip_auth(secure, infos[0])
    if session is None:
        return "failed"
    secure.session.wipe()
    secure.session = session
    return "passed"


def _identity(dg1: bytes, dg13: bytes) -> IdentityRecord:
    td1 = lds.parse_dg1(dg1)
    dg = lds.parse_dg13(dg13)
    try:
        parents = dg.values.get(13, [])
        record = IdentityRecord(
            id_number=dg.text(1) or td1.optional_data_1,
            document_number=td1.document_number,
            full_name=dg.text(2) or td1.name,
            birth_date=lds.parse_vn_date(dg.text(3)),
            sex=dg.text(4) or td1.sex,
            nationality=dg.text(5) or td1.nationality,
            ethnicity=dg.text(6) or "",
            religion=dg.text(7) or "",
            place_of_origin=dg.text(8) or "",
            place_of_residence=dg.text(9) or "",
            identifying_marks=dg.text(10) or "",
            issue_date=lds.parse_vn_date(dg.text(11)),
            expiry_date=lds.parse_vn_date(dg.text(12)),
            father_name=parents[0] if parents else "",
            mother_name=parents[1] if len(parents) > 1 else "",
            spouse_name=dg.text(14) or "",
            old_id_number=dg.text(16) or "",
            extra={n: " / ".join(v) for n, v in dg.values.items() if n > 16 or n == 15},
        )
        # A DG13 whose ID number disagrees with the MRZ is not the same card's data.
        if td1.document_number and not record.id_number.endswith(td1.document_number):
            record.wipe()
            raise MalformedDataError("DG13 ID number does not match the MRZ document number")
        return record
    finally:
        td1.wipe()
        dg.wipe()


def read_identity_over(
    transport: CardTransport,
    keys: Sequence[AccessKey],
    options: ReadOptions,
    report: ReadReport | None = None,
) -> tuple[IdentityRecord, ReadReport]:
    """The whole read; the APDU count includes everything sent on ``transport``."""
    report = report or ReadReport()
    start_apdus = transport.stats.apdus
    clock = _Clock(report)
    files: dict[int, bytes] = {}
    record: IdentityRecord | None = None
    try:
        secure = open_secure_channel(transport, keys, report, options.pace)
        clock.lap("access_control")
        block = options.block or secure.session.max_plain_block()
        reader = FileReader(secure, block, options.extended_block)
        try:
            sod_bytes = reader.read(lds.EF_SOD)
            sod: Sod | None = parse_sod(sod_bytes)
        except FileAccessError:
            sod = None  # a card without EF.SOD cannot be verified; say so, do not fail the read
        clock.lap("read_sod")
        present = set(sod.data_groups()) if sod else {1, 13}
        ca = "not_supported"
        if options.chip_auth and 14 in present:
            files[14] = reader.read(lds.DG14)
            ca = chip_authentication(secure, files[14])
            if ca == "passed" and options.block is None:
                reader.block = secure.session.max_plain_block()  # the new cipher may fit less
            clock.lap("chip_auth")
        for number in (1, 13):
            try:
                files[number] = reader.read(lds.DATA_GROUPS[number])
            except SecureMessagingError as exc:
                if ca == "passed" and number == 1:  # the first answer under the keys of chip authentication
                    raise ChipAuthenticationError(
                        "chip authentication failed: the chip does not hold the DG14 key (cloned chip?)"
                    ) from exc
                raise
            clock.lap(f"read_dg{number}")
        if options.with_photo and 2 in present:
            files[2] = reader.read(lds.DG2)
            clock.lap("read_dg2")
        aa = "not_supported" if ca != "passed" else "not_checked"
        if options.active_auth and 15 in present and ca != "passed":  # CA already proved the chip
            files[15] = reader.read(lds.DG15)
            clock.lap("read_dg15")
        passive = passive_authentication(sod, files, options.trust, options.at) if sod else NO_SOD
        clock.lap("passive_auth")
        if 15 in files:
            aa = active_authentication(secure, files[15])
            clock.lap("active_auth")
        record = _identity(files[1], files[13])
        if 2 in files:
            face = lds.parse_dg2(files[2])
            record.photo, record.photo_mime = face.data, face.mime
        record.verdict = overall(passive, ca, aa)
        record.active_auth = aa
        record.chip_auth = ca
        record.data_groups = tuple(sorted(files))
        clock.lap("parse")
    except CardError:
        if record is not None:
            record.wipe()
        raise
    except (ValueError, TypeError, IndexError, KeyError) as exc:  # a parser bug must not leak as such
        if record is not None:
            record.wipe()
        raise CardProtocolError(f"unexpected card data ({exc.__class__.__name__})") from exc
    finally:
        files.clear()
        report.apdu_count = transport.stats.apdus - start_apdus
        report.timings_ms["total"] = round(sum(v for k, v in report.timings_ms.items() if k != "total"), 3)
    return record, report
