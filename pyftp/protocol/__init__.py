"""The pyftp wire protocol, sans I/O: :mod:`.frames` (bytes <-> frames, limits),
:mod:`.schema` (every operation declared once, replies, partial-file names) and
:mod:`.shapes` (each op's checked arguments and replies as types).

Import rule: imports only :mod:`pyftp.errors`. No sockets, no files, no threads.
"""
from .shapes import *  # noqa: F401,F403
from .shapes import __all__ as _shapes_all
from .frames import *  # noqa: F401,F403
from .frames import __all__ as _frames_all
from .schema import *  # noqa: F401,F403
from .schema import __all__ as _schema_all

__all__ = [*_frames_all, *_schema_all, *_shapes_all]
