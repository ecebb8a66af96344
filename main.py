"""One CLI for everything: ``python main.py kiosk|agent|fleet|provision|card|sim|bench ...``.

Each command lives in its own package's ``cli`` module, which exposes ``HELP`` and
``configure(parser)``; ``configure`` adds the arguments and sets ``func`` (args -> exit code).
Modules are imported only to build the parser: they must do no work at import time.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from common.entry import add_verbose, run_command

#: command -> module that implements it
COMMANDS: dict[str, str] = {
    "kiosk": "screens.cli",
    "sim": "kiosk.sim_cli",
    "printer": "drivers.printer.cli",
    "card": "drivers.card.cli",
    "agent": "edge_agent.cli",
    "fleet": "fleet.cli",
    "demo": "provisioning.demo_cli",
    "provision": "provisioning.cli",
    "simfleet": "simfleet.cli",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="main.py", description="Một Cửa Kiosk")
    add_verbose(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        module.configure(sub.add_parser(name, help=module.HELP, description=module.HELP))
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
