"""Test set-up: a writable offline cache filled from ../shared/data, the smoke profile.

Runs before collection, so nbval's notebook kernels inherit the environment.
"""

import os
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("TLU_SHARED_DATA", ROOT.parent / "shared" / "data"))


def pytest_configure(config):
    os.environ["TLU_TEST_START"] = str(time.time())  # which metrics files this session wrote
    os.environ.setdefault("TLU_PROFILE", "smoke")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.setdefault("KERAS_HOME", str(ROOT / "build" / "test-cache"))
    from tlutils.course.run import kernel_environment

    os.environ.update(kernel_environment())  # nbval's kernels: no C++ log lines in the notebooks
    if SHARED.is_dir():
        from tlutils.course.offline import build_offline_cache

        build_offline_cache(SHARED)


@pytest.fixture(autouse=True)
def _keras_home_unchanged():
    """A test that points KERAS_HOME elsewhere without monkeypatch would send every later
    test, and the notebooks' kernels, to its temporary cache."""
    before = os.environ.get("KERAS_HOME")
    yield
    assert os.environ.get("KERAS_HOME") == before, "use monkeypatch.setenv for KERAS_HOME"


def pytest_collection_modifyitems(config, items):
    """Tests marked after_notebooks run last, once nbval has executed every notebook."""
    items.sort(key=lambda item: item.get_closest_marker("after_notebooks") is not None)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Fail a notebook cell (nbval) whose output carries library log noise (run.LOG_NOISE)."""
    outcome = yield
    report = outcome.get_result()
    outputs = getattr(item, "test_outputs", None)
    if call.when == "call" and report.passed and outputs:
        from tlutils.course.run import log_noise

        noisy = log_noise(outputs)  # e.g. TensorFlow's start-up lines
        if noisy:
            report.outcome = "failed"
            report.longrepr = f"Log noise in the output, to silence at its source: {noisy[0]}"
