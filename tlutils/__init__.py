"""Helpers for the transfer-learning course.

Lesson helpers, each explained in a notebook: data, backbones, features, fitting, finetune,
stats, augment, corruptions, adapt, folders, plots, text, transferability. Course machinery:
profiles (which settings a machine gets), report and run (execute the notebooks and collect
their numbers), and the command line in __main__.

Import the module you need (`from tlutils import data`); importing the package does nothing else.
"""

__version__ = "0.1.0"
