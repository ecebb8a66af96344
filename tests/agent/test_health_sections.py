"""How the agent turns the app's ``app.health`` answer into the heartbeat's app and device sections."""

from __future__ import annotations

from contract.health import AppHealth, DeviceHealth, NumberingHealth
from contract.schema import to_data
from edge_agent.health import app_section, devices_section


def test_optional_devices_only_when_the_app_has_them() -> None:
    three = devices_section({"devices": {"printer": {"state": "ok"}}})
    assert set(three) == {"printer", "card_reader", "scanner"}
    assert three["scanner"] == DeviceHealth("unknown")
    four = devices_section(
        {"devices": {"printer": {"state": "ok"}, "receipt_printer": {"state": "paper_out"}}}
    )
    assert four["receipt_printer"] == DeviceHealth("paper_out")
    assert "dvd_drive" not in devices_section({"devices": {"dvd_drive": {"state": "ok"}}})


def test_only_the_contracts_device_fields_reach_the_heartbeat() -> None:
    """Anything else the app puts in a device's answer (a name read from a card) is not passed on."""
    section = devices_section({"devices": {"card_reader": {"state": "ok", "full_name": "Nguyễn Văn An"}}})
    assert to_data(section["card_reader"]) == {"state": "ok"}
    odd = devices_section({"devices": {"printer": {"state": "Paper Out!"}}})
    assert odd["printer"].state == "unknown"  # not a state word: refused, never passed through


def test_app_section_carries_numbering_state() -> None:
    reply = {
        "app_version": "0.1.0",
        "numbering": {"mode": "center", "pending_reports": 3, "offline_blocked": None},
    }
    assert app_section(reply, None).numbering == NumberingHealth("center", 3, None)
    assert app_section(None, "refused") == AppHealth("down", error="refused")
    broken = app_section({"app_version": "0.1.0", "uptime_s": "soon"}, None)
    assert broken.state == "up" and broken.error is not None and "uptime_s" in broken.error
