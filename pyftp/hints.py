"""Type hints at no run-time cost: the few names of :mod:`typing` that modules on the
client's path use outside annotations (``cast``, ``overload``, ``Protocol``,
``NamedTuple``).

A one-shot ``pyftp`` process pays for every module it loads. :mod:`typing` is one of
the largest in the standard library, and it compiles each string annotation of a
``NamedTuple`` or a ``TypeVar`` bound (``from __future__ import annotations`` makes
them all strings), which first builds the whole ``ast`` type table: together about a
sixth of such a process. So the client's modules import typing only for type checkers::

    from ..hints import TYPE_CHECKING, cast
    if TYPE_CHECKING:
        from typing import Callable
    Callback: TypeAlias = "Callable[[int], object]"

Type checkers see the real :mod:`typing` names (the ``TYPE_CHECKING`` branch). At run
time ``cast`` returns its value, ``overload`` is never called on an implementation that
matters (the last definition wins, as with typing), ``Protocol`` is a plain base class,
and :func:`named_tuple` makes a :func:`collections.namedtuple` class.

Import rule: the standard library only; anything in pyftp may import it.
"""
from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any
    from typing import Protocol as Protocol
    from typing import cast as cast
    from typing import overload as overload

__all__ = ["TYPE_CHECKING", "cast", "overload", "Protocol", "named_tuple"]


def named_tuple(name: str, fields: str, *, defaults: tuple[object, ...] = (),
                module: str | None = None) -> Any:
    """A tuple class with named ``fields`` (space-separated), for the base of a class
    whose typed twin type checkers see (see :class:`pyftp.client.DiskUsage`)."""
    from collections import namedtuple
    return namedtuple(name, fields, defaults=defaults, module=module)


if not TYPE_CHECKING:
    def cast(_type: object, value: Any) -> Any:
        return value

    def overload(func: Any) -> Any:
        return func

    class Protocol:
        """What typing.Protocol is at run time for pyftp: a base with nothing in it."""

        __slots__ = ()
