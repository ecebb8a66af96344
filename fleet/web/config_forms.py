"""The configuration forms: one per pushable section, read into the push's body and checked by the
contract (``contract.config.ConfigPush``) exactly as the kiosk will check it, with the errors put
back next to the field they are about, in Vietnamese (``fleet.web.contract_text``).

A push body is the whole of one target's pushed values (``_center`` or a kiosk). Saving a section
replaces that section's keys in the newest body and makes the next version; clearing it removes them
(the kiosks fall back to the center's value, or their own file's).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from contract.config import FEEDBACK_TOPICS, PUSHABLE_VISIT_KEYS, ConfigPush
from contract.errors import ContractError
from fleet.web.contract_text import field_error

SECTIONS = ("services", "rating", "notice", "timeouts", "heartbeat", "visit")
#: which keys of the body each section owns
SECTION_KEYS: dict[str, tuple[str, tuple[str, ...]]] = {
    "services": ("services", ()),
    "rating": ("rating", ()),
    "notice": ("kiosk", ("notice_vi", "notice_en")),
    "timeouts": ("kiosk", ("idle_timeout_s", "result_timeout_s", "language", "voice")),
    "heartbeat": ("agent", ("heartbeat_s",)),
    "visit": ("visit", PUSHABLE_VISIT_KEYS),
}
#: the visit form's fields besides one checkbox per feedback topic (``topic-<code>``)
VISIT_TEXT = ("hotline", "payee_bank_bin", "payee_account", "payee_name")
VISIT_NUMBERS = ("appointment_early_min", "appointment_late_min")
SERVICE_FIELDS = ("code", "prefix", "name_vi", "name_en", "counters", "opens", "closes")
REASON_FIELDS = ("code", "label_vi", "label_en")
OFFICIAL_FIELDS = ("id", "name", "counter", "photo")
ROW_PREFIX = {"services": "svc", "reasons": "rsn", "officials": "off"}
EXTRA_ROWS = 2  # empty rows offered under the filled ones (no script needed to add one)
MAX_ROWS = 200


@dataclass
class Parsed:
    """A section read from a form: its part of the body, or errors by form field."""

    part: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    #: list index -> form row, per list ("services", "reasons", "officials")
    rows: dict[str, list[int]] = field(default_factory=dict)


def _text(form: Mapping[str, str], name: str) -> str:
    value = form.get(name, "")
    return value.strip() if isinstance(value, str) else ""


def _number(
    form: Mapping[str, str], name: str, parsed: Parsed, *, integer: bool = False
) -> float | int | None:
    raw = _text(form, name).replace(",", ".")
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        parsed.errors[name] = "Phải là một số (ví dụ 90)."
        return None
    if integer:
        if value != int(value):
            parsed.errors[name] = "Phải là số nguyên."
            return None
        return int(value)
    return int(value) if value == int(value) else value


def _row_count(form: Mapping[str, str], prefix: str) -> int:
    try:
        return max(0, min(MAX_ROWS, int(_text(form, f"{prefix}-rows") or 0)))
    except ValueError:
        return 0


def _rows(
    form: Mapping[str, str], name: str, fields: tuple[str, ...], parsed: Parsed
) -> list[dict[str, Any]]:
    prefix = ROW_PREFIX[name]
    out: list[dict[str, Any]] = []
    order: list[int] = []
    for row in range(_row_count(form, prefix)):
        values = {f: _text(form, f"{prefix}-{row}-{f}") for f in fields}
        if not any(values.values()) or _text(form, f"{prefix}-{row}-remove"):
            continue
        out.append(values)
        order.append(row)
    parsed.rows[name] = order
    return out


def read_section(section: str, form: Mapping[str, str]) -> Parsed:
    """The section's part of a push body from the submitted form (not yet checked by the contract)."""
    parsed = Parsed()
    if section == "services":
        services = []
        for values in _rows(form, "services", SERVICE_FIELDS, parsed):
            item: dict[str, Any] = {k: values[k] for k in ("code", "prefix", "name_vi", "name_en")}
            item["counters"] = [c for c in re.split(r"[,\s;]+", values["counters"]) if c]
            for key in ("opens", "closes"):
                if values[key]:
                    item[key] = values[key]
            services.append(item)
        parsed.part = {"services": services}
    elif section == "rating":
        rating: dict[str, Any] = {}
        levels = _number(form, "levels", parsed, integer=True)
        if levels is not None:
            rating["levels"] = levels
        repeat = _number(form, "repeat_interval_s", parsed)
        if repeat is not None:
            rating["repeat_interval_s"] = repeat
        rating["show_official_photos"] = bool(_text(form, "show_official_photos"))
        rating["reasons"] = _rows(form, "reasons", REASON_FIELDS, parsed)
        officials = []
        for values in _rows(form, "officials", OFFICIAL_FIELDS, parsed):
            official: dict[str, Any] = {
                "id": values["id"],
                "name": values["name"],
                "counter": values["counter"],
            }
            if values["photo"]:
                official["photo"] = values["photo"]
            officials.append(official)
        rating["officials"] = officials
        parsed.part = {"rating": rating}
    elif section in ("notice", "timeouts", "heartbeat"):
        table, keys = SECTION_KEYS[section]
        table_values: dict[str, Any] = {}
        for key in keys:
            if key in ("notice_vi", "notice_en"):
                raw = form.get(key, "")
                table_values[key] = raw.replace("\r\n", "\n").strip() if isinstance(raw, str) else ""
            elif key == "language":
                if _text(form, key):
                    table_values[key] = _text(form, key)
            elif key == "voice":
                if _text(form, key) in ("yes", "no"):
                    table_values[key] = _text(form, key) == "yes"
            else:
                number = _number(form, key, parsed)
                if number is not None:
                    table_values[key] = number
        parsed.part = {table: table_values}
    elif section == "visit":
        parsed.part = {"visit": _read_visit(form, parsed)}
    else:
        raise ValueError(f"unknown section {section!r}")
    return parsed


