"""Fixtures for the look-up and rating tests: a real local HTTP server playing the province system,
QR images from independent encoders (the ``qrencode`` CLI and segno), and simulator scanners."""

from __future__ import annotations

import io
import json
import logging
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import segno
from PIL import Image

#: Short Vietnamese payloads: the ones zbar's charset guess garbles are the short ones.
VIETNAMESE_PAYLOADS = [
    "Đức",
    "Ngọc",
    "Hà Nội",
    "Phạm Thu Hà",
    "Lê Hoàng Nam",
    "Bích",
    "Đất đai",
    "Cư trú",
    "Y tế",
    "Xã Tân Hội, Lâm Đồng",
    "Trần Thị Bích Ngọc",
    "Đăng ký khai sinh",
    "Mã hồ sơ: 000.00.10.H12-210901-0001\nThủ tục: Cấp giấy phép xây dựng nhà ở riêng lẻ",
    '{"maHoSo":"000.00.10.H12-210901-0001","tenThuTuc":"Đăng ký kết hôn"}',
    "https://dichvucong.gov.vn/tra-cuu?maHoSo=000.00.10.H12-210901-0001&t=Đăng%20ký",
]


def qrencode_png(text: str, path: Path, scale: int = 6) -> Path:
    """Encode with the qrencode CLI (libqrencode: not the library we decode with)."""
    if shutil.which("qrencode") is None:
        pytest.fail("qrencode CLI missing: scripts/setup.sh installs it")
    subprocess.run(["qrencode", "-o", str(path), "-s", str(scale), "-m", "4", "-l", "M", "--", text],
                   check=True, timeout=10)
    return path


def segno_png(text: str, path: Path, scale: int = 6, eci: bool = False) -> Path:
    segno.make(text, error="m", micro=False, eci=eci).save(str(path), kind="png", scale=scale, border=4)
    return path


def segno_image(text: str, scale: int = 6) -> Image.Image:
    buffer = io.BytesIO()
    segno.make(text, error="m", micro=False).save(buffer, kind="png", scale=scale, border=4)
    buffer.seek(0)
    return Image.open(buffer).convert("L")


@dataclass
class Reply:
    status: int = 200
    body: bytes | str | dict[str, Any] | list[Any] = b""
    content_type: str = "application/json"
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    #: announce the full length but send only half the body, then close (a dropped connection)
    truncate: bool = False
    #: send the body in 10-byte pieces this many seconds apart (a trickling server)
    drip_s: float = 0.0
    #: send the status line and headers one byte at a time, this many seconds apart
    head_drip_s: float = 0.0
    #: the Content-Length header as sent (None: the body's length); "" leaves it out
    content_length: str | None = None


@dataclass
class SeenRequest:
    path: str
    headers: dict[str, str]
    method: str = "GET"
    body: bytes = b""


class ProvinceServer:
    """A real http.server on 127.0.0.1: ``script[path]`` is a list of replies used in turn (the last
    one repeats); unknown paths answer a bare 404 like a web server with no such route."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.script: dict[str, list[Reply]] = {}
        self.requests: list[SeenRequest] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                self._answer(SeenRequest(self.path, headers, "POST", body))

            def do_GET(self) -> None:
                self._answer(SeenRequest(self.path, {k.lower(): v for k, v in self.headers.items()}))

            def _answer(self, seen: SeenRequest) -> None:
                outer.requests.append(seen)
                replies = outer.script.get(self.path)
                if not replies:
                    self.send_error(404, "no such route")
                    return
                reply = replies.pop(0) if len(replies) > 1 else replies[0]
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                body = reply.body
                if isinstance(body, dict | list):
                    body = json.dumps(body, ensure_ascii=False)
                if isinstance(body, str):
                    body = body.encode("utf-8")
                length = str(len(body)) if reply.content_length is None else reply.content_length
                fields = [("Content-Type", reply.content_type), *reply.headers.items()]
                if length:
                    fields.insert(1, ("Content-Length", length))
                try:
                    if reply.head_drip_s:
                        head = f"HTTP/1.1 {reply.status} Whatever\r\n" + "".join(
                            f"{name}: {value}\r\n" for name, value in fields
                        )
                        for byte in (head + "\r\n").encode("latin-1"):
                            self.wfile.write(bytes((byte,)))
                            self.wfile.flush()
                            time.sleep(reply.head_drip_s)
                    else:
                        self.send_response(reply.status)
                        for name, value in fields:
                            self.send_header(name, value)
                        self.end_headers()
                    if reply.drip_s:
                        for start in range(0, len(body), 10):
                            self.wfile.write(body[start : start + 10])
                            self.wfile.flush()
                            time.sleep(reply.drip_s)
                        return
                    self.wfile.write(body[: len(body) // 2] if reply.truncate else body)
                    if reply.truncate:
                        self.close_connection = True
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Httpd(ThreadingHTTPServer):
            def get_request(self) -> tuple[Any, Any]:
                outer.connections += 1  # also the ones whose TLS handshake then fails
                return super().get_request()

        self.connections = 0
        self.httpd = Httpd(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.origin = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.base_url = f"{self.origin}/api/v1"
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()

    def dossier_path(self, code: str) -> str:
        return f"/api/v1/dossiers/{code}"

    def on(self, code: str, *replies: Reply) -> None:
        self.script[self.dossier_path(code)] = list(replies)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(autouse=True)
def no_swallowed_scanner_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fail a test when a scanner worker logged an exception it swallowed (a dead worker, a raising
    callback): those are kept alive on purpose, so only the log shows them. A test that provokes
    one on purpose clears ``caplog`` after checking it."""
    yield
    swallowed = [r for r in caplog.get_records("call")
                 if r.name.startswith("drivers.scanner") and r.levelno >= logging.ERROR]
    assert swallowed == [], [r.getMessage() for r in swallowed]


@pytest.fixture
def province() -> Iterator[ProvinceServer]:
    server = ProvinceServer()
    yield server
    server.close()


@dataclass(frozen=True)
class Tls:
    """A test CA and a server certificate for 127.0.0.1: the server's context and a client context
    that trusts only that CA."""

    server: ssl.SSLContext
    client: ssl.SSLContext


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    from provisioning.pki import CertificateAuthority

    directory = tmp_path_factory.mktemp("province-pki")
    ca = CertificateAuthority.create(directory, name="Province Test CA")
    issued = ca.issue(directory, "province", server=True, hosts=("127.0.0.1", "localhost"))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(issued.cert_file, issued.key_file)
    client = ssl.create_default_context(cafile=str(ca.cert_file))
    return Tls(server, client)


@pytest.fixture
def province_tls(tls: Tls) -> Iterator[ProvinceServer]:
    server = ProvinceServer(tls=tls.server)
    yield server
    server.close()


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on (bound, then closed): connections are refused."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], bool], timeout_s: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()
