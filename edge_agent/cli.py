"""``python main.py agent --config FILE``: run the edge agent until SIGTERM/SIGINT.

The agent reads only its own parts of the kiosk's TOML file (``[kiosk]`` id, center_id, data_dir and
``[agent]``), with the same validator as the app: it must keep running, and reporting, even when a
device section of the file is wrong or a driver cannot be imported. That also keeps its memory small.
"""

from __future__ import annotations

import argparse
import logging
import signal
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from common.errors import ConfigError
from contract.errors import SchemaError
from contract.wire import ID_HINT, ID_PATTERN

HELP = "run the edge agent: MQTT session to the center, durable event outbox, remote commands"

_ID = {"pattern": ID_PATTERN, "pattern_hint": ID_HINT}


@dataclass(frozen=True)
class _KioskIdentity:
    """The part of ``[kiosk]`` the agent needs; other keys belong to the app and are not checked here."""

    id: str = field(metadata=_ID)
    center_id: str = field(metadata=_ID)
    data_dir: Path = Path("var/kiosk")


def load_settings(path: Path) -> Any:
    """Read ``path`` into AgentSettings, or raise ConfigError naming the key."""
    from contract.schema import parse_dataclass, read_toml
    from edge_agent.agent import AgentSettings
    from edge_agent.config import AgentConfig

    try:
        data = read_toml(path)
        kiosk = data.get("kiosk")
        if not isinstance(kiosk, dict):
            raise ConfigError(f"{path}: [kiosk] section missing")
        wanted = {k: kiosk[k] for k in ("id", "center_id", "data_dir") if k in kiosk}
        identity = parse_dataclass(_KioskIdentity, wanted, "kiosk")
        agent = parse_dataclass(AgentConfig, data.get("agent", {}), "agent")
    except SchemaError as exc:
        raise ConfigError(exc.message) from exc
    for name in ("ca_file", "cert_file", "key_file"):
        tls_path = getattr(agent.tls, name)
        if tls_path is not None and not tls_path.is_file():
            raise ConfigError(f"agent.tls.{name}: {tls_path} does not exist (provision the kiosk first)")
    data_dir = identity.data_dir
    if not data_dir.is_absolute():  # relative to the config file, like kiosk.config does
        data_dir = (path.parent / data_dir).resolve()
    return AgentSettings(identity.id, identity.center_id, data_dir, agent)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=Path("kiosk.toml"), help="the kiosk's TOML file")
    parser.set_defaults(func=run)


def _log_to_file(data_dir: Path) -> None:
    """Besides stderr (the systemd journal), a small rotating file (0600) that ``upload_logs`` can send;
    both with the scrubbing formatter of ``common.privacy``."""
    from common.privacy import private_log_handler, scrub_all_handlers

    scrub_all_handlers()
    logging.getLogger().addHandler(private_log_handler(data_dir / "logs" / "agent.log"))


def run(args: argparse.Namespace) -> int:
    from common.privacy import private_umask
    from edge_agent.agent import Agent

    private_umask()  # state, health file, logs, journal: the kiosk user's alone (0600/0700)
    settings = load_settings(args.config)
    _log_to_file(settings.data_dir)
    agent = Agent(settings)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        logging.getLogger(__name__).info("signal %d: stopping", signum)
        agent.request_stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    agent.run()
    return 0
