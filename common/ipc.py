"""The kiosk's local control socket: JSON lines over a Unix socket.

One request per connection: ``{"cmd": "sim.printer", "args": {...}}`` answered by
``{"ok": true, "result": {...}}`` or ``{"ok": false, "error": {"type", "code", "message"}}`` (``code``:
the error's ``MotcuaError.code``, absent from the server's own answers such as ``Busy``).
Users: ``main.py sim ...`` (the simulator control panel) and the edge agent (commands from the
center, device health); the agent serves its own ``agent.sock`` with the same class. Handlers run on a
small pool of worker threads; anything that touches the UI must be handed to the UI thread by the
handler itself.

The socket is local but not trusted blindly (security review): it is created where no one else can
reach it and moved into place with mode 0600; a peer whose uid is neither ours nor root (SO_PEERCRED)
is closed unanswered; a client has ``read_timeout_s`` to send its request line; connections waiting
for their request are capped (the oldest is dropped for a new one), so idle clients cost no thread and
cannot crowd out a real request; requests over 1 MiB, nested deeper than 32 levels (or deeper than
the JSON decoder can recurse) or holding lone surrogates are answered with ``MalformedRequest``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import secrets
import socket
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from common.errors import MotcuaError, NetworkError

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], dict[str, Any]]
MAX_REQUEST_BYTES = 1 << 20
#: a reply may carry a screenshot or logs; more than this is not our app answering
MAX_REPLY_BYTES = 64 << 20
#: deepest nesting of a request (objects and arrays); real requests have 3
MAX_DEPTH = 32
#: seconds a client has, from connect, to send its request line
READ_TIMEOUT_S = 2.0
#: seconds to hand the answer to a client that stopped reading
WRITE_TIMEOUT_S = 5.0
#: connections waiting for their request line; one more drops the oldest of them
MAX_WAITING = 64
#: connections the kernel queues before the server accepts them
BACKLOG = 128
#: requests being handled or queued for a handler thread; more are answered "Busy"
MAX_IN_FLIGHT = 32
HANDLER_THREADS = 8


#: what an error's ``code`` may look like in an answer (``MotcuaError.code``: snake case)
_ERROR_CODE = re.compile(r"[a-z][a-z0-9_]{0,39}")
_ERROR_TYPE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,79}")


class IpcError(MotcuaError):
    """The app answered a control request with an error. ``type`` and ``code`` are the answer's error's
    (its class name, None if the answer had none of that shape; its ``MotcuaError.code``, this class's
    ``ipc_error`` if none), kept for machines (the agent's command results); the message is for logs."""

    code = "ipc_error"

    def __init__(self, message: str, *, type: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.type = type
        if code is not None:
            self.code = code


class BadReplyError(NetworkError):
    """The reply is not an answer: cut short (the app died while answering), too long, or not JSON of
    our shape (the socket is not our app's). Counted as the app not being reachable."""

    code = "ipc"


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"ok": False, "error": {"type": kind, "message": message}}


def _check_shape(request: Any) -> None:
    """ValueError when the parsed request nests deeper than MAX_DEPTH or holds a lone surrogate
    (``"\\ud800"`` is valid JSON but not encodable text; an answer echoing it could not be sent)."""
    stack: list[tuple[Any, int]] = [(request, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                raise ValueError(f"request nested deeper than {MAX_DEPTH} levels")
            if isinstance(item, dict):
                stack.extend((key, depth + 1) for key in item)
                stack.extend((value, depth + 1) for value in item.values())
            else:
                stack.extend((value, depth + 1) for value in item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ValueError("request holds a lone surrogate") from exc


def encode_reply(reply: dict[str, Any]) -> bytes:
    """One JSON line; a result that is not JSON-serialisable becomes an InternalError answer."""
    try:
        text = json.dumps(reply, ensure_ascii=False)
        return text.encode("utf-8") + b"\n"
    except UnicodeEncodeError:  # a handler returned a lone surrogate: escape it (valid JSON, ASCII)
        return json.dumps(reply, ensure_ascii=True).encode("ascii") + b"\n"
    except (TypeError, ValueError, RecursionError) as exc:
        log.error("control answer not serialisable: %s", exc)
        return encode_reply(_error("InternalError", f"answer not serialisable: {type(exc).__name__}"))


def peer_uid(sock: Any) -> int:
    """The uid of the process at the other end of a Unix socket (Linux SO_PEERCRED: pid, uid, gid)."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


class ControlServer:
    def __init__(
        self,
        path: Path,
        *,
        read_timeout_s: float = READ_TIMEOUT_S,
        max_waiting: int = MAX_WAITING,
        allowed_uids: set[int] | frozenset[int] | None = None,
    ) -> None:
        self.path = path
        self.read_timeout_s = read_timeout_s
        self.max_waiting = max_waiting
        #: who may connect: this process's uid and root, unless told otherwise (tests)
        self.allowed_uids = frozenset({os.getuid(), 0} if allowed_uids is None else allowed_uids)
        self._handlers: dict[str, Handler] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._inode: int | None = None
        self._waiting: OrderedDict[asyncio.StreamWriter, None] = OrderedDict()
        self._in_flight = 0
        #: connections accepted, and what was turned away (health, tests)
        self.accepted = 0
        self.refused_peers = 0
        self.timed_out = 0
        self.dropped_waiting = 0

    def register(self, cmd: str, handler: Handler) -> None:
        self._handlers[cmd] = handler

    @property
    def commands(self) -> list[str]:
        return sorted(self._handlers)

    # -- one request -------------------------------------------------------------------------------
    def dispatch(self, line: bytes) -> dict[str, Any]:
        try:
            if len(line) > MAX_REQUEST_BYTES:
                raise ValueError(f"request longer than {MAX_REQUEST_BYTES} bytes")
            request = json.loads(line.decode("utf-8"))
            if not isinstance(request, dict) or not isinstance(request.get("cmd"), str):
                raise ValueError("request must be an object with a string 'cmd'")
            _check_shape(request)
            args = request.get("args", {})
            if not isinstance(args, dict):
                raise ValueError("'args' must be an object")
        except RecursionError:
            log.warning("malformed control request: nested too deeply to decode")
            return _error("MalformedRequest", "request nested too deeply")
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            log.warning("malformed control request: %s", exc)
            return _error("MalformedRequest", str(exc))
        handler = self._handlers.get(request["cmd"])
        if handler is None:
            return _error("UnknownCommand", f"unknown command {request['cmd']!r:.80}")
        try:
            return {"ok": True, "result": handler(args)}
        except MotcuaError as exc:
            log.info("control command %s answered with an error: %s", request["cmd"], exc.message)
            return {"ok": False, "error": exc.to_dict()}
        except (ValueError, TypeError, KeyError) as exc:
            return _error("BadArguments", str(exc))
        except Exception as exc:  # a bug in a handler must not kill the control thread
            log.exception("control command %s crashed", request["cmd"])
            return _error("InternalError", str(exc))

    def answer(self, line: bytes) -> bytes:
        """The bytes sent back for one request line (dispatch + encoding); never raises."""
        return encode_reply(self.dispatch(line))

    # -- the socket --------------------------------------------------------------------------------
    def _bind(self) -> socket.socket:
        """A listening socket at ``path`` that no one else could reach at any moment: bound inside a
        fresh 0700 folder next to it, set to 0600, then renamed into place (which also replaces a stale
        socket of an earlier run). The folder's name is as long as ``app.sock``, so the temporary path
        is no longer than the final one (AF_UNIX paths are limited to 107 bytes)."""
        parent = self.path.parent
        parent.mkdir(parents=True, exist_ok=True)
        while True:
            private = parent / f".{secrets.token_hex(2)}"
            try:
                os.mkdir(private, 0o700)
                break
            except FileExistsError:
                continue
        temporary = private / "s"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(str(temporary))
            os.chmod(temporary, 0o600)
            os.replace(temporary, self.path)
            self._inode = os.stat(self.path).st_ino
        except BaseException:
            sock.close()
            raise
        finally:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
            os.rmdir(private)
        return sock

    def start(self) -> None:
        sock = self._bind()
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._pool = ThreadPoolExecutor(HANDLER_THREADS, thread_name_prefix="ipc-handler")
        ready = threading.Event()
        failed: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                self._server = loop.run_until_complete(
                    asyncio.start_unix_server(
                        self._client, sock=sock, limit=MAX_REQUEST_BYTES + 1, backlog=BACKLOG
                    )
                )
            except BaseException as exc:  # handed to start()'s caller
                failed.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=run, name="ipc", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failed:
            raise failed[0]

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            uid = peer_uid(writer.get_extra_info("socket"))
        except OSError:
            uid = -1
        if uid not in self.allowed_uids:
            self.refused_peers += 1
            log.warning("control socket %s: connection from uid %d refused", self.path.name, uid)
            writer.close()
            return
        self._waiting[writer] = None
        while len(self._waiting) > self.max_waiting:
            oldest, _ = self._waiting.popitem(last=False)
            self.dropped_waiting += 1
            oldest.close()  # its readline sees EOF
        try:
            try:
                line: bytes | None = await asyncio.wait_for(reader.readline(), self.read_timeout_s)
            except TimeoutError:
                self.timed_out += 1
                log.info("control client sent no request within %g s; dropped", self.read_timeout_s)
                return
            except ValueError:  # the line is longer than the stream's limit
                line = None
            except (ConnectionError, asyncio.IncompleteReadError):
                return
            finally:
                self._waiting.pop(writer, None)
            if line == b"":
                return  # the client left, or was dropped for a newer one, before sending anything
            if line is None:
                too_long = f"request longer than {MAX_REQUEST_BYTES} bytes"
                data = encode_reply(_error("MalformedRequest", too_long))
            elif self._in_flight >= MAX_IN_FLIGHT:
                data = encode_reply(_error("Busy", "too many control requests at once; try again"))
            else:
                self._in_flight += 1
                try:
                    data = await asyncio.get_running_loop().run_in_executor(self._pool, self.answer, line)
                finally:
                    self._in_flight -= 1
            writer.write(data)
            await asyncio.wait_for(writer.drain(), WRITE_TIMEOUT_S)
        except (ConnectionError, TimeoutError):
            # The caller gave up (timeout) or died; the command ran, there is no one to tell.
            log.info("control client left before the answer")
        except asyncio.CancelledError:
            # stop(): end quietly. Python 3.11's StreamReaderProtocol calls task.exception() on the
            # connection's task, which raises (and is logged) when the task ends cancelled.
            pass
        finally:
            writer.close()

    def stop(self) -> None:
        loop, server = self._loop, self._server
        if loop is not None and self._thread is not None and self._thread.is_alive():

            async def shutdown() -> None:
                if server is not None:
                    server.close()
                tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(shutdown(), loop).result(5)
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join(5)
        if loop is not None and not loop.is_running():
            loop.close()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._loop = self._server = self._thread = self._pool = None
        # Remove the socket only if it is still ours (a newer instance may have replaced it).
        with contextlib.suppress(FileNotFoundError):
            if self._inode is not None and os.stat(self.path).st_ino == self._inode:
                self.path.unlink()
        self._inode = None


def _connect(sock: socket.socket, path: Path, timeout: float) -> None:
    """Connect within ``timeout``. A Unix socket whose accept queue is full fails at once with EAGAIN
    (a burst of other clients): try again until the time is up instead of failing the request."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            sock.connect(str(path))
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


def call(path: Path, cmd: str, args: dict[str, Any] | None = None, timeout: float = 10.0) -> dict[str, Any]:
    """Send one control request to the running app and return its result, or raise IpcError."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            _connect(sock, path, timeout)
            sock.sendall(json.dumps({"cmd": cmd, "args": args or {}}).encode() + b"\n")
            chunks: list[bytes] = []
            size = 0
            while not (chunks and chunks[-1].endswith(b"\n")):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                size += len(chunk)
                if size > MAX_REPLY_BYTES:
                    raise BadReplyError(f"{cmd}: reply longer than {MAX_REPLY_BYTES} bytes")
                chunks.append(chunk)
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        raise NetworkError(f"the kiosk app is not running (no control socket at {path})") from exc
    except OSError as exc:
        raise NetworkError(f"control socket {path}: {exc}") from exc
    return _result(cmd, b"".join(chunks))


def _result(cmd: str, data: bytes) -> dict[str, Any]:
    """The result of a reply line: BadReplyError unless it is ``{"ok": true, "result": {...}}``, IpcError
    for the app's error answer."""
    try:
        reply = json.loads(data)
    except ValueError as exc:  # also UnicodeDecodeError
        raise BadReplyError(f"{cmd}: the reply is not JSON ({len(data)} bytes)") from exc
    except RecursionError as exc:
        raise BadReplyError(f"{cmd}: the reply nests too deep") from exc
    if not isinstance(reply, dict):
        raise BadReplyError(f"{cmd}: the reply is not a JSON object")
    if reply.get("ok") is not True:
        error = reply.get("error")
        error = error if isinstance(error, dict) else {}
        kind, code = error.get("type"), error.get("code")
        raise IpcError(
            f"{cmd}: {str(kind)[:80]}: {str(error.get('message'))[:500]}",
            type=kind if isinstance(kind, str) and _ERROR_TYPE.fullmatch(kind) else None,
            code=code if isinstance(code, str) and _ERROR_CODE.fullmatch(code) else None,
        )
    result = reply.get("result", {})
    if not isinstance(result, dict):
        raise BadReplyError(f"{cmd}: the reply's result is not a JSON object")
    return result
