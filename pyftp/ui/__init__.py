"""Presentation: sizes, names, listings and progress (rich | tqdm | lines | off).

Everything a person sees is rendered here, so the shell and the one-shot CLI look the
same and the client library never prints: :mod:`.text` (sizes, names, error lines),
:mod:`.listing` (ls tables), :mod:`.progress` (the Reporter family).

Import rule: errors, protocol, client, sync (for types). rich and tqdm live here, in
shell and in cli only, and are imported lazily: :mod:`.lite` writes results to a pipe
without them.
"""
from .lite import Line, PlainConsole, Rows, Stack
from .listing import Trimmed, listing
from .progress import (PROGRESS_MODES, JobDisplay, LinesReporter, Reporter, RichReporter,
                       TqdmReporter, job_display, make_reporter)
from .text import error_text, format_mtime, human_size, print_error, safe_name, transfer_summary

__all__ = [
    "human_size", "format_mtime", "safe_name", "error_text", "print_error",
    "listing", "transfer_summary", "Trimmed", "Reporter", "RichReporter", "TqdmReporter",
    "LinesReporter", "make_reporter", "PROGRESS_MODES", "JobDisplay", "job_display",
    "Line", "Rows", "Stack", "PlainConsole",
]
