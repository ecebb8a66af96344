"""The virtual card's link to vsmartcard's vpcd: a TCP client that the vpcd reader sees as a card.

vpcd protocol: frames of a 2-byte big-endian length and a payload; 1-byte payloads are control codes
(0 power off, 1 power on, 2 reset, 4 get ATR), anything longer is an APDU answered with one frame.
Closing the connection is the card leaving the field. TCP_NODELAY and a re-armed TCP_QUICKACK before
every recv avoid the ~40 ms delayed-ACK stall per APDU (design note).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from common.errors import DeviceUnavailableError
from drivers.card.errors import CardError
from drivers.card.keys import AccessKey
from drivers.card.sim.chip import CardFaults, CardVanished, VirtualChip
from drivers.card.sim.pki import TestPki
from drivers.card.sim.profile import CardProfile, build_files

log = logging.getLogger(__name__)

VPCD_PORT = 35963
#: vpcd quirk: a connection made within ~0.3 s of the previous card leaving is accepted but never
#: polled, so the card never appears. A citizen cannot be that fast; ``insert`` waits this long.
REINSERT_SETTLE_S = 0.5
#: when a card last left each vpcd slot (host, port): shared by all VirtualCard objects, since a demo
#: removes one citizen's card and inserts the next one's as a new object
_LEFT_AT: dict[tuple[str, int], float] = {}
_LEFT_LOCK = threading.Lock()


def _mark_left(address: tuple[str, int] | None) -> None:
    if address is not None:
        with _LEFT_LOCK:
            _LEFT_AT[address] = time.monotonic()


_CTRL_OFF, _CTRL_ON, _CTRL_RESET, _CTRL_ATR = 0, 1, 2, 4


def _atr(historical: bytes) -> bytes:
    """PC/SC part 3 style ATR of a contactless ISO 14443-4 card: 3B 8n 80 01 <historical> TCK."""
    body = bytes([0x80 | len(historical), 0x80, 0x01]) + historical
    tck = 0
    for byte in body:
        tck ^= byte
    return b"\x3b" + body + bytes([tck])


ATR = _atr(b"CCCD-SIM")


class VirtualCard:
    """A virtual CCCD that can be inserted into (connected to) and removed from a vpcd reader."""

    def __init__(self, profile: CardProfile, pki: TestPki, faults: CardFaults | None = None) -> None:
        self.profile = profile
        self.faults = faults or CardFaults()
        self._files = build_files(
            profile,
            pki,
            alter_dg13=self.faults.alter_dg13,
            bad_tlv_dg13=self.faults.bad_tlv_dg13,
            deep_nesting=self.faults.deep_nesting,
        )
        self._key = AccessKey.from_mrz(
            profile.document_number, profile.birth_date.strftime("%y%m%d"), profile.mrz_expiry
        )
        aa_key, ca_key = pki.aa_key, pki.ca_key
        if self.faults.wrong_aa_key:  # files (DG15) from the PKI's key, signatures from another
            aa_key = (
                rsa.generate_private_key(public_exponent=65537, key_size=aa_key.key_size)
                if isinstance(aa_key, rsa.RSAPrivateKey)
                else ec.generate_private_key(aa_key.curve)
            )
        if self.faults.wrong_ca_key:
            ca_key = ec.generate_private_key(ca_key.curve)
        self.chip = VirtualChip(
            self._files, self._key, aa_key, self.faults, can=profile.id_number[-6:], ca_key=ca_key
        )
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._address: tuple[str, int] | None = None

    @property
    def inserted(self) -> bool:
        return self._sock is not None

    def insert(self, host: str = "127.0.0.1", port: int = VPCD_PORT, timeout_s: float = 5.0) -> None:
        """Connect to vpcd (pcscd must be running) and serve APDUs in a background thread."""
        self.remove()
        with _LEFT_LOCK:
            left_at = _LEFT_AT.get((host, port), 0.0)
        settle = left_at + REINSERT_SETTLE_S - time.monotonic()
        if settle > 0:
            time.sleep(settle)
        try:
            sock = socket.create_connection((host, port), timeout=timeout_s)
        except OSError as exc:
            raise DeviceUnavailableError(
                f"cannot reach vpcd at {host}:{port} ({exc}); is pcscd running with vsmartcard-vpcd?"
            ) from exc
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.chip.reset()
        with self._lock:
            self._sock = sock
            self._address = (host, port)
        self._thread = threading.Thread(target=self._serve, args=(sock,), name="virtual-cccd", daemon=True)
        self._thread.start()

    def remove(self) -> None:
        """Take the card out of the field (close the vpcd connection)."""
        with self._lock:
            sock, self._sock = self._sock, None
        if sock is not None:
            _mark_left(self._address)
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2)
        self._thread = None

    def close(self) -> None:
        self.remove()

    def __enter__(self) -> VirtualCard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait_removed(self, timeout_s: float) -> bool:
        thread = self._thread
        if thread is not None:
            thread.join(timeout_s)
        return self._sock is None

    # ---------------------------------------------------------------------------------------------
    def _serve(self, sock: socket.socket) -> None:
        try:
            while True:
                frame = _recv_frame(sock)
                if frame is None:
                    break
                answer = self._handle(frame)
                if answer is not None:
                    sock.sendall(len(answer).to_bytes(2, "big") + answer)
        except CardVanished:
            log.info("virtual card: leaving the field (fault remove_after_apdus)")
        except OSError:
            pass  # removed by remove(), or vpcd went away
        except CardError:
            log.exception("virtual card: engine error")
        finally:
            with self._lock:
                if self._sock is sock:
                    self._sock = None
                    _mark_left(self._address)
            with contextlib.suppress(OSError):
                sock.close()

    def _handle(self, frame: bytes) -> bytes | None:
        if len(frame) == 1:
            code = frame[0]
            if code in (_CTRL_OFF, _CTRL_ON, _CTRL_RESET):
                self.chip.reset()
                return None
            if code == _CTRL_ATR:
                return ATR
            return None
        return self.chip.process(frame)


def _recv_exact(sock: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        if hasattr(socket, "TCP_QUICKACK"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        chunk = sock.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _recv_frame(sock: socket.socket) -> bytes | None:
    header = _recv_exact(sock, 2)
    if header is None:
        return None
    return _recv_exact(sock, int.from_bytes(header, "big"))
