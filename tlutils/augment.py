"""Data augmentation pipelines built from Keras 3 preprocessing layers (backend-agnostic).

Explained in 04_data_augmentation; reused as a robustness baseline in 05_domain_shift.
"""

from __future__ import annotations

import keras

STRENGTHS = {
    # name: (rotation as a fraction of a full turn, zoom, translation, contrast)
    "light": (0.02, 0.05, 0.05, 0.05),
    "medium": (0.05, 0.15, 0.1, 0.2),
    "strong": (0.15, 0.3, 0.2, 0.4),
}


def augmenter(strength: str = "medium", seed: int | None = None) -> keras.Sequential:
    """Random flip, rotation, zoom, translation and contrast for images in 0..255.

    Active only when called with training=True (inside fit); identity at inference.
    """
    rotation, zoom, shift, contrast = STRENGTHS[strength]
    return keras.Sequential([
        keras.layers.RandomFlip("horizontal", seed=seed),
        keras.layers.RandomRotation(rotation, fill_mode="reflect", seed=seed),
        keras.layers.RandomZoom(zoom, fill_mode="reflect", seed=seed),
        keras.layers.RandomTranslation(shift, shift, fill_mode="reflect", seed=seed),
        keras.layers.RandomContrast(contrast, value_range=(0, 255), seed=seed),
    ], name=f"augment_{strength}")
