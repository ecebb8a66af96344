"""Every topic of the contract: ``{root}/{center_id}/{kiosk_id | _center}/...`` (docs/mqtt.md).

Build them with ``KioskTopics`` and ``CenterTopics``; read a topic back with ``parse_topic``. The
kiosk id comes from the topic (the broker's ACL vouches for it), never from a payload.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from contract.errors import ContractError
from contract.events import KIND_PATTERN
from contract.wire import ID_PATTERN, ID_RE, REQUEST_ID_PATTERN, REQUEST_ID_RE, RESERVED_IDS, is_kiosk_id

DEFAULT_ROOT = "motcua/v1"
#: the scope of center-wide topics (a kiosk id cannot start with "_")
CENTER_SCOPE = "_center"
#: the shared-subscription group of the fleet's ingest workers
FLEET_SHARE = "fleet"

#: channels under a kiosk's namespace (the last one or two levels)
KIOSK_CHANNELS = (
    "status", "health", "event", "cmd/req", "cmd/res", "blob", "config/set", "config/state",
    "ticket/req", "ticket/res", "cert/req", "cert/res",
)
#: channels under ``_center``
CENTER_CHANNELS = (
    "config/set", "queue/called", "allocator/status", "queue/event", "queue/stats",
)


@dataclass(frozen=True)
class KioskTopics:
    """The topics of one kiosk."""

    center_id: str
    kiosk_id: str
    root: str = DEFAULT_ROOT

    @property
    def base(self) -> str:
        return f"{self.root}/{self.center_id}/{self.kiosk_id}"

    @property
    def status(self) -> str:
        return f"{self.base}/status"

    @property
    def health(self) -> str:
        return f"{self.base}/health"

    def event(self, kind: str) -> str:
        return f"{self.base}/event/{kind}"

    @property
    def cmd_req(self) -> str:
        return f"{self.base}/cmd/req"

    @property
    def cmd_res(self) -> str:
        return f"{self.base}/cmd/res"

    def blob(self, request_id: str) -> str:
        return f"{self.base}/blob/{request_id}"

    @property
    def config_set(self) -> str:
        return f"{self.base}/config/set"

    @property
    def config_state(self) -> str:
        return f"{self.base}/config/state"

    @property
    def ticket_req(self) -> str:
        return f"{self.base}/ticket/req"

    @property
    def ticket_res(self) -> str:
        return f"{self.base}/ticket/res"

    @property
    def cert_req(self) -> str:
        """Certificate renewal (docs/mqtt.md, "Enrollment and certificates")."""
        return f"{self.base}/cert/req"

    @property
    def cert_res(self) -> str:
        return f"{self.base}/cert/res"

    @property
    def center(self) -> CenterTopics:
        return CenterTopics(self.center_id, self.root)


@dataclass(frozen=True)
class CenterTopics:
    """Center-wide topics of one center (``center_id`` may be ``+`` in a filter for a province)."""

    center_id: str
    root: str = DEFAULT_ROOT

    @property
    def base(self) -> str:
        return f"{self.root}/{self.center_id}/{CENTER_SCOPE}"

    @property
    def config_set(self) -> str:
        return f"{self.base}/config/set"

    @property
    def queue_called(self) -> str:
        return f"{self.base}/queue/called"

    @property
    def allocator_status(self) -> str:
        return f"{self.base}/allocator/status"

    @property
    def queue_event(self) -> str:
        """``queue-event/1``: every step of the center's queue (bridged to the province)."""
        return f"{self.base}/queue/event"

    @property
    def queue_stats(self) -> str:
        """``queue-stats/1``, retained: waiting and expected wait per service (the allocator reads it)."""
        return f"{self.base}/queue/stats"

    def kiosk(self, kiosk_id: str) -> KioskTopics:
        return KioskTopics(self.center_id, kiosk_id, self.root)

    @property
    def all_cert_requests(self) -> str:
        """What the provisioning service subscribes to (renewals)."""
        return f"{self.root}/{self.center_id}/+/cert/req"

    def all_events(self, kind: str) -> str:
        return f"{self.root}/{self.center_id}/+/event/{kind}"

    @property
    def all_ticket_requests(self) -> str:
        """What the allocator subscribes to."""
        return f"{self.root}/{self.center_id}/+/ticket/req"


def fleet_filters(
    root: str = DEFAULT_ROOT, center_id: str = "+", share: str | None = FLEET_SHARE
) -> list[str]:
    """What the fleet's ingest workers subscribe to: everything kiosks report (status, health, command
    results with their blobs, config states, events) and every step of a center's queue
    (``_center/queue/event``: a province stores the bridged centers' steps), as one shared
    subscription so several workers split the load (MQTT v5 ``$share/{group}/...``) and no step is
    stored by two workers at once."""
    channels = ("status", "health", "cmd/res", "config/state")
    filters = [f"{root}/{center_id}/+/{channel}" for channel in channels]
    filters.append(f"{root}/{center_id}/+/event/+")
    filters.append(f"{root}/{center_id}/+/blob/+")
    filters.append(f"{root}/{center_id}/{CENTER_SCOPE}/queue/event")
    if share:
        return [f"$share/{share}/{f}" for f in filters]
    return filters


