"""The notebooks whose lesson depends on what the backend does run on JAX and on PyTorch too.

02 (BatchNorm: `trainable` against `training`), 06 (export, Grad-CAM's per-backend
gradient), 09 (LoRA) and 10 (distillation) each run once per backend, after the TensorFlow
run of the same session, at a reduced budget of their own parameters: on two CPU cores XLA
runs MobileNet's depthwise convolutions several times slower than TensorFlow
(docs/performance-history.md), and every code path still runs. A reduced run is too small
for the verdicts the notebook expects, so its Check asserts everything else
(ASSERT_CLAIMS=False lists the verdicts instead). Each leg records its backend, and its
headline lands within the tolerance its notebook states of the TensorFlow run's. The legs'
times and headlines go to build/smoke/backend-legs.json (docs/performance.md).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tlutils.course import assets, run

ROOT = Path(__file__).resolve().parents[1]
LEGS = {  # notebook: the reduced budget of a leg, in the notebook's own parameters
    "02_partial_fine_tuning": {"SEEDS": [0, 1], "FT_EPOCHS": 1, "KS": [0, 3], "SMALL_BATCH": 4},
    "06_your_own_data": {"FT_EPOCHS": 1},
    "09_efficient_transfer": {"SEEDS": [0, 1], "STEPS": 40},
    "10_ship_it_small": {"SEEDS": [0, 1], "STEPS": 300, "TRANSFER": 1000, "PRETRAIN_EPOCHS": 1},
}


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


@pytest.mark.after_notebooks
@pytest.mark.parametrize("backend", ["jax", "torch"])
@pytest.mark.parametrize("notebook", LEGS)
def test_notebook_on_another_backend(notebook, backend, tmp_path, monkeypatch):
    import importlib.util

    lock = {"jax": "requirements.lock", "torch": "requirements-torch.lock"}[backend]
    assert importlib.util.find_spec(backend), f"{backend} is not installed: pip install -r {lock}"
    monkeypatch.setenv("KERAS_BACKEND", backend)
    monkeypatch.setenv("TLU_BUILD_DIR", str(tmp_path))
    path = next(p for p in run.all_notebooks() if p.stem == notebook)
    out, error = run.execute(path, "smoke", {**LEGS[notebook], "ASSERT_CLAIMS": False})
    assert error is None, f"{notebook} failed on {backend}: {error} (see {out})"
    recorded = json.loads((tmp_path / "smoke" / "metrics" / f"{notebook}.json").read_text())
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
    """06's streaming path (DiskImages read through data.batches) on the JAX backend."""
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
