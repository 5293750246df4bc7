"""The notebooks whose lesson depends on what the backend does run on JAX and on PyTorch too.

02 (BatchNorm: `trainable` against `training`), 07 (export, Grad-CAM's per-backend
gradient), 11 (LoRA) and 13 (distillation) each run once per backend, after the TensorFlow
run of the same session, at a reduced budget of their own parameters: on two CPU cores XLA
runs MobileNet's depthwise convolutions several times slower than TensorFlow
(docs/performance.md), and every code path still runs. A reduced run is too small
for the verdicts the notebook expects, so its Check asserts everything else
(ASSERT_CLAIMS=False lists the verdicts instead). Each leg records its backend, and its
headline lands within the tolerance its notebook states of the TensorFlow run's. The legs'
times and headlines go to build/smoke/backend-legs.json (docs/performance.md).

The eight legs run side by side, each in its own process pinned to one CPU core (where
`taskset` exists), the longest first. A leg on one core is slower than alone on two (07's
JAX leg 97.8 s against 86.0 s, 13's PyTorch leg 120 s against about 80 s), but together the
legs keep both cores busy: on 2 cores the eight took 609 s this way, against about 906 s one
after the other (docs/performance.md).
"""

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tlutils.course import assets, run

ROOT = Path(__file__).resolve().parents[1]
LEGS = {  # notebook: the reduced budget of a leg, in the notebook's own parameters
    "02_partial_fine_tuning": {"SEEDS": [0, 1], "FT_EPOCHS": 1, "KS": [0, 3], "SMALL_BATCH": 4},
    "10_your_own_data": {"FT_EPOCHS": 1},
    "15_tune_a_sliver": {"SEEDS": [0, 1], "STEPS": 40, "SURGERY_STEPS": 8},
    "17_ship_it_small": {"SEEDS": [0, 1], "STEPS": 300, "TRANSFER": 1000, "PRETRAIN_EPOCHS": 1},
}
BACKENDS = ["jax", "torch"]
LONGEST_FIRST = [  # each leg's time on one core of 2 (docs/performance.md), the longest first
    ("02_partial_fine_tuning", "jax"), ("15_tune_a_sliver", "jax"),
    ("17_ship_it_small", "jax"), ("17_ship_it_small", "torch"), ("10_your_own_data", "jax"),
    ("15_tune_a_sliver", "torch"), ("02_partial_fine_tuning", "torch"),
    ("10_your_own_data", "torch"),
]
MOST_AT_ONCE = 4  # legs side by side on a machine with more cores: each holds 1.5-2 GB
# one leg in a fresh kernel: its executed copy and metrics go to $TLU_BUILD_DIR
LEG_SCRIPT = """import json, sys
from tlutils.course import run
out, error = run.execute(sys.argv[1], "smoke", json.loads(sys.argv[2]))
print(json.dumps({"error": error, "out": str(out)}))
"""


