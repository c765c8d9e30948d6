"""``cat FILE...`` and ``get FILE -``: downloads streamed to stdout through
:meth:`pyftp.Client.getfo`. No partial file and no resume; the digest is still checked
at the end, and a mismatch fails the command after the fact (exit 1 in the one-shot
modes), so a pipeline reading the bytes can tell from the exit code.

Import rule: client, errors, ui and the shell's own modules.
"""
from __future__ import annotations

import posixpath

from ..hints import TYPE_CHECKING, LEAN

from ..client import Client
from ..ui import safe_name
from .base import ShellBase
from .commands import Fields, UsageError
from .jobs import _result_json

if TYPE_CHECKING or not LEAN:  # names for annotations; see pyftp.hints
    from typing import IO


class StreamMixin(ShellBase):
    """Shell's downloads to stdout."""

    #: where streamed file bytes go (stdout's binary layer); None: nowhere to stream
    binary_out: IO[bytes] | None

    def do_cat(self, arg: str) -> Fields:
        """cat REMOTE|PATTERN...: write remote files to stdout, one after the other."""
        a = self._args("cat", arg)
        c = self._require_client()
        results = [self._stream(c, p, "cat") for w in a.args for p in self._matches(c, w)]
        return results[0] if len(results) == 1 else {"files": results}

    def _stream(self, c: Client, remote: str, name: str) -> Fields:
        """Download ``remote`` into :attr:`binary_out`, verified; its JSON fields."""
        if self.json_output:
            raise UsageError(f"{name}: the file would go to stdout, where --json writes; "
                             "give a local file name instead")
        out = self.binary_out
        if out is None:
            raise UsageError(f"{name}: there is no binary stdout here; give a local file name")
        getfo = getattr(c, "getfo", None)
        if getfo is None:
            raise UsageError(f"{name}: this client cannot stream a download (it needs "
                             "Client.getfo); give a local file name")
        self.console.file.flush()  # what was printed before goes out before the bytes
        label = f"{name} {safe_name(posixpath.basename(remote.rstrip('/')) or remote)}"
        try:
            if out.isatty():  # a bar would share the screen's lines with the bytes
                r = getfo(remote, out)
            else:
                with self.reporter.transfer(label, None) as on_progress:
                    r = getfo(remote, out, on_progress=on_progress)
        finally:
            out.flush()
        return _result_json(r, self._abs(remote))
