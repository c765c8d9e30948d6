"""Benchmark pyftp as users run it (the console scripts) and through its Python API,
against pyftpdlib + ftplib, "FTP + sha256sum" and the raw ``sendfile`` pair, in one run.

Modules: common (settings, results, helpers), servers (the processes measured against),
fixture (files and servers of one location), cli / api / system (the scenarios), report
and chart (targets, tables, PNG), main (the command line). The entry point is
``scripts/bench.py``. Not part of the package: pyftp is used only as a user would.
"""
