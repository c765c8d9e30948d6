"""pyftp.records' light records (the console script's) behave as the standard
dataclasses do, for every feature pyftp uses; elsewhere pyftp's records are dataclasses.

Each shape is declared twice, once with :mod:`dataclasses` and once with
:func:`pyftp.records.record`, and the two are driven with the same calls.
"""
from __future__ import annotations

import copy
import dataclasses
import pickle
import sys

import pytest

from pyftp import records

KINDS = {"std": (dataclasses.dataclass, dataclasses.field, dataclasses.replace),
         "rec": (records.record, records.record_field, records.record_replace)}


def shapes(kind: str) -> dict[str, type]:
    dataclass, field, _ = KINDS[kind]

    @dataclass(frozen=True)
    class Point:
        """Frozen, with a default."""
        x: int
        y: int = 0

        @property
        def norm(self) -> int:
            return abs(self.x) + abs(self.y)

    @dataclass
    class Bag:
        """Mutable, with factories and a hidden field."""
        name: str
        items: list = field(default_factory=list)
        meta: dict = field(default_factory=dict, repr=False)
        count: int = field(default=3)

    @dataclass
    class Checked:
        """With a __post_init__ that validates and derives."""
        low: int
        high: int = 10

        def __post_init__(self) -> None:
            if self.low > self.high:
                raise ValueError("low above high")
            self.span = self.high - self.low

    @dataclass(frozen=True)
    class FrozenPost:
        """A frozen record setting a derived attribute in __post_init__."""
        text: str

        def __post_init__(self) -> None:
            object.__setattr__(self, "length", len(self.text))

    return {"Point": Point, "Bag": Bag, "Checked": Checked, "FrozenPost": FrozenPost}


STD, REC = shapes("std"), shapes("rec")

CALLS = [
    ("Point", (1,), {}), ("Point", (1, 2), {}), ("Point", (), {"x": 1, "y": 2}),
    ("Point", (), {}), ("Point", (1, 2, 3), {}), ("Point", (1,), {"x": 2}),
    ("Point", (1,), {"z": 2}),
    ("Bag", ("a",), {}), ("Bag", ("a", [1]), {"count": 5}), ("Bag", ("a",), {"meta": {1: 2}}),
    ("Checked", (1,), {}), ("Checked", (20,), {}), ("Checked", (1, 5), {}),
    ("FrozenPost", ("abc",), {}),
]


def outcome(classes: dict[str, type], name: str, args: tuple, kwargs: dict) -> object:
    try:
        obj = classes[name](*args, **kwargs)
    except (TypeError, ValueError) as exc:
        return type(exc).__name__
    # the class name is printed the same by both (the local classes share qualnames
    # apart from the function that made them)
    shown = repr(obj).replace(type(obj).__qualname__, name)
    return (shown, vars(obj))


@pytest.mark.parametrize("name,args,kwargs", CALLS)
def test_construction_and_repr_match_dataclasses(name, args, kwargs):
    assert outcome(REC, name, args, kwargs) == outcome(STD, name, args, kwargs)


@pytest.mark.parametrize("kind", ["std", "rec"])
def test_equality_hash_and_frozenness(kind):
    c = shapes(kind)
    a, b = c["Point"](1, 2), c["Point"](1, 2)
    assert a == b and a != c["Point"](2, 1) and hash(a) == hash(b)
    assert a != (1, 2)  # another type never equals
    assert len({a, b, c["Point"](0)}) == 2
    with pytest.raises(AttributeError):
        a.x = 5  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del a.y  # type: ignore[misc]
    bag = c["Bag"]("n")
    bag.count = 7  # mutable records can change
    with pytest.raises(TypeError):
        hash(bag)  # equal by value and mutable: unhashable
    assert c["Bag"]("n").items is not c["Bag"]("n").items  # a fresh list each time
    assert c["Point"].y == 0  # a plain default stays readable on the class
    assert c["Point"](3, -4).norm == 7


@pytest.mark.parametrize("kind", ["std", "rec"])
def test_replace_copy_and_pickle(kind):
    c = shapes(kind)
    _, _, replace = KINDS[kind]
    p = c["Point"](1, 2)
    assert replace(p, y=5) == c["Point"](1, 5) and p.y == 2
    with pytest.raises(ValueError):
        replace(c["Checked"](1, 5), low=9)  # __post_init__ runs again
    bag = c["Bag"]("n", [1])
    assert copy.deepcopy(bag) == bag and copy.copy(bag).items is bag.items


