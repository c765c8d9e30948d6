"""The interactive shell and the batch runner: the command table, parsing, jobs,
completion and history.

Import rule: anything below cli.
"""
from .shell import *  # noqa: F401,F403
from .shell import __all__
