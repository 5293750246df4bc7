"""Grad-CAM: where in the image a classifier's class score comes from (written out in
09_trust_your_model, with its sanity check and location-only controls).

Keras has no backend-neutral gradient, so `gradient` holds one small function per backend.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np


def _gradient_tensorflow(fn: Callable, a):
    import tensorflow as tf

    a = tf.convert_to_tensor(a)
    with tf.GradientTape() as tape:
        tape.watch(a)
        total = tf.reduce_sum(fn(a))
    return tape.gradient(total, a)


def _gradient_jax(fn: Callable, a):
    import jax

    return jax.grad(lambda t: fn(t).sum())(a)


def _gradient_torch(fn: Callable, a):
    import torch

    a = keras.ops.convert_to_tensor(a).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(fn(a).sum(), a)
    return grad


GRADIENTS = {"tensorflow": _gradient_tensorflow, "jax": _gradient_jax, "torch": _gradient_torch}


def gradient(fn: Callable, a) -> np.ndarray:
    """d fn(a).sum() / d a on the current Keras backend, as a NumPy array. fn maps a batch to
    one score per example, and examples do not interact (inference mode), so row i of the
    result is the gradient of example i's score."""
    backend = keras.backend.backend()
    if backend not in GRADIENTS:
        raise ValueError(f"Grad-CAM has no gradient for the {backend} backend; use one of "
                         f"{sorted(GRADIENTS)}.")
    return keras.ops.convert_to_numpy(GRADIENTS[backend](fn, a))


def conv_model(classifier: keras.Model) -> keras.Model:
    """Images -> the last convolutional block's activations (batch, h, w, channels) of a model
    built by backbones.build_classifier: its layers up to the "pool" layer, weights shared."""
    inputs = keras.Input(classifier.inputs[0].shape[1:])
    x = inputs
    for layer in classifier.layers[1:]:
        if layer.name == "pool":
            return keras.Model(inputs, x, name="conv_activations")
        x = layer(x, training=False) if isinstance(layer, keras.Model) else layer(x)
    raise ValueError("the classifier has no layer named 'pool' (see backbones.build_classifier)")


def class_scores(classifier: keras.Model) -> Callable:
    """Activations (batch, h, w, c) -> every class's score before the softmax, centred: the
    average pool, the "head" layer's kernel and bias (dropout is off at inference), minus the
    mean over the classes. The softmax ignores a constant added to every score, so only the
    centred scores are defined: a two-class logistic head gives one class a score of 0."""
    head = classifier.get_layer("head")

    def scores(a):
        pooled = keras.ops.mean(keras.ops.cast(a, "float32"), axis=(1, 2))
        z = keras.ops.matmul(pooled, head.kernel) + head.bias
        return z - keras.ops.mean(z, axis=1, keepdims=True)

    return scores


def gradcam(classifier: keras.Model, x: np.ndarray, classes, batch_size: int = 32) -> np.ndarray:
    """Grad-CAM maps (n, h, w) at the last convolutional block, each scaled to a maximum of 1
    (all zeros where no location raises the score): for image i, the gradient of class
    classes[i]'s score with respect to the activations, averaged over the locations to weigh
    each channel, the weighted sum of the channels, then ReLU (09_trust_your_model)."""
    conv, scores = conv_model(classifier), class_scores(classifier)
    classes, n_classes = np.asarray(classes), classifier.get_layer("head").kernel.shape[-1]
    if classes.shape != (len(x),) or not np.issubdtype(classes.dtype, np.integer):
        raise ValueError(f"Give one class number per image: {len(x)} images, classes of shape "
                         f"{classes.shape} ({classes.dtype}).")
    if len(classes) and (classes.min() < 0 or classes.max() >= n_classes):
        raise ValueError(f"Classes must be 0..{n_classes - 1}; got {classes.min()} to "
                         f"{classes.max()}.")
    finite = np.isfinite(np.asarray(x, dtype="float32")).reshape(len(x), -1).all(axis=1)
    if not finite.all():
        raise ValueError(f"Image {int(np.argmin(finite))} has NaN or infinite pixels; a map of "
                         "it would be meaningless.")
    maps = []
    for start in range(0, len(x), batch_size):
        a = keras.ops.convert_to_numpy(conv(x[start:start + batch_size], training=False))
        a = a.astype("float32")
        c = keras.ops.convert_to_tensor(classes[start:start + batch_size][:, None])
        grads = gradient(lambda t, c=c: keras.ops.take_along_axis(scores(t), c, axis=1), a)
        weights = grads.mean(axis=(1, 2))  # (batch, channels)
        maps.append(np.maximum(np.einsum("bhwk,bk->bhw", a.astype("float32"), weights), 0))
    cam = np.concatenate(maps)
    top = cam.max(axis=(1, 2), keepdims=True)
    return np.where(top > 0, cam / np.where(top > 0, top, 1), 0.0).astype("float32")


def upsample(maps: np.ndarray, size: int) -> np.ndarray:
    """Maps (n, h, w) resized bilinearly to (n, size, size), for drawing over the images."""
    big = keras.ops.image.resize(maps[..., None].astype("float32"), (size, size))
    return keras.ops.convert_to_numpy(big)[..., 0]


def rank_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman's rank correlation of maps a[i] and b[i], one number per pair (0 where a map is
    constant): the sanity check's measure of whether two maps point at the same places."""
    from scipy.stats import spearmanr

    out = []
    for u, v in zip(a.reshape(len(a), -1), b.reshape(len(b), -1), strict=True):
        out.append(0.0 if u.std() == 0 or v.std() == 0 else spearmanr(u, v).statistic)
    return np.asarray(out, dtype=float)


def overlay(ax, image: np.ndarray, cam: np.ndarray, title: str = "") -> None:
    """Draw an image with its Grad-CAM map (upsampled to its size) on top, half transparent."""
    ax.imshow(image.astype("uint8"))
    ax.imshow(upsample(cam[None], image.shape[0])[0], cmap="jet", alpha=0.45, vmin=0, vmax=1)
    ax.set_title(title, fontsize=8)
    ax.axis("off")
