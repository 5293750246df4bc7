"""Helpers for the transfer-learning course.

Lesson helpers, each explained in a notebook, live here: data, digits, backbones, features,
fitting, finetune, stats, augment, corruptions, adapt, folders, plots, gradcam, calibration,
text, transferability.
Course machinery, which a learner never needs to open, lives in tlutils.course: assets
(datasets and weights into the cache), profiles, run, report and the command line (cli).

Import the module you need (`from tlutils import data`); importing the package does nothing else.
"""

__version__ = "0.1.0"
