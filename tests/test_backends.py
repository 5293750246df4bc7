"""The notebooks are backend-agnostic: notebook 01 runs on Keras' JAX backend too.

This catches a TensorFlow-only call slipping into the notebooks or tlutils. The run is the
smoke profile with fewer epochs and curve points: on two CPU cores XLA trains MobileNet's
depthwise convolutions about 7x slower than TensorFlow (10 s against 1.4 s a step of 32
images, docs/performance.md), and every code path still runs.
"""

import json

from tlutils import run


def test_notebook_01_on_jax(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    monkeypatch.setenv("TLU_BUILD_DIR", str(tmp_path))
    out, error = run.execute(run.all_notebooks()[1], "smoke", {"EPOCHS": 2, "SHOTS": [2, None]})
    assert out.name == "01_feature_extraction.ipynb"
    assert error is None, f"notebook 01 failed on JAX: {error} (see {out})"
    metrics_file = tmp_path / "smoke" / "metrics" / "01_feature_extraction.json"
    recorded = json.loads(metrics_file.read_text())
    assert recorded["backend"] == "jax"
    assert recorded["metrics"]["fe_acc"] > recorded["metrics"]["scratch_acc"]
