"""``main.py agent --config``: the agent reads its part of the kiosk file and fails clearly."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import pytest

from common.errors import ConfigError
from edge_agent.agent import Agent, AgentSettings
from edge_agent.cli import load_settings
from edge_agent.config import TlsConfig
from tests.agent.conftest import CENTER, agent_config, wait_until, write_kiosk_toml


def test_settings_from_the_kiosk_file(broker, pki, tmp_path):
    cfg = agent_config(broker, pki, "kiosk-a")
    conf = write_kiosk_toml(tmp_path / "kiosk.toml", "kiosk-a", Path("var/data"), cfg)
    settings = load_settings(conf)
    assert (settings.kiosk_id, settings.center_id) == ("kiosk-a", CENTER)
    assert settings.data_dir == (tmp_path / "var/data").resolve()  # relative to the file, like the app
    assert settings.agent.broker_port == broker.kiosk_port and settings.agent.tls.ca_file == pki.ca.cert_file


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace('id = "kiosk-a"', 'id = "Kiosk A"'), "kiosk.id: expected lowercase id"),
        (lambda t: t + "\n[agent.extra]\n", "agent.extra: unknown key"),
        (lambda t: t.replace("heartbeat_s = 1.0", "heartbeat_s = 0"), "agent.heartbeat_s"),
        (lambda t: t.replace('cert_file = "', 'cert_file = "/nonexistent'), "agent.tls.cert_file"),
    ],
)
def test_bad_files_name_the_key(broker, pki, tmp_path, edit, message):
    conf = write_kiosk_toml(
        tmp_path / "kiosk.toml", "kiosk-a", tmp_path, agent_config(broker, pki, "kiosk-a")
    )
    conf.write_text(edit(conf.read_text()))
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        load_settings(conf)


def test_an_unusable_certificate_is_reported_and_the_agent_keeps_going(broker, pki, data_dir):
    garbage = data_dir / "broken.crt"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    cfg = agent_config(broker, pki, "kiosk-a")
    cfg = replace(cfg, tls=TlsConfig(ca_file=cfg.tls.ca_file, cert_file=garbage, key_file=cfg.tls.key_file))
    agent = Agent(AgentSettings("kiosk-a", CENTER, data_dir, cfg))
    thread = threading.Thread(target=agent.run, daemon=True)
    thread.start()
    try:
        assert wait_until(lambda: "MQTT session failed" in agent.link.last_error, 10), agent.link.last_error
        assert wait_until(lambda: (data_dir / "agent-health.json").exists(), 10)  # still reporting locally
        assert thread.is_alive() and not agent.link.connected
    finally:
        agent.request_stop()
        thread.join(10)
