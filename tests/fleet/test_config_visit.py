"""The visit's settings on the config push page (center-wide and per kiosk): the form reads into the
push body, the contract checks it as the kiosk will (errors next to their field, in Vietnamese),
the salt is not a pushable key, and the page shows what a kiosk has not applied yet."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from contract.config import ConfigPush, PushedConfig
from contract.errors import ContractError
from fleet.store import Scope, Store, open_store
from fleet.web import config_forms as forms
from tests.fleet.conftest import FakeClock
from tests.fleet.data import build
from tests.fleet.web import browser

ALL = Scope.everything()
PATH = "/centers/hcm-ben-thanh/config"


@pytest.fixture
def web_store(sqlite_url: str, clock: FakeClock) -> Iterator[Store]:
    store = open_store(sqlite_url, clock=clock)
    build(store)
    yield store
    store.close()


def parse(config: dict[str, object]) -> PushedConfig:
    return ConfigPush.from_data({"schema": ConfigPush.SCHEMA, "version": 1, "config": config}).config


def test_the_contract_checks_a_pushed_visit_key_by_key() -> None:
    pushed = parse({"visit": {"hotline": "1900 1022", "feedback_topics": ["khac"], "post_delivery": False}})
    assert pushed.to_overlay() == {
        "visit": {"hotline": "1900 1022", "feedback_topics": ["khac"], "post_delivery": False}
    }
    assert parse({"visit": {}}).to_overlay() == {}  # names nothing: changes nothing
    for bad, where in (
        ({"appointment_salt": "a-secret-of-twenty-chars"}, "visit.appointment_salt: unknown key"),
        ({"hotline": "gọi 1022"}, "visit.hotline"),
        ({"feedback_topics": []}, "visit.feedback_topics"),
        ({"feedback_topics": ["khac", "khac"]}, "visit.feedback_topics"),
        ({"payee_account": "0071000123456"}, "visit.payee_account"),  # without its bank
        ({"payee_bank_bin": "123456", "payee_account": "1"}, "visit.payee_bank_bin"),  # not a NAPAS BIN
        ({"appointment_late_min": 241}, "visit.appointment_late_min"),
        ({"payee_name": "x" * 121}, "visit.payee_name"),
    ):
        with pytest.raises(ContractError, match=where.replace(".", r"\.")):
            parse({"visit": bad})


def test_the_visit_form_pushes_what_it_names_and_says_what_is_wrong(web_store: Store) -> None:
    with browser(web_store, "quanly.bt") as manager:
        page = manager.client.get(PATH).text
        assert 'data-section="visit"' in page and 'name="topic-thoi_gian"' in page
        assert "appointment_salt" in page and 'name="appointment_salt"' not in page  # said, not offered
        form = {
            "section": "visit",
            "hotline": "0274 1022",
            "appointment_early_min": "45",
            "appointment_late_min": "",
            "topic-thu_tuc": "on",
            "topic-khac": "on",
            "post_delivery": "no",
            "payee_bank_bin": "",
            "payee_account": "0071000123456",
            "payee_name": "",
        }
        refused = manager.post(PATH, form)
        assert refused.status_code == 400
        assert (
            'data-error-for="payee_account">Số tài khoản: mã ngân hàng và số tài khoản phải nhập cùng nhau'
            in refused.text
        )
        assert 'value="0274 1022"' in refused.text  # what was typed stays
        wrong = manager.post(PATH, {**form, "payee_account": "", "hotline": "một không hai hai"})
        assert 'data-error-for="hotline">Đường dây nóng: chỉ gồm chữ số' in wrong.text
        typed = manager.post(PATH, {**form, "payee_account": "", "appointment_early_min": "bốn lăm"})
        assert 'data-error-for="appointment_early_min">Phải là một số' in typed.text
        ok = manager.post(PATH, {**form, "payee_bank_bin": "970436"})
        assert ok.status_code == 303 and ok.headers["location"] == f"{PATH}?done=pushed&version=1#visit"
        shown = manager.client.get(PATH).text
        assert 'name="topic-khac" checked' in shown and 'name="topic-thai_do">' in shown
        assert '<option value="no" selected>' in shown
        cleared = manager.post(PATH, {"section": "visit", "action": "clear"})
        assert cleared.headers["location"] == f"{PATH}?done=pushed&version=2#visit"
    entries = web_store.audit.page(ALL, action="config.push").items
    assert entries[1].after is not None
    assert entries[1].after["config"] == {
        "visit": {
            "hotline": "0274 1022",
            "appointment_early_min": 45,
            "feedback_topics": ["thu_tuc", "khac"],
            "post_delivery": False,
            "payee_bank_bin": "970436",
            "payee_account": "0071000123456",
        }
    }
    latest = web_store.outgoing.latest(ALL, "hcm-ben-thanh", "_center")
    assert latest is not None and latest.body == {}


def test_a_kiosk_that_has_not_applied_the_visit_is_told_key_by_key() -> None:
    before = {"visit": {"hotline": "1022"}}
    after = {"visit": {"hotline": "0274 1022", "feedback_topics": ["khac"], "post_delivery": False}}
    found = {d.key: d for d in forms.diff(before, after)}
    assert set(found) == {"visit.hotline", "visit.feedback_topics", "visit.post_delivery"}
    assert found["visit.hotline"].label == "Đường dây nóng" and found["visit.hotline"].after == "0274 1022"
    assert found["visit.feedback_topics"].after == "khac" and found["visit.post_delivery"].after == "không"
    body = forms.apply_section({"kiosk": {"notice_vi": "x"}}, "visit", {"visit": {"hotline": "1022"}})
    assert body == {"kiosk": {"notice_vi": "x"}, "visit": {"hotline": "1022"}}
    assert forms.apply_section(body, "visit", None) == {"kiosk": {"notice_vi": "x"}}


def test_the_kiosk_behaviour_form_pushes_spoken_guidance() -> None:
    """``kiosk.voice``: on, off, or kept as the kiosk's file says (the select's empty choice)."""
    for choice, pushed in (("yes", {"voice": True}), ("no", {"voice": False}), ("", {})):
        parsed = forms.read_section("timeouts", {"voice": choice})
        assert parsed.part == {"kiosk": pushed}
        body = forms.apply_section({}, "timeouts", parsed.part)
        assert forms.check(body) == {}
        assert forms.form_values(body)["voice"] == choice
