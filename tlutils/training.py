"""Small training helpers shared by the notebooks.

Snapshots are explained in 01_feature_extraction (the data-efficiency curve).
"""

from __future__ import annotations

import keras
import numpy as np


def snapshot(model: keras.Model) -> list[np.ndarray]:
    """Copy of a compiled model's weights and optimizer state, for restore().

    Re-training a model restored from a snapshot gives the same start as building and
    compiling it anew, without paying the graph-tracing cost again (about 10 s a model
    on two CPU cores).
    """
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    return [keras.ops.convert_to_numpy(v) for v in model.variables + model.optimizer.variables]


def restore(model: keras.Model, state: list[np.ndarray]) -> None:
    """Put back the weights and optimizer state saved by snapshot()."""
    for var, value in zip(model.variables + model.optimizer.variables, state, strict=True):
        var.assign(value)


def accuracy(model: keras.Model, x, y, batch_size: int = 64) -> float:
    """Fraction of x that the model classifies as y."""
    pred = model.predict(x, batch_size=batch_size, verbose=0).argmax(axis=1)
    return float(np.mean(pred == np.asarray(y)))
