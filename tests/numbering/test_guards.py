"""One kiosk cannot break numbering for the others (issue 10 item 2, issue 12): slots, quotas, rates,
the catalog, unconfirmed numbers and the enrolled-kiosks registry, on the real book (no broker)."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contract.config import ConfigPush, PushedConfig, ServiceArea
from contract.enrollment import EnrolledKiosk, EnrolledKiosks
from contract.tickets import ReportItem, TicketRequest
from fleet.allocator import UNCONFIRMED, AllocatorBook, Catalog, Limits, Registry
from tests.numbering.test_book import NOON, PLAN, ZONE, allocate, ask, report

#: no rate limit: the tests of the other guards send hundreds of requests at one instant
UNLIMITED_RATE = Limits(burst=100_000, rate_per_s=100_000.0)
DAY = "2026-11-23"


def make_book(tmp_path: Path, **kwargs: Any) -> AllocatorBook:
    return AllocatorBook(tmp_path / "book.sqlite", PLAN, ZONE, **kwargs)


def offline_item(request_id: str, seq: int, service: str = "HOTICH", prefix: str = "A",
                 day: str = DAY) -> ReportItem:
    return ReportItem(request_id, day, service, prefix, seq, "offline", "printed",
                      issued_at=f"{DAY}T05:00:00Z")


def test_one_identity_asking_with_every_slot_binds_only_the_first(tmp_path: Path) -> None:
    """Seen: after 1,000 requests of one identity with slots 0..999, every other kiosk got slot_conflict."""
    book = make_book(tmp_path, limits=UNLIMITED_RATE)
    answers = [ask(book, "squatter", allocate(f"s{slot}", slot=slot)) for slot in range(1000)]
    assert answers[0]["status"] == "ok"
    assert {a["error"] for a in answers[1:]} == {"slot_conflict"}
    assert "holds offline slot 0 already" in answers[1]["reason"]
    legit = ask(book, "kiosk-2", allocate("k2-1", slot=5))
    assert (legit["status"], legit["number"]) == ("ok", "A002")
    assert book.release_slot(5) == "kiosk-2"  # a moved kiosk's slot can be given back (no registry)
    assert ask(book, "kiosk-3", allocate("k3-1", slot=5))["status"] == "ok"


def test_one_kiosk_cannot_take_the_whole_online_range_of_a_service(tmp_path: Path) -> None:
    """Seen: one kiosk used up the 799 online numbers of a service; now it gets half, then its block."""
    book = make_book(tmp_path, limits=UNLIMITED_RATE)
    answers = [ask(book, "greedy", allocate(f"g{i}")) for i in range(799)]
    numbered = [a for a in answers if a["status"] == "ok"]
    assert len(numbered) == 399  # the default quota: half of the 799 online numbers
    over = answers[399]
    assert over["error"] == "exhausted" and "quota of 399" in over["reason"]  # prints from its own block
    assert ask(book, "greedy", allocate("g-other", service="DATDAI", prefix="C"))["number"] == "C001"
    others = [ask(book, "kiosk-2", allocate(f"k{i}", slot=1)) for i in range(10)]
    assert [a["number"] for a in others] == [f"A{n:03d}" for n in range(400, 410)]
    assert ask(book, "greedy", allocate("g0"))["number"] == "A001"  # a retry still gets its number
    tomorrow = ask(book, "greedy", allocate("g-next-day"), NOON + timedelta(days=1))
    assert tomorrow["number"] == "A001"


def test_a_kiosk_over_its_rate_is_refused_without_touching_the_others(tmp_path: Path) -> None:
    book = make_book(tmp_path)  # the defaults: 60 at once, 2 per second
    burst = [ask(book, "flood", allocate(f"f{i}")) for i in range(61)]
    assert all(a["status"] == "ok" for a in burst[:60])
    assert burst[60]["error"] == "exhausted" and "requests" in burst[60]["reason"]
    refused_report = ask(book, "flood", report("rep-1", offline_item("o1", 800)))
    assert refused_report["error"] == "rate_limited"  # the kiosk sends its report again later
    assert ask(book, "kiosk-2", allocate("k2", slot=1))["status"] == "ok"
    later = [ask(book, "flood", allocate(f"l{i}"), NOON + timedelta(seconds=1)) for i in range(3)]
    assert [a["status"] for a in later] == ["ok", "ok", "error"]  # 2 per second came back
    assert book.stats.rate_limited == 3
    assert len(book.conflicts()) == 0  # a refused flood writes nothing


def _push(services: list[tuple[str, str]], version: int = 1) -> bytes:
    areas = [ServiceArea(code, prefix, code.title(), code.title()) for code, prefix in services]
    return ConfigPush(version, PushedConfig(services=areas)).to_payload()


def test_service_and_prefix_are_checked_against_the_centers_catalog(tmp_path: Path) -> None:
    catalog = Catalog()
    catalog.on_push(_push([("HOTICH", "A"), ("DATDAI", "C")]))
    book = make_book(tmp_path, catalog=catalog)
    assert ask(book, "kiosk-1", allocate("r1"))["number"] == "A001"
    unknown = ask(book, "kiosk-1", allocate("r2", service="NOPE", prefix="Z"))
    assert unknown["error"] == "unknown_service" and "not in the center's catalog" in unknown["reason"]
    wrong = ask(book, "kiosk-1", allocate("r3", service="HOTICH", prefix="C"))
    assert wrong["error"] == "unknown_service" and "prefix A" in wrong["reason"]
    items = (offline_item("o1", 800, "NOPE", "Z"), offline_item("o2", 801))
    reported = ask(book, "kiosk-1", report("rep", *items))
    assert reported["accepted"] == ["o2"] and "catalog" in reported["conflicts"][0]["reason"]
    catalog.on_push(_push([("HOTICH", "A"), ("NOPE", "Z")], version=2))  # the center added it
    assert ask(book, "kiosk-1", allocate("r4", service="NOPE", prefix="Z"))["number"] == "Z001"


def test_a_catalog_file_is_used_until_a_push_carries_services(tmp_path: Path) -> None:
    toml = tmp_path / "catalog.toml"
    toml.write_text('[[services]]\ncode = "HOTICH"\nprefix = "A"\nname_vi = "Hộ tịch"\nname_en = "Civil"\n')
    catalog = Catalog.from_file(toml)
    assert catalog.services() == {"HOTICH": "A"}
    catalog.on_push(ConfigPush.parse(_push([("DATDAI", "C")])).to_payload())
    assert catalog.services() == {"DATDAI": "C"}
    catalog.on_push(b"")  # the retained push was cleared: back to the file
    assert catalog.services() == {"HOTICH": "A"}


def test_without_a_catalog_a_prefix_belongs_to_one_service_per_day(tmp_path: Path) -> None:
    """Seen: a kiosk could number service FOO with HOTICH's prefix, printing a second A001 that day."""
    book = make_book(tmp_path)
    assert ask(book, "kiosk-1", allocate("r1"))["number"] == "A001"
    stolen = ask(book, "kiosk-2", allocate("r2", service="FOO", prefix="A", slot=1))
    assert stolen["error"] == "unknown_service" and "HOTICH has prefix A" in stolen["reason"]
    other_prefix = ask(book, "kiosk-2", allocate("r3", service="HOTICH", prefix="B", slot=1))
    assert other_prefix["error"] == "unknown_service"
    assert ask(book, "kiosk-2", allocate("r4", slot=1))["number"] == "A002"
    tomorrow = NOON + timedelta(days=1)
    next_day = ask(book, "kiosk-2", allocate("r5", service="FOO", prefix="A", slot=1), tomorrow)
    assert next_day["number"] == "A001"


