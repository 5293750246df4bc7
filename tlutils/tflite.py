"""A TFLite file run from Python: an interpreter on the plain built-in kernels, one image
through it, and the latency of several files timed alike. 10_your_own_data checks its exported
file with them; 17_ship_it_small measures its quantised files. They need TensorFlow installed,
whatever Keras' backend.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np


def interpreter(path: str | Path, threads: int | None = None):
    """A TFLite interpreter for the file at `path`, its tensors allocated, on the plain built-in
    kernels (one image needs no accelerating delegate); `threads=1` gives latencies that do not
    depend on how many cores are free (17_ship_it_small)."""
    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter warns that LiteRT replaces it
        resolvers = tf.lite.experimental.OpResolverType
        it = tf.lite.Interpreter(
            str(path), num_threads=threads,
            experimental_op_resolver_type=resolvers.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    return it


def predict_one(it, x: np.ndarray) -> tuple[np.ndarray, float]:
    """The interpreter's scores for one image `x` (no batch axis), and the seconds the call
    took."""
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    it.set_tensor(inp["index"], np.asarray(x, dtype="float32")[None])
    start = time.perf_counter()
    it.invoke()
    return it.get_tensor(out["index"])[0], time.perf_counter() - start


def latency(interpreters: dict, images: np.ndarray, calls: int = 200,
            rounds: int = 3) -> dict:
    """Single-image latency of each interpreter, in ms: `rounds` rounds over all of them,
    interleaved so that a busy moment of the machine hits every file alike, each round the
    median of `calls` calls on `images` in turn. Per key: (median of the rounds, (min, max) of
    the rounds) (17_ship_it_small)."""
    times = {key: [] for key in interpreters}
    for _ in range(rounds):
        for key, it in interpreters.items():
            one = [predict_one(it, images[i % len(images)])[1] for i in range(calls)]
            times[key].append(1000 * float(np.median(one)))
    return {key: (float(np.median(t)), (min(t), max(t))) for key, t in times.items()}
