"""Presentation: sizes, names, listings and progress (rich | tqdm | lines | off).

Import rule: errors, protocol, client, sync (for types). rich and tqdm live here, in
shell and in cli only.
"""
from .core import *  # noqa: F401,F403
from .core import __all__
