"""``python -m pyftp`` runs the ``pyftp`` client command."""
import sys

from .cli import main

sys.exit(main())
