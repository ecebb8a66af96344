"""Commands from the center, executed through the app's control socket (or by the agent itself).

A command arrives parsed by the contract (``contract.commands.Command``: the envelope and every
argument checked, unknown keys refused); here it is checked against the clock and run, and every
outcome becomes a ``CommandResult``: an error one with a ``code`` of the contract's closed vocabulary
(``contract.commands.ResultCode``), the app's error mapped to it here, so that nothing the app wrote
reaches the code unchecked.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import ipc
from common.errors import MotcuaError, NetworkError
from common.privacy import scrub_bytes
from contract.commands import (
    REASON_APP_UNREACHABLE,
    REASON_DONE,
    BlobInfo,
    Command,
    CommandResult,
    NoArgs,
    ResultCode,
    SetNoticeArgs,
    SetServiceModeArgs,
    UploadLogsArgs,
    reason_kind,
)
from contract.schema import to_data

log = logging.getLogger(__name__)

#: the app's error codes (``MotcuaError.code`` of the kiosk and its drivers) a result names
_APP_CODES: dict[str, ResultCode] = {
    "printer_paper_out": "printer_paper_out",
    "printer_cover_open": "printer_cover_open",
    "printer_offline": "printer_offline",
    "printer_unavailable": "printer_unavailable",
    "screenshot_refused": "personal_data_on_screen",
    "config": "config_refused",
}
#: the answers of the app's control server itself (``common.ipc.ControlServer.dispatch``: a type only)
_APP_TYPES: dict[str, ResultCode] = {
    "Busy": "app_busy",
    "UnknownCommand": "app_unsupported",  # an app older than this agent
    "BadArguments": "app_refused",
    "MalformedRequest": "app_refused",
}


def app_error_code(error: ipc.IpcError) -> ResultCode:
    """The result code of the app's error answer: its code if the contract names it (any other printer
    error is ``printer_error``), else the control server's own answer by type, else ``app_error``."""
    known = _APP_CODES.get(error.code)
    if known is not None:
        return known
    if error.code.startswith("printer_"):
        return "printer_error"
    return _APP_TYPES.get(error.type or "", "app_error")


def scrub_log(data: bytes) -> bytes:
    """Defence in depth: logs carry no personal data by design; this removes what slipped through
    (``common.privacy.scrub_text``): a line shaped like an ID card's QR goes whole; ID numbers, MRZs,
    dossier codes, birth-date-shaped dates and name-shaped runs of words are replaced."""
    return scrub_bytes(data)


def _tail(path: Path, max_bytes: int) -> bytes:
    with path.open("rb") as handle:
        handle.seek(0, io.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - max_bytes))
        data = handle.read()
    if size > max_bytes:
        data = data.split(b"\n", 1)[-1]  # start at a whole line
    return data


BlobPublisher = Callable[[str, bytes], bool]


class CommandFailed(MotcuaError):
    """A command ran and could not do what it was asked (the reason goes to the console, ``result_code``
    in the result's ``code``)."""

    code = "command_failed"

    def __init__(self, message: str, result_code: ResultCode) -> None:
        super().__init__(message)
        self.result_code: ResultCode = result_code


