"""``python -m pyftp`` runs the ``pyftp`` client command."""
from .cli import console

console()
