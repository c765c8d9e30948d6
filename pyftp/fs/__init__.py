"""``pyftp://`` for fsspec: :class:`PyftpFileSystem` (``pip install "pyftp[fsspec]"``).

Registered through the ``fsspec.specs`` entry point, so ``fsspec.open("pyftp://...")``,
``fsspec.filesystem("pyftp", host=..., port=...)`` and every library built on fsspec
(pandas, PyArrow, Dask) reach a pyftp server, every transfer verified. Modules:
:mod:`.filesystem` (the file system), :mod:`.bulk` (many files through the pipelined
batch calls), :mod:`.reads` (``cat_file`` / ``cat_ranges`` through verified ranged
gets), :mod:`.files` (buffered read and write files, shared verified copies),
:mod:`.pool` (connections pooled per server login, safe across fork) and
:mod:`.oserrors` (pyftp's errors as the builtin OSErrors fsspec expects).

Import rule: the public client API (``pyftp.client``, ``pyftp.errors``), the
protocol's constants, and fsspec. Never server, sync, ui, shell or cli.
"""
from .filesystem import PyftpFileSystem

__all__ = ["PyftpFileSystem"]
