"""A pyftp Shell with its output captured, for the shell tests (test_repl,
test_shell_sync): commands go through ``Shell.execute``, the one place that prints
errors and picks outcomes, exactly as the prompt loop, ``-c`` and ``-b`` use it."""
from __future__ import annotations

from io import StringIO

from rich.console import Console

from pyftp.shell import Shell


class Harness:
    """``run`` returns (outcome, printed text); ``ok`` asserts success."""

    def __init__(self, shell: Shell, out: StringIO) -> None:
        self.shell, self.out = shell, out

    def run(self, line: str):
        self.out.seek(0)
        self.out.truncate()
        outcome = self.shell.execute(line)
        return outcome, self.out.getvalue()

    def ok(self, line: str) -> str:
        """Run ``line``, assert it succeeded, return what it printed."""
        return self.ok_fields(line)[1]

    def ok_fields(self, line: str) -> tuple[dict, str]:
        """Run ``line``, assert it succeeded, return (its JSON fields, printed text)."""
        outcome, text = self.run(line)
        assert outcome.ok, f"{line!r} failed: {text}"
        return outcome.fields, text

    def complete(self, line: str) -> list[str]:
        """What the shell offers for Tab at the end of ``line`` (readline splits at spaces)."""
        begidx = max(line.rfind(" "), line.rfind("\t")) + 1
        word = line.split(None, 1)[0] if line.strip() else ""
        if begidx == 0:
            return self.shell.completenames(line, line, 0, len(line))
        return getattr(self.shell, f"complete_{word}")(line[begidx:], line, begidx, len(line))


def make_shell(server, local, **kw) -> Harness:
    """A shell whose local folder is ``local``, connected to ``server`` when given."""
    out = StringIO()
    console = Console(file=out, width=200, color_system=None)
    shell = Shell(console=console, stdin=StringIO(), stdout=StringIO(), local_cwd=str(local),
                  **kw)
    if server is not None:
        host, port = server.address
        assert shell.execute(f"open {host}:{port}").ok
    return Harness(shell, out)

