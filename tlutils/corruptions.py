"""Synthetic corruptions in the style of ImageNet-C: data for measuring domain shift.

Explained in 07_measure_a_shift. Images are uint8 arrays (n x h x w x 3); the functions use
numpy, Pillow and keras.ops only, so they run on every Keras backend.
"""

from __future__ import annotations

import io

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
