"""Type hints at no run-time cost in the ``pyftp`` console script, and as usual
everywhere else.

A one-shot ``pyftp`` process pays for every module it loads. :mod:`typing` is one of
the largest in the standard library, and it compiles each string annotation of a
``NamedTuple`` or a ``TypeVar`` bound (``from __future__ import annotations`` makes
them all strings), which first builds the whole ``ast`` type table: together about a
sixth of such a process. So the client's modules import their typing names like this::

    from ..hints import TYPE_CHECKING, LEAN
    if TYPE_CHECKING or not LEAN:
        from typing import Any, Sequence

In a program that imports pyftp (a library user, the tests, the server) :data:`LEAN` is
False: typing loads, annotations evaluate (``typing.get_type_hints``, pdoc) and records
are real dataclasses (:mod:`pyftp.records`). The console script calls :func:`lean`
before it imports anything else of pyftp: then neither loads.

The few names used outside annotations have stand-ins that need no typing: ``cast``
returns its value, ``overload`` returns the function (the last definition wins, as with
typing), ``Protocol`` is a plain base class, and :func:`named_tuple` makes a
:func:`collections.namedtuple` class. Callback aliases are ``collections.abc.Callable``.

Import rule: the standard library only; anything in pyftp may import it.
"""
from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any
    from typing import Protocol as Protocol
    from typing import cast as cast
    from typing import overload as overload

__all__ = ["TYPE_CHECKING", "LEAN", "lean", "cast", "overload", "Protocol", "named_tuple"]

#: True in the console script's process (see :func:`lean`): modules imported from then
#: on load no typing names for their annotations
LEAN = False


def lean() -> None:
    """Make the pyftp modules imported from now on skip what only annotations and
    introspection need (typing, dataclasses). For a short process that imports pyftp
    to run one job: the ``pyftp`` console script."""
    global LEAN
    LEAN = True


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
