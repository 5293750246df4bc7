"""Helpers for the transfer-learning course: data, backbones, features, plots, report, run.

Import the module you need (`from tlutils import data`); importing the package does nothing else.
"""

__version__ = "0.1.0"
