"""Tab completion and history: remote paths from listings cached per folder (dropped after
any change the shell makes, and after :data:`CACHE_SECONDS`), local paths from the local
folder. Names with spaces complete with backslashes or inside the quote the user opened,
as in bash. History lives in ``$XDG_STATE_HOME/pyftp/history``.

Import rule: client, errors, :mod:`pyftp.shell.commands` and :mod:`.parsing`.
"""
from __future__ import annotations

import cmd
import os
from types import ModuleType

from ..hints import TYPE_CHECKING, LEAN

from ..errors import PyftpError
from .base import ShellBase
from .commands import ALIASES, SHELL_COMMANDS
from .parsing import _quote_word, split_partial

if TYPE_CHECKING or not LEAN:  # names for annotations; see pyftp.hints
    from typing import Any, Callable, Iterable


def history_path() -> str:
    """Where the shell keeps its history: ``$XDG_STATE_HOME/pyftp/history``, or
    ``~/.local/state/pyftp/history`` (the XDG spec ignores a relative XDG_STATE_HOME)."""
    base = os.environ.get("XDG_STATE_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "pyftp", "history")


class CompletionMixin(ShellBase, cmd.Cmd):
    """Shell's completion of commands, options and paths, and its readline history."""

    # ------------------------------------------------------------------ completion
    def completenames(self, text: str, *ignored: Any) -> list[str]:
        """Complete a command word (with the space after it)."""
        names = sorted(set(SHELL_COMMANDS) | {a for a in ALIASES if a.isalpha()})
        return [n + " " for n in names if n.startswith(text)]

    def complete(self, text: str, state: int) -> Any:
        """readline's hook; cmd.Cmd would hide errors too, but a completer must never raise.

        Returns the match number ``state`` (a str) or None; typed Any because typeshed
        declares cmd.Cmd.complete as returning a list."""
        try:
            return super().complete(text, state)
        except Exception:
            return None

    def _complete(self, name: str, text: str, line: str, begidx: int, endidx: int) -> list[str]:
        """Complete the argument under the cursor for command ``name``.

        Returns what replaces ``line[begidx:endidx]``: readline's idea of the word
        (split at spaces only) is narrower than the shell's, so candidates are built
        for the whole shell word and cut to the part readline will replace.
        """
        spec = SHELL_COMMANDS[name]
        words, current, start, quote = split_partial(line[:endidx])
        typed = line[start:begidx]
        has_flags = bool(spec.flags or spec.long)
        if current.startswith("-") and has_flags:
            flags = [f"-{ch}" for ch in spec.flags if ch != ":"] + [f"--{w}" for w in spec.long]
            return sorted(f[len(typed):] + " " for f in flags
                          if f.startswith(current) and f.startswith(typed))
        position = 0
        needs_value = False
        given: set[str] = set()
        for w in words[1:]:
            if needs_value:
                needs_value = False
            elif w.startswith("-") and len(w) > 1 and has_flags:
                needs_value = not w.startswith("--") and w[-1] + ":" in spec.flags
                given.update([w] if w.startswith("--") else (f"-{ch}" for ch in w[1:]))
            else:
                position += 1
        if needs_value or not spec.complete:
            return []
        kinds = spec.complete
        if spec.alt_complete is not None and spec.alt_complete[0] in given:
            kinds = spec.alt_complete[1]
        if position < len(kinds):
            kind = kinds[position]
        elif spec.repeat:
            kind = kinds[-1]
        else:
            return []
        out = []
        for value, is_dir in self._candidates(kind, current):
            replacement = _quote_word(value, quote, final=not is_dir)
            if replacement.startswith(typed):
                out.append(replacement[len(typed):])
        return sorted(out)

    def _candidates(self, kind: str, current: str) -> Iterable[tuple[str, bool]]:
        if kind == "command":
            return [(n, False) for n in SHELL_COMMANDS if n.startswith(current)]
        head, sep, base = current.rpartition("/")
        prefix = head + sep
        if kind.startswith("remote"):
            if self.client is None or not self.client.connected:
                return []
            folder = self._abs(prefix or ".")
            try:
                entries = self.cache.get(folder, self.client.ls)
            except PyftpError:
                return []
            items = [(e.name, e.is_dir) for e in entries]
        else:
            folder = self._local(prefix or ".")
            try:
                with os.scandir(folder) as it:
                    items = [(d.name, _is_dir(d)) for d in it]
            except OSError:
                return []
        dirs_only = kind.endswith("_dir")
        return [(prefix + n + ("/" if d else ""), d) for n, d in items
                if n.startswith(base) and n.isprintable()
                and (base.startswith(".") or not n.startswith("."))
                and (d or not dirs_only)]

    # ------------------------------------------------------------------ history
    #: the readline module while the prompt loop runs with line editing, else None
    _history: ModuleType | None = None
    _history_length = 0

    def _setup_readline(self) -> ModuleType | None:
        if not self.use_rawinput or not (self.stdin.isatty() and self.stdout.isatty()):
            return None  # commands piped in: no line editing, and no history to keep
        try:
            import readline
        except ImportError:  # a Python built without readline: no history, no completion
            return None
        readline.set_completer_delims(" \t\n")
        readline.set_history_length(1000)
        err = self.err_console
        self._color_prompt = (err.is_terminal and getattr(err, "color_system", None) is not None
                              and not getattr(err, "no_color", True))
        path = self.history_file or history_path()
        self.history_file = path
        try:
            readline.read_history_file(path)
        except (FileNotFoundError, PermissionError):
            pass
        except OSError as exc:
            self._info(f"could not read history {path}: {exc.strerror or exc}")
        self._history = readline
        self._history_length = readline.get_current_history_length()
        return readline

    def _append_history(self) -> None:
        """Add the lines typed since the last call to the history file."""
        readline = self._history
        if readline is None:
            return
        length = readline.get_current_history_length()
        new, self._history_length = length - self._history_length, length
        if new <= 0:
            return
        path = self.history_file or history_path()
        try:
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            with open(path, "a"):  # append_history_file wants the file to exist
                pass
            readline.append_history_file(new, path)
            os.chmod(path, 0o600)  # file names can be private
        except OSError as exc:
            self._info(f"could not save history to {path}: {exc.strerror or exc}")

    def _save_history(self, readline: ModuleType) -> None:
        path = self.history_file or history_path()
        try:
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            readline.write_history_file(path)
            os.chmod(path, 0o600)  # file names can be private
        except OSError as exc:
            self._info(f"could not save history to {path}: {exc.strerror or exc}")


def _make_completer(name: str) -> Callable[[CompletionMixin, str, str, int, int], list[str]]:
    def complete(self: CompletionMixin, text: str, line: str, begidx: int,
                 endidx: int) -> list[str]:
        return self._complete(name, text, line, begidx, endidx)
    complete.__name__ = f"complete_{name}"
    complete.__doc__ = f"Tab completion for {SHELL_COMMANDS[name].usage}."
    return complete


def install_completers(cls: type) -> None:
    """Give ``cls`` a ``complete_<name>`` for every command whose arguments complete."""
    for name, spec in SHELL_COMMANDS.items():
        if spec.complete:
            setattr(cls, f"complete_{name}", _make_completer(name))


def _is_dir(d: os.DirEntry[str]) -> bool:
    try:
        return d.is_dir()
    except OSError:
        return False
