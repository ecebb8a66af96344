"""The control socket against hostile local clients (security review), on real Unix sockets: deep
JSON, silent clients, floods of idle connections, other users, the moment of creation, and sim.*
commands outside simulate mode."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import socket
import stat
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.ipc import BadReplyError, ControlServer, IpcError, call
from drivers.printer import PrinterConfig
from kiosk.config import KioskConfig
from kiosk.runtime import KioskRuntime, demo_config


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ControlServer]:
    control = ControlServer(tmp_path / "app.sock", read_timeout_s=0.5)
    control.register("echo", lambda args: {"got": args})
    control.start()
    yield control
    control.stop()


def exchange(path: Path, data: bytes, timeout: float = 5.0) -> bytes:
    """Send ``data`` (from a thread: the server may answer and close before all of it is read), read
    until the server closes (or ``timeout``). A reset counts as a close."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))

        def send() -> None:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError, OSError):
                sock.sendall(data)

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        received = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                received += chunk
        sender.join(timeout)
        return received


def test_hostile_nested_payload_is_answered_and_the_server_keeps_serving(server: ControlServer) -> None:
    for payload in (
        b"[" * 1_000_000 + b"\n",  # 1 MB of nesting: the decoder's recursion limit
        b'{"cmd": "echo", "args": ' + b'{"a": ' * 140_000 + b"1" + b"}" * 140_000 + b"}\n",
        b'{"cmd": "echo", "args": ' + b'{"a": ' * 100 + b"1" + b"}" * 100 + b"}\n",  # decodes; too deep
    ):
        assert len(payload) <= (1 << 20) + 1
        reply = json.loads(exchange(server.path, payload))
        assert reply["ok"] is False and reply["error"]["type"] == "MalformedRequest", reply
    assert call(server.path, "echo", {"n": 1}) == {"got": {"n": 1}}


def test_oversized_and_undecodable_requests_get_an_answer(server: ControlServer) -> None:
    too_long = json.loads(exchange(server.path, b"x" * (2 << 20) + b"\n"))
    assert too_long["error"]["type"] == "MalformedRequest" and "longer than" in too_long["error"]["message"]
    surrogate = json.loads(exchange(server.path, b'{"cmd": "echo", "args": {"a": "\\ud800"}}\n'))
    assert surrogate["error"]["type"] == "MalformedRequest"
    latin1 = json.loads(exchange(server.path, b'{"cmd": "echo", "args": {"a": "\xe9"}}\n'))
    assert latin1["error"]["type"] == "MalformedRequest"
    assert call(server.path, "echo") == {"got": {}}


def test_a_client_that_sends_nothing_is_dropped_after_the_timeout(server: ControlServer) -> None:
    started = time.monotonic()
    assert exchange(server.path, b"", timeout=3.0) == b""  # closed by the server, unanswered
    assert 0.4 <= time.monotonic() - started < 1.5
    assert server.timed_out == 1


def test_a_client_that_trickles_its_request_is_dropped_at_the_timeout(server: ControlServer) -> None:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(3.0)
        sock.connect(str(server.path))
        started = time.monotonic()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            for byte in b'{"cmd": "echo"}':
                sock.sendall(bytes((byte,)))
                time.sleep(0.1)
        try:
            answer = sock.recv(100)
        except ConnectionResetError:  # closed with our last bytes unread: a reset instead of an EOF (seen)
            answer = b""
        assert answer == b""  # dropped, never answered
    assert time.monotonic() - started < 2.0


def test_idle_connections_do_not_stop_a_real_request(tmp_path: Path) -> None:
    control = ControlServer(tmp_path / "app.sock", read_timeout_s=30)  # idle clients stay long
    control.register("echo", lambda args: {"got": args})
    control.start()
    threads_before = threading.active_count()
    idle = []
    try:
        for _ in range(200):
            sock = socket.socket(socket.AF_UNIX)
            sock.connect(str(control.path))
            idle.append(sock)
        started = time.monotonic()
        assert call(control.path, "echo", {"real": True}, timeout=5) == {"got": {"real": True}}
        assert time.monotonic() - started < 2.0  # a few ms here; generous for a loaded machine
        # Idle clients cost no thread, and at most max_waiting of them are kept open.
        assert threading.active_count() - threads_before < 20
        time.sleep(0.2)
        closed = 0
        for sock in idle:
            sock.setblocking(False)
            with contextlib.suppress(BlockingIOError):  # still open
                closed += sock.recv(1) == b""
        assert closed >= 200 - control.max_waiting
        assert control.dropped_waiting >= 200 - control.max_waiting
    finally:
        for sock in idle:
            sock.close()
        control.stop()


