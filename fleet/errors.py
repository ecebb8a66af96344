"""The fleet's own exception family (the center never imports the kiosk's).

Every error carries an English message for logs and the CLI and an exit code; the web turns the
store's errors into HTTP answers in one place (``fleet.web.app``).
"""

from __future__ import annotations


class FleetError(Exception):
    """Base of every error the fleet raises on purpose."""

    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(FleetError):
    """Invalid command line or settings: the message names the option and what is expected."""

    exit_code = 78  # EX_CONFIG


class StoreError(FleetError):
    """The store cannot do what was asked (database unreachable, migration missing, ...)."""

    exit_code = 74  # EX_IOERR


class NotFoundError(StoreError):
    """The object does not exist, or it lies outside the caller's scope (we do not say which)."""

    exit_code = 66  # EX_NOINPUT


class ConflictError(StoreError):
    """The write contradicts what is stored: a duplicate name, a config version that does not grow."""

    exit_code = 65  # EX_DATAERR


class ValidationError(FleetError):
    """Input that the store refuses before it touches the database (bad role, bad address...)."""

    exit_code = 65


class PermissionDeniedError(FleetError):
    """The caller's role does not allow the action (a viewer acknowledging an alarm)."""

    exit_code = 77  # EX_NOPERM