def _read_visit(form: Mapping[str, str], parsed: Parsed) -> dict[str, Any]:
    """What the visit form names; an empty field keeps the kiosk's own value. The payee's bank and
    account are pushed together (the contract refuses one without the other)."""
    visit: dict[str, Any] = {}
    if _text(form, "hotline"):
        visit["hotline"] = _text(form, "hotline")
    for key in VISIT_NUMBERS:
        number = _number(form, key, parsed, integer=True)
        if number is not None:
            visit[key] = number
    topics = [code for code in FEEDBACK_TOPICS if _text(form, f"topic-{code}")]
    if topics:
        visit["feedback_topics"] = topics
    if _text(form, "post_delivery") in ("yes", "no"):
        visit["post_delivery"] = _text(form, "post_delivery") == "yes"
    if _text(form, "payee_bank_bin") or _text(form, "payee_account"):
        visit["payee_bank_bin"] = _text(form, "payee_bank_bin")
        visit["payee_account"] = _text(form, "payee_account")
    if _text(form, "payee_name"):
        visit["payee_name"] = _text(form, "payee_name")
    return visit


def apply_section(body: Mapping[str, Any], section: str, part: Mapping[str, Any] | None) -> dict[str, Any]:
    """``body`` with ``section`` replaced by ``part`` (None: removed)."""
    out = copy.deepcopy(dict(body))
    table, keys = SECTION_KEYS[section]
    if not keys:
        out.pop(table, None)
        if part is not None and table in part:
            out[table] = copy.deepcopy(part[table])
        return out
    current = dict(out.get(table) or {})
    for key in keys:
        current.pop(key, None)
    if part is not None:
        current.update({k: v for k, v in (part.get(table) or {}).items() if k in keys})
    if current:
        out[table] = current
    else:
        out.pop(table, None)
    return out


