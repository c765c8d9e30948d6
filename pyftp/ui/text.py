"""Text for people: sizes, durations, times, safe names, error lines and the summary line
of a finished transfer. One unit system: binary (KiB, MiB), everywhere.

Names from a server may hold anything a file system allows: control characters, or
bytes that are not UTF-8 (held as lone surrogates, PEP 383). :func:`safe_name` turns
them into visible escapes before they reach a terminal, so a hostile name can neither
move the cursor nor crash the encoder.

Import rule: :mod:`pyftp.errors` and :mod:`pyftp.ui.lite` only; never rich, so a
script's output path does not load it.
"""
from __future__ import annotations

import re
import time

from ..hints import TYPE_CHECKING, LEAN, overload

from ..digests import label
from ..errors import PyftpError, RemoteError
from .lite import Line

if TYPE_CHECKING or not LEAN:  # names for annotations; see pyftp.hints
    from typing import Any

_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB")


def human_size(n: int | float | None) -> str:
    """Bytes as people read them, in binary units: 0 B, 512 B, 1.5 KiB, 20.0 MiB."""
    if n is None:
        return "?"
    if n < 1024:
        return f"{int(n)} B"
    value = float(n)
    for unit in _UNITS:
        value /= 1024
        if value < 1024 or unit == _UNITS[-1]:
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


def human_duration(seconds: float) -> str:
    """'0.4 s', '12 s', '3 min 05 s', '2 h 01 min'."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


_MINUTES: dict[int, str] = {}


def format_mtime(ts: float) -> str:
    """A modification time in local time, sortable and unambiguous: 2026-05-09 07:35."""
    try:
        minute = int(ts // 60)
    except (OverflowError, ValueError):
        return "?"
    shown = _MINUTES.get(minute)
    if shown is None:
        # files of one listing often share their minute: format each minute once
        try:
            shown = time.strftime("%Y-%m-%d %H:%M", time.localtime(minute * 60))
        except (OverflowError, OSError, ValueError):
            shown = "?"
        if len(_MINUTES) > 4096:
            _MINUTES.clear()
        _MINUTES[minute] = shown
    return shown


def safe_name(name: str) -> str:
    """``name`` with everything unprintable shown as an escape.

    Bytes that were not UTF-8 (surrogates U+DC80..U+DCFF) become ``\\xNN``, other lone
    surrogates ``\\uNNNN``, control and invisible format characters ``\\xNN`` or
    ``\\uNNNN``. Ordinary text, spaces and accents are left alone.
    """
    if name.isprintable():
        return name
    out = []
    for ch in name:
        if ch.isprintable():
            out.append(ch)
            continue
        cp = ord(ch)
        if 0xDC80 <= cp <= 0xDCFF:
            out.append(f"\\x{cp - 0xDC00:02x}")
        elif cp < 0x100:
            out.append(f"\\x{cp:02x}")
        else:
            out.append(f"\\u{cp:04x}")
    return "".join(out)


_HAS_REASON = re.compile(r"^[a-z][a-zA-Z0-9 _-]{1,40}: ")


def error_text(exc: BaseException) -> str:
    """One line saying what went wrong, e.g. ``not found: /docs/x.txt``.

    Server messages already start with their reason (``not found: ...``); those that
    do not get the error's title in front, so every line says what kind of failure
    it was. The text is made safe for a terminal.
    """
    if isinstance(exc, KeyboardInterrupt):
        return "cancelled"
    if isinstance(exc, RemoteError):
        msg = exc.message or exc.title
        if not (msg.startswith(exc.title) or _HAS_REASON.match(msg)):
            msg = f"{exc.title}: {msg}"
    elif isinstance(exc, PyftpError):
        msg = exc.message or type(exc).__name__
    elif isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        msg = f"{exc.strerror or exc}{where}"
    else:
        msg = f"unexpected error ({type(exc).__name__}: {exc}); please report it"
    return safe_name(" ".join(msg.split()))


def print_error(console: Any, text: str, *, prefix: str = "") -> None:
    """Print one red line (never markup: the text may name any file) on a rich console
    or a :class:`~pyftp.ui.lite.PlainConsole`."""
    console.print(Line(prefix + text, style="bold red"), soft_wrap=True, highlight=False)


# --------------------------------------------------------------------------- listings


@overload
def honest_rate(rate: float, max_rate: float | None) -> float: ...


@overload
def honest_rate(rate: float | None, max_rate: float | None) -> float | None: ...


def honest_rate(rate: float | None, max_rate: float | None) -> float | None:
    """A measured speed, never above the limit the transfer runs under.

    A rate limiter lets a short burst through (its bucket starts full), so a speed
    measured over a few hundred milliseconds can exceed the limit that holds over any
    longer stretch; a display promises the sustained figure.
    """
    if rate is None or not max_rate:
        return rate
    return min(rate, float(max_rate))


def transfer_summary(verb: str, source: str, target: str, total: int, sent: int,
                     offset: int, seconds: float, digest: str, *,
                     max_rate: float | None = None, algorithm: str = "sha256") -> Line:
    """The line after a finished get or put: what went where, how much, how fast.

    ``get /docs/big.bin -> big.bin  20.0 MiB in 1.2 s (16.7 MiB/s), BLAKE3 1f0c… verified``
    (the digest named by the algorithm the transfer was verified with)
    """
    rate = honest_rate(sent / seconds if seconds > 0 else 0.0, max_rate)
    text = Line()
    text.append(f"{verb} ", style="bold green")
    text.append(safe_name(source))
    text.append(" -> ")
    text.append(safe_name(target))
    text.append(f"  {human_size(total)} in {human_duration(seconds)}")
    if sent and seconds > 0:
        text.append(f" ({human_size(rate)}/s)")
    if offset:
        text.append(f", resumed at {human_size(offset)}", style="yellow")
    text.append(f", {label(algorithm)} {digest[:12]}… verified", style="dim")
    return text
