"""The command table: every shell command declared once, with its usage, help, flags and
how to complete its arguments (``help`` renders it: :mod:`.help`); and the two errors a
command line can end in.

To add a command: add its row here and a ``do_<name>`` method on a Shell mixin
returning its JSON fields; parsing, help, completion, errors, --json and the one-shot
modes then come for free.

Import rule: errors, protocol; nothing else of the shell.
"""
from __future__ import annotations

from ..hints import TYPE_CHECKING, LEAN

from ..records import dataclass
from ..errors import PyftpError
from ..protocol import DEFAULT_PORT

if TYPE_CHECKING or not LEAN:  # names for annotations; see pyftp.hints
    from typing import Any, TypeAlias


#: what a command returns: its --json fields
if TYPE_CHECKING or not LEAN:
    Fields: TypeAlias = dict[str, Any]
else:  # a lean process never evaluates annotations (pyftp.hints)
    Fields = dict


class UsageError(PyftpError):
    """A command was typed wrong: unknown word, bad option, missing or extra argument."""


class JobError(PyftpError):
    """A folder, glob or mirror job ran to its end, but some of its steps failed.

    Each failed file was already printed on its own line; ``fields`` holds the job's
    counts for the --json failure object. Rerunning the command retries what failed
    (and continues partial files).
    """

    def __init__(self, message: str, fields: Fields) -> None:
        super().__init__(message)
        self.fields = fields


@dataclass(frozen=True)
class ShellCommand:
    """One shell command, declared once: syntax, help, and how to complete it.

    ``flags`` is a getopt spec (``"lp"``; ``"u:"`` takes a value) and ``long`` the
    long options (``"dry-run"``). ``complete`` names the kind of each positional
    argument for tab completion (``remote``, ``remote_dir``, ``local``, ``local_dir``,
    ``command``); with ``repeat`` the last kind applies to every further argument, and
    ``alt_complete`` = (flag, kinds) replaces the kinds when that flag is given
    (``mirror -R`` swaps the sides). ``forms`` are further (usage, help) lines, e.g.
    ``get -r``; ``options`` explain each flag in ``help COMMAND``. ``connected``
    commands need a server.
    """

    name: str
    usage: str
    help: str
    min_args: int = 0
    max_args: int | None = 0
    flags: str = ""
    complete: tuple[str, ...] = ()
    repeat: bool = False
    connected: bool = True
    long: tuple[str, ...] = ()
    forms: tuple[tuple[str, str], ...] = ()
    options: tuple[tuple[str, str], ...] = ()
    alt_complete: tuple[str, tuple[str, ...]] | None = None
    #: the arguments may hold wildcards (``*``, ``?``, ``[...]``; ``\*`` is a plain star)
    globs: bool = False
    #: flags accepted for habit's sake (``get -p``) but not offered by completion
    hidden: str = ""

    def usage_text(self) -> str:
        """Every form of the command on one line, for usage errors."""
        return " or ".join([self.usage, *(u for u, _h in self.forms)])


_NO_RESUME = ("--no-resume", "start from zero instead of continuing a partial file")
_VERBOSE = ("-v", "at the prompt, list each file of a folder or pattern job (scripts "
                  "always get one line per file)")