def _form_field(path: str, rows: dict[str, list[int]]) -> str:
    """The form field a contract path points at ('' for the section as a whole)."""
    found = re.match(r"(?:rating\.)?(services|reasons|officials)\[(\d+)\](?:\.([a-z_]+))?", path)
    if found:
        name, index, key = found.group(1), int(found.group(2)), found.group(3)
        order = rows.get(name, [])
        row = order[index] if index < len(order) else index
        return f"{ROW_PREFIX[name]}-{row}-{key}" if key else f"{ROW_PREFIX[name]}-{row}"
    last = path.rsplit(".", 1)[-1]
    return "" if last in ("services", "reasons", "officials", "kiosk", "rating", "agent", "visit") else last


def check(body: Mapping[str, Any], parsed: Parsed | None = None) -> dict[str, str]:
    """The contract's verdict on a body: {} when a kiosk would accept it, else {form field: Vietnamese}."""
    try:
        ConfigPush.from_data({"schema": ConfigPush.SCHEMA, "version": 1, "config": dict(body)})
    except ContractError as exc:
        found = field_error(exc.message)
        return {_form_field(found.path, parsed.rows if parsed else {}): found.text}
    return {}


def form_values(body: Mapping[str, Any]) -> dict[str, Any]:
    """What the forms show for a body: flat fields and the rows of each list (with empty rows after)."""
    kiosk = body.get("kiosk") or {}
    agent = body.get("agent") or {}
    visit = body.get("visit") or {}
    rating = body.get("rating") or {}
    services = [
        {**{k: s.get(k, "") for k in SERVICE_FIELDS}, "counters": ", ".join(s.get("counters") or [])}
        for s in body.get("services") or []
    ]
    reasons = [{k: r.get(k, "") for k in REASON_FIELDS} for r in rating.get("reasons") or []]
    officials = [{k: o.get(k) or "" for k in OFFICIAL_FIELDS} for o in rating.get("officials") or []]

    def padded(rows: list[dict[str, Any]], fields: tuple[str, ...]) -> list[dict[str, Any]]:
        return rows + [dict.fromkeys(fields, "") for _ in range(EXTRA_ROWS)]

    def shown(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, float) and value == int(value):
            return str(int(value))
        return str(value)

    return {
        "services": padded(services, SERVICE_FIELDS),
        "reasons": padded(reasons, REASON_FIELDS),
        "officials": padded(officials, OFFICIAL_FIELDS),
        "levels": shown(rating.get("levels")),
        "repeat_interval_s": shown(rating.get("repeat_interval_s")),
        "show_official_photos": bool(rating.get("show_official_photos")),
        "notice_vi": kiosk.get("notice_vi", ""),
        "notice_en": kiosk.get("notice_en", ""),
        "idle_timeout_s": shown(kiosk.get("idle_timeout_s")),
        "result_timeout_s": shown(kiosk.get("result_timeout_s")),
        "language": kiosk.get("language", ""),
        "voice": _yes_no(kiosk.get("voice")),
        "heartbeat_s": shown(agent.get("heartbeat_s")),
        **{key: shown(visit.get(key)) for key in (*VISIT_TEXT, *VISIT_NUMBERS)},
        "topics": {code: code in (visit.get("feedback_topics") or ()) for code in FEEDBACK_TOPICS},
        "post_delivery": _yes_no(visit.get("post_delivery")),
        "has": {s: _has(body, s) for s in SECTIONS},
    }


def _yes_no(value: Any) -> str:
    return "yes" if value is True else "no" if value is False else ""


