"""Command-line text: host names, ``;``-separated commands, option words, and the
unfinished line under the cursor. Shared by the shell and :mod:`pyftp.cli.client`.

Import rule: protocol and :mod:`pyftp.shell.commands`.
"""
from __future__ import annotations

import getopt
import re
import shlex

from ..hints import TYPE_CHECKING, LEAN, named_tuple


from ..records import dataclass
from ..protocol import DEFAULT_PORT
from .commands import SHELL_COMMANDS, UsageError

if TYPE_CHECKING or not LEAN:  # names for annotations; see pyftp.hints
    from typing import Iterator, NamedTuple


@dataclass
class Args:
    opts: dict[str, str]
    args: list[str]


def parse_target(text: str, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
    """'host', 'host:port', '[::1]:port', '::1' -> (host, port). Raises ValueError."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest and not rest.startswith(":"):
            raise ValueError(f"bad address {text!r}: expected [HOST]:PORT")
        port = rest[1:]
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        host, port = text, ""
    if not host:
        raise ValueError(f"no host in {text!r}")
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"bad port in {text!r}: give a number from 1 to 65535")
    return host, int(port) if port else default_port


if TYPE_CHECKING:
    class _PieceFields(NamedTuple):
        start: int
        end: int
        char: str
        kind: str
else:  # the same tuple without loading typing (see pyftp.hints)
    _PieceFields = named_tuple("_Piece", "start end char kind", module=__name__)


class _Piece(_PieceFields):
    """One step of :func:`_scan`: ``text[start:end]`` means ``char`` in the way ``kind``
    says (``plain``: outside quotes, unescaped, so it may separate or comment;
    ``escaped``: after a backslash outside quotes; ``quoted``: inside quotes; ``open`` /
    ``close``: a quote mark)."""

    __slots__ = ()


def _scan(text: str) -> Iterator[_Piece]:
    """Walk ``text`` as sh and shlex quote it: the one scanner behind splitting at
    ``;``, cutting comments and splitting an unfinished line for completion.

    A backslash outside quotes takes the next character (at the very end: nothing);
    inside double quotes only ``\\"`` and ``\\\\`` are escapes; inside single quotes
    nothing is."""
    quote: str | None = None
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if quote is None:
            if ch == "\\":
                yield _Piece(i, min(i + 2, n), text[i + 1:i + 2], "escaped")
                i += 2
                continue
            if ch in "'\"":
                quote = ch
                yield _Piece(i, i + 1, ch, "open")
            else:
                yield _Piece(i, i + 1, ch, "plain")
        elif ch == quote:
            quote = None
            yield _Piece(i, i + 1, ch, "close")
        elif ch == "\\" and quote == '"' and i + 1 < n and text[i + 1] in '"\\':
            yield _Piece(i, i + 2, text[i + 1], "quoted")
            i += 2
            continue
        else:
            yield _Piece(i, i + 1, ch, "quoted")
        i += 1


def split_commands(text: str) -> list[str]:
    """Split ``-c`` text at the ``;`` outside quotes: ``put "a;b"; ls`` -> 2 commands."""
    if ";" not in text and "\n" not in text:  # one command: nothing to scan for
        return [text.strip()] if text.strip() else []
    out: list[str] = []
    cur: list[str] = []
    for p in _scan(text):
        if p.kind == "plain" and p.char in ";\n":
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(text[p.start:p.end])
    out.append("".join(cur).strip())
    return [c for c in out if c]


def split_partial(line: str) -> tuple[list[str], str, int, str | None]:
    """Split an unfinished command line as shlex would, keeping the last word open.

    Returns (finished words, the unquoted current word, the index where the current
    word starts in ``line``, the quote still open or None). Completion needs this
    because readline splits only at spaces and knows nothing of quotes or ``\\ ``.
    """
    words: list[str] = []
    cur: list[str] = []
    start = len(line)
    quote: str | None = None
    in_word = False
    for p in _scan(line):
        if p.kind == "plain" and p.char in " \t":
            if in_word:
                words.append("".join(cur))
                cur, in_word = [], False
            continue
        if not in_word:
            in_word, start = True, p.start
        if p.kind == "open":
            quote = p.char
        elif p.kind == "close":
            quote = None
        else:
            cur.append(p.char)
    if not in_word:
        return words, "", len(line), None
    return words, "".join(cur), start, quote


_NEEDS_ESCAPE = re.compile(r"([\s'\"\\])")


def _quote_word(value: str, quote: str | None, final: bool) -> str:
    """``value`` as the user would type it: inside their open quote, or with backslashes."""
    if quote == '"':
        body = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{body}' + ('" ' if final else "")
    if quote == "'" and "'" not in value:
        return f"'{value}" + ("' " if final else "")
    return _NEEDS_ESCAPE.sub(r"\\\1", value) + (" " if final else "")


_SHLEX_SPECIAL = frozenset("'\"\\")


def _split_words(text: str) -> list[str]:
    """shlex's words; text of plain words and spaces (the lines of a long batch file)
    takes the short way, with the same result."""
    if text.isprintable() and _SHLEX_SPECIAL.isdisjoint(text):
        return text.split()
    return shlex.split(text)


def parse_args(name: str, arg: str) -> Args:
    """The words of command ``name``'s argument text: options by its getopt spec, then
    the positional words, counted against the table (a :class:`UsageError` if wrong).

    A pipelined batch line is parsed twice (when the run is fetched ahead, and when it
    reports), and batch files repeat their lines: recent results are kept, and each
    caller gets its own copy."""
    key = (name, arg)
    known = _PARSED.get(key)
    if known is None:
        known = _parse_args(name, arg)
        if len(_PARSED) >= _PARSED_KEEP:
            _PARSED.pop(next(iter(_PARSED)))
        _PARSED[key] = known
    return Args(dict(known.opts), list(known.args))


#: parse_args's recent results (oldest first), enough for a pipelined run of a long
#: batch file: the run is parsed whole before its first line reports
_PARSED: dict[tuple[str, str], Args] = {}
_PARSED_KEEP = 8192


def _parse_args(name: str, arg: str) -> Args:
    spec = SHELL_COMMANDS[name]
    try:
        words = _split_words(keep_glob_escapes(arg) if spec.globs else arg)
    except ValueError as exc:
        raise UsageError(f"{name}: {str(exc).lower()}; quote names with spaces, "
                         f"e.g. {name} \"my file.txt\"") from None
    opts: dict[str, str] = {}
    if spec.flags or spec.long or spec.hidden:
        try:
            pairs, words = getopt.gnu_getopt(words, spec.flags + spec.hidden, list(spec.long))
        except getopt.GetoptError as exc:
            raise UsageError(f"{name}: {exc.msg}; usage: {spec.usage_text()}") from None
        opts = dict(pairs)
    if len(words) < spec.min_args or (spec.max_args is not None
                                      and len(words) > spec.max_args):
        raise UsageError(f"usage: {spec.usage_text()}")
    return Args(opts, words)


# ---------------------------------------------------------------------- server names
@dataclass(frozen=True)
class ServerName:
    """What ``[USER@]HOST[:PORT][/PATH]`` or ``pyftp://...`` names; None: not given."""

    host: str
    port: int | None = None
    user: str | None = None
    path: str | None = None


def parse_server(text: str) -> ServerName:
    """``alice@host:2222/in``, ``pyftp://alice@[::1]:2222/in``, ``host``, ``::1``.

    Raises ValueError with what to type instead.
    """
    rest = text.strip()
    if rest.lower().startswith("pyftp://"):
        rest = rest[len("pyftp://"):]
    elif "://" in rest:
        raise ValueError(f"{text!r}: only pyftp:// addresses are understood")
    path = None
    if rest.startswith("[") or rest.count(":") <= 1 or "@" in rest:
        authority, slash, tail = rest.partition("/")
        if slash:
            path = "/" + tail
    else:  # a bare IPv6 literal: no port and no path can be told apart
        authority = rest
    user = None
    if "@" in authority:
        user, _, authority = authority.rpartition("@")
        if not user:
            raise ValueError(f"no user name before '@' in {text!r}")
    if authority.count(":") > 1 and not authority.startswith("["):
        if "@" in rest or path:
            raise ValueError(f"put the IPv6 address in brackets: [{authority}]")
        return ServerName(authority, None, user, path)
    host, port = parse_target(authority, 0)
    return ServerName(host, port or None, user, path)


# ---------------------------------------------------------------------- comments, globs
def strip_comment(line: str) -> str:
    """``put a.txt  # the report`` -> ``put a.txt``: a ``#`` outside quotes that starts
    a word begins a comment, as in sh and in sftp batch files (``my\\ #1`` is a name)."""
    if "#" not in line:  # the common case: no comment to look for
        return line
    word_start = True
    for p in _scan(line):
        if p.kind == "plain" and p.char in " \t":
            word_start = True
        elif p.kind == "plain" and p.char == "#" and word_start:
            return line[:p.start].rstrip()
        else:
            word_start = False
    return line


_GLOB_ESCAPE = re.compile(r"\\([*?\[\]])")


def keep_glob_escapes(arg: str) -> str:
    """Double the backslash of ``\\*``, ``\\?``, ``\\[`` so shlex hands it on: a word
    keeps saying which wildcard characters are plain."""
    return _GLOB_ESCAPE.sub(r"\\\\\1", arg)


def has_glob(word: str) -> bool:
    """True when ``word`` holds a wildcard that is not escaped with a backslash."""
    return bool(re.search(r"(?<!\\)[*?\[]", word))


def glob_literal(word: str) -> str:
    """The name a word means when it is not a pattern: ``a\\*b`` -> ``a*b``."""
    return _GLOB_ESCAPE.sub(r"\1", word)


def glob_pattern(word: str) -> str:
    """A word as an fnmatch/glob pattern: escaped wildcards become one-character sets."""
    return _GLOB_ESCAPE.sub(lambda m: "[" + m.group(1) + "]", word)
