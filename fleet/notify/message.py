"""What a notification says. Text in Vietnamese (the center's language; labels from the fleet's catalog),
times in the center's zone; the webhook's JSON carries codes and UTC times for machines."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from fleet.store.models import Delivery
from fleet.web.i18n import Translator

SCHEMA = "fleet-alarm/1"
_VI = Translator("vi")


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str
    json: dict[str, Any]


def _time(when: datetime | None, zone: tzinfo) -> str:
    return "" if when is None else when.astimezone(zone).strftime("%d/%m/%Y %H:%M:%S")


def _duration(start: datetime, end: datetime) -> str:
    seconds = max(0, int((end - start).total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes = rest // 60
    if hours:
        return f"{hours} giờ {minutes} phút"
    return f"{minutes} phút" if minutes else f"{seconds} giây"


def render(delivery: Delivery, *, now: datetime, zone: tzinfo, public_url: str | None) -> Rendered:
    alarm = delivery.alarm
    kind = _VI.optional(f"alarm_type.{alarm.type}", alarm.type)
    state = (alarm.detail or {}).get("state")
    table = "device_state" if alarm.device else "alarm_state"
    state_text = _VI.optional(f"{table}.{state}", str(state)) if state else ""
    severity = _VI.optional(f"severity.{alarm.severity}", alarm.severity)
    where = alarm.kiosk_id or delivery.center_name
    what = f"{kind}{f' ({state_text})' if state_text else ''}"
    if delivery.event == "raised":
        headline = f"Cảnh báo mới: {what} – {where}"
    elif delivery.event == "reminder":
        headline = f"Nhắc lần {delivery.number}: {what} – {where} vẫn chưa được xử lý"
    else:
        headline = f"Đã hết cảnh báo: {what} – {where}"
    link = None
    if public_url:
        base = public_url.rstrip("/")
        link = (
            f"{base}/kiosks/{alarm.kiosk_id}" if alarm.kiosk_id else f"{base}/alarms?center={alarm.center_id}"
        )
    lines = [
        headline,
        "",
        f"Trung tâm: {delivery.center_name} ({alarm.center_id})",
    ]
    if alarm.kiosk_id:
        label = f" – {delivery.kiosk_label}" if delivery.kiosk_label else ""
        lines.append(f"Kiosk: {alarm.kiosk_id}{label}")
    lines += [
        f"Loại: {kind}",
        f"Mức độ: {severity}",
        f"Bắt đầu: {_time(alarm.started_at, zone)} (giờ Việt Nam)",
    ]
    if state_text:
        lines.insert(6, f"Tình trạng: {state_text}")
    if alarm.ended_at is not None:
        lines.append(
            f"Kết thúc: {_time(alarm.ended_at, zone)}, sau {_duration(alarm.started_at, alarm.ended_at)}"
        )
    else:
        lines.append(f"Đã kéo dài: {_duration(alarm.started_at, now)}")
    if alarm.acknowledged_at is not None:
        lines.append(
            f"Đã xác nhận: {alarm.acknowledged_by_name or '—'}, {_time(alarm.acknowledged_at, zone)}"
        )
    if link:
        lines += ["", f"Xem trên trang giám sát: {link}"]
    lines += ["", "Thư này do hệ thống Giám sát kiosk gửi tự động."]
    data: dict[str, Any] = {
        "schema": SCHEMA,
        "event": delivery.event,
        "number": delivery.number,
        "text": headline,
        "url": link,
        "alarm": {
            "id": alarm.id,
            "center_id": alarm.center_id,
            "center_name": delivery.center_name,
            "kiosk_id": alarm.kiosk_id,
            "kiosk_label": delivery.kiosk_label,
            "type": alarm.type,
            "device": alarm.device,
            "severity": alarm.severity,
            "active": alarm.active,
            "detail": alarm.detail,
            "started_at": alarm.started_at.isoformat(timespec="milliseconds"),
            "ended_at": alarm.ended_at.isoformat(timespec="milliseconds") if alarm.ended_at else None,
            "acknowledged_by": alarm.acknowledged_by_name,
            "acknowledged_at": alarm.acknowledged_at.isoformat(timespec="milliseconds")
            if alarm.acknowledged_at
            else None,
            "reminders": alarm.reminders,
        },
    }
    subject = f"[Giám sát kiosk] {headline} ({severity})"
    return Rendered(subject, "\n".join(lines) + "\n", data)