def _run_leg(notebook: str, backend: str, root: Path, core: int | None) -> dict:
    """Run one leg in a child process, on `core` alone where the system can pin it."""
    where = root / f"{notebook}-{backend}"
    env = {**os.environ, "KERAS_BACKEND": backend, "TLU_BUILD_DIR": str(where),
           "JAX_COMPILATION_CACHE_DIR": str(where / "jax-cache"),  # a leg compiles per seed
           "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
    if core is not None:
        env["OMP_NUM_THREADS"] = "1"  # PyTorch's threads, on its one core
    path = next(p for p in run.all_notebooks() if p.stem == notebook)
    params = json.dumps({**LEGS[notebook], "ASSERT_CLAIMS": False})
    pin = ["taskset", "--cpu-list", str(core)] if core is not None else []
    done = subprocess.run([*pin, sys.executable, "-c", LEG_SCRIPT, str(path), params], env=env,
                          capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        return {"error": f"the leg's process exited with {done.returncode}: "
                         f"{done.stderr.strip()[-1500:]}"}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    metrics = where / "smoke" / "metrics" / f"{notebook}.json"
    if result["error"] is None:
        result["recorded"] = json.loads(metrics.read_text())
    return result


@pytest.fixture(scope="module")
def legs(tmp_path_factory) -> dict:
    """Every leg's result, keyed by (notebook, backend), run side by side on one core each."""
    root = tmp_path_factory.mktemp("legs")
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [None]
    if shutil.which("taskset") is None:
        cores = [None] * len(cores)
    workers = max(1, min(len(cores), MOST_AT_ONCE))
    free = list(range(workers))  # a worker takes a core index while its leg runs

    def one(leg):
        slot = free.pop()
        try:
            return leg, _run_leg(*leg, root, cores[slot])
        finally:
            free.append(slot)

    with ThreadPoolExecutor(workers) as pool:
        return dict(pool.map(one, LONGEST_FIRST))


def _this_sessions_run(notebook: str) -> dict | None:
    """The TensorFlow smoke run's metrics of `notebook` from this test session, or None."""
    path = ROOT / "build" / "smoke" / "metrics" / f"{notebook}.json"
    start = float(os.environ.get("TLU_TEST_START", "inf"))
    if not path.exists() or path.stat().st_mtime < start:
        return None
    return json.loads(path.read_text())


def _log_leg(row: dict) -> None:
    path = ROOT / "build" / "smoke" / "backend-legs.json"
    rows = json.loads(path.read_text()) if path.exists() else []
    rows = [r for r in rows if (r["notebook"], r["backend"]) != (row["notebook"], row["backend"])]
    text = json.dumps([*rows, row], indent=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    assets.save_atomic(path, lambda f: f.write(text.encode()))


def test_every_leg_is_scheduled():
    assert sorted(LONGEST_FIRST) == sorted((nb, b) for nb in LEGS for b in BACKENDS)


@pytest.mark.after_notebooks
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("notebook", LEGS)
def test_notebook_on_another_backend(notebook, backend, legs):
    import importlib.util

    lock = {"jax": "requirements.lock", "torch": "requirements-torch.lock"}[backend]
    assert importlib.util.find_spec(backend), f"{backend} is not installed: pip install -r {lock}"
    leg = legs[notebook, backend]
    assert leg["error"] is None, (
        f"{notebook} failed on {backend}: {leg['error']} (executed copy: {leg.get('out')})")
    recorded = leg["recorded"]
    assert recorded["backend"] == backend
    check = recorded["metrics"]["backend_check"]
    value = recorded["metrics"][check["metric"]]
    tf_run = _this_sessions_run(notebook)
    _log_leg({"notebook": notebook, "backend": backend, "wall_s": recorded["wall_s"],
              "metric": check["metric"], "value": value, "budget": LEGS[notebook],
              "tensorflow": tf_run and tf_run["metrics"][check["metric"]]})
    if tf_run is None:
        pytest.skip(f"{notebook} ran on {backend}; no TensorFlow run of it in this session to "
                    "compare its headline with")
    expected = tf_run["metrics"][check["metric"]]
    assert abs(value - expected) <= check["tolerance"], (
        f"{notebook} on {backend}: {check['metric']} {value:.3f}, TensorFlow's {expected:.3f} "
        f"(the notebook allows {check['tolerance']})")


def test_streamed_images_train_on_jax(tmp_path):
    """07's streaming path (DiskImages read through data.batches) on the JAX backend."""
    script = f"""
import numpy as np, keras
from tlutils import data
from tlutils.course import images
np.save({str(tmp_path / "x.npy")!r}, np.random.default_rng(0).integers(0, 255, (20, 8, 8, 3),
        dtype=np.uint8))
x, y = images.DiskImages({str(tmp_path / "x.npy")!r}).take(np.arange(2, 18)), np.arange(16) % 2
model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Rescaling(1 / 255),
                          keras.layers.Flatten(), keras.layers.Dense(2, activation="softmax")])
model.compile("adam", "sparse_categorical_crossentropy")
model.fit(data.batches(x, y, 4, shuffle=True), epochs=2, verbose=0)
probs = model.predict(data.batches(x, batch_size=4), verbose=0)
assert probs.shape == (16, 2), probs.shape
print(keras.backend.backend())
"""
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("jax")
