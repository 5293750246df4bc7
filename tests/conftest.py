"""Test set-up: a writable offline cache filled from ../shared/data, the smoke profile.

Runs before collection, so nbval's notebook kernels inherit the environment.
"""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("TLU_SHARED_DATA", ROOT.parent / "shared" / "data"))


def pytest_configure(config):
    os.environ.setdefault("TLU_PROFILE", "smoke")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.setdefault("KERAS_HOME", str(ROOT / "build" / "test-cache"))
    if SHARED.is_dir():
        from tlutils.data import build_offline_cache

        build_offline_cache(SHARED)
