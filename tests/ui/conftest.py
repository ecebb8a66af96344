"""The UI tests' window: one kiosk app on a private Xvfb for the whole session (screens/harness.py).

Each test starts from the attract screen with healthy devices. Screenshots of every screen visited
go to artifacts/screens/.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator

import pytest

from screens.harness import KioskDriver, boot_kiosk, shut_down, xvfb
from tests.conftest import ARTIFACTS, demo_config

SCREENS_DIR = ARTIFACTS / "screens"


@pytest.fixture(scope="session")
def kiosk_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KioskDriver]:
    data_dir = tmp_path_factory.mktemp("kiosk-ui")
    if SCREENS_DIR.exists():
        shutil.rmtree(SCREENS_DIR)
    config = demo_config(data_dir)
    config = dataclasses.replace(config, display=dataclasses.replace(config.display, window_scale=0.5))
    from drivers.card.pcscd import hold_vpcd_slot, start_pcscd, stop_started_pcscd, wait_for_reader

    # The demo card reader is vpcd's first slot: another test run or a demo on this machine must wait.
    with hold_vpcd_slot(config.devices.card_reader.vpcd_port), xvfb() as display:
        started = start_pcscd()  # None when one answers already (the card tests' or the machine's)
        try:
            wait_for_reader()
            driver = boot_kiosk(config, display, SCREENS_DIR)
            yield driver
            shut_down(driver)
        finally:
            if started is not None:
                stop_started_pcscd(started)


@pytest.fixture
def kiosk(kiosk_session: KioskDriver) -> Iterator[KioskDriver]:
    from tests.ui.measure import READER

    kiosk_session.reset()
    yield kiosk_session
    kiosk_session.reset()
    READER.check()  # every screen the test looked at, read back by tesseract meanwhile