def test_numbers_never_printed_stop_counting_as_waiting(tmp_path: Path) -> None:
    """Seen: numbers allocated but never printed (kiosk gone) counted as waiting forever."""
    book = make_book(tmp_path)
    for i in range(3):
        ask(book, "kiosk-1", allocate(f"r{i}"))
    printed = ReportItem("r2", DAY, "HOTICH", "A", 3, "online", "printed")
    ask(book, "kiosk-1", report("rep-1", printed))
    assert ask(book, "kiosk-1", allocate("r3"))["waiting_ahead"] == 3
    later = NOON + timedelta(minutes=16)
    assert book.transaction(lambda: [book.expire_unconfirmed(later)]) == [3]  # A001, A002, A004
    assert ask(book, "kiosk-1", allocate("r4"), later)["waiting_ahead"] == 1  # only A003 (printed)
    statuses = {t["number"]: (t["status"], t["reason"]) for t in book.tickets(DAY)}
    assert statuses["A001"] == ("voided", UNCONFIRMED) and statuses["A003"] == ("printed", None)
    # A001 was on paper after all (its report came late): it waits again
    late = ReportItem("r0", DAY, "HOTICH", "A", 1, "online", "printed")
    assert ask(book, "kiosk-1", report("rep-2", late), later)["accepted"] == ["r0"]
    assert ask(book, "kiosk-1", allocate("r5"), later)["waiting_ahead"] == 3  # A001, A003, A005
    assert book.summary(DAY)["HOTICH"]["unconfirmed"] == 2


