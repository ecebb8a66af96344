"""docs/mqtt.md and contract/ cannot drift: every JSON example of the page parses with the package, and
every message type and event kind of the package has an example on the page."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from contract.events import EVENT_KINDS, UnknownPayload, payload_from_data
from contract.registry import MESSAGE_TYPES

DOC = Path(__file__).resolve().parents[2] / "docs" / "mqtt.md"


def examples() -> list[dict[str, Any]]:
    """Every JSON object in the page's ```json blocks (a block may hold several, one after another)."""
    found: list[dict[str, Any]] = []
    decoder = json.JSONDecoder()
    for block in re.findall(r"```json\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S):
        text = block.strip()
        while text:
            obj, end = decoder.raw_decode(text)
            assert isinstance(obj, dict), obj
            found.append(obj)
            text = text[end:].strip()
    return found


def test_every_example_parses_with_the_contract() -> None:
    parsed = 0
    for example in examples():
        if "schema" in example:
            cls = MESSAGE_TYPES[example["schema"]]
            message = cls.parse(json.dumps(example, ensure_ascii=False).encode())  # the real bytes path
            # what the package builds from it is the same message again
            assert cls.from_data(message.to_data()) == message
        else:
            assert set(example) == {"kind", "payload"}, example
            payload = payload_from_data(example["kind"], example["payload"])
            assert not isinstance(payload, UnknownPayload), example["kind"]
        parsed += 1
    assert parsed >= 20


def test_every_message_type_and_event_kind_has_an_example() -> None:
    found = examples()
    schemas = {e["schema"] for e in found if "schema" in e}
    kinds = {e["kind"] for e in found if "kind" in e}
    assert set(MESSAGE_TYPES) - schemas == set(), "message types without an example in docs/mqtt.md"
    assert EVENT_KINDS - kinds == set(), "event kinds without an example in docs/mqtt.md"
