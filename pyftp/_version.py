"""The package version, on its own so that ``pyftp --version`` imports nothing else."""
__version__ = "0.1.0"