def draft_values(section: str, form: Mapping[str, str], base: dict[str, Any]) -> dict[str, Any]:
    """The forms again after a refused save: the submitted section as typed, the others as stored."""
    values = dict(base)
    if section == "services":
        rows = [
            {f: _text(form, f"svc-{r}-{f}") for f in SERVICE_FIELDS} for r in range(_row_count(form, "svc"))
        ]
        values["services"] = rows
    elif section == "rating":
        values["reasons"] = [
            {f: _text(form, f"rsn-{r}-{f}") for f in REASON_FIELDS} for r in range(_row_count(form, "rsn"))
        ]
        values["officials"] = [
            {f: _text(form, f"off-{r}-{f}") for f in OFFICIAL_FIELDS} for r in range(_row_count(form, "off"))
        ]
        for key in ("levels", "repeat_interval_s"):
            values[key] = _text(form, key)
        values["show_official_photos"] = bool(_text(form, "show_official_photos"))
    elif section == "visit":
        for key in (*VISIT_TEXT, *VISIT_NUMBERS, "post_delivery"):
            values[key] = _text(form, key)
        values["topics"] = {code: bool(_text(form, f"topic-{code}")) for code in FEEDBACK_TOPICS}
    else:
        for key in SECTION_KEYS[section][1]:
            raw = form.get(key, "")
            values[key] = raw if isinstance(raw, str) else ""
    return values


def _has(body: Mapping[str, Any], section: str) -> bool:
    table, keys = SECTION_KEYS[section]
    if not keys:
        return table in body
    return any(k in (body.get(table) or {}) for k in keys)


# --- what differs between two bodies (the config page's "not yet applied") ---------------------------

DIFF_LABELS = {
    "services": "Dịch vụ",
    "rating": "Đánh giá",
    "kiosk.notice_vi": "Thông báo tiếng Việt",
    "kiosk.notice_en": "Thông báo tiếng Anh",
    "kiosk.idle_timeout_s": "Thời gian chờ khi không thao tác (giây)",
    "kiosk.result_timeout_s": "Thời gian hiện kết quả (giây)",
    "kiosk.voice": "Hướng dẫn bằng giọng nói",
    "kiosk.language": "Ngôn ngữ mặc định",
    "agent.heartbeat_s": "Nhịp tim (giây)",
    "visit.hotline": "Đường dây nóng",
    "visit.appointment_early_min": "Nhận lịch hẹn sớm nhất (phút trước giờ hẹn)",
    "visit.appointment_late_min": "Nhận lịch hẹn muộn nhất (phút sau giờ hẹn)",
    "visit.feedback_topics": "Chủ đề phản ánh",
    "visit.post_delivery": "Nhận kết quả qua bưu điện",
    "visit.payee_bank_bin": "Mã ngân hàng (BIN)",
    "visit.payee_account": "Số tài khoản nhận phí",
    "visit.payee_name": "Tên chủ tài khoản",
}


@dataclass(frozen=True)
class Difference:
    key: str
    label: str
    before: str
    after: str


def _summary(key: str, value: Any) -> str:
    if value is None:
        return "—"
    if key == "services":
        return ", ".join(f"{s.get('prefix', '')} {s.get('code', '')}" for s in value) or "—"
    if key == "rating":
        officials = len(value.get("officials") or [])
        reasons = len(value.get("reasons") or [])
        return f"{value.get('levels', 4)} mức, {reasons} lý do, {officials} cán bộ"
    if isinstance(value, bool):
        return "có" if value else "không"
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ", ".join(value) or "—"
    if isinstance(value, str):
        return value if len(value) <= 80 else value[:77] + "…"
    return json.dumps(value, ensure_ascii=False)


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Difference]:
    """Keys whose pushed value differs: lists and the rating table as a whole, the rest key by key."""

    def flat(body: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in ("services", "rating"):
            if key in body:
                out[key] = body[key]
        for table in ("kiosk", "agent", "visit"):
            for key, value in (body.get(table) or {}).items():
                out[f"{table}.{key}"] = value
        return out

    old, new = flat(before), flat(after)
    out = []
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            out.append(
                Difference(
                    key, DIFF_LABELS.get(key, key), _summary(key, old.get(key)), _summary(key, new.get(key))
                )
            )
    return out
