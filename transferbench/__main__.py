"""``python -m transferbench``: the command line, as launchers run it (``torchrun -m transferbench run ...``)."""

import sys

from transferbench.benchmarks.cli import main

sys.exit(main())
