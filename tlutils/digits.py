"""Handwritten digits: MNIST test and USPS, and the digit task far from ImageNet.

The task is explained in 04_when_fine_tuning_pays; 07_measure_a_shift carries MNIST to USPS.
"""

from __future__ import annotations

import keras
import numpy as np

from tlutils.course.assets import fetch_file
from tlutils.data import stratified_split

DIGIT_FILES = ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]  # load_mnist_t10k


def load_mnist_t10k() -> tuple[np.ndarray, np.ndarray]:
    """The MNIST *test* set (10,000 digits, 28 x 28 uint8) and its labels.

    load_digit_task turns it into a task far from ImageNet; 07_measure_a_shift uses it as the
    source domain (the full training set is not shipped).
    """
    import gzip

    images, labels = DIGIT_FILES
    with gzip.open(fetch_file(images)) as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(fetch_file(labels)) as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
    return x, y


def load_usps(split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """USPS digits (split "train": 7,291, "test": 2,007) as 16 x 16 uint8, with labels.

    The target domain of the digits part of 07_measure_a_shift.
    """
    import h5py

    with h5py.File(fetch_file("usps.h5"), "r") as f:
        x = np.asarray(f[split]["data"]).reshape(-1, 16, 16)
        y = np.asarray(f[split]["target"]).astype(np.int64)
    return np.round(np.clip(x, 0, 1) * 255).astype(np.uint8), y


def load_digit_task(size: int, n_val: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    """MNIST test digits as a colour-image task far from ImageNet: (x_pool, y_pool, x_val,
    y_val), each digit resized to `size` px in 3 channels, `n_val` of them held out.

    Explained in 04_when_fine_tuning_pays; 05_data_augmentation uses it too.
    """
    x, y = load_mnist_t10k()
    pool, val = stratified_split(y, n_val / len(y), seed)
    return (resize_digits(x[pool], size, channels=3), y[pool],
            resize_digits(x[val], size, channels=3), y[val])


def resize_digits(x: np.ndarray, size: int, channels: int = 1) -> np.ndarray:
    """Grey digits (n, h, w) uint8 -> (n, size, size, channels) uint8, bilinear, still 0..255.

    channels=3 repeats the grey level for an ImageNet backbone (load_digit_task);
    07_measure_a_shift brings 16-pixel USPS digits to MNIST's 28 pixels.
    """
    import keras

    big = keras.ops.image.resize(x[..., None].astype("float32"), (size, size))
    big = np.clip(np.round(keras.ops.convert_to_numpy(big)), 0, 255).astype("uint8")
    return np.repeat(big, channels, axis=-1) if channels > 1 else big


def mnist_layout(x: np.ndarray, box: int = 20, size: int = 28) -> np.ndarray:
    """Digits that fill their frame (USPS: 16 x 16) laid out as MNIST's are: scaled to a
    `box`-pixel square and centred in a `size`-pixel frame, (n, size, size, 1) uint8.

    Stretching USPS to 28 pixels instead gives it about twice MNIST's ink, a difference of
    preprocessing, not of handwriting (07_measure_a_shift measures both)."""
    margin = (size - box) // 2
    small = resize_digits(x, box)
    return np.pad(small, ((0, 0), (margin, size - box - margin), (margin, size - box - margin),
                          (0, 0)))


def mnist_cnn():
    """A small CNN for 28 x 28 digits, pixels 0..255 in: three conv blocks, then a float32
    softmax. Written out in 07_measure_a_shift; 08_repair_a_shift builds the same network."""
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    for filters in (16, 32, 64):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization(momentum=0.9)(x)
        x = keras.layers.ReLU()(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(10, activation="softmax", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="mnist_cnn")
