"""The notebooks are backend-agnostic: notebook 01 runs on Keras' JAX backend too.

This catches a TensorFlow-only call slipping into the notebooks or tlutils. The run is the
smoke profile with fewer curve points: on two CPU cores XLA runs MobileNet's depthwise
convolutions several times slower than TensorFlow (docs/performance-history.md), and every
code path still runs. The epochs stay those of the smoke profile, the budget under which
the notebook's own check holds.
"""

import json
import os
import subprocess
import sys

from tlutils.course import run


def test_notebook_01_on_jax(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    monkeypatch.setenv("TLU_BUILD_DIR", str(tmp_path))
    out, error = run.execute(run.all_notebooks()[1], "smoke", {"SHOTS": [2, None]})
    assert out.name == "01_feature_extraction.ipynb"
    assert error is None, f"notebook 01 failed on JAX: {error} (see {out})"
    metrics_file = tmp_path / "smoke" / "metrics" / "01_feature_extraction.json"
    recorded = json.loads(metrics_file.read_text())
    assert recorded["backend"] == "jax"
    assert recorded["metrics"]["fe_acc"] > recorded["metrics"]["scratch_acc"]


def test_streamed_images_train_on_jax(tmp_path):
    """06's streaming path (DiskImages read through data.batches) on the JAX backend."""
    script = f"""
import numpy as np, keras
from tlutils import data
np.save({str(tmp_path / "x.npy")!r}, np.random.default_rng(0).integers(0, 255, (20, 8, 8, 3),
        dtype=np.uint8))
x, y = data.DiskImages({str(tmp_path / "x.npy")!r}).take(np.arange(2, 18)), np.arange(16) % 2
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
