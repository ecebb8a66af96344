"""The center's pushed ``[visit]`` on the real runtime (no window): the control socket's
``app.reload_config`` (what the edge agent calls after it wrote the overlay) changes the hotline, the
feedback topics and the appointment check-in window of a flow already on screen; the salt stays the
kiosk's own; a push the contract refuses changes nothing."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from common.ipc import IpcError, call
from contract.config import FEEDBACK_TOPICS, PUSHABLE_VISIT_KEYS, VisitSettings
from kiosk.config import KioskConfig
from kiosk.dossier import Appointment, DemoDossierStore
from kiosk.dossier.visit import FEEDBACK_TOPICS as KIOSK_TOPICS
from kiosk.dossier.visit import VisitConfig
from kiosk.runtime import KioskRuntime, demo_config

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")


def kiosk_config(tmp_path: Path) -> KioskConfig:
    config = demo_config(tmp_path / "kiosk")
    devices = dataclasses.replace(
        config.devices, card_reader=dataclasses.replace(config.devices.card_reader, enabled=False)
    )
    return dataclasses.replace(config, devices=devices)


def reload(runtime: KioskRuntime, overlay: dict[str, Any], path: Path) -> dict[str, Any]:
    """What the edge agent does after a push: write the overlay, call the app on its control socket."""
    path.write_text(json.dumps(overlay), encoding="utf-8")
    return call(runtime.control.path, "app.reload_config", {"overlay_path": str(path)})


def test_the_pushable_visit_keys_are_the_kiosks_own_without_the_salt() -> None:
    kiosk_fields = {f.name: f for f in dataclasses.fields(VisitConfig)}
    assert set(PUSHABLE_VISIT_KEYS) == set(kiosk_fields) - {"appointment_salt"}
    pushed, own = VisitSettings(), VisitConfig()
    for key in PUSHABLE_VISIT_KEYS:  # same defaults, so an empty push and no push are the same
        assert getattr(pushed, key) == getattr(own, key), key
    assert FEEDBACK_TOPICS == KIOSK_TOPICS


def test_a_pushed_visit_applies_to_the_flow_on_screen(tmp_path: Path) -> None:
    now = datetime.now(ZONE).replace(hour=9, minute=0, second=0, microsecond=0)
    runtime = KioskRuntime(kiosk_config(tmp_path), synchronous=True, wall_clock=lambda: now)
    overlay_path = tmp_path / "pushed-config.json"
    runtime.start(lambda fn: fn())  # the control socket, as in the app (UI calls run at once here)
    try:
        salt = runtime.config.visit.appointment_salt
        assert salt
        runtime.core.start("feedback")
        feedback: Any = runtime.core.flow
        assert feedback.hotline == "1022" and feedback.topics == list(FEEDBACK_TOPICS)
        answer = reload(
            runtime,
            {
                "version": 4,
                "visit": {
                    "hotline": "0274 1022",
                    "feedback_topics": ["thu_tuc", "khac"],
                    "appointment_early_min": 60,
                    "payee_bank_bin": "970436",
                    "payee_account": "0071000123456",
                },
            },
            overlay_path,
        )
        assert answer == {"config_version": 4}
        assert runtime.core.flow is not None and runtime.core.flow.name == "feedback"
        assert id(runtime.core.flow) == id(feedback)  # the same screen, the new values
        assert feedback.hotline == "0274 1022" and feedback.topics == ["thu_tuc", "khac"]
        visit = runtime.config.visit
        assert visit.appointment_salt == salt and visit.appointment_late_min == 15  # not pushed: own
        assert (visit.payee_bank_bin, visit.payee_account) == ("970436", "0071000123456")
        # the wider check-in window: a booking at 9:40 is now open at 9:00 (30 minutes was too early)
        store = runtime.devices.dossiers
        assert isinstance(store, DemoDossierStore)
        store.add_appointment(Appointment("LH-PUSH-0001", "HO_TICH", now.date(), time(9, 40)))
        runtime.core.start("appointment")
        runtime.core.scanned("LH-PUSH-0001")
        runtime.core.pump()
        checked: Any = runtime.core.flow
        assert checked.state == "done", checked.error_key
        # refused by the contract: nothing changes, the error names the key
        with pytest.raises(IpcError, match=r"visit\.appointment_salt: unknown key"):
            reload(runtime, {"version": 5, "visit": {"appointment_salt": "x" * 20}}, overlay_path)
        with pytest.raises(IpcError, match="feedback_topics"):
            reload(runtime, {"version": 5, "visit": {"feedback_topics": ["gossip"]}}, overlay_path)
        assert runtime.config.version == 4 and runtime.config.visit.hotline == "0274 1022"
        # a later push without [visit]: back to the kiosk's own file
        assert reload(runtime, {"version": 6}, overlay_path) == {"config_version": 6}
        assert runtime.config.visit.hotline == "1022" and runtime.config.visit.payee_bank_bin == "970415"
    finally:
        runtime.stop()
