"""``python -m edge_agent --config FILE``: the agent alone, without building the whole CLI (same as
``python main.py agent``; used by tests that must not depend on other commands importing)."""

from __future__ import annotations

import argparse
import logging
import sys

from edge_agent import cli
from kiosk.errors import KioskError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge_agent", description=cli.HELP)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    cli.configure(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except KioskError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
