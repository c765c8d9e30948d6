"""Listings: the table of ``ls``/``lls`` (short in columns, or long with sizes and times),
and :class:`Trimmed`, which keeps a wide table from wrapping at a terminal.

Import rule: :mod:`pyftp.ui.text` and :mod:`pyftp.ui.lite`; rich only lazily, when a
rich console draws a listing (so a listing to a pipe never loads it). Entries are
duck-typed (anything with ``name``, ``type``, ``size``, ``mtime``), so the client is
never imported here.
"""
from __future__ import annotations

from ..hints import TYPE_CHECKING, LEAN, Protocol

from .lite import Line, Rows, Stack
from .text import format_mtime, human_size, safe_name

if TYPE_CHECKING or not LEAN:  # names for annotations; see pyftp.hints
    from typing import Any, Iterable

if TYPE_CHECKING:  # rich is imported lazily at run time (see above)
    from rich.columns import Columns
    from rich.console import Console, ConsoleOptions, RenderResult


class EntryLike(Protocol):
    """What a listing needs to know about one file or folder (read only, so frozen
    dataclasses such as :class:`pyftp.client.Entry` qualify)."""

    @property
    def name(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def mtime(self) -> float: ...


class Trimmed:
    """A renderable with the trailing spaces of each line removed.

    rich pads every table cell to its column's width; on a terminal that is invisible,
    but in a pipe or a log it leaves trailing blanks that break ``cut`` and diff.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        from rich.segment import Segment
        for line in console.render_lines(self.inner, options, pad=False):
            while line and not line[-1].control and not line[-1].text.rstrip(" "):
                line = line[:-1]
            if line and not line[-1].control:
                last = line[-1]
                line = [*line[:-1], Segment(last.text.rstrip(" "), last.style)]
            yield from line
            yield Segment.line()


def _name_text(entry: EntryLike) -> Line:
    name = safe_name(entry.name)
    if entry.type == "dir":
        return Line().append(name + "/", "bold blue")
    return Line(name)


class _Names:
    """A short listing at a terminal: names in columns, as wide as the screen allows."""

    def __init__(self, names: list[Line]) -> None:
        self.names = names

    def plain_lines(self) -> list[str]:
        return [n.plain for n in self.names]

    def __rich__(self) -> Columns:
        from rich.columns import Columns
        return Columns([n.__rich__() for n in self.names], padding=(0, 2))


def listing(entries: Iterable[EntryLike], *, long: bool = False,
            plain: bool = False) -> Line | Stack | _Names:
    """Render a directory listing.

    Short form: names in columns (one per line when ``plain``, i.e. not a terminal,
    so ``pyftp -c ls | wc -l`` counts files). Long form (``ls -l``): a table of name,
    size and modification time with a one-line summary. Folders end in ``/`` and are
    coloured, in both forms.
    """
    items = list(entries)
    if not long:
        names = [_name_text(e) for e in items]
        if plain:
            return Stack(*names) if names else Line("")
        return _Names(names) if names else Line("(empty)", style="dim")
    table = Rows([("Name", "left", None), ("Size", "right", None),
                  ("Modified", "left", "dim" if not plain else None)],
                 show_header=True, header_style="dim")
    folders = files = total = 0
    for e in items:
        if e.type == "dir":
            folders += 1
            size = "-"
        else:
            files += 1
            total += e.size
            size = human_size(e.size)
        table.add_row(_name_text(e), size, format_mtime(e.mtime))
    summary = Line(f"{folders} folder{'s' * (folders != 1)}, {files} file{'s' * (files != 1)}, "
                   f"{human_size(total)}", style="dim")
    return Stack(table, summary)
