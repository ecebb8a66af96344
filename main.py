"""One CLI for everything: ``python main.py kiosk|agent|fleet|provision|card|sim|bench ...``.

Each command lives in its own package's ``cli`` module, which exposes ``HELP`` and
``configure(parser)``; ``configure`` adds the arguments and sets ``func`` (args -> exit code).
Modules are imported only to build the parser: they must do no work at import time.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from kiosk.errors import KioskError

#: command -> module that implements it
COMMANDS: dict[str, str] = {
    "kiosk": "kiosk.cli",
    "sim": "drivers.sim_cli",
    "printer": "drivers.printer.cli",
    "card": "drivers.card.cli",
    "agent": "edge_agent.cli",
    "fleet": "fleet.cli",
    "demo": "provisioning.demo_cli",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="main.py", description="Một Cửa Kiosk")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        module.configure(sub.add_parser(name, help=module.HELP, description=module.HELP))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except KioskError as exc:
        # A known failure: one clear line for the technician, no traceback.
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
