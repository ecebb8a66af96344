"""The fuzz area ``text`` (fuzz/text.py) without atheris: every target on every committed seed, and
the inputs the fuzzing found, so a regression shows in the normal test run too."""

from __future__ import annotations

import pytest

from fuzz.registry import AREAS, corpus_dir, targets

TEXT_TARGETS = sorted(name for name in targets() if name.startswith("text."))

#: Inputs that escaped before a fix (each has its regression test too).
FOUND = {
    # found by the first campaign: urljoin raised ValueError ("Invalid IPv6 URL") on this Location
    "text.http_response": [b"HTTP/1.1 301 Moved\r\nLocation: Fhttps://elsewh0.H12-[x\r\n\r\n"],
    # found reading the parser while writing the target: urlsplit raised ValueError
    "text.dossier_code": [b"http://[", "http://a\uff0fb/000.00.10.H12-210901-0001".encode()],
}


def test_the_area_is_registered() -> None:
    assert "text" in AREAS
    assert TEXT_TARGETS == [
        "text.dossier_code", "text.http_response", "text.ipc_dispatch", "text.printer_native",
        "text.printer_raster", "text.qr_text", "text.serial_framing",
    ]


@pytest.mark.parametrize("name", TEXT_TARGETS)
def test_every_seed_is_handled(name: str) -> None:
    seeds = sorted(corpus_dir(name).iterdir())
    assert len(seeds) >= 4, f"{name}: commit a seed corpus in {corpus_dir(name)}"
    target = targets()[name]
    for seed in seeds:
        target(seed.read_bytes())
    for found in FOUND.get(name, []):
        target(found)
