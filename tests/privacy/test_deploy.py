"""deploy/systemd: the units keep what they create private, dump no core, and are valid for systemd."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.systemd_units import verify_units

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"


def service_section(path: Path) -> dict[str, list[str]]:
    options: dict[str, list[str]] = {}
    section = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line
        elif section == "[Service]":
            key, _, value = line.partition("=")
            options.setdefault(key, []).append(value)
    return options


@pytest.mark.parametrize("unit", ["motcua-kiosk.service", "motcua-agent.service"])
def test_units_are_private_and_hardened(unit):
    options = service_section(UNITS / unit)
    for key, value in {
        "UMask": "0077",
        "LimitCORE": "0",
        "StateDirectoryMode": "0700",
        "NoNewPrivileges": "true",
        "ProtectSystem": "strict",
        "PrivateTmp": "true",
        "ProtectKernelTunables": "true",
        "RestrictSUIDSGID": "true",
    }.items():
        assert options.get(key) == [value], f"{unit}: {key}={options.get(key)}"
    assert options["CapabilityBoundingSet"] == [""]


def test_the_kiosk_keeps_what_it_needs():
    """X display (its socket folder through the private /tmp), device nodes, pcscd's socket."""
    options = service_section(UNITS / "motcua-kiosk.service")
    assert options["BindReadOnlyPaths"] == ["-/tmp/.X11-unix"]
    assert "PrivateDevices" not in options and "DevicePolicy" not in options  # USB/serial printers, camera
    assert "AF_UNIX" in options["RestrictAddressFamilies"][0]  # X, pcscd, the control socket
    assert "InaccessiblePaths" not in options
    assert options["ProtectHome"] == ["read-only"]  # the X cookie (XAUTHORITY) in the kiosk user's home


def test_systemd_accepts_every_line(tmp_path):
    """``systemd-analyze verify`` warns about unknown keys and unparsable values; it must say nothing."""
    units = {unit: (UNITS / unit).read_text(encoding="utf-8") for unit in ("motcua-kiosk.service",
                                                                           "motcua-agent.service")}
    result = verify_units(units, tmp_path)
    assert result.returncode == 0 and result.stderr.strip() == "" and result.stdout.strip() == "", (
        result.stdout + result.stderr
    )
