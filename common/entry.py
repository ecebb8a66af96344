"""How every entry point runs a command: logging set up once, and a known failure printed as one line
for the technician (no traceback) with its exit code. Exit codes are decided here and only here."""

from __future__ import annotations

import argparse
import logging
import sys

from common.errors import (
    ConfigError,
    ConflictError,
    DeviceError,
    DeviceUnavailableError,
    MotcuaError,
    NetworkError,
    NotFoundError,
    PermissionDeniedError,
    StoreError,
    ValidationError,
)
from contract.errors import ContractError, SchemaError

#: error kind -> exit code (sysexits.h), most specific first
EXIT_CODES: tuple[tuple[type[Exception], int], ...] = (
    (ConfigError, 78),  # EX_CONFIG
    (SchemaError, 78),  # a configuration file that does not fit its schema
    (DeviceUnavailableError, 69),  # EX_UNAVAILABLE
    (NetworkError, 69),
    (DeviceError, 74),  # EX_IOERR
    (StoreError, 74),
    (NotFoundError, 66),  # EX_NOINPUT
    (ConflictError, 65),  # EX_DATAERR
    (ValidationError, 65),
    (ContractError, 65),
    (PermissionDeniedError, 77),  # EX_NOPERM
    (MotcuaError, 1),
)


def exit_code_for(exc: Exception) -> int:
    for kind, code in EXIT_CODES:
        if isinstance(exc, kind):
            return code
    return 1


def add_verbose(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def run_command(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command's ``func``; returns the process exit code."""
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except (MotcuaError, ContractError) as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exit_code_for(exc)
    except KeyboardInterrupt:
        return 130