# JSON fields; parsing, help, completion, errors, --json and the one-shot modes then
# come for free. A new flag on an existing command is one letter in its ``flags`` (or
# a word in ``long``), a line in ``options`` and a branch in its ``do_`` method.
# To add a command: add its row here and a ``do_<name>`` method on Shell returning its
# JSON fields; parsing, help, completion, errors, --json and the one-shot modes then
# come for free. A new flag on an existing command is one letter in its ``flags`` (or
# a word in ``long``), a line in ``options`` and a branch in its ``do_`` method.
SHELL_COMMANDS: dict[str, ShellCommand] = {c.name: c for c in (
    ShellCommand("open", "open [-u USER] [-p PORT] [USER@]HOST[:PORT][/PATH]",
                 f"connect to a server (default port {DEFAULT_PORT}; also "
                 "pyftp://USER@HOST:PORT/PATH); asks for a password when the server wants "
                 "a login", 1, 1, "u:p:", connected=False),
    ShellCommand("close", "close", "disconnect from the server", connected=False),
    ShellCommand("ls", "ls [-1ahlrtS] [PATH|PATTERN...]",
                 "list a remote folder, or the paths matching a pattern", 0, None,
                 "1lrtS", ("remote",), repeat=True, globs=True, hidden="ah",
                 options=(("-l", "long form: sizes (KiB, MiB) and modification times"),
                          ("-1", "one name per line"),
                          ("-t", "newest first"), ("-S", "largest first"),
                          ("-r", "reverse the order"),
                          ("-a", "accepted (hidden names are always shown)"),
                          ("-h", "accepted (sizes are always human-readable)"))),
    ShellCommand("cd", "cd [PATH|-]", "change the remote folder (no PATH: the top; -: the "
                 "previous one)",
                 0, 1, "", ("remote_dir",)),
    ShellCommand("pwd", "pwd", "show the remote folder"),
    ShellCommand("lcd", "lcd [PATH]", "change the local folder (no PATH: home)",
                 0, 1, "", ("local_dir",), connected=False),
    ShellCommand("lls", "lls [-l] [PATH]", "list a local folder", 0, 1, "l", ("local",),
                 connected=False),
    ShellCommand("lpwd", "lpwd", "show the local folder", connected=False),
    ShellCommand("lmkdir", "lmkdir [-p] PATH...", "create local folders (-p: with parents)",
                 1, None, "p", ("local_dir",), repeat=True, connected=False),
    ShellCommand("lrm", "lrm PATH...", "remove local files", 1, None, "", ("local",),
                 repeat=True, connected=False),
    ShellCommand("!", "!COMMAND", "run COMMAND in a local shell, in the local folder "
                 "(! alone: an interactive shell)", 0, None, connected=False),
    ShellCommand("get", "get REMOTE [LOCAL]",
                 "download a file (verified; an interrupted one resumes when run again)",
                 1, None, "rv", ("remote", "local"), long=("no-resume", "checksum"), globs=True,
                 hidden="pa",
                 forms=(("get -r REMOTE_DIR [LOCAL_DIR]",
                         "download a folder and everything in it (default LOCAL_DIR: its "
                         "name)"),
                        ("get PATTERN... [LOCAL_DIR]",
                         "download every file matching (*, ?, [...]; \\* is a plain star)"),
                        ("get REMOTE -", "write the file to stdout (verified; a mismatch "
                                         "fails after the fact), as cat does")),
                 options=(("-r", "copy a folder: subfolders (empty ones too) and "
                                 "modification times; LOCAL_DIR receives its contents; "
                                 "identical files are skipped"),
                          ("--checksum", "with -r: compare files by digest (the session's: "
                                         "BLAKE3 or SHA-256) instead of size and "
                                         "modification time"),
                          _VERBOSE,
                          ("-p, -a", "accepted: times are always kept, transfers are "
                                     "always binary"),
                          _NO_RESUME)),
    ShellCommand("put", "put [-f] LOCAL [REMOTE]",
                 "upload a file (published only once verified; -f replaces an existing one)",
                 1, None, "frv", ("local", "remote"), long=("no-resume",), globs=True,
                 hidden="pa",
                 forms=(("put -r [-f] LOCAL_DIR [REMOTE_DIR]",
                         "upload a folder and everything in it (identical files are "
                         "skipped)"),
                        ("put [-f] PATTERN... [REMOTE_DIR]",
                         "upload every local file matching")),
                 options=(("-f", "replace remote files that differ"),
                          ("-p, -a", "accepted: times are always kept, transfers are "
                                     "always binary"),
                          ("-r", "copy a folder: subfolders (empty ones too) and "
                                 "modification times; REMOTE_DIR receives its contents; "
                                 "symlinks are never followed out of it"),
                          _VERBOSE, _NO_RESUME)),
    ShellCommand("reget", "reget REMOTE [LOCAL]", "continue an interrupted download (what "
                 "get does by default)", 1, 2, "", ("remote", "local")),
    ShellCommand("reput", "reput LOCAL [REMOTE]", "continue an interrupted upload (what put "
                 "does by default)", 1, 2, "", ("local", "remote")),
    ShellCommand("mget", "mget [-r] PATTERN...",
                 "download every file matching the patterns (-r: folders too)",
                 1, None, "rv", ("remote",), repeat=True, long=("no-resume",),
                 options=(("-r", "copy matching folders with everything in them"),
                          _VERBOSE, _NO_RESUME)),
    ShellCommand("cat", "cat REMOTE...",
                 "write remote files to stdout, one after the other (each verified; a "
                 "mismatch fails after the fact)",
                 1, None, "", ("remote",), repeat=True, globs=True),
    ShellCommand("mput", "mput [-r] [-f] PATTERN...",
                 "upload every local file matching the patterns (-r: folders too)",
                 1, None, "frv", ("local",), repeat=True, long=("no-resume",),
                 options=(("-f", "replace remote files that differ"),
                          ("-r", "copy matching folders with everything in them"),
                          _VERBOSE, _NO_RESUME)),
    ShellCommand("mirror", "mirror [OPTIONS] REMOTE_DIR [LOCAL_DIR]",
                 "make LOCAL_DIR like REMOTE_DIR, moving only files that differ",
                 1, 2, "Rv", ("remote_dir", "local_dir"),
                 long=("delete", "checksum", "dry-run", "no-resume"),
                 forms=(("mirror -R [OPTIONS] LOCAL_DIR [REMOTE_DIR]",
                         "make REMOTE_DIR like LOCAL_DIR (push to the server)"),),
                 options=(("-R", "reverse: push the local folder to the server"),
                          ("--delete", "remove what the source does not have, after the "
                                       "transfers"),
                          ("--checksum", "compare files by digest (BLAKE3 or SHA-256) "
                                         "instead of size and modification time"),
                          ("--dry-run", "print the plan and change nothing"),
                          _VERBOSE, _NO_RESUME),
                 alt_complete=("-R", ("local_dir", "remote_dir"))),
    ShellCommand("mkdir", "mkdir [-p] PATH...", "create folders (-p: with parents, no error "
                 "if they exist)", 1, None, "p", ("remote_dir",), repeat=True),
    ShellCommand("rm", "rm [-rf] PATH|PATTERN...", "remove files (every name is tried; "
                 "the command fails at the end if one failed)", 1, None, "rf", ("remote",),
                 repeat=True, globs=True,
                 options=(("-r", "remove folders and everything in them"),
                          ("-f", "a missing name is not an error"))),
    ShellCommand("rmdir", "rmdir PATH...", "remove empty folders", 1, None, "",
                 ("remote_dir",), repeat=True),
    ShellCommand("mv", "mv [-f] SRC DST", "rename or move (into DST if it is a folder; "
                 "-f replaces an existing file)", 2, 2, "f", ("remote", "remote")),
    ShellCommand("stat", "stat PATH|PATTERN...", "show type, size and time of remote paths",
                 1, None, "", ("remote",), repeat=True, globs=True),
    ShellCommand("hash", "hash PATH|PATTERN...", "digests of remote files (the session's: "
                 "BLAKE3 or SHA-256), computed by the server", 1, None, "", ("remote",), repeat=True, globs=True),
    ShellCommand("df", "df [-h]", "size and free space of the server's share (in 1 KiB "
                 "blocks; -h: KiB, MiB, GiB)", 0, 0, "h",
                 options=(("-h", "human-readable sizes (binary units)"),)),
    ShellCommand("upper", "upper TEXT", "the server's upper-case echo of TEXT", 1, None),
    ShellCommand("help", "help [COMMAND]", "list the commands, or explain one", 0, 1, "",
                 ("command",), connected=False),
    ShellCommand("quit", "quit", "close the connection and leave (also exit, bye, Ctrl-D)",
                 connected=False),
)}

#: other words for the same command
#: other words for the same command
ALIASES = {"exit": "quit", "bye": "quit", "?": "help"}
