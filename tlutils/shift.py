"""Domain shift: synthetic corruptions and test-time / unsupervised adaptation methods.

Everything here is explained in 05_domain_shift. Images are uint8 arrays (n x h x w x 3);
the functions use numpy, Pillow and keras.ops only, so they run on every Keras backend.
"""

from __future__ import annotations

import io

import keras
import numpy as np
from keras import ops

# Severity 1..5 parameters in the style of ImageNet-C (Hendrycks & Dietterich, ICLR 2019),
# for images in [0, 1]; blur sigmas are for 224-pixel images and scale with the image size.
SEVERITIES = {
    "gaussian_noise": (0.08, 0.12, 0.18, 0.26, 0.38),  # noise standard deviation
    "gaussian_blur": (1.0, 2.0, 3.0, 4.0, 6.0),  # blur sigma in pixels at 224 px
    "contrast": (0.4, 0.3, 0.2, 0.1, 0.05),  # fraction of the contrast kept
    "brightness": (0.1, 0.2, 0.3, 0.4, 0.5),  # added to every pixel
    "jpeg": (25, 18, 15, 10, 7),  # JPEG quality
    "pixelate": (0.6, 0.5, 0.4, 0.3, 0.25),  # fraction of the resolution kept
}


def _blur_matrix(n: int, sigma: float) -> np.ndarray:
    """n x n matrix that blurs a length-n signal with a Gaussian, reflecting at the edges."""
    radius = min(n - 1, max(1, int(np.ceil(3 * sigma))))
    offsets = np.arange(-radius, radius + 1)
    weights = np.exp(-0.5 * (offsets / sigma) ** 2)
    weights /= weights.sum()
    m = np.zeros((n, n), np.float32)
    rows = np.arange(n)
    for t, w in zip(offsets, weights, strict=True):
        cols = np.abs(rows + t)  # reflect below 0 ...
        cols = np.where(cols > n - 1, 2 * (n - 1) - cols, cols)  # ... and above n - 1
        np.add.at(m, (rows, cols), w)
    return m


