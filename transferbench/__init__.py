"""transferbench: what does transfer learning buy over training the same architecture from scratch?"""

__version__ = "0.1.0"
