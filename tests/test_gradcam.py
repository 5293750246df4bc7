"""tlutils.gradcam on every backend installed: the gradient matches the calculus, and on a
course-shaped classifier (pool + dense head) Grad-CAM equals the class activation map."""

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

SCRIPT = r"""
import numpy as np, keras
from tlutils import gradcam

# 1. gradient of a non-linear score: d/dt sum(t * sin(t)) = sin(t) + t cos(t), per example
t = np.random.default_rng(0).normal(size=(3, 4, 4, 2)).astype("float32")
fn = lambda a: keras.ops.sum(a * keras.ops.sin(a), axis=(1, 2, 3))
g = gradcam.gradient(fn, t)
expected = np.sin(t) + t * np.cos(t)
assert np.allclose(g, expected, atol=1e-5), np.abs(g - expected).max()

# 2. a classifier shaped like backbones.build_classifier, random weights
keras.utils.set_random_seed(0)
b_in = keras.Input((16, 16, 3))
b_out = keras.layers.Conv2D(6, 3, strides=4, padding="same", activation="relu")(b_in)
base = keras.Model(b_in, b_out, name="backbone")
inputs = keras.Input((16, 16, 3), name="image")
x = keras.layers.Rescaling(1 / 255, name="preprocess")(inputs)
x = base(x, training=False)
x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
x = keras.layers.Dropout(0.2, name="dropout")(x)
model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="head")(x))
images = np.random.default_rng(1).integers(0, 256, (5, 16, 16, 3)).astype("uint8")
classes = np.array([0, 1, 2, 1, 0])
maps = gradcam.gradcam(model, images, classes, batch_size=2)
assert maps.shape == (5, 4, 4) and maps.max() <= 1.0 and maps.min() >= 0.0
a = keras.ops.convert_to_numpy(base(images.astype("float32") / 255))
w = keras.ops.convert_to_numpy(model.get_layer("head").kernel)
w = w - w.mean(axis=1, keepdims=True)  # the centred scores' weights
cam = np.maximum(np.einsum("bhwk,kb->bhw", a, w[:, classes]), 0)
top = cam.max((1, 2), keepdims=True)
cam = np.where(top > 0, cam / np.maximum(top, 1e-12), 0)
assert np.allclose(maps, cam, atol=1e-5), np.abs(maps - cam).max()
assert gradcam.upsample(maps, 16).shape == (5, 16, 16)
print("ok", keras.backend.backend())
"""


def backends():
    found = []
    for backend, module in [("tensorflow", "tensorflow"), ("jax", "jax"), ("torch", "torch")]:
        marks = [] if importlib.util.find_spec(module) else [
            pytest.mark.skip(reason=f"{module} is not installed")]
        found.append(pytest.param(backend, marks=marks))
    return found


@pytest.mark.parametrize("backend", backends())
def test_gradcam_on_backend(backend):
    env = {**os.environ, "KERAS_BACKEND": backend}
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith(f"ok {backend}")


def test_rank_correlation():
    from tlutils import gradcam

    a = np.arange(16, dtype=float).reshape(1, 4, 4)
    assert gradcam.rank_correlation(a, a * 3 + 1)[0] == pytest.approx(1.0)
    assert gradcam.rank_correlation(a, -a)[0] == pytest.approx(-1.0)
    assert gradcam.rank_correlation(a, np.zeros_like(a))[0] == 0.0  # a blank map


def test_unknown_backend_is_one_sentence(monkeypatch):
    from tlutils import gradcam

    monkeypatch.setattr(gradcam.keras.backend, "backend", lambda: "numpy")
    with pytest.raises(ValueError, match="no gradient for the numpy backend"):
        gradcam.gradient(lambda t: t, np.zeros((1, 2)))
