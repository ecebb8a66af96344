"""The demo kiosk trusts the test CSCA that signs its virtual cards: config/simulate.toml names a trust
folder, the simulator fills it, and a demo citizen's card reads as genuine (birth date trusted)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from cryptography import x509

from drivers.card.keys import access_keys_from_cccd_qr
from drivers.card.service import CardReaderService
from drivers.card.sim.profile import load_profile
from drivers.card.trust import load_trust_store
from kiosk.config import KioskConfig
from kiosk.effects import Devices
from kiosk.runtime import demo_config
from kiosk.simulation import SimulatedHardware

from .conftest import VPCD_PORT, wait_reader_empty


def _demo(data_dir: Path, reader: str = "Virtual PCD 00 01") -> KioskConfig:
    config = demo_config(data_dir)
    card_reader = dataclasses.replace(config.devices.card_reader, reader=reader, vpcd_port=VPCD_PORT)
    return dataclasses.replace(config, devices=dataclasses.replace(config.devices, card_reader=card_reader))


def test_demo_config_names_a_trust_folder_in_data_dir(tmp_path: Path) -> None:
    config = _demo(tmp_path / "data")
    assert config.devices.card_reader.trust_dir == Path("test-pki/trust")
    sim = SimulatedHardware(config)
    assert sim.trust_dir() == tmp_path / "data" / "test-pki" / "trust"
    sim._fill_trust_dir()
    trusted = load_trust_store(tmp_path / "data" / "test-pki" / "trust").cscas
    assert trusted == (sim.demo_pki().csca_cert,)  # the CSCA that signs the demo cards, only it


def test_other_relative_folder_gets_the_demo_csca_absolute_is_left_alone(tmp_path: Path) -> None:
    config = _demo(tmp_path / "data")
    other = dataclasses.replace(config.devices.card_reader, trust_dir=Path("csca"))
    sim = SimulatedHardware(
        dataclasses.replace(config, devices=dataclasses.replace(config.devices, card_reader=other))
    )
    sim._fill_trust_dir()
    written = tmp_path / "data" / "csca" / "test-csca.pem"
    assert x509.load_pem_x509_certificate(written.read_bytes()) == sim.demo_pki().csca_cert
    technicians = tmp_path / "national-csca"
    technicians.mkdir()
    absolute = dataclasses.replace(config.devices.card_reader, trust_dir=technicians)
    sim = SimulatedHardware(
        dataclasses.replace(config, devices=dataclasses.replace(config.devices, card_reader=absolute))
    )
    sim._fill_trust_dir()
    assert list(technicians.iterdir()) == []


@pytest.mark.pcsc
def test_demo_citizen_card_is_genuine(pcscd: str, tmp_path: Path) -> None:
    config = _demo(tmp_path / "data", reader=pcscd)
    sim = SimulatedHardware(config)
    sim.start_card_reader()
    card_reader = config.devices.card_reader
    # what kiosk/runtime.py builds from the configuration, then hands to the simulator
    devices = Devices(
        card=CardReaderService(card_reader.reader, card_reader.trust_dir, card_reader.timeout_s)
    )
    sim.attach(devices)
    assert devices.card is not None
    try:
        assert sim.citizen({"profile": "elderly", "show_qr": False}) == {"card": "inserted"}
        record = devices.card.read_identity(access_keys_from_cccd_qr(load_profile("elderly").qr_text))
        assert (record.authenticity.value, record.authenticity_code) == ("genuine", "verified")
        assert record.birth_date_trusted
        record.wipe()
    finally:
        sim.close()
        wait_reader_empty(pcscd)
