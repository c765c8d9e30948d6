"""The interactive shell: the prompt loop (:mod:`cmd`), tab completion and history
around the :class:`~pyftp.shell.runner.Runner` that also runs ``pyftp -c`` and ``-b``.

Remote paths are tab-completed from listings cached per folder (dropped after any change
the shell makes, and after :data:`~pyftp.shell.cache.CACHE_SECONDS`); local paths from
the local folder. Names with spaces complete with backslashes or inside the quote the
user opened, as in bash. History persists in ``$XDG_STATE_HOME/pyftp/history``. Ctrl-C
during a command cancels it and returns to the prompt (reconnecting if the transfer
left the connection out of step); Ctrl-C at the prompt starts a fresh line.

Import rule: the shell's own modules. Only cli imports it, and only for a prompt.
"""
from __future__ import annotations

import cmd

from ..hints import TYPE_CHECKING, LEAN

from .completion import CompletionMixin, install_completers
from .parsing import split_commands
from .runner import Runner

if TYPE_CHECKING or not LEAN:  # names for annotations; see pyftp.hints
    from typing import IO, Any

__all__ = ["Shell"]


class Shell(CompletionMixin, Runner):  # type: ignore[misc]  # do_help: see help.py
    """The interactive pyftp shell: a :class:`Runner` at a prompt.

    ``stdin``/``stdout`` are the prompt loop's (default: the terminal), and
    ``history_file`` where the history lives (default: :func:`history_path`). Every
    other argument is the Runner's.
    """

    intro = None
    doc_header = "commands"

    def __init__(self, *args: Any, stdin: IO[str] | None = None,
                 stdout: IO[str] | None = None, history_file: str | None = None,
                 **kwargs: Any) -> None:
        cmd.Cmd.__init__(self, stdin=stdin, stdout=stdout)
        if stdin is not None:
            self.use_rawinput = False
        self.history_file = history_file
        Runner.__init__(self, *args, **kwargs)

    def onecmd(self, line: str) -> bool:
        """cmd.Cmd's hook: run the line (``;`` separates commands and the first failure
        stops the rest, as in ``-c``); True ends the prompt loop."""
        if line == "EOF":  # Ctrl-D at the prompt
            self.stdout.write("\n")
            line = "quit"
        for part in [line] if line.lstrip().startswith("!") else split_commands(line):
            # as in -c, a failed command stops the rest of the line
            if not self.execute(part).ok or self._quit:
                break
        return self._quit

    def postcmd(self, stop: bool, line: str) -> bool:
        """cmd.Cmd's hook after each prompt line: the line joins the history file at
        once, so a crash or a kill loses nothing."""
        self._append_history()
        return stop

    def emptyline(self) -> bool:
        """An empty line does nothing (cmd.Cmd would repeat the last command)."""
        return False

    def run(self) -> int:
        """The interactive prompt loop, with history and completion; returns 0."""
        readline = self._setup_readline()
        self._update_prompt()
        try:
            while not self._quit:
                try:
                    self.cmdloop()
                except KeyboardInterrupt:  # Ctrl-C at the prompt: a fresh line, as in bash
                    self.stdout.write("^C\n")
                    self.stdout.flush()
        finally:
            if readline is not None:
                self._save_history(readline)
            self._close_client()
        return 0


install_completers(Shell)
