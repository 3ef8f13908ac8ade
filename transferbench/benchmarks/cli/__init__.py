"""The ``transferbench`` command line."""

from transferbench.benchmarks.cli.main import main

__all__ = ["main"]
