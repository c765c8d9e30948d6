"""``help``: the command table of :mod:`.commands`, rendered for people (and as --json
fields).

Import rule: rich (lazily: help is the one command drawn by rich), ui and the shell's
own modules.
"""
from __future__ import annotations

from .base import ShellBase
from .commands import ALIASES, SHELL_COMMANDS, Fields, UsageError


class HelpMixin(ShellBase):
    """Shell's ``help``: the command table, rendered for people (and as --json fields)."""

    # cmd.Cmd's own do_help (the interactive Shell's other base) returns a stop flag;
    # every do_ method here returns its --json fields instead, and only
    # Runner.execute calls them (Shell replaces onecmd)
    def do_help(self, arg: str) -> Fields:
        """help [COMMAND]: list the commands, or explain one."""
        from rich.table import Table  # help is for people: the one command drawn by rich
        from rich.text import Text

        from ..ui import Trimmed
        a = self._args("help", arg)
        if a.args:
            name = ALIASES.get(a.args[0], a.args[0])
            spec = SHELL_COMMANDS.get(name)
            if spec is None:
                raise UsageError(self._unknown(a.args[0]))
            text = Text()
            for usage, help_ in ((spec.usage, spec.help), *spec.forms):
                text.append(usage, style="bold")
                text.append(f"\n  {help_}\n")
            if spec.options:
                width = max(len(flag) for flag, _h in spec.options)
                text.append("options:")
                for flag, help_ in spec.options:
                    text.append(f"\n  {flag.ljust(width)}  {help_}")
            text.rstrip()
            self._print(text)
            return {"usage": spec.usage, "help": spec.help,
                    "forms": [{"usage": u, "help": h} for u, h in spec.forms],
                    "options": [{"option": o, "help": h} for o, h in spec.options]}
        table = Table(box=None, show_header=False, pad_edge=False)
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        for spec in SHELL_COMMANDS.values():
            table.add_row(Text(spec.usage), Text(spec.help))
            for usage, help_ in spec.forms:
                table.add_row(Text(usage), Text(help_))
        self._print(Trimmed(table))
        self._print(Text("Quote names with spaces (\"my file.txt\" or my\\ file.txt). Tab "
                         "completes commands, options and paths; Ctrl-C cancels a transfer; "
                         "Ctrl-D leaves. Transfers continue partial files (--no-resume "
                         "starts over) and retry a dropped connection "
                         f"{self.retries} time{'s' * (self.retries != 1)} (pyftp --retries "
                         "N). help COMMAND explains its options.", style="dim"))
        return {"commands": [{"name": s.name, "usage": s.usage, "help": s.help}
                             for s in SHELL_COMMANDS.values()]}
