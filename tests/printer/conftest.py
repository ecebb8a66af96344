"""Fixtures: a virtual printer behind the real TicketPrinter, and ticket contents to print."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from drivers.printer import PrinterConfig, TicketContent, TicketPrinter, open_printer

BASES = "aăâeêioôơuưy"
TONES = ("", "\u0300", "\u0301", "\u0309", "\u0303", "\u0323")  # none, huyền, sắc, hỏi, ngã, nặng


def vietnamese_letters() -> list[str]:
    """Every Vietnamese letter with every tone, both cases, plus Đ/đ: 146 code points."""
    lower = [unicodedata.normalize("NFC", b + t) for b in BASES for t in TONES]
    return [*lower, *(c.upper() for c in lower), "đ", "Đ"]


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """python-escpos' capabilities pickle goes to a session temp dir, not the developer's ~/.cache."""
    import os

    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = old


@pytest.fixture
def ticket() -> TicketContent:
    return TicketContent(
        center_name="Trung tâm Phục vụ hành chính công Phường Bến Thành",
        service_name="Hộ tịch",
        number="B023",
        counters=["3", "4"],
        issued_at=datetime(2026, 11, 23, 2, 41, tzinfo=UTC),  # 09:41 in Hồ Chí Minh City
        waiting_ahead=12,
        qr_data="https://motcua.example.vn/t/79-0001/B023",
        footer="Xin cảm ơn quý khách!",
    )


@pytest.fixture
def full_ticket(ticket: TicketContent) -> TicketContent:
    """Every optional field set, long texts that wrap."""
    from dataclasses import replace

    return replace(
        ticket,
        citizen_name="Trần Thị Bích Ngọc",
        priority_label="Ưu tiên: người cao tuổi",
        footer="Xin cảm ơn quý khách! Vui lòng giữ phiếu đến khi được gọi.",
    )


@pytest.fixture
def sim_config(tmp_path: Path) -> PrinterConfig:
    return PrinterConfig(output_dir=str(tmp_path / "printed"), status_timeout=0.2)


@pytest.fixture
def printer(sim_config: PrinterConfig) -> Iterator[TicketPrinter]:
    with open_printer(sim_config) as p:
        yield p
