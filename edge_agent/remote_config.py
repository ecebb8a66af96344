"""Configuration pushed by the center: validated, applied without restart, reported with its version.

Two retained scopes: center-wide (``{root}/{center}/_center/config/set``) and per kiosk
(``.../{kiosk}/config/set``); the kiosk's values win key by key. Only the *pushable* part can be pushed
(``contract.config.PushedConfig``): the service catalog, the rating scale, the citizen timeouts, the
home notice, the default language, and the agent's heartbeat interval. Identity, devices and the
broker address stay local: a push cannot brick a kiosk's way back to the center.

Apply = validate with the contract (the same dataclasses the app applies: the agent cannot accept
what the app would refuse), write the merged overlay atomically to ``<data_dir>/pushed-config.json``,
ask the app to reload it. If the app refuses, the previous file is restored. Anything invalid is
refused and reported; the old one stays.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from common import ipc
from common.errors import MotcuaError, NetworkError
from common.files import write_atomically
from contract.config import ConfigPush, ConfigState, PushedConfig, Refusal, merge_scopes
from contract.errors import ContractError
from contract.schema import parse_dataclass
from contract.wire import loads_object
from edge_agent.state import AgentState

log = logging.getLogger(__name__)

#: the file the app reads (``kiosk.config.OVERLAY_NAME``: the same name, by contract with the app)
OVERLAY_NAME = "pushed-config.json"

Scope = Literal["center", "kiosk"]


class AppRefusedConfig(MotcuaError):
    """The running app refused the pushed configuration (its own check failed)."""

    code = "app_refused_config"


def _salvage_version(payload: bytes) -> int | None:
    """The version of a refused push, so the center sees which of its pushes was refused."""
    try:
        version = loads_object(payload, "config", ConfigPush.MAX_BYTES).get("version")
    except ContractError:
        return None
    return version if isinstance(version, int) and not isinstance(version, bool) else None


class ConfigManager:
    def __init__(
        self,
        *,
        state: AgentState,
        data_dir: Path,
        app_socket: Path,
        app_timeout_s: float,
        publish_state: Callable[[ConfigState], None],
        apply_agent: Callable[[dict[str, Any]], None],
    ) -> None:
        self.state = state
        self.overlay_path = data_dir / OVERLAY_NAME
        self.app_socket = app_socket
        self.app_timeout_s = app_timeout_s
        self._publish_state = publish_state
        self._apply_agent = apply_agent
        self.last_refused: Refusal | None = None
        self.app_pending = False

    def versions(self) -> dict[str, int]:
        return {"center": self.state.config("center")[0], "kiosk": self.state.config("kiosk")[0]}

    def report(self) -> ConfigState:
        return ConfigState(self.versions(), self.app_pending, self.last_refused)

    def _refuse(self, scope: Scope, version: int | None, reason: str) -> None:
        log.warning("refused %s configuration version %s: %s", scope, version, reason)
        self.last_refused = Refusal(scope, version, reason[:2000])
        self._publish_state(self.report())

    def on_push(self, scope: Scope, payload: bytes) -> None:
        """Handle one retained config message (an empty payload clears the scope)."""
        current, _body = self.state.config(scope)
        if payload:
            try:
                push = ConfigPush.parse(payload)
            except ContractError as exc:
                self._refuse(scope, _salvage_version(payload), exc.message)
                return
            version, body = push.version, push.config.to_overlay()
        else:
            # Cleared: the scope's values go, but its version stays, so an older push is still refused.
            if not _body:
                self._publish_state(self.report())  # nothing to clear
                return
            version, body = current, {}
        if payload and version == current:
            self._publish_state(self.report())  # already applied (a retained message seen again)
            return
        if payload and version < current:
            self._refuse(scope, version, f"version {version} is older than applied {current}")
            return
        other_scope: Scope = "kiosk" if scope == "center" else "center"
        other = self.state.config(other_scope)[1]
        merged = merge_scopes(body, other) if scope == "center" else merge_scopes(other, body)
        try:
            parse_dataclass(PushedConfig, merged, "config")
        except ContractError as exc:
            self._refuse(scope, version, exc.message)
            return
        versions = self.versions()
        versions[scope] = version
        try:
            self._install(merged, versions)
        except MotcuaError as exc:
            self._refuse(scope, version, exc.message)
            return
        self.state.set_config(scope, version, body)
        self._apply_agent(merged.get("agent") or {})
        log.info("applied %s configuration version %d%s", scope, version, "" if payload else " (cleared)")
        self._publish_state(self.report())

    @staticmethod
    def overlay_for(merged: dict[str, Any], versions: dict[str, int]) -> dict[str, Any]:
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
        except NetworkError:
            # The app is down (or died mid-answer): it reads the overlay when it starts. Not a refusal.
            self.app_pending = True
            return
        except MotcuaError as exc:
            if previous is None:
                self.overlay_path.unlink(missing_ok=True)
            else:
                write_atomically(self.overlay_path, previous)
            raise AppRefusedConfig(f"the app refused it: {exc.message}") from exc

    def reload_app(self) -> dict[str, Any]:
        """Ask the running app to re-read the overlay (also the ``reload_config`` command)."""
        result = ipc.call(
            self.app_socket, "app.reload_config", {"overlay_path": str(self.overlay_path)},
            timeout=self.app_timeout_s,
        )
        self.app_pending = False
        return result
