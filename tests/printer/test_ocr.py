"""A peer we do not control reads the printed ticket back: tesseract with the Vietnamese model."""

from __future__ import annotations

import subprocess

from drivers.printer import TicketContent, TicketPrinter


def test_tesseract_reads_number_service_and_names(printer: TicketPrinter, full_ticket: TicketContent) -> None:
    report = printer.print_ticket(full_ticket)
    out = subprocess.run(
        ["tesseract", str(report.png), "stdout", "-l", "vie", "--psm", "4"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    lines = [line.strip() for line in out.splitlines() if line.strip()]
    assert "B023" in lines
    assert "Hộ tịch" in lines
    assert "Đang chờ: 12 người" in lines
    assert "Công dân: Trần Thị Bích Ngọc" in lines
    assert "Ưu tiên: người cao tuổi" in lines
