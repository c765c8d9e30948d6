"""Pipelined runs in ``-c`` and ``-b``: consecutive ``get``, ``ls``, ``hash`` or ``stat``
lines go out together (``Client.get_many``, ``ls_many``, ``hash_many``, ``call_many``),
as ``get -r`` does, instead of one round trip each.

The rules stay those of ``sftp -b``. The answers are fetched ahead into
:attr:`BatchMixin.ahead`; each line is then run as usual (its ``do_`` method takes its
answer from there instead of asking the server), so it prints, fails and writes --json
exactly as it would alone, in order. The first failure stops the run: answers fetched
for later lines are discarded and reported as not run. A pipelined ``get`` run stops
fetching as soon as a failure is seen, before any later file is published (a later
request already sent is dropped with the connection; a file whose kept partial did not
match and is fetched again after the window is the one exception, see README). A
connection lost mid-run leaves the rest to the ordinary path, which reconnects and
retries.

Import rule: client, errors, ui and the shell's own modules.
"""
from __future__ import annotations

import os
import posixpath
import stat as stat_
from collections import deque

from ..hints import TYPE_CHECKING, LEAN

from ..client import Client, Entry
from ..errors import PyftpError, TransportError
from .base import ShellBase
from .commands import ALIASES, UsageError
from .parsing import Args, glob_literal, has_glob, parse_args, strip_comment

if TYPE_CHECKING or not LEAN:  # names for annotations; see pyftp.hints
    from typing import Any, Callable

#: the commands whose runs are pipelined
PIPELINED = ("get", "ls", "hash", "stat")
#: flags of get that change nothing about a plain download (sftp habits)
_PLAIN_GET_FLAGS = {"-p", "-a"}


class _Stop(Exception):
    """A pipelined get met a failure that ends the run: fetch nothing more."""


class BatchMixin(ShellBase):
    """Shell's look-ahead for the one-shot modes."""

    #: the last get run stopped at a failure and dropped its connection
    _ahead_dropped = False

    @property
    def ahead_held(self) -> bool:
        """True while answers fetched ahead wait for their lines after the run dropped
        its own connection (a get run that stopped): no reconnect is needed for them."""
        return bool(self.ahead) and self._ahead_dropped

    def _ahead_or(self, key: tuple[object, ...], fetch: Callable[[], Any]) -> Any:
        """The answer fetched ahead for ``key`` (raised if it is an error), else ``fetch()``.
        A run may name one thing several times: its answers wait in line order."""
        waiting = self.ahead.get(key)
        if waiting:
            value = waiting.popleft()
            if not waiting:
                del self.ahead[key]
            if isinstance(value, BaseException):
                raise value
            return value
        return fetch()

    def discard_ahead(self) -> int:
        """Forget answers fetched for lines that will not run; how many there were."""
        count = sum(len(waiting) for waiting in self.ahead.values())
        self.ahead.clear()
        return count

    def prefetch(self, lines: list[tuple[str, bool]]) -> int:
        """Fetch ahead the answers of the run of same-command lines that ``lines``
        (each: the command line, and whether its failure is ignored) starts with.

        Returns how many lines the run covers (0 or 1: nothing was fetched).
        """
        self.ahead.clear()
        self._ahead_dropped = False
        c = self.client
        if c is None or not c.connected:
            return 0
        run = _run_of(self, lines)
        if len(run) < 2:
            return 0
        name = run[0][0]
        try:
            if name == "get":
                self._prefetch_gets(c, run)
            elif name == "ls":
                for names in (False, True):  # a run may mix names-only and full lines
                    folders: list[str] = [item[1][0] for item in run if item[1][1] is names]
                    for folder, listed in zip(folders, c.ls_many(folders, names=names)
                                              if folders else ()):
                        self._keep(("ls", self.cwd, folder, names), listed)
            else:
                paths: list[str] = [p for item in run for p in item[1]]
                answers: list[Any]
                if name == "hash":
                    answers = list(c.hash_many(paths))
                else:
                    answers = [r if isinstance(r, BaseException) else Entry.from_wire(r["entry"])
                               for r in c.call_many([{"op": "stat", "path": p} for p in paths])]
                for p, answer in zip(paths, answers):
                    self._keep((name, self.cwd, p), answer)
        except TransportError:
            pass  # what was fetched stands; the rest runs one by one, with retries
        return len(run)

    def _keep(self, key: tuple[object, ...], answer: Any) -> None:
        self.ahead.setdefault(key, deque()).append(answer)

    def _prefetch_gets(self, c: Client, run: list[tuple[str, Any, bool]]) -> None:
        items = [item[1] for item in run]  # (remote, local as typed, target file)
        ignored = [item[2] for item in run]
        done = [0]

        def on_file(i: int, result: object) -> None:
            remote, local, _target = items[i]
            self._keep(("get", self.cwd, remote, local), result)
            done[0] += 1
            self.reporter.job_update(done[0], len(items), 0, None)
            if isinstance(result, PyftpError) and not ignored[i]:
                raise _Stop  # nothing later may be published: drop the rest
        with self.reporter.job("get", len(items), None):
            try:
                c.get_many([(r, t) for r, _l, t in items], resume=self.resume,
                           on_file=on_file)
            except _Stop:
                # the client dropped the connection, out of step: the run ends here
                self._ahead_dropped = True