class CommandExecutor:
    """Runs validated commands; each returns a CommandResult (never raises for a command's failure)."""

    def __init__(
        self,
        *,
        app_socket: Path,
        app_timeout_s: float,
        log_files: list[Path],
        max_blob_bytes: int,
        publish_blob: BlobPublisher,
        reload_config: Callable[[], dict[str, Any]],
        blob_topic: Callable[[str], str],
    ) -> None:
        self.app_socket = app_socket
        self.app_timeout_s = app_timeout_s
        self.log_files = log_files
        self.max_blob_bytes = max_blob_bytes
        self._publish_blob = publish_blob
        self._reload_config = reload_config
        self._blob_topic = blob_topic

    def execute(self, request: Command) -> CommandResult:
        args = to_data(request.args)  # echoed, for a fleet that did not send it (docs/mqtt.md)

        def fail(reason: str, code: ResultCode) -> CommandResult:
            return CommandResult(
                request.request_id, request.command, "error", reason[:2000], args=args, code=code
            )

        refusal = request.refusal(datetime.now(UTC))
        if refusal is not None:
            return fail(refusal, "expired" if reason_kind("error", refusal) == "expired" else "too_far_ahead")
        try:
            result = getattr(self, f"_do_{request.command}")(request.args, request)
        except NetworkError as exc:
            return fail(f"{REASON_APP_UNREACHABLE}{exc.message}", "app_unreachable")
        except ipc.IpcError as exc:
            return fail(exc.message, app_error_code(exc))
        except CommandFailed as exc:
            return fail(exc.message, exc.result_code)
        except MotcuaError as exc:
            return fail(exc.message, "agent_error")
        except OSError as exc:
            return fail(f"{type(exc).__name__}: {exc}", "agent_error")
        except ValueError as exc:  # a command's own checks of its arguments
            return fail(str(exc)[:500], "agent_error")
        return CommandResult(request.request_id, request.command, "ok", REASON_DONE, result, args=args)

    def _app(self, cmd: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        return ipc.call(self.app_socket, cmd, args or {}, timeout=self.app_timeout_s)

    def _blob(
        self, request: Command, data: bytes, content_type: str, files: list[str] | None = None
    ) -> dict[str, Any]:
        if len(data) > self.max_blob_bytes:
            limit = self.max_blob_bytes
            message = f"{content_type} of {len(data)} bytes exceeds max_blob_bytes {limit}"
            raise CommandFailed(message, "blob_too_large")
        if not self._publish_blob(request.request_id, data):
            # the broker, not the app: not worded as REASON_APP_UNREACHABLE (it was, before codes)
            raise CommandFailed("not connected to the broker; blob not sent", "broker_unreachable")
        info = BlobInfo(
            self._blob_topic(request.request_id), len(data), hashlib.sha256(data).hexdigest(),
            "image/png" if content_type == "image/png" else "application/gzip",
            files or [],
        )
        result: dict[str, Any] = to_data(info)
        return result

    # -- one method per command ------------------------------------------------------------------------

    def _do_reload_config(self, args: NoArgs, request: Command) -> dict[str, Any]:
        return self._reload_config()

    def _do_print_test_ticket(self, args: NoArgs, request: Command) -> dict[str, Any]:
        return self._app("app.print_test_ticket")

    def _do_set_notice(self, args: SetNoticeArgs, request: Command) -> dict[str, Any]:
        return self._app("app.notice", {"text_vi": args.text_vi, "text_en": args.text_en})

    def _do_screenshot(self, args: NoArgs, request: Command) -> dict[str, Any]:
        """The app refuses while a citizen's personal data is on screen (the reason is the result's);
        the PNG is deleted here once read, sent or not: the center asks again if it must."""
        reply = self._app("app.screenshot")
        raw_path = reply.get("png_path")
        if not isinstance(raw_path, str) or not raw_path:
            raise CommandFailed("app.screenshot returned no png_path", "app_error")
        png_path = Path(raw_path)
        try:
            data = png_path.read_bytes()
        finally:
            png_path.unlink(missing_ok=True)
        if not data.startswith(b"\x89PNG\r\n\x1a\n"):
            raise CommandFailed(f"app.screenshot returned {png_path.name}, which is not a PNG", "app_error")
        return self._blob(request, data, "image/png")

    def _do_upload_logs(self, args: UploadLogsArgs, request: Command) -> dict[str, Any]:
        buffer = io.BytesIO()
        found = []
        with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as archive:
            for path in self.log_files:
                if not path.is_file():
                    continue
                found.append(path.name)
                archive.write(f"==> {path.name} <==\n".encode())
                archive.write(scrub_log(_tail(path, args.max_kb * 1024)))
                archive.write(b"\n")
        if not found:
            names = ", ".join(p.name for p in self.log_files)
            raise CommandFailed(f"no log files found: {names}", "no_log_files")
        return self._blob(request, buffer.getvalue(), "application/gzip", found)

    def _do_restart_app(self, args: NoArgs, request: Command) -> dict[str, Any]:
        return self._app("app.restart")

    def _do_set_service_mode(self, args: SetServiceModeArgs, request: Command) -> dict[str, Any]:
        return self._app("app.service_mode", {"out_of_service": args.out_of_service, "reason": args.reason})