def fleet_center_filters(root: str = DEFAULT_ROOT, center_id: str = "+") -> list[str]:
    """What every ingest worker also subscribes to on its own (not shared): retained center-wide state
    it must see at every connect. Whether a shared subscription receives retained messages, and which
    member of the group does, is up to the broker (Mosquitto 2.0.11 hands them to the subscribing
    member); a plain subscription gets them everywhere."""
    return [f"{root}/{center_id}/{CENTER_SCOPE}/allocator/status"]


@dataclass(frozen=True)
class TopicRef:
    """A topic read back: whose it is and which channel."""

    center_id: str
    #: a kiosk id, or CENTER_SCOPE
    scope: str
    channel: str
    #: the event kind (``event``) or request id (``blob``); "" otherwise
    detail: str = ""

    @property
    def kiosk_id(self) -> str | None:
        return None if self.scope == CENTER_SCOPE else self.scope


#: per root: one regex for every well-formed topic of a kiosk's channels (``_kiosk_topic``)
_KIOSK_TOPICS: dict[str, re.Pattern[str]] = {}
_KIND_RE = re.compile(KIND_PATTERN)


def _kiosk_topic(root: str) -> re.Pattern[str]:
    """What ``parse_topic`` accepts under a kiosk id in one regex: center, kiosk, then a channel, or an
    event's kind, or a blob's request id. Only the reserved names are left to check (not a regex's job)."""
    pattern = _KIOSK_TOPICS.get(root)
    if pattern is None:
        channels = "|".join(re.escape(c) for c in KIOSK_CHANNELS if c not in ("event", "blob"))
        pattern = _KIOSK_TOPICS[root] = re.compile(
            f"{re.escape(root)}/({ID_PATTERN})/({ID_PATTERN})/"
            f"(?:({channels})|event/({KIND_PATTERN})|blob/({REQUEST_ID_PATTERN}))"
        )
    return pattern


def parse_topic(topic: str, root: str = DEFAULT_ROOT) -> TopicRef:
    """The parts of a topic of this contract, or ContractError (not ours, malformed, unknown channel)."""
    if not isinstance(topic, str) or len(topic) > 512:
        raise ContractError("topic: expected a string of at most 512 characters")
    # the kiosks' topics, nearly every message, in one match; anything else (a center's topic, a
    # reserved name, a refusal) by the checks below, which word the refusals
    match = _kiosk_topic(root).fullmatch(topic)
    if match is not None:
        center_id, scope, channel, kind, request_id = match.groups()
        if scope not in RESERVED_IDS and scope.partition("-")[0] not in RESERVED_IDS:
            if channel is not None:
                return TopicRef(center_id, scope, channel)
            if kind is not None:
                return TopicRef(center_id, scope, "event", kind)
            return TopicRef(center_id, scope, "blob", request_id)
    prefix = root + "/"
    if not topic.startswith(prefix):
        raise ContractError(f"topic {topic[:80]!r}: not under {root}")
    parts = topic[len(prefix):].split("/")
    if len(parts) < 3:
        raise ContractError(f"topic {topic[:80]!r}: expected {root}/<center>/<kiosk>/<channel>")
    center_id, scope, rest = parts[0], parts[1], parts[2:]
    if not ID_RE.fullmatch(center_id):
        raise ContractError(f"topic {topic[:80]!r}: {center_id[:40]!r} is not a center id")
    if scope == CENTER_SCOPE:
        channel = "/".join(rest)
        if channel not in CENTER_CHANNELS:
            raise ContractError(f"topic {topic[:80]!r}: unknown center channel")
        return TopicRef(center_id, scope, channel)
    if not is_kiosk_id(scope):
        raise ContractError(f"topic {topic[:80]!r}: {scope[:40]!r} is not a kiosk id")
    if rest[0] in ("event", "blob") and len(rest) == 2:
        detail = rest[1]
        ok = REQUEST_ID_RE.fullmatch(detail) if rest[0] == "blob" else _kind_ok(detail)
        if not ok:
            raise ContractError(f"topic {topic[:80]!r}: bad {rest[0]} name {detail[:40]!r}")
        return TopicRef(center_id, scope, rest[0], detail)
    channel = "/".join(rest)
    if channel not in KIOSK_CHANNELS or channel in ("event", "blob"):
        raise ContractError(f"topic {topic[:80]!r}: unknown kiosk channel")
    return TopicRef(center_id, scope, channel)


def _kind_ok(kind: str) -> bool:
    return _KIND_RE.fullmatch(kind) is not None