def _run_of(shell: ShellBase, lines: list[tuple[str, bool]]) -> list[tuple[str, Any, bool]]:
    """The leading lines that are the same pipelinable command, each as (command,
    what it names, ignored)."""
    run: list[tuple[str, Any, bool]] = []
    targets: set[str] = set()
    folders: dict[str, bool] = {}  # a run's lines mostly share one local folder
    for line, ignored in lines:
        line = strip_comment(line.strip())
        if not line or line.startswith("!"):
            break
        word, arg, _ = shell.parseline(line)
        name = ALIASES.get(word or "", word or "")
        if name not in PIPELINED or (run and run[0][0] != name):
            break
        try:
            a = parse_args(name, arg or "")
        except UsageError:
            break
        what = _names(shell, name, a, targets, folders)
        if what is None:
            break
        run.append((name, what, ignored))
    return run


def _names(shell: ShellBase, name: str, a: Args, targets: set[str],
           folders: dict[str, bool]) -> Any:
    """What one line asks of the server, or None if it cannot join a pipelined run.
    ``folders`` remembers which local paths are folders, for the rest of the run."""
    if any(has_glob(w) for w in a.args):
        return None  # a pattern needs a listing first
    if name in ("hash", "stat"):
        return [glob_literal(w) for w in a.args]
    if name == "ls":
        if len(a.args) > 1:
            return None
        return (glob_literal(a.args[0]) if a.args else ".", shell._ls_names_only(a.opts))
    if set(a.opts) - _PLAIN_GET_FLAGS or len(a.args) > 2 or a.args[-1:] == ["-"]:
        return None
    remote = glob_literal(a.args[0])
    local = shell._local(glob_literal(a.args[1])) if len(a.args) > 1 else shell.local_cwd
    def is_dir(path: str) -> bool:
        if path not in folders:
            folders[path] = os.path.isdir(path)
        return folders[path]

    target = local
    if is_dir(local):
        target = os.path.join(local, posixpath.basename(remote.rstrip("/")) or "download")
    # a link, FIFO or device as target is Client.get's business (it streams or follows),
    # and two lines writing one file must keep their order: both run one by one
    try:
        mode: int | None = os.lstat(target).st_mode
    except OSError:
        mode = None  # nothing there yet (or unreadable: Client.get will say)
    if ((mode is not None and not stat_.S_ISREG(mode))
            or not is_dir(os.path.dirname(target)) or target in targets):
        return None
    targets.add(target)
    return (remote, local, target)
