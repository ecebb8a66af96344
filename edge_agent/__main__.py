"""``python -m edge_agent --config FILE``: the agent alone, without building the whole CLI (same as
``python main.py agent``; used by tests that must not depend on other commands importing)."""

from __future__ import annotations

import argparse
import sys

from common.entry import add_verbose, run_command
from edge_agent import cli


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge_agent", description=cli.HELP)
    add_verbose(parser)
    cli.configure(parser)
    return run_command(parser, argv)


if __name__ == "__main__":
    sys.exit(main())
