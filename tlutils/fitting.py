"""Fitting helpers shared by the notebooks (named so as not to clash with Keras' `training=`).

Snapshots are explained in 01_feature_extraction (the data-efficiency curve); a fixed budget
of steps, `stream`, in 04_when_fine_tuning_pays; the progress line of long loops in
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
    same in every run of the notebook (02_partial_fine_tuning, 05_data_augmentation). (On
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
    correctness, which two fixed models compare image by image (07_measure_a_shift).

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
    labelled-set size gets the same number of gradient steps (04_when_fine_tuning_pays)."""
    rng = np.random.default_rng(seed)
    passes = -(-steps * batch // len(idx))
    return np.concatenate([rng.permutation(idx) for _ in range(passes)])[: steps * batch]


def progress(items, label: str, every: float = 10.0):
    """Yield from items under a tqdm bar: how many are done, the time so far and the time
    left. In a notebook the bar is one output updated in place (kept when the loop ends; it
    needs no widgets); in a terminal it is redrawn in place; in a log, a line at most every
    `every` seconds. Explained in 02_partial_fine_tuning; the long loops of later notebooks
    (03_full_fine_tuning to 17_ship_it_small) use it too."""
    import sys

    from tqdm.std import tqdm

    handle = _display_handle()
    if handle is not None:  # one display, updated in place
        out, interval = _Redraws(lambda line: handle.update(_Line(line))), 1.0
    elif sys.stdout.isatty():
        out, interval = sys.stdout, 1.0
    else:
        out, interval = _Redraws(lambda line: print(line, flush=True)), every
    yield from tqdm(list(items), desc=label, file=out, mininterval=interval, ncols=80,
                    bar_format="{desc}: {n} of {total} |{bar}| {elapsed} so far, "
                               "{remaining} to go")


class _Redraws:
    """A file for tqdm that hands each redrawn bar, as one line, to `show`."""

    encoding = "utf-8"  # tqdm draws its bar in block characters

    def __init__(self, show):
        self.show = show

    def write(self, text: str) -> None:
        line = text.replace("\r", "").strip()
        if line:
            self.show(line)

    def flush(self) -> None:
        pass


def _display_handle():
    """An empty display to update inside an IPython kernel, else None."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        return None
    if getattr(get_ipython(), "kernel", None) is None:  # a terminal IPython, or none at all
        return None
    return display(_Line(""), display_id=True)


class _Line:
    """Plain text for IPython's display machinery (no quotes, as print shows it)."""

    def __init__(self, line: str):
        self.line = line

    def __repr__(self) -> str:
        return self.line
