"""Fine-tuning helpers: warm heads, epoch timing, schedules, layer-wise rates, L2-SP.

Warm heads and epoch timing are explained in 02_partial_fine_tuning; the warm-up +
cosine schedule, layer-wise learning rates and L2-SP in 03_full_fine_tuning.
All of it uses Keras 3 APIs only, so it runs on every backend.
"""

from __future__ import annotations

import time

import keras
import numpy as np

from tlutils.backbones import backbone_of, build_head, list_blocks
from tlutils.fitting import accuracy, restore, snapshot


def fit_heads(f_train, y_train, f_val, y_val, seeds, epochs: int, lr: float,
              batch_size: int = 32, callbacks=None) -> tuple[list[float], list[list[np.ndarray]]]:
    """Feature extraction once per seed: a dropout + softmax head on cached embeddings.

    Returns each seed's final validation accuracy and the weights of its "head" layer,
    ready for `model.get_layer("head").set_weights(...)`. One compiled head is reset
    per seed, so the seeds cost no extra tracing. The recipe (a head on cached embeddings)
    is the one of 01; fit_heads is used from 02_partial_fine_tuning on.
    """
    n_classes = int(max(np.max(y_train), np.max(y_val))) + 1
    head = build_head(f_train.shape[1], n_classes)
    head.compile(keras.optimizers.Adam(lr), "sparse_categorical_crossentropy", metrics=["accuracy"])
    start = snapshot(head)
    dense = head.get_layer("head")
    accs, weights = [], []
    for seed in seeds:
        restore(head, start, seed)
        keras.utils.set_random_seed(seed)
        dense.kernel.assign(keras.initializers.GlorotUniform(seed)(dense.kernel.shape))
        hist = head.fit(f_train, y_train, validation_data=(f_val, y_val), validation_freq=epochs,
                        epochs=epochs, batch_size=batch_size, verbose=0, callbacks=callbacks)
        accs.append(float(hist.history["val_accuracy"][-1]))
        weights.append(dense.get_weights())
    return accs, weights


def fit_from_warm_heads(model: keras.Model, start: list, warm_heads: list, seeds, x, y,
                        x_val, y_val, after_each=None, callbacks=(), **fit_kwargs) -> list[dict]:
    """Fine-tune a compiled model once per seed, each run from `start` (a fitting.snapshot)
    with that seed's warm head (see fit_heads). Returns one dict per seed: "acc" (validation
    accuracy at the end), "history", "seconds" (of each epoch, the first with tracing) and
    "extra" (what after_each() returned). Explained in 02_partial_fine_tuning; 03 uses it.
    """
    runs = []
    for seed, head_weights in zip(seeds, warm_heads, strict=True):
        restore(model, start, seed)
        model.get_layer("head").set_weights(head_weights)
        keras.utils.set_random_seed(seed)
        timer = EpochTimer()
        history = model.fit(x, y, verbose=0, callbacks=[timer, *callbacks], **fit_kwargs)
        runs.append({"acc": accuracy(model, x_val, y_val), "history": history.history,
                     "seconds": timer.seconds, "extra": after_each() if after_each else None})
    return runs


class EpochTimer(keras.callbacks.Callback):
    """Records the wall time of each epoch in `self.seconds` (the first includes tracing)."""

    def on_train_begin(self, logs=None):
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def warmup_cosine(peak_lr: float, total_steps: int, warmup_steps: int,
                  final_fraction: float = 0.0) -> keras.optimizers.schedules.CosineDecay:
    """Learning rate rising linearly from 0 to peak_lr, then a cosine down to
    final_fraction * peak_lr at total_steps (03_full_fine_tuning)."""
    warmup_steps = max(1, min(warmup_steps, total_steps - 1))
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0, decay_steps=max(1, total_steps - warmup_steps),
        alpha=final_fraction, warmup_target=peak_lr, warmup_steps=warmup_steps)


