"""The configuration file: a wrong key or value stops start-up with the key and the fix named."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from common.errors import ConfigError
from kiosk import SIMULATE_CONFIG
from kiosk.config import apply_overlay, load_config

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "kiosk.toml"
    path.write_text(text, encoding="utf-8")
    return path


def demo_text() -> str:
    return SIMULATE_CONFIG.read_text(encoding="utf-8")


def test_demo_configuration_loads(tmp_path: Path) -> None:
    config = load_config(SIMULATE_CONFIG)
    assert config.kiosk.id == "kiosk-demo-01"
    assert [s.prefix for s in config.services] == ["A", "B", "C", "D", "E", "F"]
    assert config.kiosk.data_dir.is_absolute()  # relative to the file, not to the cwd


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("idle_timeout_s = 60", "idle_timeout_s = 2"),
            "kiosk.idle_timeout_s: expected a number between 5 and 600, got 2",
        ),
        (("idle_timeout_s = 60", 'idle_timeout_s = "60"'), "kiosk.idle_timeout_s: expected a number"),
        (('language = "vi"', 'language = "fr"'), "kiosk.language: expected one of 'vi', 'en', got 'fr'"),
        (
            ("[display]", "[display]\nwidht = 3"),
            "display.widht: unknown key; expected one of: fullscreen, height",
        ),
        (
            ('backend = "simulator"\nwidth_dots', 'backend = "laser"\nwidth_dots'),
            "devices.printer.backend: expected one of",
        ),
        (('prefix = "B"', 'prefix = "A"'), "services[1].prefix: 'A' is used twice"),
        (('prefix = "B"', 'prefix = "b"'), "services[1].prefix: expected one capital letter A-Z, got 'b'"),
        (('id = "kiosk-demo-01"\n', ""), "kiosk.id: missing; expected a string"),
        (("levels = 4", "levels = 7"), "rating.levels: expected one of 3, 4, 5, got 7"),
    ],
)
def test_errors_name_the_key_and_expected_value(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    old, new = change
    text = demo_text()
    assert old in text
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text.replace(old, new, 1)))
    assert message in info.value.message


def test_not_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[kiosk\nid ="))
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_cli_stops_with_message_and_exit_code(tmp_path: Path) -> None:
    path = write(tmp_path, demo_text().replace('language = "vi"', 'language = "fr"'))
    result = subprocess.run(
        [sys.executable, "main.py", "kiosk", "--config", str(path), "--check-config"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 78
    assert "error: kiosk.language: expected one of 'vi', 'en', got 'fr'" in result.stderr
    assert "Traceback" not in result.stderr


def test_overlay_pushable_and_refused_keys() -> None:
    config = load_config(SIMULATE_CONFIG)
    pushed = apply_overlay(config, {"version": 7, "kiosk": {"idle_timeout_s": 90, "notice_vi": "Nghỉ trưa"}})
    assert pushed.version == 7 and pushed.kiosk.idle_timeout_s == 90 and pushed.kiosk.notice_vi == "Nghỉ trưa"
    assert pushed.kiosk.id == config.kiosk.id
    assert config.kiosk.voice is False
    assert apply_overlay(config, {"kiosk": {"voice": True}}).kiosk.voice is True  # pushable
    with pytest.raises(ConfigError, match=r"^devices: unknown key; expected one of: agent, kiosk, rating"):
        apply_overlay(config, {"devices": {}})
    with pytest.raises(ConfigError, match=r"^kiosk\.id: unknown key"):
        apply_overlay(config, {"kiosk": {"id": "other"}})
    with pytest.raises(ConfigError, match="services: at least one"):
        apply_overlay(config, {"services": []})


def test_pushed_overlay_file_is_applied_at_start(tmp_path: Path) -> None:
    text = demo_text().replace('data_dir = "../var/kiosk-demo-01"', 'data_dir = "data"')
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "pushed-config.json").write_text(json.dumps({"version": 3}), encoding="utf-8")
    assert load_config(write(tmp_path, text)).version == 3


@dataclass(frozen=True)
class Inner:
    port: int = 1


@dataclass(frozen=True)
class Outer:
    inner: Inner | None = None
    path: Path | None = None


def test_optional_nested_table_reports_the_inner_key() -> None:
    from contract.errors import SchemaError
    from contract.schema import parse_dataclass

    assert parse_dataclass(Outer, {"inner": None}).inner is None
    assert parse_dataclass(Outer, {"inner": {"port": 5}}).inner == Inner(5)
    with pytest.raises(SchemaError, match=r"^inner\.port: expected an integer, got 'x'$"):
        parse_dataclass(Outer, {"inner": {"port": "x"}})
    with pytest.raises(SchemaError, match=r"^inner\.prot: unknown key"):
        parse_dataclass(Outer, {"inner": {"prot": 5}})
    with pytest.raises(SchemaError, match=r"^path: expected a path, got 3$"):
        parse_dataclass(Outer, {"path": 3})


def test_rating_scale_is_pushable() -> None:
    config = load_config(SIMULATE_CONFIG)
    pushed = apply_overlay(config, {"rating": {"levels": 5, "reasons": [], "repeat_interval_s": 10}})
    assert pushed.rating.levels == 5 and pushed.rating.reasons == []
    with pytest.raises(ConfigError, match=r"^rating\.levels: expected one of 3, 4, 5, got 2$"):
        apply_overlay(config, {"rating": {"levels": 2}})
