"""The app's control socket and the event journal's privacy guard."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path
from typing import ClassVar

import pytest

from common.errors import NetworkError
from common.ipc import ControlServer, IpcError, call
from common.journal import EventJournal, PrivacyError
from contract.events import EventPayload, TicketIssued


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


@dataclasses.dataclass(frozen=True)
class LeakyCardRead(EventPayload):
    """A payload type a careless change could add: the journal's own guard must still refuse it."""

    KIND: ClassVar[str] = "card_read"
    result: str = "ok"
    full_name: str = ""
    meta: list[dict[str, str]] = dataclasses.field(default_factory=list)


def test_journal_refuses_personal_data(tmp_path: Path) -> None:
    journal = EventJournal(tmp_path / "events.sqlite")
    with pytest.raises(PrivacyError):
        journal.append(LeakyCardRead(full_name="Nguyễn Văn An"))
    with pytest.raises(PrivacyError):
        journal.append(LeakyCardRead(meta=[{"id_number": "079090001234"}]))
    event = journal.append(TicketIssued("A001", "HOTICH"))
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