def _write_registry(path: Path, generation: int, kiosks: dict[str, int]) -> None:
    entries = {kiosk: EnrolledKiosk(slot) for kiosk, slot in kiosks.items()}
    registry = EnrolledKiosks("hcm-ben-thanh", generation, entries)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(registry.to_bytes())
    os.replace(tmp, path)  # as provisioning writes it: atomically


def test_only_enrolled_kiosks_are_served_and_each_on_its_own_slot(tmp_path: Path) -> None:
    path = tmp_path / "enrolled-kiosks.json"
    registry = Registry(path, "hcm-ben-thanh")
    book = make_book(tmp_path, registry=registry)
    no_file = ask(book, "kiosk-1", allocate("r0"))
    assert no_file["error"] == "exhausted" and "registry" in no_file["reason"]  # nobody can be checked
    _write_registry(path, 1, {"kiosk-1": 0, "kiosk-2": 1})
    assert ask(book, "kiosk-1", allocate("r1"))["number"] == "A001"
    stranger = ask(book, "kiosk-9", allocate("r2", slot=9))
    assert stranger["error"] == "slot_conflict" and "not enrolled" in stranger["reason"]
    thief = ask(book, "kiosk-1", allocate("r3", slot=1))
    assert thief["error"] == "slot_conflict" and "kiosk-1's (its slot is 0)" in thief["reason"]
    theft_report = ask(book, "kiosk-1", report("rep", offline_item("o1", 820), slot=1))
    assert theft_report["error"] == "slot_conflict"  # kiosk-2's block cannot be reported by kiosk-1
    assert ask(book, "kiosk-2", allocate("r4", slot=1))["number"] == "A002"
    _write_registry(path, 2, {"kiosk-1": 0, "kiosk-2": 1, "kiosk-9": 9})  # enrolled since
    assert ask(book, "kiosk-9", allocate("r5", slot=9))["number"] == "A003"
    assert registry.generation == 2
    path.write_text("{half written")  # a broken file keeps the last good registry in use
    os.utime(path, None)
    assert ask(book, "kiosk-9", allocate("r6", slot=9))["number"] == "A004"
    assert registry.problem and registry.generation == 2
    assert len(book.conflicts()) == 3


@pytest.mark.parametrize("payload", [
    b"[" * 200_000,  # seen: RecursionError in the worker
    b'{"request_id": "deep-1", "x": ' + b"[" * 5_000 + b"]" * 5_000 + b"}",
    b'{"request_id": "big-1", "pad": "' + b"x" * (1 << 20) + b'"}',
    "\udcff".encode("utf-8", "surrogatepass"),
    b"\x00" * 70_000,
])
def test_hostile_payloads_are_answered_bad_request(tmp_path: Path, payload: bytes) -> None:
    book = make_book(tmp_path)
    answer = ask(book, "kiosk-1", payload)
    assert (answer["status"], answer["error"]) == ("error", "bad_request")
    assert ask(book, "kiosk-1", allocate("after"))["number"] == "A001"


def test_report_answers_fit_their_limit_with_200_long_conflicts(tmp_path: Path) -> None:
    book = make_book(tmp_path, limits=UNLIMITED_RATE)
    kiosk = "k" * 63
    items = tuple(offline_item(f"{'x' * 60}{i:04d}", 5_000 + i) for i in range(200))  # outside the block
    payload = json.dumps(TicketRequest("r" * 64, "report", 0, PLAN, tickets=items).to_data()).encode()
    answer = book.transaction(lambda: [book.handle(kiosk, payload, NOON)])[0]
    assert len(answer.conflicts or []) == 200
    assert len(answer.to_payload()) <= 64 * 1024


