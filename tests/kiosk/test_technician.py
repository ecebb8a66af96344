"""The technician PIN (security review item 8): a slow salted hash, the deprecated SHA-256 form, an
escalating lock-out that survives a restart, audit events, and ``--hash-pin`` that never takes argv."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import pty
import select
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher

from common.errors import ConfigError
from contract.errors import SchemaError
from kiosk import SIMULATE_CONFIG
from kiosk.config import KioskSection, load_config
from kiosk.flows.technician import (
    LOCKOUT_FILE,
    MAX_LOCKOUT_S,
    PinGuard,
    hash_pin,
    legacy_hash_pin,
    verify_pin,
)
from kiosk.runtime import KioskRuntime, demo_config

ROOT = Path(__file__).resolve().parents[2]
#: the cheapest argon2id the configuration accepts (m=19 MiB, t=2), for the tests of the lock-out
DEMO_HASH = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1).hash("2468")


class WallClock:
    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def __call__(self) -> float:
        return self.t


def kiosk_section(**values: Any) -> KioskSection:
    return dataclasses.replace(load_config(SIMULATE_CONFIG, with_pushed=False).kiosk, **values)


def test_the_pin_hash_is_salted_argon2id_and_slow() -> None:
    first, second = hash_pin("2468"), hash_pin("2468")
    assert first.startswith("$argon2id$v=19$m=65536,t=3,p=4$") and first != second  # a salt each time
    kiosk = kiosk_section(technician_pin_hash=first)
    started = time.perf_counter()
    assert verify_pin("2468", kiosk) == "argon2id"
    took = time.perf_counter() - started
    assert verify_pin("2469", kiosk) is None
    print(f"argon2id verify: {took * 1000:.0f} ms")
    assert took > 0.02  # unsalted SHA-256 takes about a microsecond: 10^4 PINs in ~10 ms offline
    with pytest.raises(ConfigError, match="4 to 8 digits"):
        hash_pin("12a4")


def test_the_configuration_refuses_a_cheap_or_malformed_hash(tmp_path: Path) -> None:
    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash("2468")
    text = SIMULATE_CONFIG.read_text(encoding="utf-8")
    current = next(line for line in text.splitlines() if line.startswith("technician_pin_hash"))
    for value, message in ((cheap, "too cheap"), ("sha256:" + "0" * 64, "technician_pin_hash")):
        path = tmp_path / "kiosk.toml"
        path.write_text(text.replace(current, f'technician_pin_hash = "{value}"'), encoding="utf-8")
        with pytest.raises((ConfigError, SchemaError), match=message):
            load_config(path)


def test_the_demo_configuration_uses_the_new_form() -> None:
    kiosk = load_config(SIMULATE_CONFIG, with_pushed=False).kiosk
    assert kiosk.technician_pin_hash.startswith("$argon2id$") and kiosk.technician_pin_sha256 == ""
    assert verify_pin("2468", kiosk) == "argon2id"


def test_the_old_sha256_form_works_for_this_release_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = demo_config(tmp_path, technician_pin_hash="", technician_pin_sha256=legacy_hash_pin("2468"))
    caplog.set_level(logging.WARNING)
    runtime = KioskRuntime(config, synchronous=True)
    try:
        assert any("technician_pin_sha256 is an unsalted hash" in r.getMessage() for r in caplog.records)
        login(runtime, "2468")
        assert runtime.core.flow is not None and runtime.core.flow.state == "menu"
        assert kinds(runtime)[-1] == ("technician_login", {"scheme": "sha256_legacy", "failures_before": 0})
    finally:
        runtime.stop()
    both = kiosk_section(technician_pin_hash=DEMO_HASH, technician_pin_sha256=legacy_hash_pin("1111"))
    assert verify_pin("1111", both) is None and verify_pin("2468", both) == "argon2id"  # the new one wins


def test_the_lock_out_escalates_and_survives_a_restart(tmp_path: Path) -> None:
    kiosk = kiosk_section(technician_pin_hash=DEMO_HASH)
    clock = WallClock()
    state = tmp_path / LOCKOUT_FILE
    guard = PinGuard(clock, state_file=state)
    for attempt in range(1, 5):
        assert not guard.check("0000", kiosk).ok and guard.locked_for() == 0, attempt
    assert guard.check("0000", kiosk).locked_for == 60
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    restarted = PinGuard(clock, state_file=state)  # the app restarts (or the kiosk reboots)
    assert restarted.locked_for() == 60
    check = restarted.check("2468", kiosk)  # even the right PIN waits
    assert not check.ok and check.locked_for == 60
    clock.t += 61
    for _ in range(4):
        assert not restarted.check("0000", kiosk).ok
    assert PinGuard(clock, state_file=state).wrong == 9  # each failure is kept, not only the locks
    assert restarted.check("0000", kiosk).locked_for == 120  # the second lock doubles
    clock.t += 121
    for _ in range(5):
        restarted.check("0000", kiosk)
    assert restarted.locked_for() == 240
    clock.t += 241
    assert restarted.check("2468", kiosk).ok  # a right PIN resets everything
    again = PinGuard(clock, state_file=state)
    assert (again.wrong, again.lockouts, again.locked_for()) == (0, 0, 0)
    assert [again.lockout_duration(n) for n in (1, 2, 3, 7, 8, 20)] == [60, 120, 240, 3600, 3600, 3600]


def test_a_damaged_or_far_future_lock_file_locks_instead_of_unlocking(tmp_path: Path) -> None:
    clock = WallClock()
    state = tmp_path / LOCKOUT_FILE
    state.write_text("{not json")
    assert PinGuard(clock, state_file=state).locked_for() == MAX_LOCKOUT_S
    state.write_text(json.dumps({"wrong": 5, "lockouts": 1, "locked_until": clock.t + 10 * 86400}))
    assert PinGuard(clock, state_file=state).locked_for() == MAX_LOCKOUT_S  # the clock was set back


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[KioskRuntime]:
    config = demo_config(tmp_path, technician_pin_hash=DEMO_HASH)
    config = dataclasses.replace(
        config,
        devices=dataclasses.replace(
            config.devices, card_reader=dataclasses.replace(config.devices.card_reader, enabled=False)
        ),
    )
    made = KioskRuntime(config, synchronous=True)
    yield made
    made.stop()


def login(runtime: KioskRuntime, pin: str) -> None:
    if runtime.core.flow is None or runtime.core.flow.name != "technician":
        runtime.core.start("technician")
    for digit in pin:
        runtime.core.act("digit", digit=digit)
    runtime.core.act("enter")
    runtime.core.pump()


def kinds(runtime: KioskRuntime) -> list[tuple[str, dict[str, Any]]]:
    runtime.core.shutdown()  # the journal's lane has written everything handed to it
    return [(e.kind, e.payload) for e in runtime.journal.pending(limit=10_000)]


def test_logins_failures_lock_outs_and_service_mode_are_audited(runtime: KioskRuntime) -> None:
    for _ in range(5):
        login(runtime, "1357")
    assert runtime.core.flow is not None and runtime.core.flow.error_key == "technician.locked"
    runtime.core.pin_guard.locked_until = 0.0  # the minute has passed
    login(runtime, "2468")
    assert runtime.core.flow.state == "menu"
    runtime.core.act("service_mode", out_of_service=True)
    runtime.core.pump()
    runtime._service_mode({"out_of_service": False})  # the center's set_service_mode command
    runtime._service_mode({"out_of_service": False})  # no change: nothing to record
    audit = [(kind, payload) for kind, payload in kinds(runtime) if kind not in ("device_fault",)]
    assert audit[-9:] == [
        ("technician_login_failed", {"failures": 1}),
        ("technician_login_failed", {"failures": 2}),
        ("technician_login_failed", {"failures": 3}),
        ("technician_login_failed", {"failures": 4}),
        ("technician_login_failed", {"failures": 5}),
        ("technician_locked_out", {"failures": 5, "lockout_s": 60.0, "lockouts": 1}),
        ("technician_login", {"scheme": "argon2id", "failures_before": 5}),
        ("service_mode_changed", {"out_of_service": True, "source": "technician"}),
        ("service_mode_changed", {"out_of_service": False, "source": "center"}),
    ]
    assert "1357" not in json.dumps(audit) and "2468" not in json.dumps(audit)


def run_hash_pin(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "main.py", "kiosk", "--hash-pin", *args],
        cwd=ROOT, input=stdin, capture_output=True, text=True, timeout=60,
    )


def test_hash_pin_reads_stdin_never_argv() -> None:
    done = run_hash_pin(stdin="2468\n")
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip()
    assert line.startswith('technician_pin_hash = "$argon2id$') and "2468" not in line
    value = line.split('"')[1]
    assert verify_pin("2468", kiosk_section(technician_pin_hash=value)) == "argon2id"
    refused = run_hash_pin("2468", stdin="")  # the PIN on the command line (ps, shell history)
    assert refused.returncode == 2 and "unrecognized arguments" in refused.stderr
    assert "$argon2id" not in refused.stdout
    bad = run_hash_pin(stdin="12\n")
    assert bad.returncode == 78 and "4 to 8 digits" in bad.stderr


PROMPTS = (b"New technician PIN (4-8 digits): ", b"Same PIN again: ")


def _converse(answers: list[str]) -> tuple[int, str]:
    """``main.py kiosk --hash-pin`` on a terminal: answer each prompt once it is shown; returns the exit
    code and what the terminal showed."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: its controlling terminal is the pty
        os.chdir(ROOT)
        os.execv(sys.executable, [sys.executable, "main.py", "kiosk", "--hash-pin"])
    output = b""
    sent = 0
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if sent < len(answers) and output.endswith(PROMPTS[sent]):
                os.write(fd, answers[sent].encode() + b"\n")
                sent += 1
            ready, _, _ = select.select([fd], [], [], 0.5)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the child closed the terminal (it exited)
                break
            if not chunk:
                break
            output += chunk
    finally:
        if time.monotonic() >= deadline:
            os.kill(pid, 9)
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), output.decode(errors="replace")


def test_hash_pin_asks_twice_on_a_terminal_without_echo() -> None:
    code, output = _converse(["2468", "2468"])
    assert code == 0, output
    assert "New technician PIN" in output and "Same PIN again" in output
    assert "2468" not in output  # getpass: no echo
    assert 'technician_pin_hash = "$argon2id$' in output
    code, output = _converse(["2468", "8642"])
    assert code == 78 and "the two PINs differ" in output and "$argon2id$" not in output
