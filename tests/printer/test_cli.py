"""``python main.py printer ...`` as a technician runs it, in real subprocesses."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from PIL import Image

from drivers.printer import PrinterConfig, TicketContent, open_printer

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "main.py", "printer", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def test_test_page_and_codepage_test(tmp_path: Path) -> None:
    out = run("test-page", "--output-dir", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert re.match(r"printed \d+ bytes in [\d.]+ s: .*ticket-0001\.png", out.stdout)
    out = run("codepage-test", "--output-dir", str(tmp_path), "--width", "384")
    assert out.returncode == 0, out.stderr
    assert Image.open(tmp_path / "ticket-0002.png").width == 384  # numbering continues, nothing overwritten


def test_status_of_a_missing_network_printer_names_it() -> None:
    out = run("status", "--backend", "network", "--host", "127.0.0.1", "--port", "9")
    assert out.returncode == 69  # EX_UNAVAILABLE from DeviceUnavailableError
    assert "network printer 127.0.0.1:9" in out.stderr


def test_serve_a_virtual_network_printer(tmp_path: Path, ticket: TicketContent) -> None:
    proc = subprocess.Popen(
        [sys.executable, "main.py", "printer", "serve", "--port", "0", "--output-dir", str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        port = int(re.search(r":(\d+),", first).group(1))  # type: ignore[union-attr]
        with open_printer(PrinterConfig(backend="network", port=port)) as p:
            p.print_ticket(ticket)
        assert proc.stdout.readline().strip() == str(tmp_path / "ticket-0001.png")
    finally:
        os.kill(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=10) == 0
