"""``CardReaderService``: what the kiosk app calls (from a worker thread) to read a citizen's card.

Every call has a deadline. A read runs in its own short-lived thread with its own PC/SC context; the
caller waits at most ``timeout_s`` and gets CardTimeoutError if the card (or reader) stalls. A stalled
read is abandoned, never reused: when it finally returns, its result is wiped. No personal data is
logged: log lines carry step names, timings, status words and key labels only.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from drivers.card.errors import CardError, CardRemovedError, CardTimeoutError
from drivers.card.identity import IdentityRecord
from drivers.card.keys import AccessKey
from drivers.card.reader import ReadOptions, ReadReport, read_identity_over, select_application
from drivers.card.transport import PcscContext

if TYPE_CHECKING:
    from drivers.card.trust import TrustStore

log = logging.getLogger(__name__)
T = TypeVar("T")
#: pause before connecting again when the reader state was still the previous card's
_SETTLE_PAUSE_S = 0.02


class _Call:
    """Result slot of one worker call; ``abandoned`` tells a late worker to throw its result away."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None
        self.abandoned = False
        self.lock = threading.Lock()


class CardReaderService:
    """The kiosk's ID-card reader on PC/SC (a real reader, or vpcd with the virtual chip)."""

    def __init__(
        self,
        reader_name_substring: str | None = None,
        trust_dir: Path | None = None,
        timeout_s: float = 5.0,
        *,
        active_auth: bool = True,
        chip_auth: bool = True,
        extended_block: int | None = None,
        block: int | None = None,
        pace: str = "auto",
    ) -> None:
        self.reader_name_substring = reader_name_substring
        self.trust_dir = trust_dir
        self.timeout_s = timeout_s
        self.active_auth = active_auth
        self.chip_auth = chip_auth
        self.extended_block = extended_block
        self.block = block
        self.pace = pace
        self.last_report: ReadReport | None = None
        self._trust: TrustStore | None = None
        self._trust_from: Path | None = None

    # -- presence ---------------------------------------------------------------------------------
    def _run(
        self, name: str, work: Callable[[], T], timeout_s: float, on_late: Callable[[T], None] | None = None
    ) -> T:
        """Run ``work`` in its own thread; CardTimeoutError after ``timeout_s`` (``on_late`` gets a late
        result, e.g. to wipe it)."""
        call = _Call()

        def target() -> None:
            try:
                value = work()
            except BaseException as exc:  # handed to the caller thread, re-raised there
                call.error = exc
                value = None
            with call.lock:
                if call.abandoned:
                    if on_late is not None and value is not None:
                        on_late(value)
                    return
                call.value = value
                call.done.set()

        threading.Thread(target=target, name=f"card-{name}", daemon=True).start()
        if not call.done.wait(timeout_s):
            with call.lock:
                if not call.done.is_set():
                    call.abandoned = True
                    raise CardTimeoutError(f"card {name} took longer than {timeout_s:.1f} s")
        if call.error is not None:
            raise call.error
        return cast(T, call.value)

    def _with_context(self, fn: Callable[[PcscContext], T]) -> T:
        """Run ``fn`` with a fresh PC/SC context: each worker thread owns its own (pyscard issue #127)."""
        ctx = PcscContext()
        try:
            return fn(ctx)
        finally:
            ctx.close()

    def reader_present(self) -> bool:
        """True when PC/SC lists the configured reader (False also when pcscd is not running)."""
        try:
            return bool(
                self._run(
                    "reader",
                    lambda: self._with_context(lambda ctx: ctx.find_reader(self.reader_name_substring)),
                    2.0,
                )
            )
        except CardError:  # missing, or pcscd not answering: either way no usable reader
            return False

    def card_present(self) -> bool:
        return self.wait_for_card(0.0)

    def wait_for_card(self, timeout_s: float) -> bool:
        """Block up to ``timeout_s`` for a card; ReaderMissingError if the reader is not there."""

        def work(ctx: PcscContext) -> bool:
            return ctx.wait_for_card(ctx.find_reader(self.reader_name_substring), timeout_s)

        return bool(self._run("wait", lambda: self._with_context(work), timeout_s + 2.0))

    # -- reading ----------------------------------------------------------------------------------
    def _trust_store(self) -> TrustStore | None:
        if self.trust_dir is None:
            return None
        if self._trust is None or self._trust_from != self.trust_dir:
            from drivers.card.sod import load_trust_store

            if not self.trust_dir.is_dir():
                raise CardError(f"trust store {self.trust_dir} is not a folder")
            # read once per folder: a new CSCA or CRL takes effect when the service is created again
            self._trust, self._trust_from = load_trust_store(self.trust_dir), self.trust_dir
        return self._trust

    def read_identity(self, keys: Sequence[AccessKey], *, with_photo: bool = False) -> IdentityRecord:
        """Read and verify the card in the reader, trying ``keys`` in order. Blocks at most ``timeout_s``."""
        options = ReadOptions(
            with_photo=with_photo,
            active_auth=self.active_auth,
            chip_auth=self.chip_auth,
            block=self.block,
            pace=self.pace,
            extended_block=self.extended_block,
            trust=self._trust_store(),
        )
        report = ReadReport()
        started = time.perf_counter()

        # The card may have been laid on the reader a moment ago: wait for it (present, ATR known,
        # connect accepted) within the read's own budget instead of refusing a card still settling.
        deadline = time.monotonic() + self.timeout_s

        def work(ctx: PcscContext) -> IdentityRecord:
            reader = ctx.find_reader(self.reader_name_substring)
            while True:
                transport = ctx.connect_when_ready(reader, deadline)
                try:
                    return read_identity_over(transport, keys, options, report)[0]
                except CardRemovedError:
                    # Right after a card left, pcscd still reports it present for a moment and accepts
                    # the connect; the first APDU then fails (SCardTransmit 0x80100016 with vpcd). A card
                    # that answered nothing was never read: wait for one that answers, in the budget.
                    if transport.stats.apdus or time.monotonic() >= deadline:
                        raise
                    log.info("card read: the card answered no APDU (reader state settling); waiting again")
                finally:
                    transport.close()
                time.sleep(_SETTLE_PAUSE_S)

        try:
            record: IdentityRecord = self._run(
                "read", lambda: self._with_context(work), self.timeout_s, on_late=lambda r: r.wipe()
            )
        finally:
            report.timings_ms["wall"] = round((time.perf_counter() - started) * 1000, 3)
            self.last_report = report
        log.info(
            "card read: %s (%s), %d APDUs, %.0f ms, key %s",
            record.authenticity.value,
            record.authenticity_code,
            report.apdu_count,
            report.timings_ms["wall"],
            report.key_label,
        )
        return record

    def self_test(self) -> dict[str, Any]:
        """For the technician screen: reader found, card answering (SELECT of the eMRTD application), timings.

        Needs no access key and reads no personal data.
        """
        result: dict[str, Any] = {
            "reader": None,
            "reader_found": False,
            "card_present": False,
            "card_answers": False,
            "atr": None,
            "is_id_card": False,
            "timings_ms": {},
            "error": None,
        }
        started = time.perf_counter()

        def work(ctx: PcscContext) -> None:
            t0 = time.perf_counter()
            reader = ctx.find_reader(self.reader_name_substring)
            result["reader"], result["reader_found"] = reader, True
            result["timings_ms"]["find_reader"] = round((time.perf_counter() - t0) * 1000, 3)
            if not ctx.card_present(reader):  # the self-test reports the reader as it is now
                return
            result["card_present"] = True
            t0 = time.perf_counter()
            transport = ctx.connect_when_ready(reader, time.monotonic() + min(1.0, self.timeout_s))
            try:
                result["timings_ms"]["connect"] = round((time.perf_counter() - t0) * 1000, 3)
                result["atr"] = transport.atr().hex().upper()  # identifies the chip model, not the person
                t0 = time.perf_counter()
                try:
                    select_application(transport)
                    result["is_id_card"] = True
                finally:
                    result["card_answers"] = transport.stats.apdus > 0
                    result["timings_ms"]["select"] = round((time.perf_counter() - t0) * 1000, 3)
            finally:
                transport.close()

        try:
            self._run("self-test", lambda: self._with_context(work), self.timeout_s)
        except CardError as exc:
            result["error"] = exc.to_dict()
        result["timings_ms"]["total"] = round((time.perf_counter() - started) * 1000, 3)
        return result