def _blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur as two matrix products (fast on CPU, any backend)."""
    x = np.einsum("ij,njwc->niwc", _blur_matrix(x.shape[1], sigma), x, optimize=True)
    return np.einsum("ij,nhjc->nhic", _blur_matrix(x.shape[2], sigma), x, optimize=True)


def _jpeg(x: np.ndarray, quality: int) -> np.ndarray:
    from PIL import Image

    out = []
    for img in (x * 255).round().astype(np.uint8):
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=quality)
        out.append(np.asarray(Image.open(buf).convert("RGB"), np.float32) / 255)
    return np.stack(out)


def _pixelate(x: np.ndarray, keep: float) -> np.ndarray:
    h, w = x.shape[1:3]
    small = ops.image.resize(x, (max(1, round(h * keep)), max(1, round(w * keep))),
                             interpolation="bilinear", antialias=True)
    return ops.convert_to_numpy(ops.image.resize(small, (h, w), interpolation="nearest"))


def corrupt(x: np.ndarray, corruption: str, severity: int, seed: int = 0) -> np.ndarray:
    """A corrupted copy of uint8 images x at severity 1 (mild) to 5 (strong)."""
    if corruption not in SEVERITIES:
        raise ValueError(f"Unknown corruption {corruption!r}: choose from {list(SEVERITIES)}.")
    c = SEVERITIES[corruption][severity - 1]
    x = np.asarray(x, np.float32) / 255
    if corruption == "gaussian_noise":
        x = x + np.random.default_rng(seed).normal(0, c, x.shape).astype(np.float32)
    elif corruption == "gaussian_blur":
        x = _blur(x, c * x.shape[1] / 224)
    elif corruption == "contrast":
        mean = x.mean(axis=(1, 2, 3), keepdims=True)
        x = (x - mean) * c + mean
    elif corruption == "brightness":
        x = x + c
    elif corruption == "jpeg":
        x = _jpeg(x, c)
    elif corruption == "pixelate":
        x = _pixelate(x, c)
    return (np.clip(x, 0, 1) * 255).round().astype(np.uint8)


def leaf_layers(model: keras.Layer) -> list[keras.Layer]:
    """Every layer inside a model that is not itself a model (nor an input), nested included."""
    found = []
    for layer in getattr(model, "layers", []):
        if hasattr(layer, "layers"):
            found.extend(leaf_layers(layer))
        elif not isinstance(layer, keras.layers.InputLayer):
            found.append(layer)
    return found


def batchnorm_layers(model: keras.Layer) -> list[keras.layers.BatchNormalization]:
    """Every BatchNormalization layer inside a model, nested models included."""
    return [la for la in leaf_layers(model) if isinstance(la, keras.layers.BatchNormalization)]


def adabn(model: keras.Model, x: np.ndarray, batch_size: int = 64) -> None:
    """AdaBN (Li et al., 2016): replace BatchNorm's moving statistics by those of x.

    Runs x through the model in training mode with each layer's momentum set so that the
    moving mean and variance become the average over batches (dropout switched off);
    no weight is trained and every layer setting is put back afterwards.
    """
    bns = batchnorm_layers(model)
    drops = [la for la in leaf_layers(model) if isinstance(la, keras.layers.Dropout)]
    saved = [(bn.trainable, bn.momentum) for bn in bns]
    rates = [d.rate for d in drops]
    try:
        for bn in bns:
            bn.trainable = True  # a frozen BatchNorm layer ignores training=True
        for d in drops:
            d.rate = 0.0
        seen = 0
        for start in range(0, len(x), batch_size):
            batch = x[start:start + batch_size]
            for bn in bns:
                bn.momentum = seen / (seen + len(batch))  # 0 first: forget the old statistics
            model(batch, training=True)
            seen += len(batch)
    finally:
        for bn, (trainable, momentum) in zip(bns, saved, strict=True):
            bn.trainable, bn.momentum = trainable, momentum
        for d, rate in zip(drops, rates, strict=True):
            d.rate = rate


def entropy(y_true, y_pred):
    """Prediction entropy per example, a loss that ignores y_true (TENT's objective)."""
    p = ops.clip(y_pred, 1e-7, 1.0)
    return -ops.sum(p * ops.log(p), axis=-1)


def prepare_tent(model: keras.Model, learning_rate: float = 1e-3) -> None:
    """Make BatchNorm's scale and shift the only trainable weights and compile for TENT
    (Wang et al., ICLR 2021): then `fit` on unlabelled images minimises the entropy.

    Dropout is switched off for good. Compile once; reuse the model through
    training.snapshot/restore. Explained in 05_domain_shift.
    """
    def walk(container):
        container.trainable = True  # nested models must be trainable for their layers to be
        for layer in container.layers:
            if hasattr(layer, "layers"):
                walk(layer)
            else:
                layer.trainable = isinstance(layer, keras.layers.BatchNormalization)
                if isinstance(layer, keras.layers.Dropout):
                    layer.rate = 0.0

    walk(model)
    model.compile(keras.optimizers.Adam(learning_rate), loss=entropy)


class GradientReversal(keras.layers.Layer):
    """Identity on the way forward; multiplies gradients by -scale on the way back (DANN).

    Written with stop_gradient only, so it works on every backend: y = sg(x) + scale *
    (sg(x) - x) equals x exactly, and its gradient with respect to x is -scale.
    """

    def __init__(self, scale: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale

    def call(self, x):
        sg = ops.stop_gradient(x)
        return sg + self.scale * (sg - x)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


def build_dann(n_features: int, n_classes: int, hidden: int = 128, scale: float = 1.0,
               dropout: float = 0.2) -> keras.Model:
    """DANN (Ganin et al., JMLR 2016) on cached embeddings.

    features -> adapter -> {class head, gradient reversal -> domain head}. Train the class
    output on labelled source rows only (sample weight 0 for target rows) and the domain
    output on all rows (0 = source, 1 = target).
    """
    inputs = keras.Input((n_features,), name="features")
    z = keras.layers.Dense(hidden, activation="relu", name="adapter")(inputs)
    h = keras.layers.Dropout(dropout)(z)
    label = keras.layers.Dense(n_classes, activation="softmax", name="label", dtype="float32")(h)
    r = GradientReversal(scale, name="reverse")(z)
    r = keras.layers.Dense(hidden, activation="relu", name="domain_hidden")(r)
    domain = keras.layers.Dense(1, activation="sigmoid", name="domain", dtype="float32")(r)
    return keras.Model(inputs, {"label": label, "domain": domain}, name="dann")


def coral(source: np.ndarray, target: np.ndarray, eps: float = 1.0) -> np.ndarray:
    """CORAL (Sun et al., AAAI 2016): recolour source features with the target covariance.

    Whitens the centred source features (covariance + eps * I), re-colours them with the
    target covariance (+ eps * I) and moves them to the target mean; train the classifier
    on the result and apply it to the target features unchanged.
    """
    def cov_power(f, power):
        c = np.cov(f, rowvar=False) + eps * np.eye(f.shape[1])
        w, v = np.linalg.eigh(c)
        return (v * np.clip(w, 1e-12, None) ** power) @ v.T

    out = (source - source.mean(axis=0)) @ cov_power(source, -0.5) @ cov_power(target, 0.5)
    return (out + target.mean(axis=0)).astype(np.float32)
