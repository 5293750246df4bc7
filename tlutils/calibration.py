"""Calibration: does a classifier's confidence match how often it is right? Expected
calibration error and temperature scaling, in distribution and under shift, with a confidence
threshold for "I don't know" (written out in 09_trust_your_model).
"""

from __future__ import annotations

import numpy as np


def checked(probs, y) -> tuple[np.ndarray, np.ndarray]:
    """probs (n, classes) and labels y as arrays, or ValueError in one sentence: no images, a
    row that is not probabilities (NaN, negative, not summing to 1), a label out of range."""
    probs, y = np.asarray(probs, dtype=float), np.asarray(y)
    if probs.ndim != 2 or len(probs) == 0 or len(probs) != len(y):
        raise ValueError(f"Expected probabilities of shape (images, classes) and one label per "
                         f"image; got {probs.shape} and {len(y)} labels.")
    bad = ~np.isfinite(probs).all(axis=1) | (probs < 0).any(axis=1) | (
        np.abs(probs.sum(axis=1) - 1) > 1e-3)
    if bad.any():
        raise ValueError(f"Row {int(np.argmax(bad))} of probs is not a probability vector "
                         f"(sum {probs[bad][0].sum():.3g}); pass the softmax output, not logits.")
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= probs.shape[1]:
        raise ValueError(f"Labels must be class numbers 0..{probs.shape[1] - 1}; got values "
                         f"from {y.min()} to {y.max()}.")
    return probs, y


def ece(probs: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error of the top class: sum over equal-width confidence bins of
    (share of images in the bin) x |accuracy in the bin - mean confidence in the bin|."""
    probs, y = checked(probs, y)
    conf, correct = probs.max(axis=1), probs.argmax(axis=1) == y
    which = np.minimum((conf * bins).astype(int), bins - 1)  # bin b holds [b/bins, (b+1)/bins)
    total = 0.0
    for b in np.unique(which):
        inside = which == b
        total += inside.mean() * abs(correct[inside].mean() - conf[inside].mean())
    return float(total)


def ece_se(probs: np.ndarray, y: np.ndarray, bins: int = 10, n_boot: int = 200,
           seed: int = 0) -> float:
    """Bootstrap standard error of ece: its spread over n_boot resamplings of the images, with
    replacement. For two ECEs on different images, combine: sqrt(se1**2 + se2**2)
    (09_trust_your_model: photos against sketches)."""
    rng = np.random.default_rng(seed)
    probs, y = np.asarray(probs), np.asarray(y)
    draws = [ece(probs[i], y[i], bins) for i in rng.integers(0, len(y), (n_boot, len(y)))]
    return float(np.std(draws, ddof=1))


def ece_gap(probs_a: np.ndarray, probs_b: np.ndarray, y: np.ndarray, bins: int = 10,
            n_boot: int = 200, seed: int = 0) -> tuple[float, float]:
    """ece(a) - ece(b) on the same images, and its paired bootstrap standard error: both ECEs
    are computed on the same resampled images each time, so what the images share cancels
    (09_trust_your_model: before and after temperature scaling)."""
    rng = np.random.default_rng(seed)
    a, b, y = np.asarray(probs_a), np.asarray(probs_b), np.asarray(y)
    draws = [ece(a[i], y[i], bins) - ece(b[i], y[i], bins)
             for i in rng.integers(0, len(y), (n_boot, len(y)))]
    return ece(a, y, bins) - ece(b, y, bins), float(np.std(draws, ddof=1))


def scale(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Softmax(logits / T) from the probabilities: log p is the logits up to a constant per
    row, which the softmax ignores. T > 1 softens, T < 1 sharpens; the top class never moves."""
    z = np.log(np.clip(np.asarray(probs, dtype=float), 1e-12, None)) / temperature
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def nll(probs: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log-likelihood of the true classes (the cross-entropy loss)."""
    probs, y = checked(probs, y)
    p = probs[np.arange(len(y)), y]
    return float(-np.mean(np.log(np.clip(p, 1e-12, None))))


MIN_FIT = 3  # images fit_temperature needs


def fit_temperature(probs: np.ndarray, y: np.ndarray) -> float:
    """The one scalar T that minimises the negative log-likelihood of scale(probs, T) on these
    labelled images (Guo et al., ICML 2017), searched over log T in [-3, 3]. Needs at least
    MIN_FIT images: one or two only pin T to an end of the range."""
    from scipy.optimize import minimize_scalar

    probs, y = checked(probs, y)
    if len(y) < MIN_FIT:
        raise ValueError(f"A temperature needs at least {MIN_FIT} labelled images; got "
                         f"{len(y)}.")
    best = minimize_scalar(lambda s: nll(scale(probs, np.exp(s)), y), bounds=(-3.0, 3.0),
                           method="bounded")
    return float(np.exp(best.x))


def cross_fitted(probs: np.ndarray, y: np.ndarray, folds: int = 2,
                 seed: int = 0) -> tuple[np.ndarray, list[float]]:
    """Every image scaled with a temperature fitted on the other folds, never on itself, and
    the folds' temperatures: an honest ECE after scaling from one labelled set
    (09_trust_your_model)."""
    order = np.random.default_rng(seed).permutation(len(y))
    out, temps = np.empty_like(np.asarray(probs, dtype=float)), []
    for part in np.array_split(order, folds):
        rest = np.setdiff1d(order, part)
        temps.append(fit_temperature(probs[rest], y[rest]))
        out[part] = scale(probs[part], temps[-1])
    return out, temps

