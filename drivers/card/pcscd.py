"""Make sure pcscd runs and lists the vpcd virtual reader: used by the kiosk's simulate mode and tests.

pcscd is started in the foreground as our child (``pcscd -f``; never ``-a``, which would log APDUs) when
nobody runs it yet; ``stop_started_pcscd`` stops only that child. Debian does not start pcscd at install.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from common.errors import DeviceUnavailableError

log = logging.getLogger(__name__)

VIRTUAL_READER = "Virtual PCD"
_started: subprocess.Popen[bytes] | None = None


def _list_readers() -> list[str] | None:
    """Reader names, or None when pcscd cannot be reached."""
    from smartcard import scard

    rc, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if rc != scard.SCARD_S_SUCCESS:
        return None
    try:
        rc, names = scard.SCardListReaders(ctx, [])
        if rc == scard.SCARD_S_SUCCESS:
            return list(names)
        return []
    finally:
        scard.SCardReleaseContext(ctx)


def wait_for_reader(substring: str = VIRTUAL_READER, timeout_s: float = 5.0) -> list[str]:
    deadline = time.monotonic() + timeout_s
    while True:
        names = _list_readers() or []
        if any(substring in name for name in names):
            return names
        if time.monotonic() > deadline:
            raise DeviceUnavailableError(
                f"pcscd lists no reader matching {substring!r} after {timeout_s:.0f} s (readers: {names!r}); "
                "is vsmartcard-vpcd installed (/etc/reader.conf.d/vpcd)?"
            )
        time.sleep(0.02)


def start_pcscd(timeout_s: float = 5.0) -> subprocess.Popen[bytes] | None:
    """Start pcscd unless one answers already; returns the process we started (None if not ours)."""
    if _list_readers() is not None:
        return None
    binary = shutil.which("pcscd") or "/usr/sbin/pcscd"
    try:
        proc = subprocess.Popen(
            [binary, "-f"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
    except OSError as exc:
        raise DeviceUnavailableError(f"cannot start pcscd ({exc}); install the Debian package pcscd") from exc
    deadline = time.monotonic() + timeout_s
    while _list_readers() is None:
        if proc.poll() is not None:
            if _list_readers() is not None:  # another pcscd won the race
                return None
            raise DeviceUnavailableError(
                f"pcscd exited with status {proc.returncode} (needs root or the pcscd group)"
            )
        if time.monotonic() > deadline:
            proc.terminate()
            raise DeviceUnavailableError(f"pcscd did not answer within {timeout_s:.0f} s")
        time.sleep(0.01)
    log.info("started pcscd (pid %d)", proc.pid)
    return proc


def ensure_pcscd(reader_substring: str = VIRTUAL_READER, timeout_s: float = 5.0) -> None:
    """pcscd running and the reader listed, or DeviceUnavailableError naming what is missing."""
    global _started
    proc = start_pcscd(timeout_s)
    if proc is not None:
        _started = proc
        atexit.register(stop_started_pcscd, proc)  # do not leave an orphan daemon behind
    wait_for_reader(reader_substring, timeout_s)


def stop_started_pcscd(proc: subprocess.Popen[bytes] | None = None) -> None:
    """Stop the pcscd this process started (``proc``, or the one ``ensure_pcscd`` started)."""
    global _started
    target = proc or _started
    if target is None or target.poll() is not None:
        return
    target.terminate()
    try:
        target.wait(timeout=5)
    except subprocess.TimeoutExpired:
        target.kill()
        target.wait()
    if target is _started:
        _started = None


@contextlib.contextmanager
def hold_vpcd_slot(port: int, timeout_s: float = 600.0) -> Iterator[int]:
    """Exclusive use of one vpcd slot across processes, for as long as the block runs.

    vpcd has one card slot per TCP port: two programs on one machine (two test runs, a test run next to
    a demo) would otherwise plug their virtual cards into the same reader. Waits up to ``timeout_s``.
    """
    import fcntl
    import tempfile

    path = Path(tempfile.gettempdir()) / f"motcua-card-vpcd-{port}.lock"
    with path.open("w") as handle:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise DeviceUnavailableError(
                        f"vpcd slot {port} busy for {timeout_s:.0f} s (held through {path})"
                    ) from None
                time.sleep(0.2)
        try:
            yield port
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)