def test_the_allocator_does_not_start_without_saying_whom_it_serves(tmp_path: Path) -> None:
    """--registry (a provisioned center) or --no-registry (a lab broker): never silently open."""
    import subprocess
    import sys

    from tests.agent.broker import ROOT

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(ROOT / "main.py"), "fleet", "allocator", "--center", "c1", "--db",
             str(tmp_path / "a.sqlite"), *extra],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )

    neither = run()
    assert neither.returncode == 78 and "--registry FILE" in neither.stderr.strip().splitlines()[-1]
    both = run("--registry", str(tmp_path / "r.json"), "--no-registry")
    assert both.returncode == 78
    bad_catalog = tmp_path / "catalog.toml"
    bad_catalog.write_text("[[services]]\ncode = 'hộ tịch'\n")
    catalog = run("--no-registry", "--catalog", str(bad_catalog))
    assert catalog.returncode == 78 and "--catalog" in catalog.stderr and "Traceback" not in catalog.stderr
    quota = run("--no-registry", "--kiosk-quota", "0")
    assert quota.returncode == 78 and "kiosk_quota" in quota.stderr


# -- a property: whatever the other kiosks send, an honest one is served and no number is held twice ----

_HOSTILE = st.one_of(
    st.tuples(st.just("stranger"), st.integers(0, 9)),  # not enrolled, any slot
    st.tuples(st.just("thief"), st.integers(0, 9)),  # enrolled on slot 7, asks with any slot
    st.tuples(st.just("flooder"), st.just(8)),  # enrolled on slot 8, sends 20 at once each time
)
_CATALOG = {"HOTICH": "A", "DATDAI": "C"}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    script=st.lists(
        st.tuples(
            st.one_of(st.just(("honest", 0)), _HOSTILE),
            st.sampled_from([("HOTICH", "A"), ("HOTICH", "C"), ("NOPE", "Z"), ("DATDAI", "C")]),
            st.integers(0, 3),  # seconds since the previous step
        ),
        min_size=1, max_size=120,
    )
)
def test_an_honest_kiosk_is_served_whatever_the_others_send(
    tmp_path_factory: pytest.TempPathFactory, script: list[Any]
) -> None:
    """The honest kiosk is refused only for its own quota or its own rate; nobody else gets a number
    they may not have; no (day, number) twice; every number has its service's catalog prefix."""
    folder = tmp_path_factory.mktemp("prop")
    path = folder / "enrolled-kiosks.json"
    _write_registry(path, 1, {"honest": 0, "thief": 7, "flooder": 8})
    book = make_book(folder, registry=Registry(path, "hcm-ben-thanh"), catalog=Catalog(dict(_CATALOG)),
                     limits=Limits(kiosk_quota=30))
    now = NOON
    numbers: dict[tuple[str, str], str] = {}
    honest_sent = honest_served = 0
    for index, ((kiosk, slot), (service, prefix), pause) in enumerate(script):
        now += timedelta(seconds=pause)
        for burst in range(20 if kiosk == "flooder" else 1):
            answer = ask(book, kiosk, allocate(f"{kiosk}-{index}-{burst}", service, prefix, slot=slot), now)
            valid = _CATALOG.get(service) == prefix
            if kiosk == "honest" and valid:
                honest_sent += 1
            if answer["status"] != "ok":
                if kiosk == "honest" and valid:
                    assert answer["error"] == "exhausted", answer
                    own = ("quota", "kiosk honest: more than")  # its own quota or its own rate
                    assert any(words in answer["reason"] for words in own), answer
                continue
            assert valid and (kiosk in ("honest", "flooder") or (kiosk, slot) == ("thief", 7)), answer
            assert _CATALOG[answer["service"]] == answer["number"][0]
            key = (answer["day"], answer["number"])
            assert key not in numbers, f"{key} twice: {numbers[key]} and {kiosk}"
            numbers[key] = kiosk
            honest_served += kiosk == "honest"
    assert honest_served <= honest_sent
    if honest_sent <= 30:  # under its quota and at most one request per step: never over its rate
        assert honest_served == honest_sent
    book.close()
