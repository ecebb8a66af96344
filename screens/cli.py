"""``main.py kiosk``: run the touchscreen kiosk (the window over ``kiosk.runtime``).

It lives with the screens because it opens the window: the kiosk's logic (``kiosk/``) never imports
the screens. Importing this module does not import Kivy (tests and benchmarks read its constants).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from kiosk import SIMULATE_CONFIG

if TYPE_CHECKING:
    from kiosk.config import DisplaySection, KioskConfig

HELP = "run the touchscreen kiosk (--simulate: every device simulated)"
#: exit code that asks the service manager (systemd unit or scripts/demo) to start the app again
EXIT_RESTART = 75
#: logged once the first interactive frame is on screen (benchmarks and tests wait for it)
FIRST_FRAME_MESSAGE = "kiosk ready: first interactive frame drawn"

log = logging.getLogger(__name__)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=Path, help=f"configuration file (default with --simulate: {SIMULATE_CONFIG})"
    )
    parser.add_argument("--simulate", action="store_true", help="use the simulator of every device")
    parser.add_argument("--fullscreen", action="store_true", help="fill the screen (the hall's kiosk)")
    parser.add_argument("--check-config", action="store_true", help="validate the configuration and exit")
    parser.add_argument(
        "--hash-pin", metavar="PIN", help="print the technician_pin_sha256 value for PIN and exit"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from common.errors import ConfigError
    from kiosk.config import load_config
    from kiosk.flows.technician import hash_pin

    if args.hash_pin:
        if not args.hash_pin.isdigit() or not 4 <= len(args.hash_pin) <= 8:
            raise ConfigError("--hash-pin: the PIN must be 4 to 8 digits")
        print(hash_pin(args.hash_pin))
        return 0
    path = args.config or (SIMULATE_CONFIG if args.simulate else None)
    if path is None:
        raise ConfigError("--config FILE is required (or --simulate for the demo configuration)")
    # The runtime puts the center's pushed overlay on top itself (and again on every push).
    config = load_config(path, with_pushed=False)
    if args.simulate:
        from kiosk.runtime import simulated

        config = simulated(config)
    if args.fullscreen:
        config = dataclasses.replace(config, display=dataclasses.replace(config.display, fullscreen=True))
    if args.check_config:
        from kiosk.config import apply_pushed

        config = apply_pushed(config)  # what the center pushed must fit this file too
        print(f"{path}: ok (kiosk {config.kiosk.id}, {len(config.services)} service areas)")
        return 0
    return run_kiosk(config)


def prepare_kivy(display: DisplaySection, data_dir: Path) -> None:
    """Kivy reads its environment at import: set it first, and keep its files out of ~/.kivy."""
    (data_dir / "kivy").mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
    os.environ.setdefault("KIVY_HOME", str(data_dir / "kivy"))
    os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")
    os.environ.setdefault("MESA_SHADER_CACHE_DIR", str(data_dir / "mesa-cache"))
    from kivy.config import Config

    scale = 1 if display.fullscreen else display.window_scale
    width, height = int(display.width * scale), int(display.height * scale)
    Config.set("graphics", "width", str(width))
    Config.set("graphics", "height", str(height))
    Config.set("graphics", "resizable", "1")
    Config.set("graphics", "fullscreen", "auto" if display.fullscreen else "0")
    Config.set("input", "mouse", "mouse,disable_multitouch")
    Config.set("kivy", "exit_on_escape", "0")


def log_to_file(data_dir: Path) -> None:
    """Also log to ``<data_dir>/logs/kiosk.log`` (rotated): the center's ``upload_logs`` reads it.

    Nothing personal is ever logged (tests/ui checks the records of an identified visit).
    """
    import logging.handlers

    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(logs / "kiosk.log", maxBytes=1 << 20, backupCount=2)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)


def run_kiosk(config: KioskConfig) -> int:
    from kiosk.runtime import KioskRuntime

    log_to_file(config.kiosk.data_dir)

    prepare_kivy(config.display, config.kiosk.data_dir)
    runtime = KioskRuntime(config)
    from kivy.clock import Clock

    from screens.app import KioskApp

    app = KioskApp(runtime.core, design_size=(config.display.width, config.display.height))
    app.device_states = runtime.handlers.device_states
    app.totals = runtime.totals
    shots = config.kiosk.data_dir / "screenshots"
    counter = [0]

    def screenshot() -> Path:
        counter[0] += 1
        return app.screenshot(shots / f"screen-{counter[0]:04d}.png")

    runtime.screenshot = screenshot
    runtime.stop_ui = app.stop
    runtime.start(ui_call=lambda fn: Clock.schedule_once(lambda _dt: fn(), 0))
    log.info("kiosk %s running; control socket %s", config.kiosk.id, runtime.control.path)
    try:
        app.run()
    finally:
        runtime.stop()
    return EXIT_RESTART if runtime.restart_requested else 0
