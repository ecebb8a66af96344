"""Configuration pushed by the center: validated, applied without restart, reported with its version.

Two retained scopes: center-wide (``{root}/{center}/_center/config/set``) and per kiosk
(``.../{kiosk}/config/set``); the kiosk's values win key by key. Only the *pushable* part can be pushed
(``PushedConfig``, built from the app's own schema in ``kiosk.center``): the service catalog, the rating
scale, the citizen timeouts, the home notice, the default language, and the agent's heartbeat interval.
Identity, devices and the broker address stay local: a push cannot brick a kiosk's way back to the center.

Apply = validate with ``kiosk.schema.parse_dataclass`` (and, when the app's ``kiosk.config`` is
importable, with ``apply_overlay`` on the kiosk's own file: exactly what the app will do), write the
merged overlay atomically to ``<data_dir>/pushed-config.json``, ask the app to reload it. If the app
refuses, the previous file is restored. Anything invalid is refused and reported; the old one stays.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from edge_agent.messages import ConfigPush, MessageError, now_iso
from edge_agent.state import AgentState
from kiosk import ipc
from kiosk.center import CitizenSettings, RatingSection, ServiceArea
from kiosk.errors import ConfigError, KioskError, NetworkError
from kiosk.schema import parse_dataclass

log = logging.getLogger(__name__)

OVERLAY_NAME = "pushed-config.json"


@dataclass(frozen=True)
class PushedAgent:
    heartbeat_s: float = field(default=30.0, metadata={"min": 5, "max": 3600})


@dataclass(frozen=True)
class PushedConfig:
    """Absent keys keep the kiosk's own value. (Not ``X | None``: the validator's messages stay precise.)"""

    services: list[ServiceArea] = field(default_factory=list)
    kiosk: CitizenSettings = field(default_factory=CitizenSettings)
    rating: RatingSection | None = None
    agent: PushedAgent = field(default_factory=PushedAgent)

    def __post_init__(self) -> None:
        if self.services:
            for attr in ("code", "prefix"):
                seen: set[str] = set()
                for index, service in enumerate(self.services):
                    value = getattr(service, attr)
                    if value in seen:
                        raise ValueError(f"services[{index}].{attr}: {value!r} is used twice")
                    seen.add(value)


def merge(center: dict[str, Any], kiosk: dict[str, Any]) -> dict[str, Any]:
    """Center-wide values overlaid by the kiosk's: tables merge key by key, lists are replaced."""
    merged: dict[str, Any] = json.loads(json.dumps(center))
    for key, value in kiosk.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def write_atomically(path: Path, data: bytes) -> None:
    """Write, fsync, rename: the app never reads half a file, a power cut leaves old or new."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


Scope = Literal["center", "kiosk"]


class ConfigManager:
    def __init__(
        self,
        *,
        state: AgentState,
        data_dir: Path,
        config_file: Path | None,
        app_socket: Path,
        app_timeout_s: float,
        publish_state: Callable[[dict[str, Any]], None],
        apply_agent: Callable[[dict[str, Any]], None],
    ) -> None:
        self.state = state
        self.overlay_path = data_dir / OVERLAY_NAME
        self.config_file = config_file
        self.app_socket = app_socket
        self.app_timeout_s = app_timeout_s
        self._publish_state = publish_state
        self._apply_agent = apply_agent
        self.last_refused: dict[str, Any] | None = None
        self.app_pending = False

    def versions(self) -> dict[str, int]:
        return {"center": self.state.config("center")[0], "kiosk": self.state.config("kiosk")[0]}

    def report(self) -> dict[str, Any]:
        return {
            "schema": "config-state/1",
            "versions": self.versions(),
            "app_pending": self.app_pending,
            "last_refused": self.last_refused,
            "at": now_iso(),
        }

    def _refuse(self, scope: Scope, version: int | None, reason: str) -> None:
        log.warning("refused %s configuration version %s: %s", scope, version, reason)
        self.last_refused = {"scope": scope, "version": version, "reason": reason, "at": now_iso()}
        self._publish_state(self.report())

    def on_push(self, scope: Scope, payload: bytes) -> None:
        """Handle one retained config message (an empty payload clears the scope)."""
        current, _body = self.state.config(scope)
        if payload:
            try:
                push = ConfigPush.parse(payload, scope)
            except MessageError as exc:
                self._refuse(scope, None, exc.message)
                return
        else:
            push = ConfigPush(0, {})
        if push.version == current:
            self._publish_state(self.report())  # already applied (a retained message seen again)
            return
        if 0 < push.version < current:
            self._refuse(scope, push.version, f"version {push.version} is older than applied {current}")
            return
        other_scope: Scope = "kiosk" if scope == "center" else "center"
        other = self.state.config(other_scope)[1]
        merged = merge(push.config, other) if scope == "center" else merge(other, push.config)
        try:
            if "services" in push.config and not push.config["services"]:
                raise ConfigError("config.services: at least one service is needed")
            parse_dataclass(PushedConfig, push.config, "config")
            parse_dataclass(PushedConfig, merged, "config")
            self._validate_with_app_schema(merged)
        except ConfigError as exc:
            self._refuse(scope, push.version, exc.message)
            return
        versions = self.versions()
        versions[scope] = push.version
        try:
            self._install(merged, versions)
        except KioskError as exc:
            self._refuse(scope, push.version, exc.message)
            return
        self.state.set_config(scope, push.version, push.config)
        self._apply_agent(merged.get("agent") or {})
        log.info("applied %s configuration version %d", scope, push.version)
        self._publish_state(self.report())

    def _validate_with_app_schema(self, merged: dict[str, Any]) -> None:
        """The app's own check when its config module is importable (it pulls in the device drivers)."""
        if self.config_file is None:
            return
        try:
            from kiosk.config import apply_overlay, load_config  # lazy: heavy, and optional for the agent
        except ImportError as exc:
            log.warning("kiosk.config not importable (%s): push checked by the agent's schema only", exc)
            return
        app_part = {k: v for k, v in merged.items() if k != "agent"}
        apply_overlay(load_config(self.config_file), app_part)

    def overlay_for(self, merged: dict[str, Any], versions: dict[str, int]) -> dict[str, Any]:
        """What the app reads: the pushable part plus one ``version`` (the larger scope version)."""
        overlay = {k: v for k, v in merged.items() if k != "agent"}
        overlay["version"] = max(versions.values())
        return overlay

    def _install(self, merged: dict[str, Any], versions: dict[str, int]) -> None:
        previous = self.overlay_path.read_bytes() if self.overlay_path.exists() else None
        data = json.dumps(self.overlay_for(merged, versions), ensure_ascii=False, indent=1).encode()
        self.overlay_path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(self.overlay_path, data)
        try:
            self.reload_app()
        except (NetworkError, ValueError):
            # The app is down (or died mid-answer): it reads the overlay when it starts. Not a refusal.
            self.app_pending = True
            return
        except KioskError as exc:
            if previous is None:
                self.overlay_path.unlink(missing_ok=True)
            else:
                write_atomically(self.overlay_path, previous)
            raise KioskError(f"the app refused it: {exc.message}") from exc

    def reload_app(self) -> dict[str, Any]:
        """Ask the running app to re-read the overlay (also the ``reload_config`` command)."""
        result = ipc.call(
            self.app_socket, "app.reload_config", {"overlay_path": str(self.overlay_path)},
            timeout=self.app_timeout_s,
        )
        self.app_pending = False
        return result
