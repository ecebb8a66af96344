"""Rating rules: scales, one rating per ticket or dossier, the repeat interval, linking, totals."""

from __future__ import annotations

import threading
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from common.errors import ConfigError
from common.journal import EventJournal
from kiosk.rating import (
    DEFAULT_CRITERIA,
    RatingBook,
    RatingError,
    RatingOutcome,
    RatingScale,
    RatingTarget,
    rating_event,
)

VN = timezone(timedelta(hours=7))
T0 = datetime(2026, 11, 23, 9, 0, 0, tzinfo=VN)
TICKET = "hcm-ben-thanh/2026-11-23/A012"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
def book(tmp_path: Path) -> RatingBook:
    return RatingBook(tmp_path / "ratings.sqlite", RatingScale.build(4, criteria=DEFAULT_CRITERIA[:3]))


def test_default_scale_is_four_faces_best_first() -> None:
    scale = RatingScale.build()
    assert [(lv.value, lv.label_vi, lv.label_en, lv.negative) for lv in scale.levels] == [
        (4, "Rất hài lòng", "Very satisfied", False),
        (3, "Hài lòng", "Satisfied", False),
        (2, "Không hài lòng", "Dissatisfied", True),
        (1, "Rất không hài lòng", "Very dissatisfied", True),
    ]


@pytest.mark.parametrize(
    ("levels", "labels", "negative"),
    [
        (3, ["Hài lòng", "Bình thường", "Không hài lòng"], [1]),
        (5, ["Rất hài lòng", "Hài lòng", "Bình thường", "Không hài lòng", "Rất không hài lòng"], [1, 2]),
    ],
)
def test_other_scales(levels: int, labels: list[str], negative: list[int]) -> None:
    scale = RatingScale.build(levels)
    assert [lv.label_vi for lv in scale.levels] == labels
    assert sorted(lv.value for lv in scale.levels if lv.negative) == negative


def test_bad_scale_configuration() -> None:
    with pytest.raises(ConfigError, match=r"rating\.levels"):
        RatingScale.build(6)
    with pytest.raises(ConfigError, match="used twice"):
        RatingScale.build(4, reasons=[("a", "A", "A"), ("a", "B", "B")])


def test_one_rating_per_ticket_even_after_restart(book: RatingBook, tmp_path: Path) -> None:
    assert book.submit(4, target=RatingTarget.ticket(TICKET), now=at(0)).counted
    again = book.submit(1, target=RatingTarget.ticket(TICKET), now=at(600))
    assert again == RatingOutcome(False, "duplicate")
    book.close()
    reopened = RatingBook(tmp_path / "ratings.sqlite")
    typed = reopened.submit(2, target_kind="ticket", target_id=TICKET.lower(), now=at(900))
    assert typed.reason == "duplicate"
    assert reopened.already_rated(RatingTarget.ticket(TICKET))
    totals = reopened.totals()
    assert totals.counted == 1 and totals.by_level == {4: 1, 3: 0, 2: 0, 1: 0}
    assert totals.not_counted == {"duplicate": 2}


def test_one_rating_per_dossier_typed_or_scanned(book: RatingBook) -> None:
    assert book.submit(3, target=RatingTarget.dossier("000.00.10.H12-210901-0001"), now=at(0)).counted
    typed = book.submit(1, target_kind="dossier", target_id=" 000.00.10.h12-210901-0001 ", now=at(60))
    assert typed == RatingOutcome(False, "duplicate")
    with pytest.raises(RatingError):
        RatingTarget.dossier("not a code")


def test_repeated_taps_within_the_interval_are_not_counted(book: RatingBook) -> None:
    outcomes = [book.submit(3, now=at(t)).reason for t in (0, 1, 2.5, 4.9)]
    assert outcomes == [None, "too_soon", "too_soon", "too_soon"]
    # measured from the last tap: a tap every 4.9 s never counts again
    assert book.submit(3, now=at(9.8)).reason == "too_soon"
    assert book.submit(3, now=at(14.9)).counted
    assert book.totals().counted == 2


