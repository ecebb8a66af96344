"""The sending loop: due deliveries from the store's queue, one at a time, each with a timeout; a failure
is tried again later (30 s, 2 min, 10 min, 30 min, 1 h, 2 h, 4 h), then given up and shown as failed on
the center's notification page. Runs only while ``is_leader()`` (one process sends, whichever it is)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from common.errors import StoreError
from fleet.notify.message import render
from fleet.notify.senders import DeliveryError, EmailSender, SmtpSettings, WebhookSender
from fleet.store import Store
from fleet.store.models import Delivery

log = logging.getLogger(__name__)

RETRY_AFTER = (
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(minutes=30),
    timedelta(hours=1),
    timedelta(hours=2),
    timedelta(hours=4),
)


@dataclass(frozen=True)
class NotifySettings:
    smtp: SmtpSettings | None = None
    webhook_timeout_s: float = 5.0
    webhook_secret: bytes | None = None
    #: the fleet's address as people reach it (links in the messages); None: no links
    public_url: str | None = None
    timezone: str = "Asia/Ho_Chi_Minh"
    retry_after: tuple[timedelta, ...] = field(default=RETRY_AFTER)
    poll_s: float = 1.0


class Notifier:
    def __init__(self, store: Store, settings: NotifySettings, is_leader: Callable[[], bool]) -> None:
        self.store = store
        self.settings = settings
        self.is_leader = is_leader
        self.zone = ZoneInfo(settings.timezone)
        self.email = EmailSender(settings.smtp) if settings.smtp is not None else None
        self.webhook = WebhookSender(settings.webhook_timeout_s, settings.webhook_secret)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent = 0
        self.failed = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="fleet-notify", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(15)

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            busy = False
            try:
                if self.is_leader():
                    busy = self.run_once() > 0
            except StoreError as exc:
                log.error("notifications: %s", exc.message)
            except Exception:
                log.exception("notification loop failed; trying again")
            if not busy:
                self._wake.wait(self.settings.poll_s)
                self._wake.clear()

    def run_once(self, now: datetime | None = None) -> int:
        """Send what is due; returns how many deliveries were attempted."""
        due = self.store.notices.due(now=now, limit=20)
        for delivery in due:
            if self._stop.is_set():
                break
            self._deliver(delivery, now)
        return len(due)

    def _deliver(self, delivery: Delivery, now: datetime | None) -> None:
        at = now or self.store.db.now()
        message = render(delivery, now=at, zone=self.zone, public_url=self.settings.public_url)
        try:
            if delivery.kind == "email":
                if self.email is None:
                    raise DeliveryError("no SMTP server configured (--smtp HOST:PORT)")
                self.email.send(delivery.target, message)
            else:
                self.webhook.send(delivery.target, message)
        except DeliveryError as exc:
            self.failed += 1
            attempt = delivery.attempts  # attempts before this one
            give_up = exc.permanent or attempt >= len(self.settings.retry_after)
            retry_at = None if give_up else at + self.settings.retry_after[attempt]
            self.store.notices.failed(delivery.id, exc.reason, retry_at=retry_at)
            log.warning(
                "notification %d (%s %s) failed%s: %s",
                delivery.id,
                delivery.kind,
                delivery.target,
                "; given up" if give_up else f"; next try {retry_at:%H:%M:%S}" if retry_at else "",
                exc.reason,
            )
            return
        self.sent += 1
        self.store.notices.sent(delivery.id, at=self.store.db.now())
        log.info(
            "notification %d sent to %s %s (%s)", delivery.id, delivery.kind, delivery.target, delivery.event
        )