def test_records_pickle_and_match():
    point = records_point(4, 5)
    assert pickle.loads(pickle.dumps(point)) == point
    match point:
        case RecPoint(x, y):
            assert (x, y) == (4, 5)
        case _:
            pytest.fail("positional match did not bind")
    assert records.fields_of(point) == ("x", "y")
    if sys.version_info >= (3, 13):
        assert copy.replace(point, x=1) == records_point(1, 5)  # type: ignore[attr-defined]


@records.record(frozen=True)
class RecPoint:
    """At module level, so pickle can find it."""
    x: int
    y: int = 0


def records_point(x: int, y: int) -> RecPoint:
    return RecPoint(x, y)


@pytest.mark.parametrize("kind", ["std", "rec"])
def test_methods_the_class_defines_itself_are_kept(kind):
    dataclass, _, _ = KINDS[kind]

    @dataclass
    class Own:
        """Its own __init__ and __repr__."""
        a: int

        def __init__(self, text: str) -> None:
            self.a = int(text)

        def __repr__(self) -> str:
            return f"Own<{self.a}>"
    assert repr(Own("7")) == "Own<7>" and Own("7") == Own("07")


def test_bad_declarations_are_refused_as_dataclasses_refuses_them():
    for kind in ("std", "rec"):
        dataclass, field, _ = KINDS[kind]
        with pytest.raises(TypeError):
            @dataclass
            class Order:  # a field without a default after one with
                a: int = 1
                b: int  # type: ignore[misc]
        with pytest.raises(ValueError):
            @dataclass
            class Shared:  # one list for every instance
                a: list = []  # noqa: RUF012
        with pytest.raises((TypeError, ValueError)):
            field(default=1, default_factory=int)


def test_the_console_scripts_records_import_no_dataclasses():
    """The point of the light records: a process that asked for lean modules (the
    console script does) never loads dataclasses, inspect or typing."""
    import subprocess
    code = ("import sys, pyftp.hints; pyftp.hints.lean(); "
            "import pyftp.records, pyftp.sync, pyftp.protocol, pyftp.shell.runner; "
            "from pyftp.client import Entry; "
            "print(sorted({'dataclasses', 'inspect', 'typing'} & set(sys.modules)), "
            "hasattr(Entry, '__record_fields__'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[] True"


def test_elsewhere_the_public_api_keeps_dataclasses_and_evaluable_annotations():
    """A program that imports pyftp gets real dataclasses, and every annotation of the
    public API evaluates (typing.get_type_hints): what introspection tools rely on."""
    import dataclasses
    import inspect
    import typing

    import pyftp
    import pyftp.client
    import pyftp.sync
    from pyftp import Client
    from pyftp.client import Entry, TransferResult
    assert dataclasses.is_dataclass(Entry) and dataclasses.is_dataclass(TransferResult)
    assert dataclasses.asdict(Entry("a", "file", 1, 2.0))["name"] == "a"
    assert records.fields_of(Entry) == ("name", "type", "size", "mtime")
    checked = []
    for name, func in inspect.getmembers(Client, inspect.isfunction):
        if not name.startswith("_"):
            typing.get_type_hints(func)
            checked.append(name)
    for module in (pyftp.sync, pyftp.client):
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isfunction(obj) or inspect.isclass(obj) and name != "Client":
                typing.get_type_hints(obj.__init__ if inspect.isclass(obj) else obj)
                checked.append(name)
    assert len(checked) > 50


def test_the_client_tuples_are_named_tuples_without_typing():
    from pyftp.client import RangeInfo
    from pyftp.client.client import DiskUsage
    usage = DiskUsage(100, 40)
    total, free = usage
    assert (total, free) == (100, 40) == (usage.total, usage.free) and usage == (100, 40)
    assert repr(usage) == "DiskUsage(total=100, free=40)"
    info = RangeInfo(5, None)
    assert info.version is None and info._replace(version="v1").version == "v1"
    assert pickle.loads(pickle.dumps(info)) == info
    with pytest.raises(AttributeError):
        usage.total = 1  # type: ignore[misc]


def test_hints_stand_ins_do_what_typing_does_at_run_time():
    from pyftp import hints
    assert hints.cast(int, "x") == "x"
    f = hints.overload(len)
    assert f is len

    class P(hints.Protocol):
        def m(self) -> int: ...

    class Q(P, hints.Protocol):  # a protocol built on another, as digests.Digest is
        pass
    assert Q.__mro__[-1] is object
