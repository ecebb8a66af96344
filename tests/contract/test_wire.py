"""contract.wire's JSON reader: the exact refusals a payload gets (services log them, the console shows
them), and one decoder shared by threads without their payloads mixing."""

from __future__ import annotations

import sys
import threading

import pytest

from contract.errors import ContractError
from contract.wire import loads_object


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        # a BOM is refused with json.loads's own words, though the reader no longer goes through it
        (b'\xef\xbb\xbf{"a": 1}',
         "w: not UTF-8 JSON (Unexpected UTF-8 BOM (decode using utf-8-sig): line 1 column 1 (char 0))"),
        (b'{"a": 1} x', "w: not UTF-8 JSON (Extra data: line 1 column 10 (char 9))"),
        (b"{", "w: not UTF-8 JSON (Expecting property name enclosed in double quotes: line 1 column 2 "
               "(char 1))"),
        # the first key seen again is named, also when several repeat and in a nested object
        (b'{"a": 1, "b": 2, "b": 3, "a": 4}', "w: key 'b' appears twice"),
        (b'{"x": {"k": 1, "k": 2}, "y": 1, "y": 2}', "w: key 'k' appears twice"),
        (b'{"' + b"k" * 50 + b'": 1, "' + b"k" * 50 + b'": 2}', f"w: key {'k' * 40!r} appears twice"),
        (b'{"a": 1e999}', "w: number 1e999 is out of range"),
        (b'{"a": -1e999}', "w: number -1e999 is out of range"),
        (b'{"a": NaN}', "w: NaN is not a JSON number"),
        (b'{"a": -Infinity}', "w: -Infinity is not a JSON number"),
        (b'{"a": "\\uDC80"}', "w: a string holds a lone surrogate (\\ud800-\\udfff), not text"),
        (b"[1]", "w: expected a JSON object"),
    ],
)
def test_refusals_name_what_is_wrong(payload: bytes, message: str) -> None:
    with pytest.raises(ContractError) as caught:
        loads_object(payload, "w")
    assert caught.value.message == message


def test_what_is_accepted_comes_back_as_written() -> None:
    assert loads_object(b'{"a": 1.5e3, "b": -0.0, "c": [1, {"d": null}], "e": "\\ud83d\\ude00"}', "w") == {
        "a": 1500.0, "b": -0.0, "c": [1, {"d": None}], "e": "😀",
    }


def test_threads_sharing_the_reader_each_get_their_own_object() -> None:
    """The decoder object is built once for every call: many keys per object keep each call inside its
    hooks a while, so a shared state between calls would show as a mixed or lost key."""
    failures: list[str] = []

    def read(index: int) -> None:
        members = ", ".join(f'"k{i}": {{"t": {index}, "f": {index}.5}}' for i in range(40))
        payload = ("{" + members + "}").encode()
        for _ in range(200):
            data = loads_object(payload, "w")
            if data != {f"k{i}": {"t": index, "f": index + 0.5} for i in range(40)}:
                failures.append(f"thread {index}")
                return

    threads = [threading.Thread(target=read, args=(n,)) for n in range(4)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch inside the decoder's hooks, not only between calls
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert failures == []
