"""Record classes (``@dataclass``, ``field``, ``replace``): the standard
:mod:`dataclasses`, or, in the ``pyftp`` console script, light ones of the same
behaviour.

Importing :mod:`dataclasses` costs a process about 15 ms (it imports :mod:`inspect`,
which imports ``ast``, ``dis`` and ``tokenize``), and each class it decorates about
0.3 ms more (it compiles new methods): much of a one-shot ``pyftp`` run. So when
:data:`pyftp.hints.LEAN` is set (the console script sets it first thing), pyftp's
records are made by :func:`record`: the part of dataclasses pyftp uses (an
``__init__`` with defaults and default factories, ``__post_init__``, ``frozen``,
``__repr__`` without ``repr=False`` fields, ``__eq__``, ``__hash__`` for frozen
records, :func:`record_replace`), with methods shared by every record instead of
compiled per class. Everywhere else (a library user, the tests, the server) they are
real dataclasses: ``dataclasses.asdict``, ``fields`` and ``get_type_hints`` work on
them as before. Type checkers always see :mod:`dataclasses`.

Import rule: the standard library and :mod:`pyftp.hints`; anything in pyftp may import it.
"""
from __future__ import annotations

from .hints import LEAN, TYPE_CHECKING

if TYPE_CHECKING or not LEAN:
    from typing import Any

__all__ = ["dataclass", "field", "replace", "fields_of", "record", "record_field",
           "record_replace", "FrozenRecordError"]


class FrozenRecordError(AttributeError):
    """A field of a frozen record was assigned or deleted."""


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


_MISSING: Any = _Missing()


class _Field:
    """What ``field()`` declares: a default or a factory, and whether repr shows it."""

    __slots__ = ("name", "default", "factory", "repr")

    def __init__(self, default: Any = _MISSING, factory: Any = _MISSING,
                 repr: bool = True) -> None:
        self.name = ""
        self.default = default
        self.factory = factory
        self.repr = repr


def record_field(*, default: Any = _MISSING, default_factory: Any = _MISSING,
                 repr: bool = True) -> Any:
    """:func:`dataclasses.field` for :func:`record` classes."""
    if default is not _MISSING and default_factory is not _MISSING:
        raise ValueError("cannot specify both default and default_factory")
    return _Field(default, default_factory, repr)


def _is_classvar(annotation: object) -> bool:
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    return isinstance(text, str) and (text.startswith("ClassVar") or
                                      text.startswith("typing.ClassVar"))


def _declare(cls: type) -> tuple[_Field, ...]:
    """The record's fields in order: the bases' first, then its own annotations."""
    found: dict[str, _Field] = {}
    for base in reversed(cls.__mro__[1:]):
        for f in base.__dict__.get("__record_fields__", ()):
            found[f.name] = f
    for name, annotation in cls.__dict__.get("__annotations__", {}).items():
        if _is_classvar(annotation):
            continue
        value = cls.__dict__.get(name, _MISSING)
        f = value if isinstance(value, _Field) else _Field(value)
        f.name = name
        if isinstance(value, _Field):  # a default stays readable on the class, as it was
            if f.default is _MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, f.default)
        if isinstance(f.default, (list, dict, set)):
            raise ValueError(f"mutable default {type(f.default)} for field {name} is not "
                             "allowed: use default_factory")
        found[name] = f
    fields = tuple(found.values())
    seen_default = False
    for f in fields:
        has_default = f.default is not _MISSING or f.factory is not _MISSING
        if seen_default and not has_default:
            raise TypeError(f"non-default argument {f.name!r} follows default argument")
        seen_default = seen_default or has_default
    return fields


