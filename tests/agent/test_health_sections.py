"""How the agent turns the app's ``app.health`` answer into the heartbeat's app and device sections."""

from __future__ import annotations

from edge_agent.health import app_section, devices_section


def test_optional_devices_only_when_the_app_has_them() -> None:
    three = devices_section({"devices": {"printer": {"state": "ok"}}})
    assert set(three) == {"printer", "card_reader", "scanner"}
    assert three["scanner"] == {"state": "unknown"}
    four = devices_section(
        {"devices": {"printer": {"state": "ok"}, "receipt_printer": {"state": "paper_out"}}}
    )
    assert four["receipt_printer"] == {"state": "paper_out"}
    assert "dvd_drive" not in devices_section({"devices": {"dvd_drive": {"state": "ok"}}})


def test_device_details_with_personal_data_are_dropped() -> None:
    section = devices_section({"devices": {"card_reader": {"state": "ok", "full_name": "Nguyễn Văn An"}}})
    assert section["card_reader"] == {"state": "ok"}


def test_app_section_carries_numbering_state() -> None:
    reply = {
        "app_version": "0.1.0",
        "numbering": {"mode": "center", "pending_reports": 3, "offline_blocked": None},
    }
    assert app_section(reply, None)["numbering"] == {
        "mode": "center",
        "pending_reports": 3,
        "offline_blocked": None,
    }
    assert app_section(None, "refused") == {"state": "down", "error": "refused"}
