"""The contract's English texts said in the page's language: validation messages on the forms, and a
command's result and arguments in the console.

``contract.schema`` writes a few kinds of message, always ``<path>: <what is wrong>``; each kind has a
Vietnamese sentence here, and the path's last key a Vietnamese label (with the row, for lists). A
message this module does not know is still shown, in English, after "không hợp lệ": never hidden.

A command's result (``command-result/1``) carries a status (``ok`` | ``error``), English free text and,
from agents that have it, a ``code`` saying why an error failed; ``command_outcome`` says it from the
status, the command and the code (a line per code: "Không in được phiếu thử: máy in hết giấy."), or,
for a result without a code this fleet knows (an older agent's, a newer agent's new code), the fixed
reasons the agent and this fleet share (``contract.commands.reason_kind``,
``fleet.store.commands.REASON_*``), never from the free text, which stays available beside it for a
technician.

What kiosks' events carry is said here too: a card read's result (``contract.events.CARD_READ_RESULTS``:
``card_result``), a look-up's outcome, a rating's reasons, and one line per event for the kiosk page
(``event_text``). A code this fleet has no word for (an older or newer kiosk's) is shown as it came:
never hidden, never an error.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, get_args

from contract.commands import COMMANDS, ReasonKind, reason_kind
from contract.config import DEFAULT_REASONS
from contract.errors import ContractError
from contract.events import (
    AppError,
    AppStarted,
    CardRead,
    DeviceFault,
    DeviceRecovered,
    EventPayload,
    JournalRecovered,
    Lookup,
    OutboxDropped,
    Rating,
    SelfTest,
    ServiceModeChanged,
    SessionEnded,
    TechnicianLockedOut,
    TechnicianLogin,
    TechnicianLoginFailed,
    TicketIssued,
    TicketVoided,
    VisitService,
    payload_from_data,
)
from fleet.store.commands import REASON_NOT_SENT, REASON_UNSENT_EXPIRED
from fleet.store.models import Command
from fleet.web.i18n import Translator

FIELD_LABELS = {
    "code": "mã",
    "prefix": "chữ đầu số",
    "name_vi": "tên tiếng Việt",
    "name_en": "tên tiếng Anh",
    "counters": "quầy",
    "opens": "giờ mở",
    "closes": "giờ đóng",
    "notice_vi": "thông báo tiếng Việt",
    "notice_en": "thông báo tiếng Anh",
    "idle_timeout_s": "thời gian chờ khi không thao tác",
    "result_timeout_s": "thời gian hiện kết quả",
    "language": "ngôn ngữ mặc định",
    "heartbeat_s": "nhịp tim",
    "levels": "số mức đánh giá",
    "repeat_interval_s": "khoảng cách giữa hai lần đánh giá",
    "show_official_photos": "hiện ảnh cán bộ",
    "label_vi": "nhãn tiếng Việt",
    "label_en": "nhãn tiếng Anh",
    "id": "mã cán bộ",
    "name": "họ tên",
    "counter": "quầy",
    "photo": "ảnh",
    "text_vi": "nội dung tiếng Việt",
    "text_en": "nội dung tiếng Anh",
    "reason": "lý do",
    "max_kb": "dung lượng tối đa (KB)",
    "out_of_service": "ngừng phục vụ",
    "services": "danh sách dịch vụ",
    "reasons": "lý do chưa hài lòng",
    "officials": "danh sách cán bộ",
    "expires_at": "thời hạn",
    "hotline": "đường dây nóng",
    "appointment_early_min": "nhận lịch hẹn sớm nhất trước giờ hẹn (phút)",
    "appointment_late_min": "nhận lịch hẹn muộn nhất sau giờ hẹn (phút)",
    "feedback_topics": "chủ đề phản ánh",
    "post_delivery": "nhận kết quả qua bưu điện",
    "payee_bank_bin": "mã ngân hàng (BIN)",
    "payee_account": "số tài khoản",
    "payee_name": "tên chủ tài khoản",
}
ROWS = {"services": "Dịch vụ {n}", "reasons": "Lý do {n}", "officials": "Cán bộ {n}", "counters": "quầy {n}"}
EXPECTED = {
    "an integer": "phải là số nguyên",
    "a number": "phải là một số",
    "a string": "phải là chữ",
    "true or false": "phải là có hoặc không",
    "a table": "phải là một bảng",
    "HH:MM": "phải có dạng giờ:phút, ví dụ 07:30",
    "1-16 of A-Z, 0-9, _": "gồm 1–16 chữ in hoa A–Z, số 0–9 hoặc dấu _",
    "one capital letter A-Z": "là một chữ in hoa A–Z",
    "lowercase code": "gồm chữ thường a–z, số 0–9 hoặc dấu _",
    "a short staff id": "gồm chữ, số, dấu . _ - (tối đa 32 ký tự)",
    "a file name such as nam.png": "là tên một tệp ảnh .png hoặc .jpg, ví dụ nam.png",
    "a short counter name such as 3 or 3A": "mỗi quầy là một tên ngắn như 3 hoặc 3A",
    "1022": "chỉ gồm chữ số, dấu cách, dấu . hoặc +, ví dụ 1022",
    "970xxx": "là mã BIN 6 chữ số của ngân hàng theo NAPAS, ví dụ 970415",
    "one or more of thai_do, thu_tuc, thoi_gian, co_so_vat_chat, khac, each once": (
        "chọn ít nhất một chủ đề, mỗi chủ đề một lần"
    ),
}
_PATH_PART = re.compile(r"([A-Za-z_]+)(?:\[(\d+)\])?")


@dataclass(frozen=True)
class FieldError:
    #: the contract's path without its message prefix, e.g. ``services[2].name_vi``
    path: str
    #: the Vietnamese sentence
    text: str


def _label(path: str) -> str:
    """``services[2].name_vi`` -> 'Dịch vụ 3: tên tiếng Việt'."""
    rows: list[str] = []
    last = ""
    for part in path.split("."):
        found = _PATH_PART.fullmatch(part)
        if not found:
            continue
        name, index = found.group(1), found.group(2)
        if index is not None and name in ROWS:
            rows.append(ROWS[name].format(n=int(index) + 1))
            last = ""
            continue
        if name in ("config", "args", "command", "kiosk", "rating", "agent", "visit"):
            continue
        last = FIELD_LABELS.get(name, name)
    label = last[:1].upper() + last[1:] if last else ""
    if rows:
        return ", ".join(rows) + (f": {last}" if last else "")
    return label or "Giá trị"


def _what(problem: str) -> str:
    if problem.startswith("expected "):
        expected, _, got = problem[len("expected ") :].partition(", got ")
        shown = f" (đã nhập {got})" if got else ""
        between = re.fullmatch(r"a number between (\S+) and (\S+)", expected)
        if between:
            return f"phải là số từ {between.group(1)} đến {between.group(2)}{shown}"
        least = re.fullmatch(r"a number at least (\S+)", expected)
        if least:
            return f"phải là số không nhỏ hơn {least.group(1)}{shown}"
        most = re.fullmatch(r"a number at most (\S+)", expected)
        if most:
            return f"phải là số không lớn hơn {most.group(1)}{shown}"
        one_of = re.fullmatch(r"one of (.+)", expected)
        if one_of:
            return f"phải là một trong: {one_of.group(1)}{shown}"
        if expected in EXPECTED:
            return EXPECTED[expected] + shown
        return f"không hợp lệ ({problem})"
    chars = re.fullmatch(r"at most (\d+) characters, got (\d+)", problem)
    if chars:
        return f"tối đa {chars.group(1)} ký tự (đang có {chars.group(2)})"
    items = re.fullmatch(r"at most (\d+) (?:items|entries), got (\d+)", problem)
    if items:
        return f"tối đa {items.group(1)} mục (đang có {items.group(2)})"
    if problem.startswith("control or format characters are not allowed"):
        return "không được chứa ký tự điều khiển hay ký tự định dạng ẩn"
    if problem.startswith("missing"):
        return "chưa nhập"
    if problem.startswith("unknown key"):
        return "không phải mục được phép đẩy xuống kiosk"
    twice = re.fullmatch(r"'(.*)' is used twice", problem)
    if twice:
        return f"“{twice.group(1)}” bị trùng"
    known = {
        "at least one service is needed": "cần ít nhất một dịch vụ",
        "each official id must be unique": "mã cán bộ bị trùng",
        "each reason code must be unique": "mã lý do bị trùng",
        "the bank (payee_bank_bin) and the account go together": (
            "mã ngân hàng và số tài khoản phải nhập cùng nhau (hoặc bỏ trống cả hai)"
        ),
    }
    return known.get(problem, f"không hợp lệ ({problem})")


def field_error(message: str) -> FieldError:
    """One contract message as (path, Vietnamese sentence)."""
    path, _, problem = message.partition(": ")
    # a cross-field check (__post_init__) is wrapped: "config: services[1].prefix: 'A' is used twice"
    while True:
        inner_path, sep, inner = problem.partition(": ")
        if sep and (_PATH_PART.match(inner_path) and " " not in inner_path):
            outer = path in ("config", "config.config", "(top level)", "args", "command")
            path = inner_path if outer else f"{path}.{inner_path}"
            problem = inner
            continue
        break
    stripped = True
    while stripped:  # "config.config.kiosk...": the message type, then its field named config
        stripped = False
        for prefix in ("config.", "args.", "command."):
            if path.startswith(prefix):
                path, stripped = path[len(prefix) :], True
    if path in ("config", "(top level)", "args", "command"):
        path = ""
    text = _what(problem)
    label = _label(path) if path else ""
    return FieldError(path, f"{label}: {text}" if label else text[:1].upper() + text[1:])


def vietnamese(message: str) -> str:
    return field_error(message).text


# --- the console: a command's result and arguments ----------------------------------------------------


#: the result codes of the agent's fixed reasons: said as those are, code or not
_KIND_CODES = frozenset(get_args(ReasonKind)) - {"done"}


@dataclass(frozen=True)
class Outcome:
    #: ok | error (nothing more is known) | a fixed reason's kind (``expired``, ``app_unreachable``, …)
    #: | the result's code (``printer_paper_out``, …)
    kind: str
    #: what the console says, in the page's language
    text: str
    #: the reason as the kiosk (or this fleet) wrote it, in English, for a technician
    raw: str


def _ok_key(command: Command) -> str:
    """The success line of a command; two of them say what was done (asked, or answered by the app)."""
    name = command.command
    if name == "set_notice" and command.args and not any(command.args.get(k) for k in ("text_vi", "text_en")):
        return "ok_set_notice_cleared"
    if name == "set_service_mode":
        out = command.args.get("out_of_service") if command.args else None
        if not isinstance(out, bool) and command.result:
            out = command.result.get("out_of_service")
        if isinstance(out, bool):
            return "ok_set_service_mode_out" if out else "ok_set_service_mode_in"
    return f"ok_{name}" if name in COMMANDS else "ok"


def command_outcome(tr: Translator, command: Command) -> Outcome | None:
    """A finished command's result in the page's language (None while it waits for one)."""
    if command.status not in ("ok", "error"):
        return None
    raw = command.result_reason or ""
    if command.status == "ok":
        return Outcome("ok", tr(f"command_result.{_ok_key(command)}"), raw)
    failed = f"failed_{command.command}" if command.command in COMMANDS else "failed"
    what = tr(f"command_result.{failed}")
    code = command.result_code
    if code is not None and code not in _KIND_CODES and tr.has(f"command_code.{code}"):
        why = tr(f"command_code.{code}")
        return Outcome(code, tr("command_result.coded", what=what, why=why), raw)
    kind: str | None = code if code in _KIND_CODES else None
    if kind is None and not command.sent_elsewhere:  # this fleet's own reasons (never left it)
        if raw == REASON_UNSENT_EXPIRED:
            kind = "unsent_expired"
        elif raw.startswith(REASON_NOT_SENT):
            kind = "not_sent"
    kind = kind or reason_kind(command.status, raw)
    if kind is None:
        return Outcome("error", tr("command_result.error", what=what), raw)
    if kind == "app_unreachable":
        return Outcome(kind, tr("command_result.app_unreachable", what=what), raw)
    return Outcome(kind, tr(f"command_result.{kind}"), raw)


@dataclass(frozen=True)
class ShownArg:
    name: str
    label: str
    value: str


def command_args(tr: Translator, command: str, args: dict[str, Any] | None) -> list[ShownArg]:
    """A command's arguments as the console lists them: in the contract's order, labelled in the page's
    language; an empty optional one (``text_en`` left blank) is left out, an empty required one is
    "—" (``text_vi`` "" clears the notice)."""
    if not args:
        return []
    known = {f.name: f for f in dataclasses.fields(COMMANDS[command])} if command in COMMANDS else {}
    shown: list[ShownArg] = []
    for name in [*(n for n in known if n in args), *sorted(n for n in args if n not in known)]:
        value = args[name]
        field = known.get(name)
        optional = field is not None and (
            field.default is not dataclasses.MISSING or field.default_factory is not dataclasses.MISSING
        )
        if value in ("", None) and optional:
            continue
        if isinstance(value, bool):
            text = tr("common.yes") if value else tr("common.no")
        elif value in ("", None):
            text = tr("common.none")
        else:
            text = str(value)
        shown.append(ShownArg(name, tr.optional(f"command_arg.{name}", name), text))
    return shown


# --- what kiosks' events say --------------------------------------------------------------------------


def card_result(tr: Translator, code: str) -> str:
    """A card read's result (``card_read.result``) in the page's language; an unknown code as it came."""
    return tr.optional(f"card_result.{code}", code) if code else tr("common.none")


def lookup_outcome(tr: Translator, code: str) -> str:
    """A dossier look-up's outcome (``lookup.outcome``) in the page's language."""
    return tr.optional(f"usage.lookup.{code}", code) if code else tr("common.none")


def reason_label(code: str, language: str) -> str:
    """A reason's words from the contract's default set (a center's own reasons show their code)."""
    for reason in DEFAULT_REASONS:
        if reason.code == code:
            return (reason.label_vi if language == "vi" else reason.label_en) or code
    return code


def kind_label(tr: Translator, kind: str) -> str:
    """An event kind's word; a newer kiosk's kind as it came."""
    return tr.optional(f"event_kind.{kind}", kind)


def _device(tr: Translator, device: str) -> str:
    return tr.optional(f"device.{device}", device)


def _service(services: Mapping[str, str], code: str) -> str:
    return services.get(code) or code


def _described(tr: Translator, payload: EventPayload, services: Mapping[str, str]) -> str | None:
    """The line of a payload this fleet knows; None for a kind without one of its own."""
    match payload:
        case TicketIssued():
            extras = [tr("event_text.priority")] if payload.priority else []
            if payload.identified:
                extras.append(tr("event_text.identified"))
            if payload.appointment_at:
                extras.append(tr("event_text.appointment", time=payload.appointment_at))
            line = tr("event_text.ticket", number=payload.number, service=_service(services, payload.service))
            return " · ".join([line, *extras])
        case TicketVoided():
            reason = tr.optional(f"void_reason.{payload.reason}", payload.reason)
            return tr(
                "event_text.voided",
                number=payload.number,
                service=_service(services, payload.service),
                reason=reason,
            )
        case Lookup():
            return tr("event_text.lookup", outcome=lookup_outcome(tr, payload.outcome))
        case Rating():
            level = f"{payload.level}/{payload.scale}"
            if tr.has(f"usage.level_word.{payload.level_key}"):
                level = f"{tr(f'usage.level_word.{payload.level_key}')} ({level})"
            if not payload.reasons:
                return tr("event_text.rating", level=level)
            reasons = ", ".join(reason_label(r, tr.language) for r in payload.reasons)
            return tr("event_text.rating_reasons", level=level, reasons=reasons)
        case CardRead():
            return tr("event_text.card_read", result=card_result(tr, payload.result), ms=payload.duration_ms)
        case DeviceFault():
            state = tr.optional(f"device_state.{payload.problem}", payload.problem)
            return tr("event_text.device", device=_device(tr, payload.device), state=state)
        case DeviceRecovered():
            return tr("event_text.device", device=_device(tr, payload.device), state=tr("device_state.ok"))
        case AppError():
            if payload.screen:
                return tr("event_text.app_error_screen", error=payload.error, screen=payload.screen)
            return tr("event_text.app_error", error=payload.error)
        case SessionEnded():
            reason = tr.optional(f"session_reason.{payload.reason}", payload.reason)
            return tr("event_text.session", reason=reason, seconds=f"{payload.duration_s:g}")
        case AppStarted():
            return tr(
                "event_text.app_started", version=payload.version, config_version=payload.config_version
            )
        case OutboxDropped():
            first, last = payload.first_seq, payload.last_seq
            return tr("event_text.outbox_dropped", count=payload.count, first=first, last=last)
        case JournalRecovered():
            return tr("event_text.journal_recovered")
        case TechnicianLogin():
            legacy = payload.scheme == "sha256_legacy"
            return tr("event_text.technician_login_legacy" if legacy else "event_text.technician_login")
        case TechnicianLoginFailed():
            return tr("event_text.technician_login_failed", failures=payload.failures)
        case TechnicianLockedOut():
            seconds = f"{payload.lockout_s:g}"
            return tr("event_text.technician_locked_out", seconds=seconds, failures=payload.failures)
        case ServiceModeChanged():
            source = tr.optional(f"event_text.source_{payload.source}", payload.source)
            key = "event_text.out_of_service" if payload.out_of_service else "event_text.in_service"
            return tr(key, source=source)
        case SelfTest():
            if payload.result == "pass":
                return tr("event_text.self_test_pass")
            failed = ", ".join(_device(tr, s.step) for s in payload.steps if not s.ok)
            return tr("event_text.self_test_fail", steps=failed or tr("common.none"))
        case VisitService():
            return tr(
                "event_text.visit",
                service=tr.optional(f"visit_service.{payload.service}", payload.service),
                outcome=tr.optional(f"visit_outcome.{payload.outcome}", payload.outcome),
            )
    return None


def event_text(tr: Translator, kind: str, payload: Any, services: Mapping[str, str]) -> str:
    """What a stored event says, in one line of the page's language: "Số A007 · Hộ tịch". ``services``:
    the center's service codes -> names in that language (a code without one shows as it came). A kind
    this fleet does not know, or a payload it cannot read, says its kind; the raw payload stays beside
    it for a technician."""
    try:
        parsed = payload_from_data(kind, payload)
    except ContractError:
        parsed = None
    described = _described(tr, parsed, services) if parsed is not None else None
    if described is not None:
        return described
    known = tr.has(f"event_kind.{kind}")
    return kind_label(tr, kind) if known else tr("event_text.other", kind=kind)