def test_peers_of_another_user_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "app.sock"
    control = ControlServer(path, allowed_uids={os.getuid() + 4242})  # not us: our own client is refused
    control.register("echo", lambda args: {"got": args})
    control.start()
    try:
        assert exchange(path, b'{"cmd": "echo"}\n') == b""
        assert control.refused_peers == 1
    finally:
        control.stop()
    if os.geteuid() != 0:
        return  # the part below needs a real second user: run as root (as the test machines do)
    # A folder others may enter (a loose data folder), so only the peer check stands between.
    loose = Path(tempfile.mkdtemp(prefix="ipc-peer-"))
    os.chmod(loose, 0o711)
    control = ControlServer(loose / "app.sock")  # the default: our uid and root
    control.register("echo", lambda args: {"got": args})
    control.start()
    try:
        os.chmod(control.path, 0o777)
        assert connect_as(65534, control.path) == "closed"  # connected, then closed unanswered
        assert control.refused_peers == 1
        assert call(control.path, "echo") == {"got": {}}  # the owner still gets in
    finally:
        control.stop()
        shutil.rmtree(loose, ignore_errors=True)


def connect_as(uid: int, path: Path) -> str:
    """Connect from a forked child running as ``uid``; what it saw: "closed", "answered ..." or why not."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no pytest, no threads of ours; always leaves through os._exit
        result = "child failed"
        try:
            os.setgid(uid)
            os.setuid(uid)
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(5)
                sock.connect(str(path))
                try:  # the server may close before, while or after the request goes out
                    sock.sendall(b'{"cmd": "echo"}\n')
                    answer = sock.recv(1000)
                except (BrokenPipeError, ConnectionResetError):
                    answer = b""
                result = "closed" if answer == b"" else f"answered {answer!r}"
        except BaseException as exc:
            result = f"error {exc!r}"
        finally:
            os.write(write_end, result.encode())
            os._exit(0)
    os.close(write_end)
    try:
        with os.fdopen(read_end, "rb") as pipe:
            return pipe.read().decode()
    finally:
        os.waitpid(pid, 0)


def test_the_socket_is_never_reachable_by_others_while_it_is_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    os.chmod(data_dir, 0o755)
    seen: list[tuple[str, int, int]] = []
    real_bind = socket.socket.bind

    def watching_bind(self: socket.socket, address: object) -> None:
        real_bind(self, address)  # type: ignore[arg-type]
        if self.family == socket.AF_UNIX and isinstance(address, str):
            where = Path(address)
            seen.append((address, stat.S_IMODE(os.stat(where).st_mode),
                         stat.S_IMODE(os.stat(where.parent).st_mode)))

    monkeypatch.setattr(socket.socket, "bind", watching_bind)
    old_umask = os.umask(0)  # the most permissive environment a service could be started in
    try:
        control = ControlServer(data_dir / "app.sock")
        control.start()
    finally:
        os.umask(old_umask)
    try:
        assert seen, "the server did not bind a Unix socket"
        for address, mode, parent_mode in seen:
            others_can_connect = mode & 0o022 and parent_mode & 0o011
            assert not others_can_connect, (address, oct(mode), oct(parent_mode))
        final = os.stat(control.path)
        assert stat.S_ISSOCK(final.st_mode) and stat.S_IMODE(final.st_mode) == 0o600
        assert sorted(p.name for p in data_dir.iterdir()) == ["app.sock"]  # no folder left behind
    finally:
        control.stop()
    assert not control.path.exists()


def runtime_config(tmp_path: Path, *, simulate_all: bool, closed_port: int) -> KioskConfig:
    config = demo_config(tmp_path / "data")
    devices = dataclasses.replace(
        config.devices, card_reader=dataclasses.replace(config.devices.card_reader, enabled=False)
    )
    if not simulate_all:  # a real network printer (switched off here), the rest simulated
        devices = dataclasses.replace(
            devices, printer=PrinterConfig(backend="network", port=closed_port, status_timeout=0.2)
        )
    return dataclasses.replace(config, devices=devices)


@pytest.mark.parametrize("simulate_all", [True, False], ids=["--simulate", "one-real-device"])
def test_sim_commands_exist_only_when_every_device_is_simulated(tmp_path: Path, simulate_all: bool) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    runtime = KioskRuntime(runtime_config(tmp_path, simulate_all=simulate_all, closed_port=closed_port),
                           synchronous=True)
    runtime.start()
    try:
        path = runtime.control.path
        assert "devices" in call(path, "app.health")
        if simulate_all:
            assert "reader_plugged" in call(path, "sim.status")
            assert "sim.printer" in runtime.control.commands
        else:
            for cmd in ("sim.status", "sim.printer", "sim.scanner", "sim.citizen", "sim.reader"):
                with pytest.raises(IpcError, match="UnknownCommand"):
                    call(path, cmd)
            assert not [c for c in runtime.control.commands if c.startswith("sim.")]
    finally:
        runtime.stop()


def _answering(path: Path, reply: bytes) -> threading.Thread:
    """A peer on the control socket path that is not our app: it answers every request with ``reply``."""
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    listener.listen(1)

    def serve() -> None:
        with listener:
            conn, _ = listener.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(reply)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (b"[1, 2]\n", BadReplyError),  # not an object: was AttributeError
        (b'{"ok": false, "error": "boom"}\n', IpcError),  # an error answer, its error not an object: was too
        (b'{"ok": true, "result": [1]}\n', BadReplyError),  # a result that is not an object
        (b"not json\n", BadReplyError),
        (b"", BadReplyError),  # the app died before answering
        (b"[" * 200_000 + b"\n", BadReplyError),  # nested deeper than the parser's recursion limit
        (b'{"ok": tru', BadReplyError),  # cut short
    ],
)
def test_a_malformed_reply_is_an_ipc_error_not_a_crash(tmp_path: Path, reply: bytes, error: type) -> None:
    """BadReplyError is a NetworkError: the agent and the ticket source treat it as the app not reachable."""
    path = Path(tempfile.mkdtemp(dir="/tmp")) / "app.sock"  # AF_UNIX paths are short
    try:
        thread = _answering(path, reply)
        with pytest.raises(error):
            call(path, "app.health", {}, timeout=5)
        thread.join(5)
    finally:
        shutil.rmtree(path.parent, ignore_errors=True)


def test_an_error_answer_keeps_the_errors_type_and_code_for_machines(server: ControlServer) -> None:
    """The agent puts the app's error in a command result's ``code``: IpcError keeps the answer's type
    and code (the message stays the text it was, for logs); a code or type not of its shape is dropped."""
    from drivers.printer.errors import PrinterPaperOutError

    def paper_out(args: dict) -> dict:
        raise PrinterPaperOutError("printer: out of paper before printing; nothing was printed")

    def bad_arguments(args: dict) -> dict:
        raise ValueError("no such thing")

    server.register("print", paper_out)
    server.register("bad", bad_arguments)
    with pytest.raises(IpcError) as caught:
        call(server.path, "print")
    assert (caught.value.type, caught.value.code) == ("PrinterPaperOutError", "printer_paper_out")
    assert caught.value.message == (
        "print: PrinterPaperOutError: printer: out of paper before printing; nothing was printed"
    )
    with pytest.raises(IpcError) as caught:
        call(server.path, "bad")  # the server's own answer: a type, no code
    assert (caught.value.type, caught.value.code) == ("BadArguments", "ipc_error")
    path = Path(tempfile.mkdtemp(dir="/tmp")) / "app.sock"
    try:
        odd = b'{"ok": false, "error": {"type": "Not a type!", "code": "Nguy\\u1ec5n", "message": "x"}}\n'
        thread = _answering(path, odd)
        with pytest.raises(IpcError) as caught:
            call(path, "app.health", {}, timeout=5)
        thread.join(5)
        assert (caught.value.type, caught.value.code) == (None, "ipc_error")
        assert caught.value.message == "app.health: Not a type!: x"
    finally:
        shutil.rmtree(path.parent, ignore_errors=True)