def test_interval_is_per_target(book: RatingBook) -> None:
    assert book.submit(4, target=RatingTarget("counter", "5"), now=at(0)).counted
    assert book.submit(4, target=RatingTarget("official", "cb-017"), now=at(1)).counted
    assert book.submit(4, target=RatingTarget.ticket(TICKET), now=at(2)).counted
    assert book.submit(4, target=RatingTarget("counter", "5"), now=at(3)).reason == "too_soon"
    assert book.submit(2, target=RatingTarget("counter", "5"), now=at(60)).counted  # counters: many ratings
    assert book.totals().by_target_kind == {"counter": 2, "official": 1, "ticket": 1}


def test_interval_with_the_real_clock(tmp_path: Path) -> None:
    book = RatingBook(tmp_path / "r.sqlite", repeat_interval_s=0.3)
    assert book.submit(4).counted
    assert book.submit(4).reason == "too_soon"
    time.sleep(0.35)
    assert book.submit(4).counted


def test_validation(book: RatingBook) -> None:
    with pytest.raises(RatingError, match="not on the 4-level scale"):
        book.submit(5)
    with pytest.raises(RatingError, match="5-level scale; the book is set for 4"):
        book.submit(3, scale=5)
    with pytest.raises(RatingError, match="unknown rating reasons"):
        book.submit(1, reasons=["made_up"])
    with pytest.raises(RatingError, match="criterion"):
        book.submit(1, criteria={"facilities": 2})  # not enabled in this book
    with pytest.raises(RatingError):
        RatingTarget("boss", "x")  # type: ignore[arg-type]
    with pytest.raises(RatingError):
        RatingTarget("counter", "a\x00b")
    assert book.totals().counted == 0
    assert book.totals().not_counted == {}


def test_reasons_criteria_and_daily_totals(book: RatingBook) -> None:
    book.submit(1, reasons=["long_wait", "visits"], criteria={"time_taken": 1}, now=at(0),
                target=RatingTarget("counter", "3"))
    book.submit(2, reasons=["long_wait"], criteria={"staff_attitude": 4, "time_taken": 2}, now=at(10),
                target=RatingTarget("counter", "4"))
    book.submit(4, now=at(86400))  # next day
    day1 = book.totals(date(2026, 11, 23))
    assert day1.counted == 2
    assert day1.reasons == {"long_wait": 2, "visits": 1}
    assert day1.criteria == {"time_taken": {1: 1, 2: 1}, "staff_attitude": {4: 1}}
    assert day1.satisfied_share == 0.0
    all_days = book.totals()
    assert all_days.counted == 3 and all_days.satisfied_share == pytest.approx(1 / 3)
    assert book.totals(date(2026, 11, 25)).satisfied_share is None


def test_scale_change_keeps_totals_apart(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    RatingBook(path, RatingScale.build(4)).submit(4, now=at(0))
    five = RatingBook(path, RatingScale.build(5))
    five.submit(5, now=at(60))
    assert five.totals().counted == 1 and five.totals().by_level[5] == 1


def test_concurrent_taps_on_one_ticket_count_once(tmp_path: Path) -> None:
    """Two worker threads and two processes' worth of connections: the unique index decides."""
    path = tmp_path / "r.sqlite"
    books = [RatingBook(path, repeat_interval_s=0) for _ in range(2)]
    outcomes: list[RatingOutcome] = []
    barrier = threading.Barrier(8)

    def tap(index: int) -> None:
        barrier.wait()
        outcomes.append(books[index % 2].submit(4, target=RatingTarget.ticket(TICKET)))

    threads = [threading.Thread(target=tap, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(o.counted for o in outcomes) == [False] * 7 + [True]
    assert books[0].totals().counted == 1


def test_event_payload_goes_through_the_journal_without_personal_data(tmp_path: Path) -> None:
    scale = RatingScale.build(4)
    payload = rating_event(2, scale, RatingTarget("official", "cb-017"), ["long_wait"])
    assert payload.to_data() == {
        "level": 2, "level_key": "dissatisfied", "scale": 4, "target_kind": "official", "target_id": "cb-017",
        "reasons": ["long_wait"], "criteria": {},
    }
    journal = EventJournal(tmp_path / "events.sqlite")
    assert journal.append(payload).payload == payload.to_data()
    dossier = rating_event(4, scale, RatingTarget.dossier("000.00.10.H12-210901-0001"))
    assert dossier.target_kind == "dossier" and dossier.target_id is None  # the code leads to a person
    journal.close()
