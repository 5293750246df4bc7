"""The notebooks are backend-agnostic: notebook 01 runs on Keras' JAX backend too.

This catches a TensorFlow-only call slipping into the notebooks or tlutils. The run is the
smoke profile with fewer curve points: on two CPU cores XLA runs MobileNet's depthwise
convolutions several times slower than TensorFlow (docs/performance-history.md), and every
code path still runs. The epochs stay those of the smoke profile, the budget under which
the notebook's own check holds.
"""

import json

from tlutils import run


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
