"""The command runner (for ``-c`` and ``-b``) and the interactive shell: the command
table, parsing, jobs, completion and history.

Names load on first use, so a one-shot run that needs the :class:`Runner` never loads
the prompt's modules (:class:`Shell`, cmd, readline, completion).

Import rule: anything below cli.
"""
from __future__ import annotations

from ..hints import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

    from .cache import CACHE_SECONDS as CACHE_SECONDS
    from .cache import ListingCache as ListingCache
    from .commands import ALIASES as ALIASES
    from .commands import SHELL_COMMANDS as SHELL_COMMANDS
    from .commands import JobError as JobError
    from .commands import ShellCommand as ShellCommand
    from .commands import UsageError as UsageError
    from .completion import history_path as history_path
    from .parsing import parse_target as parse_target
    from .parsing import split_commands as split_commands
    from .parsing import split_partial as split_partial
    from .runner import Outcome as Outcome
    from .runner import Runner as Runner
    from .shell import Shell as Shell

#: each public name, and the module that holds it
_WHERE = {"Shell": "shell", "Runner": "runner", "Outcome": "runner",
          "ShellCommand": "commands", "SHELL_COMMANDS": "commands", "ALIASES": "commands",
          "UsageError": "commands", "JobError": "commands", "ListingCache": "cache",
          "CACHE_SECONDS": "cache", "parse_target": "parsing", "split_commands": "parsing",
          "split_partial": "parsing", "history_path": "completion"}

__all__ = list(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
