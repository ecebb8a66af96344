"""The tests' Mosquitto (``tests.agent.broker``): a port another process took between ``free_port`` and
the broker's bind is not a failed test (seen with three test sessions on one machine)."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.agent.broker import Broker, Pki


def test_a_broker_whose_port_was_taken_listens_on_new_ones_and_keeps_them_across_a_restart(
    pki: Pki, tmp_path: Path
) -> None:
    broker = Broker(tmp_path / "broker", pki)
    taken = broker.service_port
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", taken))
    squatter.listen()
    try:
        broker.start()
        assert broker.service_port != taken
        assert f"listener {broker.service_port} 127.0.0.1" in broker.conf.read_text()
        ports = (broker.kiosk_port, broker.service_port)
        broker.restart()
        assert (broker.kiosk_port, broker.service_port) == ports
        with socket.create_connection(("127.0.0.1", broker.service_port), timeout=2):
            pass
    finally:
        squatter.close()
        broker.cleanup()
