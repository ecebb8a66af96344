"""The kiosk's local control socket: JSON lines over a Unix socket.

One request per connection: ``{"cmd": "sim.printer", "args": {...}}`` answered by
``{"ok": true, "result": {...}}`` or ``{"ok": false, "error": {"type", "message"}}``.
Users: ``main.py sim ...`` (the simulator control panel) and the edge agent (commands from the
center, device health). Handlers run on the server's thread; anything that touches the UI must be
handed to the UI thread by the handler itself.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import socketserver
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common.errors import MotcuaError, NetworkError

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], dict[str, Any]]
MAX_REQUEST_BYTES = 1 << 20


class IpcError(MotcuaError):
    """The app answered a control request with an error."""

    code = "ipc"


class _RequestHandler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        line = self.rfile.readline(MAX_REQUEST_BYTES)
        reply = self.server.control.dispatch(line)
        try:
            self.wfile.write(json.dumps(reply, ensure_ascii=False).encode() + b"\n")
        except (BrokenPipeError, ConnectionResetError):
            # The caller gave up (timeout) or died; the command ran, there is no one to tell.
            log.info("control client left before the answer to %r", line[:60])


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    control: ControlServer


class ControlServer:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._handlers: dict[str, Handler] = {}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def register(self, cmd: str, handler: Handler) -> None:
        self._handlers[cmd] = handler

    @property
    def commands(self) -> list[str]:
        return sorted(self._handlers)

    def dispatch(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
            if not isinstance(request, dict) or not isinstance(request.get("cmd"), str):
                raise ValueError("request must be an object with a string 'cmd'")
            args = request.get("args", {})
            if not isinstance(args, dict):
                raise ValueError("'args' must be an object")
        except ValueError as exc:
            log.warning("malformed control request: %s", exc)
            return {"ok": False, "error": {"type": "MalformedRequest", "message": str(exc)}}
        handler = self._handlers.get(request["cmd"])
        if handler is None:
            return {
                "ok": False,
                "error": {"type": "UnknownCommand", "message": f"unknown command {request['cmd']!r}"},
            }
        try:
            return {"ok": True, "result": handler(args)}
        except MotcuaError as exc:
            log.info("control command %s answered with an error: %s", request["cmd"], exc.message)
            return {"ok": False, "error": exc.to_dict()}
        except (ValueError, TypeError, KeyError) as exc:
            return {"ok": False, "error": {"type": "BadArguments", "message": str(exc)}}
        except Exception as exc:  # a bug in a handler must not kill the control thread
            log.exception("control command %s crashed", request["cmd"])
            return {"ok": False, "error": {"type": "InternalError", "message": str(exc)}}

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            self.path.unlink()  # stale socket of a previous run
        self._server = _Server(str(self.path), _RequestHandler)
        self._server.control = self
        os.chmod(self.path, 0o600)  # only the kiosk's own user may drive it
        self._thread = threading.Thread(target=self._server.serve_forever, name="ipc", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self.path.exists():
            self.path.unlink()


def call(path: Path, cmd: str, args: dict[str, Any] | None = None, timeout: float = 10.0) -> dict[str, Any]:
    """Send one control request to the running app and return its result, or raise IpcError."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            sock.sendall(json.dumps({"cmd": cmd, "args": args or {}}).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        raise NetworkError(f"the kiosk app is not running (no control socket at {path})") from exc
    except OSError as exc:
        raise NetworkError(f"control socket {path}: {exc}") from exc
    reply = json.loads(data)
    if not reply.get("ok"):
        error = reply.get("error", {})
        raise IpcError(f"{cmd}: {error.get('type')}: {error.get('message')}")
    result: dict[str, Any] = reply.get("result", {})
    return result
