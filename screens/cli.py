"""``main.py kiosk``: run the touchscreen kiosk (the window over ``kiosk.runtime``).

It lives with the screens because it opens the window: the kiosk's logic (``kiosk/``) never imports
the screens. Importing this module does not import Kivy (tests and benchmarks read its constants).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

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
        "--hash-pin",
        action="store_true",
        help="ask for a technician PIN (twice, on the terminal; or one line on stdin) and print its "
        "technician_pin_hash line; the PIN is never taken from the command line",
    )
    parser.set_defaults(func=run)


def read_pin(stdin: TextIO | None = None) -> str:
    """The new technician PIN: typed twice without echo on a terminal, else one line of stdin."""
    import getpass

    from common.errors import ConfigError
    from kiosk.flows.technician import check_pin_format

    stream = stdin or sys.stdin
    try:
        if stream.isatty():
            pin = getpass.getpass("New technician PIN (4-8 digits): ")
            check_pin_format(pin)
            if getpass.getpass("Same PIN again: ") != pin:
                raise ConfigError("the two PINs differ; nothing printed")
        else:
            pin = stream.readline().rstrip("\r\n")
            check_pin_format(pin)
    except ConfigError as exc:
        raise ConfigError(f"--hash-pin: {exc.message}") from None
    return pin


def run(args: argparse.Namespace) -> int:
    from common.errors import ConfigError
    from common.privacy import private_umask, scrub_all_handlers
    from kiosk.config import load_config

    private_umask()  # journal, books, logs, screenshots, printer output: this user's alone
    scrub_all_handlers()  # stderr goes to the system journal: no personal data there either
    if args.hash_pin:
        from kiosk.flows.technician import hash_pin

        print(f'technician_pin_hash = "{hash_pin(read_pin())}"')
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
        from kiosk.flows.technician import pin_config_warnings

        config = apply_pushed(config)  # what the center pushed must fit this file too
        for warning in pin_config_warnings(config.kiosk):
            print(f"warning: {warning}", file=sys.stderr)
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


def log_to_file(data_dir: Path) -> logging.Handler:
    """Also log to ``<data_dir>/logs/kiosk.log`` (rotated, 0600): the center's ``upload_logs`` reads it.

    Citizen paths log allowlisted fields only (tests/ui checks the records of every path); the file's
    formatter also removes whatever is shaped like personal data (``common.privacy``). Returns the
    handler (a test removes it again).
    """
    from common.privacy import private_log_handler

    handler = private_log_handler(data_dir / "logs" / "kiosk.log")
    logging.getLogger().addHandler(handler)
    return handler


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
    app.numbering = runtime.numbering
    runtime.screenshot = lambda: app.screenshot(runtime.screenshot_path())
    runtime.stop_ui = app.stop
    runtime.start(ui_call=lambda fn: Clock.schedule_once(lambda _dt: fn(), 0))
    log.info("kiosk %s running; control socket %s", config.kiosk.id, runtime.control.path)
    try:
        app.run()
    finally:
        runtime.stop()
    return EXIT_RESTART if runtime.restart_requested else 0
