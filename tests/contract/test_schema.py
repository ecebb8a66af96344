"""contract.schema: what each kind of field accepts and the exact words of each refusal.

The words matter: the console shows them (fleet/web/contract_text.py reads them back), a technician
fixes a kiosk's file by them, and which check speaks first decides what is reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import pytest

from contract.errors import SchemaError
from contract.schema import DEFAULT_MAX_ITEMS, DEFAULT_MAX_LEN, parse_dataclass, to_data


@dataclass(frozen=True)
class Port:
    port: int = field(metadata={"min": 1, "max": 65535})
    host: str = field(default="localhost", metadata={"pattern": r"[a-z.]{1,20}", "pattern_hint": "a host"})


@dataclass(frozen=True)
class Shape:
    name: str = field(metadata={"max_len": 5})
    level: Literal["low", "high", 3]
    ratio: float = field(default=0.0, metadata={"min": 0, "max": 1})
    low_only: float = field(default=0.0, metadata={"min": -2})
    high_only: int = field(default=0, metadata={"max": 9})
    on: bool = False
    note: str = field(default="", metadata={"text": True, "max_len": 50})
    at: str | None = field(default=None, metadata={"time": True, "max_len": 40})
    code: str | None = field(default=None, metadata={"pattern": r"[A-Z]{2}"})
    where: Path | None = None
    either: int | str | None = field(default=None, metadata={"max": 5, "max_len": 3})
    inner: Port | None = None
    ports: list[Port] = field(default_factory=list, metadata={"max_items": 2})
    tags: tuple[str, ...] = ()
    by_name: dict[str, Port] = field(default_factory=dict, metadata={"max_items": 2})
    counts: dict[str, int] = field(default_factory=dict, metadata={"key_pattern": r"[a-z]+"})
    extra: dict[str, Any] = field(default_factory=dict)
    anything: Any = None


@dataclass(frozen=True)
class Checked:
    low: int
    high: int

    def __post_init__(self) -> None:
        if self.low > self.high:
            raise ValueError("low: above high")


@dataclass(frozen=True)
class Tree:
    label: str
    children: list[Tree] = field(default_factory=list)


def _refusal(data: Any, cls: type = Shape, path: str = "shape", *, lenient: bool = False) -> str:
    with pytest.raises(SchemaError) as caught:
        parse_dataclass(cls, data, path, lenient=lenient)
    return caught.value.message


def test_a_full_table_is_read_into_the_types() -> None:
    shape = parse_dataclass(Shape, {
        "name": "abc", "level": 3, "ratio": 1, "on": True, "note": "a\nb", "at": "2026-11-23T10:00:00Z",
        "code": "AB", "where": "var/x", "either": "abc", "inner": {"port": 80},
        "ports": [{"port": 1, "host": "a.b"}], "tags": ["x", "y"], "by_name": {"web": {"port": 443}},
        "counts": {"a": 1}, "extra": {"k": [1, {"n": None}]}, "anything": [1, "two"],
    })
    assert shape == Shape(
        "abc", 3, 1.0, on=True, note="a\nb", at="2026-11-23T10:00:00Z", code="AB", where=Path("var/x"),
        either="abc", inner=Port(80), ports=[Port(1, "a.b")], tags=("x", "y"), by_name={"web": Port(443)},
        counts={"a": 1}, extra={"k": [1, {"n": None}]}, anything=[1, "two"],
    )
    assert type(shape.ratio) is float and type(shape.tags) is tuple
    assert parse_dataclass(Shape, {"name": "a", "level": "low", "either": 5, "inner": None}).either == 5


#: a table Shape accepts, to change one key of
OK = {"name": "a", "level": "low"}
SHAPE_KEYS = (
    "anything, at, by_name, code, counts, either, extra, high_only, inner, level, low_only, name, note, on, "
    "ports, ratio, tags, where"
)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({**OK, "zz": 1, "yy": 2}, f"shape.yy: unknown key; expected one of: {SHAPE_KEYS}"),
        # an unknown key is reported before a missing one
        ({"level": "low", "zz": 1}, f"shape.zz: unknown key; expected one of: {SHAPE_KEYS}"),
        ({"level": "low"}, "shape.name: missing; expected a string"),
        ({"name": "a"}, "shape.level: missing; expected one of 'low', 'high', 3"),
        ({"name": 5, "level": "x"}, "shape.name: expected a string, got 5"),  # fields in declared order
        ({"name": "abcdef", "level": "low"}, "shape.name: at most 5 characters, got 6"),
        ({"name": "a", "level": "mid"}, "shape.level: expected one of 'low', 'high', 3, got 'mid'"),
        ({"name": "a", "level": 3.0}, "shape.level: expected one of 'low', 'high', 3, got 3.0"),
        ({**OK, "ratio": 1.5}, "shape.ratio: expected a number between 0 and 1, got 1.5"),
        ({**OK, "ratio": True}, "shape.ratio: expected a number, got True"),
        ({**OK, "ratio": float("nan")}, "shape.ratio: expected a number, got nan"),
        ({**OK, "ratio": 10**400}, f"shape.ratio: expected a number, got {str(10**400)[:57]}..."),
        ({**OK, "low_only": -3}, "shape.low_only: expected a number at least -2, got -3"),
        ({**OK, "high_only": 10}, "shape.high_only: expected a number at most 9, got 10"),
        ({**OK, "high_only": 2.0}, "shape.high_only: expected an integer, got 2.0"),
        ({**OK, "high_only": False}, "shape.high_only: expected an integer, got False"),
        ({**OK, "on": 1}, "shape.on: expected true or false, got 1"),
        ({**OK, "note": "a\u202eb\x00"},
         "shape.note: control or format characters are not allowed (U+202E, U+0000)"),
        ({**OK, "at": "2026-11-23T10:00:00"},
         "shape.at: the time needs a zone (UTC: ...Z or +00:00)"),
        ({**OK, "at": "soon"}, "shape.at: expected an ISO 8601 time, got 'soon'"),
        # X | None: X's own refusal, its limits included
        ({**OK, "code": "abc"}, "shape.code: expected text matching [A-Z]{2}, got 'abc'"),
        ({**OK, "code": 7}, "shape.code: expected a string, got 7"),
        ({**OK, "where": ""}, "shape.where: expected a path, got ''"),
        ({**OK, "where": "a\x00"}, "shape.where: expected a path, got 'a\\x00'"),
        # a union of several: each option in turn, then one refusal naming them all
        ({**OK, "either": 6}, "shape.either: expected an integer or a string, got 6"),
        ({**OK, "either": "abcd"}, "shape.either: expected an integer or a string, got 'abcd'"),
        # nested tables name the deepest key
        ({**OK, "inner": {"port": 0}}, "shape.inner.port: expected a number between 1 and 65535, got 0"),
        ({**OK, "inner": {"prot": 5}}, "shape.inner.prot: unknown key; expected one of: host, port"),
        ({**OK, "inner": {}}, "shape.inner.port: missing; expected an integer"),
        ({**OK, "inner": [1]}, "shape.inner: expected a table, got [1]"),
        ({**OK, "ports": [{"port": 1}, {"port": 2, "host": "A"}]},
         "shape.ports[1].host: expected a host, got 'A'"),
        ({**OK, "ports": [{}, {}, {}]}, "shape.ports: at most 2 items, got 3"),
        ({**OK, "ports": {"port": 1}}, "shape.ports: expected a list of a table, got {'port': 1}"),
        ({**OK, "tags": ["x", 1]}, "shape.tags[1]: expected a string, got 1"),
        ({**OK, "tags": "xy"}, "shape.tags: expected a list of a string, got 'xy'"),
        ({**OK, "by_name": {"web": {"port": "80"}}},
         "shape.by_name.web.port: expected an integer, got '80'"),
        ({**OK, "by_name": {"a": {}, "b": {}, "c": {}}},
         "shape.by_name: at most 2 entries, got 3"),
        ({**OK, "by_name": []}, "shape.by_name: expected a table of a table, got []"),
        # a table's key is checked before its value
        ({**OK, "by_name": {"k" * 65: {"port": "bad"}}},
         "shape.by_name key: at most 64 characters, got 65"),
        ({**OK, "counts": {"ok": 1, "Bad": "x"}},
         "shape.counts key: expected text matching [a-z]+, got 'Bad'"),
        ({**OK, "counts": {"ok": "x"}}, "shape.counts.ok: expected an integer, got 'x'"),
        ({**OK, "extra": {1: "x"}}, "shape.extra key: expected a string, got 1"),
        ({**OK, "extra": {"x" * 70: 1}}, "shape.extra key: at most 64 characters, got 70"),
        ({**OK, "extra": {f"k{i}": i for i in range(DEFAULT_MAX_ITEMS + 1)}},
         f"shape.extra: at most {DEFAULT_MAX_ITEMS} entries, got {DEFAULT_MAX_ITEMS + 1}"),
        ({**OK, "note": "x" * 51}, "shape.note: at most 50 characters, got 51"),
        ({**OK, "code": "x" * (DEFAULT_MAX_LEN + 1)},
         f"shape.code: at most {DEFAULT_MAX_LEN} characters, got {DEFAULT_MAX_LEN + 1}"),
        ("name=a", "shape: expected a table, got 'name=a'"),
    ],
)
def test_each_refusal_names_the_key_and_what_was_expected(data: Any, message: str) -> None:
    assert _refusal(data) == message


def test_a_long_value_is_shown_cut() -> None:
    shown = "'" + "x" * 56 + "..."  # 60 characters of the repr at most
    expected = f"shape.level: expected one of 'low', 'high', 3, got {shown}"
    assert _refusal({**OK, "level": "x" * 100}) == expected


def test_lenient_ignores_unknown_keys_at_every_depth_and_strict_refuses_them() -> None:
    data = {**OK, "new": 1, "inner": {"port": 5, "newer": 2}, "ports": [{"port": 6, "x": 0}]}
    shape = parse_dataclass(Shape, data, lenient=True)
    assert (shape.inner, shape.ports) == (Port(5), [Port(6)])
    assert _refusal(data, path="") == f"new: unknown key; expected one of: {SHAPE_KEYS}"
    assert _refusal({"port": 5, "newer": 2}, Port, "s") == "s.newer: unknown key; expected one of: host, port"
    # the same class read strictly after leniently (and back) keeps each its own way
    assert parse_dataclass(Port, {"port": 5, "newer": 2}, lenient=True) == Port(5)
    assert _refusal({"port": 5, "newer": 2}, Port, "") == "newer: unknown key; expected one of: host, port"
    # lenient still checks the values of the keys it knows
    assert _refusal({**OK, "inner": {"port": -1, "newer": 2}}, lenient=True) == (
        "shape.inner.port: expected a number between 1 and 65535, got -1"
    )


def test_the_top_level_is_named_when_there_is_no_path() -> None:
    assert _refusal([1], Port, "") == "(top level): expected a table, got [1]"
    assert _refusal({"port": 70000}, Port, "") == "port: expected a number between 1 and 65535, got 70000"
    assert _refusal({"low": 2, "high": 1}, Checked, "") == "(top level): low: above high"
    assert _refusal({"low": 2, "high": 1}, Checked, "range") == "range: low: above high"


def test_a_class_may_contain_itself() -> None:
    tree = parse_dataclass(Tree, {"label": "a", "children": [{"label": "b", "children": [{"label": "c"}]}]})
    assert tree == Tree("a", [Tree("b", [Tree("c")])])
    assert _refusal({"label": "a", "children": [{"label": "b", "children": [{"label": 3}]}]}, Tree, "t") == (
        "t.children[0].children[0].label: expected a string, got 3"
    )


@dataclass(frozen=True)
class Unresolved:
    thing: NoSuchType  # type: ignore[name-defined]  # noqa: F821


@dataclass(frozen=True)
class HoldsUnresolved:
    name: str
    inner: Unresolved | None = None


def test_a_nested_class_whose_hints_do_not_resolve_fails_only_when_a_value_comes() -> None:
    assert parse_dataclass(HoldsUnresolved, {"name": "x"}) == HoldsUnresolved("x")
    assert _refusal({"name": "x", "inner": 3}, HoldsUnresolved, "h") == "h.inner: expected a table, got 3"
    with pytest.raises(NameError):
        parse_dataclass(HoldsUnresolved, {"name": "x", "inner": {"thing": 1}})


def test_a_field_type_the_schema_cannot_read_is_a_bug_raised_only_when_a_value_comes() -> None:
    @dataclass(frozen=True)
    class Odd:
        name: str
        when: complex = 0j

    assert parse_dataclass(Odd, {"name": "x"}) == Odd("x")
    with pytest.raises(TypeError, match=r"odd\.when: unsupported field type"):
        parse_dataclass(Odd, {"name": "x", "when": 1}, "odd")
    with pytest.raises(TypeError, match="is not a dataclass"):
        parse_dataclass(Path, {})
    # data that is not a table is refused before the class is looked at
    assert _refusal(3, Path, "p") == "p: expected a table, got 3"


@dataclass(frozen=True)
class Stamped:
    """Built by its own __init__, which the reader must call (it does more than store the fields)."""

    label: str
    tags: list[str] = field(default_factory=list)

    def __init__(self, label: str, tags: list[str] | None = None) -> None:
        object.__setattr__(self, "label", label.upper())
        object.__setattr__(self, "tags", tags or ["default"])


@dataclass(frozen=True, slots=True)
class Slotted:
    label: str
    tags: list[str] = field(default_factory=list)


@dataclass
class Mutable:
    label: str
    tags: list[str] = field(default_factory=list)

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value.upper() if name == "label" else value)


def test_each_kind_of_dataclass_is_built_as_its_init_builds_it() -> None:
    """Frozen dataclasses with the generated __init__ are filled in directly; any other runs its own."""
    first, second = parse_dataclass(Shape, OK), parse_dataclass(Shape, OK)
    assert first == second == Shape("a", "low")
    assert hash(parse_dataclass(Port, {"port": 1})) == hash(Port(1))
    assert list(vars(first)) == list(vars(Shape("a", "low")))  # every field, in the declared order
    assert first.ports is not second.ports  # a default factory's value is new for each instance
    assert parse_dataclass(Stamped, {"label": "a"}) == Stamped("A", ["default"])
    assert parse_dataclass(Slotted, {"label": "a"}) == Slotted("a", [])
    assert parse_dataclass(Mutable, {"label": "a", "tags": ["t"]}) == Mutable("A", ["t"])
    assert _refusal({"low": 3, "high": 2}, Checked, "c") == "c: low: above high"  # __post_init__ runs


def _no_default() -> str:
    raise ValueError("stamp: no clock")


@dataclass(frozen=True)
class Clocked:
    label: str
    stamp: str = field(default_factory=_no_default)


def test_a_default_factory_refusing_is_worded_like_a_cross_field_check() -> None:
    assert parse_dataclass(Clocked, {"label": "a", "stamp": "s"}) == Clocked("a", "s")
    assert _refusal({"label": "a"}, Clocked, "c") == "c: stamp: no clock"


@dataclass(frozen=True)
class Sparse:
    OMIT_NONE: ClassVar[bool] = True
    kept: str | None = field(default="x")
    gone: int | None = None
    required: str | None = field(default=None)
    listed: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Explicit:
    gone: int | None = None
    where: Path = Path("a/b")
    ports: tuple[Port, ...] = ()
    table: dict[str, Any] = field(default_factory=dict)


def test_to_data_is_plain_data_and_leaves_out_only_what_omit_none_says() -> None:
    assert to_data(Sparse(kept=None)) == {"kept": None, "listed": []}
    assert to_data(Sparse(gone=3, required="r", listed=["a"])) == {"kept": "x", "gone": 3, "required": "r",
                                                                   "listed": ["a"]}
    assert to_data(Explicit(ports=(Port(1),), table={"k": [Port(2, "h")]})) == {
        "gone": None, "where": "a/b", "ports": [{"port": 1, "host": "localhost"}],
        "table": {"k": [{"port": 2, "host": "h"}]},
    }
    assert to_data([Path("p"), (1, None), {"a": True}]) == ["p", [1, None], {"a": True}]
    assert to_data(Port) is Port  # a class is not an instance to write out
    data = {"name": "a", "level": "high", "inner": {"port": 9, "host": "h"}, "tags": ["t"], "where": "w"}
    assert parse_dataclass(Shape, to_data(parse_dataclass(Shape, data))) == parse_dataclass(Shape, data)
