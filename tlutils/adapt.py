"""Adaptation to a shifted target domain without its labels: AdaBN, TENT, CORAL, DANN.

Explained in 08_repair_a_shift. Everything uses Keras 3 APIs and numpy, so it runs on every
Keras backend.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from tlutils.backbones import batchnorm_layers, leaf_layers


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
    fitting.snapshot/restore. Explained in 08_repair_a_shift.
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
