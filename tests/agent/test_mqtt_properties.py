"""``common.mqtt._LeanProperties``: the properties of every packet paho receives, read as paho's own
``Properties`` reads them, without rebuilding paho's tables per packet."""

from __future__ import annotations

from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt import _packet as paho_packet
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import MQTTException, Properties, VariableByteIntegers

from common.mqtt import _LeanProperties

TOPIC = "motcua/v1/hcm-ben-thanh/kiosk-a/cmd/req"

#: property sets a PUBLISH may carry, the ones our services use first
PUBLISH_SETS: list[dict[str, Any]] = [
    {},
    {"ResponseTopic": "motcua/v1/hcm-ben-thanh/_center/fleet/res", "CorrelationData": b"\x00\x01req-7"},
    {"MessageExpiryInterval": 600, "PayloadFormatIndicator": 1, "ContentType": "application/json"},
    {"UserProperty": [("a", "1"), ("b", "Đã gửi")], "SubscriptionIdentifier": [3]},
]


def _packed(values: dict[str, Any]) -> bytes:
    props = Properties(PacketTypes.PUBLISH)
    for name, value in values.items():
        setattr(props, name, value)
    return bytes(props.pack())


def _read(kind: type[Properties], packed: bytes) -> Properties:
    props = kind(PacketTypes.PUBLISH)
    props.unpack(packed)
    return props


def test_paho_builds_the_properties_it_receives_as_lean_ones() -> None:
    """Installed where paho makes them (``paho.mqtt._packet``, paho-mqtt 2.2.0): a paho release that
    builds them elsewhere must fail here, not go slow unnoticed."""
    assert paho_packet.Properties is _LeanProperties
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    client._sock = object()  # type: ignore[assignment]  # queued only
    sent = Properties(PacketTypes.PUBLISH)
    sent.ResponseTopic = "motcua/v1/hcm-ben-thanh/_center/fleet/res"
    client._send_publish(7, TOPIC.encode(), b"{}", qos=1, retain=False, dup=False, properties=sent)
    packet = bytes(client._out_packet[0]["packet"])
    client._sock = None
    header, rest = packet[0], packet[1:]
    _, length_bytes = VariableByteIntegers.decode(rest)
    received = paho_packet.decode_publish(header, rest[length_bytes:], MQTTProtocolVersion.MQTTv5)
    assert isinstance(received.properties, _LeanProperties)
    assert received.properties.json() == sent.json()
    assert received.mid == 7 and received.payload == b"{}"


@pytest.mark.parametrize("values", PUBLISH_SETS, ids=lambda v: ",".join(v) or "none")
def test_lean_properties_read_what_paho_reads(values: dict[str, Any]) -> None:
    packed = _packed(values)
    paho_read, lean_read = _read(Properties, packed), _read(_LeanProperties, packed)
    assert lean_read.json() == paho_read.json()
    assert str(lean_read) == str(paho_read)
    assert lean_read.isEmpty() == paho_read.isEmpty() == (not values)
    assert bytes(lean_read.pack()) == bytes(paho_read.pack()) == packed
    for name, value in values.items():
        assert getattr(lean_read, name) == value


def test_a_lean_object_read_again_keeps_nothing_of_the_packet_before() -> None:
    props = _read(_LeanProperties, _packed(PUBLISH_SETS[1]))
    props.unpack(_packed({}))
    assert props.isEmpty() and props.json() == {}
    assert not hasattr(props, "ResponseTopic")
    props.unpack(_packed(PUBLISH_SETS[2]))
    assert props.json() == _read(Properties, _packed(PUBLISH_SETS[2])).json()


def test_lean_properties_refuse_what_paho_refuses() -> None:
    """paho's checks are kept: a property twice that may appear once, an unknown name, one that does
    not apply to the packet type."""
    once = _packed({"MessageExpiryInterval": 5})
    _, length_bytes = VariableByteIntegers.decode(once)
    body = once[length_bytes:]
    twice = VariableByteIntegers.encode(2 * len(body)) + body + body
    for kind in (Properties, _LeanProperties):
        with pytest.raises(MQTTException):
            _read(kind, twice)
        props = kind(PacketTypes.PUBLISH)
        with pytest.raises(MQTTException):
            props.NoSuchProperty = 1
        with pytest.raises(MQTTException):
            props.SessionExpiryInterval = 10  # a CONNECT's, not a PUBLISH's
