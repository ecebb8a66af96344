"""``systemd-analyze verify`` on units written for /opt/motcua, checked against this checkout."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def verify_units(units: Mapping[str, str], folder: Path) -> subprocess.CompletedProcess[str]:
    """The units (name → text) written into ``folder`` with this machine's Python and checkout put in
    for /opt/motcua (the only machine-specific part), then verified: systemd-analyze warns about
    unknown keys, unparsable values and missing executables, and says nothing when it accepts them."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in units.items():
        text = text.replace("/opt/motcua/.venv/bin/python", sys.executable)
        (folder / name).write_text(text.replace("/opt/motcua", str(ROOT)), encoding="utf-8")
    return subprocess.run(
        ["systemd-analyze", "verify", *(str(folder / name) for name in sorted(units))],
        capture_output=True, text=True, timeout=60,
    )
