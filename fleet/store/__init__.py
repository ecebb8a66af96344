"""The fleet's store: every query of the center lives here (``fleet.web`` has no SQL).

``open_store(url)`` gives a ``Store`` whose parts group the functions: ``registry`` (provinces, centers,
kiosks), ``telemetry`` (status, health), ``events``, ``alarms``, ``commands``, ``configs``, ``accounts``,
``audit``, ``routes``, ``changes``, ``settings`` and ``maintenance``; for the MQTT ingest also
``ingest`` (workers, refusals, leases), ``blobs``, ``notices`` (alarm notifications) and ``outgoing``;
``usage`` (the usage pages' and reports' aggregates).
Functions the web calls take a ``Scope`` (``fleet.store.scope``); functions the MQTT ingest calls take
the center and kiosk ids from the topic and check them against the registry.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import URL

from common.errors import StoreError
from fleet.store import migrate
from fleet.store.accounts import Accounts
from fleet.store.alarms import Alarms
from fleet.store.audit import Audit
from fleet.store.blobs import Blobs
from fleet.store.changes import Changes, Settings
from fleet.store.commands import Commands, Configs
from fleet.store.db import Clock, Database, utc_now
from fleet.store.enrollment import Enrollment
from fleet.store.events import Events
from fleet.store.ingest import Ingest
from fleet.store.maintenance import Maintenance, RetentionPolicy
from fleet.store.notices import Notices
from fleet.store.notify import Routes
from fleet.store.outgoing import Outgoing
from fleet.store.partitions import HEALTH, Partitions
from fleet.store.registry import Registry
from fleet.store.scope import Scope
from fleet.store.telemetry import Telemetry
from fleet.store.usage import Usage

__all__ = ["Database", "RetentionPolicy", "Scope", "Store", "open_store"]


class Store:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.partitions = Partitions(db)  # events' months (PostgreSQL)
        self.health_partitions = Partitions(db, HEALTH)  # health_samples' days (PostgreSQL)
        self.settings = Settings(db)
        self.registry = Registry(db)
        self.telemetry = Telemetry(db, self.health_partitions)
        self.events = Events(db, self.partitions, self.telemetry)
        self.alarms = Alarms(db)
        self.commands = Commands(db)
        self.configs = Configs(db, self.settings)
        self.accounts = Accounts(db)
        self.audit = Audit(db)
        self.routes = Routes(db)
        self.changes = Changes(db)
        self.maintenance = Maintenance(db, self.partitions, self.settings, self.health_partitions)
        # the MQTT ingest's parts (phase 2): its workers and refusals, blobs, notifications, publishing
        self.ingest = Ingest(db)
        self.blobs = Blobs(db)
        self.notices = Notices(db)
        self.outgoing = Outgoing(db)
        # provisioning: enrollment codes, pending kiosks, identities and certificates
        self.enrollment = Enrollment(db)
        # the usage pages and reports (docs/reports.md): aggregates only, every query scoped
        self.usage = Usage(db)

    def check_schema(self) -> None:
        """Refuse to serve an old schema: say which command brings it up to date."""
        found, wanted = migrate.current(self.db), migrate.head()
        if found != wanted:
            raise StoreError(
                f"store {self.db.safe_url()} is at schema {found or 'none'}, this code needs "
                f"{wanted}: run 'main.py fleet db upgrade --db URL'"
            )

    def close(self) -> None:
        self.db.close()


def open_store(
    url: str | Path | URL, *, clock: Clock = utc_now, upgrade: bool = False, pre_ping: bool = True
) -> Store:
    """A store on ``url``; ``upgrade=True`` runs the migrations first (service start); ``pre_ping``: see
    ``Database``."""
    db = Database(url, clock=clock, pre_ping=pre_ping)
    try:
        if upgrade:
            migrate.upgrade(db)
        store = Store(db)
        store.check_schema()
        if upgrade:
            store.partitions.ensure_ahead(db.now())
            store.health_partitions.ensure_ahead(db.now())
    except Exception:
        db.close()
        raise
    return store
