"""Results without rich: styled lines, simple tables and a console that writes them as
plain text, for scripts whose stdout is a pipe.

A one-shot ``pyftp HOST -c ls > out`` has nothing to colour and nothing to redraw, so
importing and running rich there only costs time (tens of milliseconds per thousand-line
listing). The renderables here know their plain text; each also has ``__rich__``, so a
rich console (the interactive shell, the tests) draws them with their styles. The plain
text is what rich writes for them when the output is not a terminal: columns separated
by two spaces, trailing blanks trimmed, no wrapping.

Import rule: the standard library only; rich is imported lazily, when a rich console
asks for a renderable, or :class:`PlainConsole` meets something that is not one of
these.
"""
from __future__ import annotations

import unicodedata

from ..hints import TYPE_CHECKING, LEAN, Protocol

if TYPE_CHECKING or not LEAN:  # names for annotations; see pyftp.hints
    from typing import Any, IO, Literal, Sequence, TypeAlias

if TYPE_CHECKING:  # rich is imported lazily at run time (see above)
    from rich.console import Console, Group
    from rich.text import Text

    from .listing import Trimmed

#: how a :class:`Rows` column lines up its cells
Justify: TypeAlias = "Literal['left', 'right']"


class Plain(Protocol):
    """A renderable of this package that knows its plain text."""

    def plain_lines(self) -> list[str]: ...


def cell_width(text: str) -> int:
    """How many terminal cells ``text`` takes: wide East Asian characters count two,
    combining marks none (the rule rich uses to line up columns)."""
    if text.isascii():
        return len(text)
    width = 0
    for ch in text:
        if unicodedata.combining(ch):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


class Line:
    """One line of text made of styled pieces (a drop-in for the few ``rich.text.Text``
    features results use: construct, ``append``, ``plain``)."""

    __slots__ = ("parts", "style")

    def __init__(self, text: str = "", style: str | None = None) -> None:
        self.parts: list[tuple[str, str | None]] = [(text, None)] if text else []
        self.style = style

    def append(self, text: str, style: str | None = None) -> Line:
        self.parts.append((text, style))
        return self

    @property
    def plain(self) -> str:
        parts = self.parts
        if len(parts) == 1:
            return parts[0][0]
        return "".join(t for t, _s in parts)

    def plain_lines(self) -> list[str]:
        return self.plain.split("\n")

    def __str__(self) -> str:
        return self.plain

    def __rich__(self) -> Text:
        from rich.text import Text
        text = Text(style=self.style or "")
        for part, style in self.parts:
            text.append(part, style=style)
        return text



class Rows:
    """A table with no borders: columns two spaces apart, optionally a header row.

    ``columns`` is a sequence of (header, justify, style) with justify ``left`` or
    ``right``. Drawn plainly, trailing blanks are trimmed from every line.
    """

    def __init__(self, columns: Sequence[tuple[str, Justify, str | None]], *,
                 show_header: bool = False, header_style: str | None = None) -> None:
        self.columns = list(columns)
        self.show_header = show_header
        self.header_style = header_style
        self.rows: list[tuple[Any, ...]] = []

    def add_row(self, *cells: Any) -> None:
        self.rows.append(cells)

    def plain_lines(self) -> list[str]:
        # a thousand-entry listing is drawn here: each width is measured once
        rows = [[c if type(c) is str else str(c) for c in row] for row in self.rows]
        if self.show_header:
            rows.insert(0, [h for h, _j, _s in self.columns])
        if not rows:
            return []
        sizes = [[len(t) if t.isascii() else cell_width(t) for t in r] for r in rows]
        widths = [max(s[i] for s in sizes) for i in range(len(self.columns))]
        right = [justify == "right" for _h, justify, _s in self.columns]
        out = []
        for r, s in zip(rows, sizes):
            cells = [" " * (widths[i] - s[i]) + t if right[i] else t + " " * (widths[i] - s[i])
                     for i, t in enumerate(r)]
            out.append("  ".join(cells).rstrip(" "))
        return out

    def __rich__(self) -> Trimmed:
        from rich.table import Table
        from .listing import Trimmed
        table = Table(box=None, pad_edge=False, show_header=self.show_header,
                      header_style=self.header_style or "", show_edge=False)
        for i, (header, justify, style) in enumerate(self.columns):
            table.add_column(header, justify=justify, style=style,
                             overflow="fold" if i == 0 else "ellipsis",
                             no_wrap=i > 0)
        for row in self.rows:
            table.add_row(*(c.__rich__() if isinstance(c, Line) else c for c in row))
        return Trimmed(table)


class Stack:
    """Renderables one under the other (rich's ``Group``)."""

    def __init__(self, *items: Any) -> None:
        self.items = items

    def plain_lines(self) -> list[str]:
        out: list[str] = []
        for item in self.items:
            out.extend(plain_lines(item))
        return out

    def __rich__(self) -> Group:
        from rich.console import Group
        return Group(*self.items)


def plain_lines(obj: str | Plain) -> list[str]:
    """The plain text of one of this module's renderables, or a str, as lines."""
    if isinstance(obj, str):
        return obj.split("\n")
    return obj.plain_lines()


class PlainConsole:
    """Just enough of ``rich.console.Console`` for results written to a pipe or a log.

    :class:`Line`, :class:`Rows`, :class:`Stack` and str (taken literally, never as
    markup) are written as plain lines; anything else (help's tables) goes through a
    rich console made on first need, with no terminal and no wrapping.
    """

    is_terminal = False

    def __init__(self, file: IO[str], *, width: int = 100_000) -> None:
        self.file = file
        self.width = width
        self._rich: Console | None = None

    def print(self, *objects: Any, end: str = "\n", **_options: Any) -> None:
        for obj in objects:
            if isinstance(obj, (str, Line, Rows, Stack)):
                self.file.write("\n".join(plain_lines(obj)) + end)
            else:
                self.fallback().print(obj, end=end, **_options)
        self.file.flush()

    def fallback(self) -> Console:
        """The rich console behind this one, for what only rich can draw."""
        if self._rich is None:
            from rich.console import Console
            self._rich = Console(file=self.file, highlight=False, width=self.width,
                                 force_terminal=False, no_color=True)
        return self._rich

