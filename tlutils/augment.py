"""Data augmentation pipelines built from Keras 3 preprocessing layers (backend-agnostic).

Explained in 05_data_augmentation (the layers, RandomAffine, the augmenter, the converged head
on augmented embeddings) and 06_augmentation_in_practice (MixUp and CutMix, test-time
augmentation); reused as a robustness baseline in 07_measure_a_shift and 08_repair_a_shift.
"""

from __future__ import annotations

import math

import keras
import numpy as np

STRENGTHS = {
    # name: (rotation as a fraction of a full turn, zoom, translation, contrast)
    "light": (0.02, 0.05, 0.05, 0.05),
    "medium": (0.05, 0.15, 0.1, 0.2),
    "strong": (0.15, 0.3, 0.2, 0.4),
}


@keras.saving.register_keras_serializable(package="tlutils")
class RandomAffine(keras.layers.Layer):
    """Random rotation, zoom and shift of each image, in one resampling. Identity at inference.

    rotation: a fraction of a full turn; zoom: relative change of scale (positive zooms out);
    shift: a fraction of the width and height. Each is drawn uniformly in [-value, value].
    Chaining RandomRotation, RandomZoom and RandomTranslation resamples (and blurs) the
    image three times; one affine transform does it once. On the JAX backend it is also
    several times faster inside a training step than those three layers (measured in
    docs/performance.md). Explained in 05_data_augmentation.
    """

    def __init__(self, rotation: float = 0.0, zoom: float = 0.0, shift: float = 0.0,
                 fill_mode: str = "reflect", seed: int | None = None, **kwargs):
        kwargs.setdefault("dtype", "float32")  # resampling in float32, also under mixed precision
        super().__init__(**kwargs)
        self.rotation, self.zoom, self.shift, self.fill_mode, self.seed = (
            rotation, zoom, shift, fill_mode, seed)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=None):
        images = keras.ops.cast(images, self.compute_dtype)
        if not training:
            return images
        ops = keras.ops
        h, w = images.shape[1], images.shape[2]
        u = keras.random.uniform((ops.shape(images)[0], 4), -1.0, 1.0, seed=self.seed_generator)
        angle, scale = u[:, 0] * self.rotation * 2 * math.pi, 1.0 + u[:, 1] * self.zoom
        tx, ty = u[:, 2] * self.shift * w, u[:, 3] * self.shift * h
        cos, sin = ops.cos(angle) * scale, ops.sin(angle) * scale
        cx, cy = (w - 1) / 2, (h - 1) / 2
        # output pixel (x, y) reads the input at (cos·x − sin·y + a2, sin·x + cos·y + b2):
        # rotate and scale about the centre, then shift
        a2 = cx - cos * cx + sin * cy - tx
        b2 = cy - sin * cx - cos * cy - ty
        zero = ops.zeros_like(cos)
        transform = ops.stack([cos, -sin, a2, sin, cos, b2, zero, zero], axis=1)
        return ops.image.affine_transform(images, transform, interpolation="bilinear",
                                          fill_mode=self.fill_mode)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "rotation": self.rotation, "zoom": self.zoom,
                "shift": self.shift, "fill_mode": self.fill_mode, "seed": self.seed}


def augmenter(strength: str = "medium", seed: int | None = None) -> keras.Sequential:
    """Random flip, rotation, zoom, translation and contrast for images in 0..255.

    Active only when called with training=True (inside fit); identity at inference.
    Rotation, zoom and translation are one RandomAffine transform. Each layer gets its own
    seed (seed, seed + 1, ...): layers given the same seed draw the same random numbers, so
    their transformations would move in lockstep.
    """
    rotation, zoom, shift, contrast = STRENGTHS[strength]
    seeds = [None] * 3 if seed is None else [seed + i for i in range(3)]
    return keras.Sequential([
        keras.layers.RandomFlip("horizontal", seed=seeds[0]),
        RandomAffine(rotation, zoom, shift, fill_mode="reflect", seed=seeds[1]),
        keras.layers.RandomContrast(contrast, value_range=(0, 255), seed=seeds[2]),
    ], name=f"augment_{strength}")


class AlwaysOn(keras.layers.Layer):
    """Wraps an augmentation layer so that it also runs at inference (predict, evaluate).

    Used by view_predictions and tta_predict (test-time augmentation).
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
    Explained in 06_augmentation_in_practice.
    """
    viewer = keras.Sequential([AlwaysOn(augmentation), model])
    return np.stack([viewer.predict(x, batch_size=batch_size, verbose=0) for _ in range(n_views)])


def tta_predict(model: keras.Model, x: np.ndarray, augmentation: keras.Layer,
                n_views: int = 4, batch_size: int = 32) -> np.ndarray:
    """Test-time augmentation: class probabilities averaged over x and n_views augmented copies.

    Explained in 06_augmentation_in_practice.
    """
    clean = model.predict(x, batch_size=batch_size, verbose=0)
    if n_views == 0:
        return clean
    views = view_predictions(model, x, augmentation, n_views, batch_size)
    return (clean + views.sum(axis=0)) / (n_views + 1)


def mix_batches(layer: keras.Layer, x: np.ndarray, y_onehot: np.ndarray,
                batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Apply MixUp or CutMix batch by batch: images and one-hot labels mixed within each batch.

    Returns float32 images and soft labels in the same order. Explained in
    06_augmentation_in_practice.
    """
    xs, ys = [], []
    for i in range(0, len(x), batch_size):
        out = layer({"images": x[i:i + batch_size].astype("float32"),
                     "labels": y_onehot[i:i + batch_size].astype("float32")},
                    training=True)
        xs.append(keras.ops.convert_to_numpy(out["images"]).astype("float32"))
        ys.append(keras.ops.convert_to_numpy(out["labels"]).astype("float32"))
    return np.concatenate(xs), np.concatenate(ys)


def fit_converged(feats: np.ndarray, labels: np.ndarray, c: float):
    """fit_logreg's model (notebook 04) at a given C, on one-hot or soft labels: each row
    counts once per class, weighted by that class's share of its label (05_data_augmentation;
    06_augmentation_in_practice fits it on MixUp's and CutMix's mixed labels)."""
    from sklearn.linear_model import LogisticRegression

    keep = labels.ravel() > 0
    rows = np.repeat(feats, labels.shape[1], axis=0)[keep]
    classes = np.tile(np.arange(labels.shape[1]), len(labels))[keep]
    return LogisticRegression(C=c, max_iter=5000).fit(
        rows, classes, sample_weight=labels.ravel()[keep]
    )