def _init(self: Any, *args: Any, **kwargs: Any) -> None:
    cls = type(self)
    if not kwargs and len(args) == len(cls.__record_names__):  # every field given in order
        self.__dict__.update(zip(cls.__record_names__, args))
        if cls.__record_post__:
            self.__post_init__()
        return
    fields = cls.__record_fields__
    if len(args) > len(fields):
        raise TypeError(f"{type(self).__name__}() takes {len(fields)} positional arguments "
                        f"but {len(args)} were given")
    put = object.__setattr__
    for i, f in enumerate(fields):
        if i < len(args):
            if f.name in kwargs:
                raise TypeError(f"{type(self).__name__}() got multiple values for argument "
                                f"{f.name!r}")
            value = args[i]
        elif f.name in kwargs:
            value = kwargs.pop(f.name)
        elif f.default is not _MISSING:
            value = f.default
        elif f.factory is not _MISSING:
            value = f.factory()
        else:
            raise TypeError(f"{type(self).__name__}() missing required argument: {f.name!r}")
        put(self, f.name, value)
    if kwargs:
        raise TypeError(f"{type(self).__name__}() got an unexpected keyword argument "
                        f"{next(iter(kwargs))!r}")
    post = getattr(self, "__post_init__", None)
    if post is not None:
        post()


def _values(self: Any) -> tuple[Any, ...]:
    return tuple(getattr(self, f.name) for f in type(self).__record_fields__)


def _repr(self: Any) -> str:
    shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}"
                      for f in type(self).__record_fields__ if f.repr)
    return f"{type(self).__qualname__}({shown})"


def _eq(self: Any, other: object) -> Any:
    if other.__class__ is not self.__class__:
        return NotImplemented
    return _values(self) == _values(other)


def _hash(self: Any) -> int:
    return hash(_values(self))


def _frozen_setattr(self: Any, name: str, value: object) -> None:
    raise FrozenRecordError(f"cannot assign to field {name!r}")


def _frozen_delattr(self: Any, name: str) -> None:
    raise FrozenRecordError(f"cannot delete field {name!r}")


def _replace(self: Any, **changes: Any) -> Any:
    for f in type(self).__record_fields__:
        changes.setdefault(f.name, getattr(self, f.name))
    return type(self)(**changes)


def record(cls: Any = None, *, frozen: bool = False) -> Any:
    """:func:`dataclasses.dataclass`, the part pyftp uses (see the module's doc)."""
    def wrap(cls: Any) -> Any:
        fields = _declare(cls)
        cls.__record_fields__ = fields
        cls.__record_names__ = tuple(f.name for f in fields)
        cls.__record_post__ = hasattr(cls, "__post_init__")
        setattr(cls, "__match_args__", tuple(f.name for f in fields))
        for name, method in (("__init__", _init), ("__repr__", _repr), ("__eq__", _eq),
                             ("__replace__", _replace)):
            if name not in cls.__dict__:  # what the class defines itself stays, as there
                setattr(cls, name, method)
        if frozen:
            cls.__setattr__ = _frozen_setattr
            cls.__delattr__ = _frozen_delattr
            cls.__hash__ = _hash
        elif "__hash__" not in cls.__dict__ or cls.__dict__["__hash__"] is None:
            cls.__hash__ = None  # equal by value and mutable: not hashable, as a dataclass
        return cls
    return wrap if cls is None else wrap(cls)


def record_replace(obj: Any, /, **changes: Any) -> Any:
    """:func:`dataclasses.replace` for :func:`record` classes."""
    return obj.__replace__(**changes)


def fields_of(obj_or_cls: Any) -> tuple[str, ...]:
    """The field names of a record (or record class), in declaration order."""
    if hasattr(obj_or_cls, "__record_fields__"):
        return tuple(f.name for f in obj_or_cls.__record_fields__)
    import dataclasses
    return tuple(f.name for f in dataclasses.fields(obj_or_cls))


if TYPE_CHECKING or not LEAN:
    from dataclasses import dataclass as dataclass
    from dataclasses import field as field
    from dataclasses import replace as replace
else:
    dataclass = record
    field = record_field
    replace = record_replace
