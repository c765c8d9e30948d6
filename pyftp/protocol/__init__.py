"""The pyftp wire protocol, sans I/O: :mod:`.frames` (bytes <-> frames, limits),
:mod:`.schema` (every operation declared once, replies, partial-file names) and
:mod:`.args` (each op's checked arguments as a type).

Import rule: imports only :mod:`pyftp.errors`. No sockets, no files, no threads.
"""
from .args import *  # noqa: F401,F403
from .args import __all__ as _args_all
from .frames import *  # noqa: F401,F403
from .frames import __all__ as _frames_all
from .schema import *  # noqa: F401,F403
from .schema import __all__ as _schema_all

__all__ = [*_frames_all, *_schema_all, *_args_all]
