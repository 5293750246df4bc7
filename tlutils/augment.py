"""Data augmentation pipelines built from Keras 3 preprocessing layers (backend-agnostic).

Explained in 04_data_augmentation (also test-time augmentation, MixUp and CutMix);
reused as a robustness baseline in 05_domain_shift.
"""

from __future__ import annotations

import keras
import numpy as np

STRENGTHS = {
    # name: (rotation as a fraction of a full turn, zoom, translation, contrast)
    "light": (0.02, 0.05, 0.05, 0.05),
    "medium": (0.05, 0.15, 0.1, 0.2),
    "strong": (0.15, 0.3, 0.2, 0.4),
}


def augmenter(strength: str = "medium", seed: int | None = None) -> keras.Sequential:
    """Random flip, rotation, zoom, translation and contrast for images in 0..255.

    Active only when called with training=True (inside fit); identity at inference.
    Each layer gets its own seed (seed, seed + 1, ...): layers given the same seed draw
    the same random numbers, so their transformations would move in lockstep.
    """
    rotation, zoom, shift, contrast = STRENGTHS[strength]
    seeds = [None] * 5 if seed is None else [seed + i for i in range(5)]
    return keras.Sequential([
        keras.layers.RandomFlip("horizontal", seed=seeds[0]),
        keras.layers.RandomRotation(rotation, fill_mode="reflect", seed=seeds[1]),
        keras.layers.RandomZoom(zoom, fill_mode="reflect", seed=seeds[2]),
        keras.layers.RandomTranslation(shift, shift, fill_mode="reflect", seed=seeds[3]),
        keras.layers.RandomContrast(contrast, value_range=(0, 255), seed=seeds[4]),
    ], name=f"augment_{strength}")


class AlwaysOn(keras.layers.Layer):
    """Wraps an augmentation layer so that it also runs at inference (predict, evaluate).

    Used for test-time augmentation; explained in 04_data_augmentation.
    """

    def __init__(self, layer: keras.Layer, **kwargs):
        super().__init__(**kwargs)
        self.layer = layer

    def call(self, images):
        return self.layer(images, training=True)


def view_predictions(model: keras.Model, x: np.ndarray, augmentation: keras.Layer,
                     n_views: int, batch_size: int = 32) -> np.ndarray:
    """model's predictions on n_views randomly augmented copies of x: (n_views, n, classes).

    The augmentation runs inside predict, batch by batch, on the backend's device.
    Explained in 04_data_augmentation.
    """
    viewer = keras.Sequential([AlwaysOn(augmentation), model])
    return np.stack([viewer.predict(x, batch_size=batch_size, verbose=0) for _ in range(n_views)])


def tta_predict(model: keras.Model, x: np.ndarray, augmentation: keras.Layer,
                n_views: int = 4, batch_size: int = 32) -> np.ndarray:
    """Test-time augmentation: class probabilities averaged over x and n_views augmented copies.

    Explained in 04_data_augmentation.
    """
    clean = model.predict(x, batch_size=batch_size, verbose=0)
    if n_views == 0:
        return clean
    views = view_predictions(model, x, augmentation, n_views, batch_size)
    return (clean + views.sum(axis=0)) / (n_views + 1)


def mix_batches(layer: keras.Layer, x: np.ndarray, y_onehot: np.ndarray,
                batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Apply MixUp or CutMix batch by batch: images and one-hot labels mixed within each batch.

    Returns float32 images and soft labels in the same order. Explained in 04_data_augmentation.
    """
    xs, ys = [], []
    for i in range(0, len(x), batch_size):
        out = layer({"images": x[i:i + batch_size].astype("float32"),
                     "labels": y_onehot[i:i + batch_size].astype("float32")},
                    training=True)
        xs.append(keras.ops.convert_to_numpy(out["images"]).astype("float32"))
        ys.append(keras.ops.convert_to_numpy(out["labels"]).astype("float32"))
    return np.concatenate(xs), np.concatenate(ys)
