"""The app's control socket and the event journal's privacy guard."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from kiosk.errors import NetworkError
from kiosk.events import EventJournal, PrivacyError
from kiosk.ipc import ControlServer, IpcError, call


@pytest.fixture
def server(tmp_path: Path):
    control = ControlServer(tmp_path / "app.sock")
    control.register("echo", lambda args: {"got": args})
    control.register("boom", lambda args: {"never": 1 / 0})
    control.start()
    yield control
    control.stop()


def raw(path: Path, data: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(path))
        sock.sendall(data)
        return sock.recv(65536)


def test_round_trip_and_errors(server: ControlServer) -> None:
    assert call(server.path, "echo", {"a": "ả"}) == {"got": {"a": "ả"}}
    with pytest.raises(IpcError, match="UnknownCommand"):
        call(server.path, "nope")
    with pytest.raises(IpcError, match="InternalError"):
        call(server.path, "boom")
    assert b'"MalformedRequest"' in raw(server.path, b"{not json\n")
    assert b'"MalformedRequest"' in raw(server.path, b'{"cmd": 5}\n')
    assert call(server.path, "echo") == {"got": {}}  # the server survived all of that


def test_app_not_running(tmp_path: Path) -> None:
    with pytest.raises(NetworkError, match="not running"):
        call(tmp_path / "none.sock", "echo")


def test_journal_refuses_personal_data(tmp_path: Path) -> None:
    journal = EventJournal(tmp_path / "events.sqlite")
    with pytest.raises(PrivacyError):
        journal.append("card_read", {"result": "ok", "full_name": "Nguyễn Văn An"})
    with pytest.raises(PrivacyError):
        journal.append("ticket_issued", {"meta": [{"id_number": "079090001234"}]})
    event = journal.append("ticket_issued", {"number": "A001"})
    assert [e.event_id for e in journal.pending()] == [event.event_id]
    journal.close()


def test_client_leaving_before_the_answer_does_not_break_the_server(tmp_path: Path) -> None:
    import threading

    control = ControlServer(tmp_path / "app.sock")
    release = threading.Event()
    control.register("slow", lambda args: {"done": release.wait(5)})
    control.register("echo", lambda args: {"got": args})
    control.start()
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(control.path))
            sock.sendall(b'{"cmd": "slow"}\n')
        release.set()  # the client is gone when the answer is written
        assert call(control.path, "echo", {"n": 1}) == {"got": {"n": 1}}
    finally:
        control.stop()
