"""Argument types shared by both console scripts: sizes, durations, counts, ports,
and the exit codes.

Import rule: the standard library only.
"""
from __future__ import annotations

import argparse
import os
import sys

from ..hints import TYPE_CHECKING, LEAN

if TYPE_CHECKING or not LEAN:  # names for annotations; see pyftp.hints
    from typing import Callable, TypeVar
    _Number = TypeVar("_Number", int, float)


EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CONNECT, EXIT_PROTOCOL, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130


# ---------------------------------------------------------------------- help
def terminal_columns() -> int:
    """The width help is laid out in: $COLUMNS, else stdout's terminal, else 80 (as
    shutil.get_terminal_size says, without importing shutil: it loads bz2 and lzma)."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size((sys.__stdout__ or sys.stdout).fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class RawHelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse's layout with the description and epilog kept as written. argparse
    makes one formatter per declared option; left to find the width itself, each would
    import shutil, a few ms of every one-shot ``pyftp`` process."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position,
                         terminal_columns() - 2 if width is None else width)


# ---------------------------------------------------------------------- sizes
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: str) -> int:
    """'10M' -> 10485760. Accepts K, M, G, T (binary), optional trailing B or iB."""
    t = text.strip().upper()
    for suffix in ("IB", "B"):
        if t.endswith(suffix) and len(t) > len(suffix):
            t = t[: -len(suffix)]
            break
    unit = t[-1:] if t[-1:] in _UNITS and t[-1:] != "" else ""
    number = t[: -1] if unit else t
    try:
        value = float(number)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (try 512K, 10M or 2G)") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"a size cannot be negative: {text!r}")
    return int(value * _UNITS[unit])


def whole_number(low: int, high: int | None = None, hint: str = "") -> Callable[[str], int]:
    """An argparse type for an integer in ``low..high`` (``high`` None: no upper bound)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < low or (high is not None and value > high):
            span = f"outside {low}..{high}" if high is not None else f"below {low}"
            raise argparse.ArgumentTypeError(f"{value} is {span}{hint}")
        return value
    return parse


#: a port for a server to listen on; 0 picks a free one
parse_port = whole_number(0, 65535, " (0 picks a free one)")
#: a limit counted in whole things (connections, attempts)
parse_count = whole_number(1, hint=": give at least 1")


def above_zero(parse: Callable[[str], _Number]) -> Callable[[str], _Number]:
    """Wrap a size or duration parser so that 0 is refused (a zero timeout or rate would
    stop everything at once)."""
    def check(text: str) -> _Number:
        value = parse(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be more than zero: {text!r}")
        return value
    check.__name__ = parse.__name__
    return check


def parse_duration(text: str) -> float:
    """'30' or '30s' -> 30.0; also m, h, d."""
    t = text.strip().lower()
    mult = {"s": 1, "m": 60, "h": 3600, "d": 86400}.get(t[-1:], None)
    number = t[:-1] if mult else t
    try:
        value = float(number) * (mult or 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (try 30s, 5m or 24h)") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"a duration cannot be negative: {text!r}")
    return value
