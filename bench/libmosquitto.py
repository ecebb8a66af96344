"""libmosquitto, the Mosquitto project's C client library (Debian ``libmosquitto1``), through ctypes.

The bench's simulated kiosks publish with it: its network loop is a C thread
(``mosquitto_loop_start``), so a publish costs a ctypes call rather than paho's Python packet building,
TLS writes and PUBACK handling (docs/fleet.md, "Seventh pass"). libmosquitto speaks MQTT; this module
only binds the functions a publisher needs, with the signatures of mosquitto.h 2.0.11
(``libmosquitto-dev``), and turns every error code into an exception with ``mosquitto_strerror``'s text.

    client = Client("fleet-3", ca="ca.crt", cert="fleet-3.crt", key="fleet-3.key")
    client.connect("127.0.0.1", 8884)  # until the broker's CONNACK
    client.publish("motcua/v1/c/k/event/rating", b"...", qos=1)
    client.acked  # PUBACKs received (QoS 1), PUBLISHes written (QoS 0): as paho's on_publish counts
    client.close()
"""

from __future__ import annotations

import ctypes
import os
import threading
from errno import EPROTO

LIBRARY = "libmosquitto.so.1"
DEBIAN_PACKAGE = "libmosquitto1"

# mosquitto.h 2.0.11
MOSQ_ERR_SUCCESS = 0
MOSQ_ERR_ERRNO = 14
MOSQ_ERR_TIMEOUT = 27
MOSQ_OPT_PROTOCOL_VERSION = 1
MOSQ_OPT_SEND_MAXIMUM = 5
MQTT_PROTOCOL_V5 = 5

# void (*)(struct mosquitto *, void *obj, int rc_or_mid): on_connect, on_disconnect, on_publish
_Callback = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int)

_lib: ctypes.CDLL | None = None
_load_lock = threading.Lock()


class _ThreadStatePin:
    """Keeps a Python thread state for libmosquitto's network thread between callbacks.

    A ctypes callback on a thread Python did not start creates a thread state and frees it on return
    (``PyGILState_Ensure``/``Release``): per PUBACK an mmap, a munmap and a gettid, ~15 us of the
    50-60 us of that thread's CPU per publish here (strace, ``bench.publisher_cost``). One more
    ``Ensure`` from inside the first callback keeps the state until ``unpin``, called from the same
    thread."""

    def __init__(self) -> None:
        self._thread: int | None = None
        self._state = 0

    def pin(self) -> None:
        if self._thread is None:
            self._state = _gil_ensure()
            self._thread = threading.get_native_id()

    def unpin(self) -> None:
        if self._thread == threading.get_native_id():  # only the thread that pinned may release
            _gil_release(self._state)
            self._thread = None


_gil_ensure = ctypes.pythonapi.PyGILState_Ensure
_gil_ensure.argtypes = []
_gil_ensure.restype = ctypes.c_int
_gil_release = ctypes.pythonapi.PyGILState_Release
_gil_release.argtypes = [ctypes.c_int]
_gil_release.restype = None


class LibmosquittoMissing(RuntimeError):
    """The shared library is not installed (or not loadable)."""


class MosquittoError(RuntimeError):
    def __init__(self, call: str, code: int, detail: str) -> None:
        super().__init__(f"{call}: {detail} (libmosquitto error {code})")
        self.call = call
        self.code = code


def load() -> ctypes.CDLL:
    """The library, its functions typed and ``mosquitto_lib_init`` called (once per process: it is not
    thread safe)."""
    global _lib
    with _load_lock:
        if _lib is not None:
            return _lib
        try:
            lib = ctypes.CDLL(LIBRARY, use_errno=True)
        except OSError as exc:
            raise LibmosquittoMissing(
                f"{LIBRARY} not found ({exc}): install the Debian package {DEBIAN_PACKAGE} "
                "(scripts/setup.sh does)"
            ) from exc
        p, c_int, c_bool, c_char_p = ctypes.c_void_p, ctypes.c_int, ctypes.c_bool, ctypes.c_char_p
        signatures: dict[str, tuple[list[object], object]] = {
            "mosquitto_lib_init": ([], c_int),
            "mosquitto_lib_version": ([ctypes.POINTER(c_int)] * 3, c_int),
            "mosquitto_new": ([c_char_p, c_bool, p], p),
            "mosquitto_destroy": ([p], None),
            "mosquitto_int_option": ([p, c_int, c_int], c_int),
            # cafile, capath, certfile, keyfile, pw_callback (NULL: the keys are not encrypted)
            "mosquitto_tls_set": ([p, c_char_p, c_char_p, c_char_p, c_char_p, p], c_int),
            "mosquitto_connect": ([p, c_char_p, c_int, c_int], c_int),
            "mosquitto_disconnect": ([p], c_int),
            "mosquitto_loop_start": ([p], c_int),
            "mosquitto_loop_stop": ([p, c_bool], c_int),
            # mosq, int *mid (NULL), topic, payloadlen, payload, qos, retain
            "mosquitto_publish": ([p, p, c_char_p, c_int, c_char_p, c_int, c_bool], c_int),
            "mosquitto_connect_callback_set": ([p, _Callback], None),
            "mosquitto_disconnect_callback_set": ([p, _Callback], None),
            "mosquitto_publish_callback_set": ([p, _Callback], None),
            "mosquitto_strerror": ([c_int], c_char_p),
            "mosquitto_reason_string": ([c_int], c_char_p),
        }
        for name, (argtypes, restype) in signatures.items():
            function = getattr(lib, name)
            function.argtypes = argtypes
            function.restype = restype
        _check("mosquitto_lib_init", lib.mosquitto_lib_init(), lib)
        _lib = lib
        return lib


