"""Fitting helpers shared by the notebooks (named so as not to clash with Keras' `training=`).

Snapshots are explained in 01_feature_extraction (the data-efficiency curve); a fixed budget
of steps, `stream`, in 03_full_fine_tuning; the progress line of long loops in
02_partial_fine_tuning.
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


def restore(model: keras.Model, state: list[np.ndarray], seed: int | None = None) -> None:
    """Put back the weights and optimizer state saved by snapshot().

    The model's variables include the random state of its dropout and augmentation layers, so
    a restored model replays the snapshot's random draws. Pass the run's `seed` to give every
    such layer a state of its own, drawn from that seed: each seed then gets its own draws, the
    same in every run of the notebook (02_partial_fine_tuning, 04_data_augmentation). (On
    PyTorch, Keras's dropout draws from torch's own generator, which
    keras.utils.set_random_seed seeds, so there the seed changes nothing.)
    """
    variables = model.variables + model.optimizer.variables
    for var, value in zip(variables, state, strict=True):
        var.assign(value)
    if seed is not None:
        draws = np.random.default_rng(seed)
        for var in variables:
            if var.path.endswith("seed_generator_state"):
                var.assign(np.array([draws.integers(2**31), 0], dtype=var.dtype))


def accuracy(model: keras.Model, x, y, batch_size: int = 64) -> float:
    """Fraction of x that the model classifies as y (see predictions)."""
    return float(np.mean(predictions(model, x, batch_size) == np.asarray(y)))


def predictions(model: keras.Model, x, batch_size: int = 64) -> np.ndarray:
    """The class the model picks for each row of x; `predictions(...) == y` is each image's
    correctness, which two fixed models compare image by image (05_domain_shift).

    Calls the model batch by batch in inference mode rather than through predict():
    after every compile(), predict() traces a new function, and notebooks that score
    many runs would pay for it (and TensorFlow would warn about retracing).
    """
    out = []
    for i in range(0, len(x), batch_size):
        batch = keras.ops.convert_to_tensor(np.asarray(x[i:i + batch_size]), dtype="float32")
        out.append(keras.ops.convert_to_numpy(model(batch, training=False)).argmax(axis=1))
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def stream(idx, seed: int, steps: int, batch: int) -> np.ndarray:
    """steps * batch indices into a training set: shuffled passes over idx, so every
    labelled-set size gets the same number of gradient steps (03_full_fine_tuning)."""
    rng = np.random.default_rng(seed)
    passes = -(-steps * batch // len(idx))
    return np.concatenate([rng.permutation(idx) for _ in range(passes)])[: steps * batch]


def progress(items, label: str, every: float = 10.0):
    """Yield from items while one line says how many are done, the time so far and the time
    left: in a notebook the line is updated in place (one output, kept when the loop ends);
    elsewhere a line is printed at most every `every` seconds. Explained in
    02_partial_fine_tuning; the long loops of 03, 04, 08 and 09 use it too."""
    import time

    items = list(items)
    start = last = time.perf_counter()
    handle = _display_handle(f"{label}: 0 of {len(items)}")
    for i, item in enumerate(items, 1):
        yield item
        now = time.perf_counter()
        left = (now - start) / i * (len(items) - i)
        line = f"{label}: {i} of {len(items)}, {now - start:.0f} s" + (
            f", about {left:.0f} s to go" if i < len(items) else "")
        if handle is not None:
            handle.update(_Line(line))
        elif now - last >= every or i == len(items):
            print(line, flush=True)
            last = now


def _display_handle(line: str):
    """A display handle showing `line` inside an IPython kernel, else None."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        return None
    shell = get_ipython()
    if getattr(shell, "kernel", None) is None:  # a terminal IPython, or no IPython at all
        return None
    return display(_Line(line), display_id=True)


class _Line:
    """Plain text for IPython's display machinery (no quotes, as print shows it)."""

    def __init__(self, line: str):
        self.line = line

    def __repr__(self) -> str:
        return self.line
