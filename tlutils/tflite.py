"""A TFLite file run from Python: an interpreter on the plain built-in kernels, and one image
through it. 07_your_own_data checks its exported file with them; 13_ship_it_small measures
its quantised files. They need TensorFlow installed, whatever Keras' backend.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np


def interpreter(path: str | Path, threads: int | None = None):
    """A TFLite interpreter for the file at `path`, its tensors allocated, on the plain built-in
    kernels (one image needs no accelerating delegate); `threads=1` gives latencies that do not
    depend on how many cores are free (13_ship_it_small)."""
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