def version() -> tuple[int, int, int]:
    major, minor, revision = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
    load().mosquitto_lib_version(ctypes.byref(major), ctypes.byref(minor), ctypes.byref(revision))
    return major.value, minor.value, revision.value


def _check(call: str, code: int, lib: ctypes.CDLL | None = None) -> None:
    if code == MOSQ_ERR_SUCCESS:
        return
    if code == MOSQ_ERR_ERRNO:  # "Error defined by errno": the errno says which
        errno = ctypes.get_errno()
        detail = os.strerror(errno)
        if errno == EPROTO:  # how libmosquitto reports OpenSSL's errors on a read or write
            detail += " (TLS: the handshake or a record failed)"
    else:
        detail = (lib or load()).mosquitto_strerror(code).decode()
    raise MosquittoError(call, code, detail)


class Client:
    """One MQTT v5 connection over TLS with a client certificate, clean start, its network loop in
    libmosquitto's thread. ``publish`` may be called from one thread while the loop runs (libmosquitto
    locks its queues); ``acked`` is written by the loop's thread only."""

    def __init__(self, client_id: str, *, ca: str, cert: str, key: str, send_maximum: int = 1000) -> None:
        self._lib = lib = load()
        self.client_id = client_id
        self.acked = 0
        self._connack: int | None = None  # the CONNACK's reason code
        self._closed_with: int | None = None  # the disconnect callback's libmosquitto code
        self._answered = threading.Event()
        self._pin = _ThreadStatePin()
        self._looping = False
        self._publish = lib.mosquitto_publish
        # ctypes callbacks must outlive the C side's use of them: kept on the instance
        self._callbacks = (_Callback(self._on_connect), _Callback(self._on_disconnect),
                           _Callback(self._on_publish))
        self._mosq = lib.mosquitto_new(client_id.encode(), True, None)
        if not self._mosq:
            raise MosquittoError("mosquitto_new", MOSQ_ERR_ERRNO, os.strerror(ctypes.get_errno()))
        try:
            self._call("mosquitto_int_option", MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5)
            # QoS 1 publishes in flight before libmosquitto queues them (the broker's Receive Maximum,
            # max_inflight_messages 1000 in motcua.conf, lowers it): paho's max_inflight_messages_set
            self._call("mosquitto_int_option", MOSQ_OPT_SEND_MAXIMUM, send_maximum)
            self._call("mosquitto_tls_set", ca.encode(), None, cert.encode(), key.encode(), None)
        except BaseException:
            lib.mosquitto_destroy(self._mosq)
            self._mosq = None
            raise
        lib.mosquitto_connect_callback_set(self._mosq, self._callbacks[0])
        lib.mosquitto_disconnect_callback_set(self._mosq, self._callbacks[1])
        lib.mosquitto_publish_callback_set(self._mosq, self._callbacks[2])

    def _call(self, name: str, *args: object, label: str = "") -> None:
        _check(label or name, getattr(self._lib, name)(self._mosq, *args), self._lib)

    # the callbacks run in libmosquitto's thread (ctypes takes the GIL for them): as little as possible
    def _on_connect(self, mosq: int | None, obj: int | None, reason: int) -> None:
        self._pin.pin()
        self._connack = reason
        self._answered.set()

    def _on_disconnect(self, mosq: int | None, obj: int | None, code: int) -> None:
        self._closed_with = code
        self._answered.set()
        self._pin.unpin()  # the loop's thread ends or reconnects (and pins again): its state goes

    def _on_publish(self, mosq: int | None, obj: int | None, mid: int) -> None:
        self.acked += 1

    def connect(self, host: str, port: int, keepalive: int = 60, timeout: float = 10.0) -> None:
        """Connect (TCP and TLS in this call), start the network thread, wait for the CONNACK; raises
        ``MosquittoError`` when the connection, the handshake or the broker refuses."""
        where = f"{host}:{port}"
        self._call("mosquitto_connect", host.encode(), port, keepalive, label=f"mosquitto_connect({where})")
        self._call("mosquitto_loop_start")
        self._looping = True
        if not self._answered.wait(timeout):
            self._stop_loop()
            raise MosquittoError(f"connect({where})", MOSQ_ERR_TIMEOUT, f"no CONNACK within {timeout} s")
        if self._connack == 0:
            return
        self._stop_loop()
        if self._connack is not None:  # the broker refused: an MQTT v5 reason code
            detail = self._lib.mosquitto_reason_string(self._connack).decode()
            raise MosquittoError(f"connect({where}): refused", self._connack, detail)
        code = self._closed_with or 0  # closed before any CONNACK (the TLS handshake, say)
        detail = self._lib.mosquitto_strerror(code).decode()
        raise MosquittoError(f"connect({where}): closed before the CONNACK", code, detail)

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> None:
        """Queue a PUBLISH (libmosquitto copies topic and payload; its thread writes it)."""
        code = self._publish(self._mosq, None, topic.encode(), len(payload), payload, qos, retain)
        if code:
            _check(f"mosquitto_publish({topic})", code, self._lib)

    def _stop_loop(self) -> None:
        """Disconnect and join the network thread (never ``force``: pthread_cancel could end it inside a
        Python callback, holding the GIL); ``mosquitto_loop_stop`` wakes it from a reconnect's wait."""
        if self._looping:
            self._lib.mosquitto_disconnect(self._mosq)  # MOSQ_ERR_NO_CONN when already gone: fine here
            self._call("mosquitto_loop_stop", False)
            self._looping = False

    def close(self) -> None:
        """DISCONNECT (what is still queued is dropped: wait for ``acked`` first), stop, free."""
        if self._mosq is None:
            return
        self._stop_loop()
        self._lib.mosquitto_destroy(self._mosq)
        self._mosq = None
