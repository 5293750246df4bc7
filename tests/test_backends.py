"""The notebooks are backend-agnostic: notebook 01 runs on Keras' JAX backend too.

This catches a TensorFlow-only call slipping into the notebooks or tlutils.
"""

import json

from tlutils import run


def test_notebook_01_on_jax(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    monkeypatch.setenv("TLU_BUILD_DIR", str(tmp_path))
    out, error = run.execute(run.all_notebooks()[1], "smoke")
    assert out.name == "01_feature_extraction.ipynb"
    assert error is None, f"notebook 01 failed on JAX: {error} (see {out})"
    metrics_file = tmp_path / "smoke" / "metrics" / "01_feature_extraction.json"
    recorded = json.loads(metrics_file.read_text())
    assert recorded["backend"] == "jax"
    assert recorded["metrics"]["fe_acc"] > recorded["metrics"]["scratch_acc"]
