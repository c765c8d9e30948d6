"""The shell and the client console script, for their tests: a Shell with its output
captured (commands go through ``Shell.execute``, the one place that prints errors and
picks outcomes, exactly as the prompt loop, ``-c`` and ``-b`` use it), and ``pyftp()``,
the console script run as a subprocess with a clean environment."""
from __future__ import annotations

import os
import subprocess
import sys
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



BIN = os.path.join(os.path.dirname(sys.executable), "pyftp")
#: the client console script (``python -m pyftp`` where it is not installed as a script)
PYFTP = [BIN] if os.path.exists(BIN) else [sys.executable, "-m", "pyftp"]


def clean_env(**extra: str) -> dict:
    """This process's environment without any PYFTP_ default, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYFTP_")}
    env.update(extra)
    return env


def pyftp(*args: str, cwd, env: dict | None = None, input: str | None = None,
          timeout: float = 60) -> subprocess.CompletedProcess:
    """Run ``pyftp ARGS`` in ``cwd`` and wait for it (bounded by ``timeout``)."""
    return subprocess.run([*PYFTP, *args], cwd=cwd, env=env or clean_env(), input=input,
                          capture_output=True, text=True, timeout=timeout)