def block_lr_multipliers(model: keras.Model, backbone: str, top: float = 0.1,
                         bottom: float = 0.01) -> dict[str, float]:
    """Learning-rate factor per backbone variable path: `top` for the last block,
    falling geometrically to `bottom` for the first. The head (not listed) keeps 1.

    Explained in 03_full_fine_tuning (discriminative learning rates).
    """
    blocks = list_blocks(backbone_of(model), backbone)
    n = len(blocks)
    factors = {}
    for i, (_, layers) in enumerate(blocks):
        factor = top * (bottom / top) ** ((n - 1 - i) / max(1, n - 1))
        for layer in layers:
            for var in layer.weights:
                factors[var.path] = factor
    return factors


class LayerwiseAdam(keras.optimizers.Adam):
    """Adam whose step for each variable uses learning_rate * multipliers[variable.path].

    Variables missing from `multipliers` use factor 1. Scaling the learning rate, not
    the gradient, matters: Adam divides out any constant gradient scale. See
    03_full_fine_tuning.
    """

    def __init__(self, multipliers: dict[str, float], **kwargs):
        super().__init__(**kwargs)
        self.multipliers = dict(multipliers)

    def build(self, variables):
        super().build(variables)
        self._factors = [self.multipliers.get(v.path, 1.0) for v in variables]

    def update_step(self, gradient, variable, learning_rate):
        factor = self._factors[self._get_variable_index(variable)]
        super().update_step(gradient, variable, learning_rate * factor)

    def get_config(self):
        return {**super().get_config(), "multipliers": self.multipliers}


class L2SP(keras.regularizers.Regularizer):
    """strength * sum((w - anchor)^2): a pull toward the starting weights (L2-SP).

    With anchor None it is the plain L2 penalty, a pull toward zero (weight decay).
    Explained in 03_full_fine_tuning.
    """

    def __init__(self, strength: float, anchor: np.ndarray | None = None):
        self.strength = float(strength)
        self.anchor = None if anchor is None else np.array(anchor, dtype="float32")

    def __call__(self, x):
        diff = x if self.anchor is None else x - self.anchor
        return self.strength * keras.ops.sum(keras.ops.square(diff))

    def get_config(self):
        return {"strength": self.strength}  # the anchor lives with the weights, not here


def attach_l2sp(model: keras.Model, strength: float, toward: str = "start") -> int:
    """Regularize every trainable backbone weight toward its current value ("start",
    L2-SP) or toward zero ("zero", weight decay); strength 0 removes the penalty.

    Call it after unfreezing and before fit (recompile after changing it); returns the
    number of weights (scalars) it covers.
    """
    if toward not in ("start", "zero"):
        raise ValueError(f"toward must be 'start' or 'zero', not {toward!r}.")
    base = backbone_of(model)
    trainable = {id(v) for v in base.trainable_weights}
    covered = 0
    for var in base.weights:
        if id(var) not in trainable or not strength:
            var.regularizer = None
            continue
        anchor = keras.ops.convert_to_numpy(var) if toward == "start" else None
        var.regularizer = L2SP(strength, anchor)
        covered += int(np.prod(var.shape))
    return covered


def interpolate_weights(start: list[np.ndarray], end: list[np.ndarray],
                        alpha: float) -> list[np.ndarray]:
    """(1 - alpha) * start + alpha * end, array by array: weight-space ensembling (WiSE-FT,
    Wortsman et al., CVPR 2022) between two models of the same architecture, e.g. from
    model.get_weights(). Explained in 14_weight_averaging."""
    if len(start) != len(end):
        raise ValueError(f"The models differ: {len(start)} arrays vs {len(end)}.")
    out = []
    for a, b in zip(start, end, strict=True):
        if a.shape != b.shape:
            raise ValueError(f"The models differ: an array of shape {a.shape} vs {b.shape}.")
        mixed = (1.0 - alpha) * a.astype(np.float64) + alpha * b.astype(np.float64)
        out.append(mixed.astype(a.dtype))
    return out
