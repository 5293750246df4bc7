"""Embeddings from a frozen backbone, computed once and cached on disk.

The cached-feature path is explained in 01_feature_extraction; the extractor itself is
backbones.feature_extractor.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tlutils.data import DiskImages, ImageData, batches, cache_root, load_cached, save_atomic


def features_path(data: ImageData, backbone: str, image_size: int) -> Path:
    """Where extract_features caches these embeddings; the precision is part of the name."""
    import keras

    policy = keras.config.dtype_policy().name  # bfloat16 embeddings differ from float32 ones
    tag = "" if policy == "float32" else f"-{policy}"
    return cache_root() / "tlutils" / "features" / f"{backbone}-{image_size}{tag}-{data.key}.npy"


def extract_features(data: ImageData, backbone: str, image_size: int,
                     batch_size: int = 64, extractor=None) -> np.ndarray:
    """Embeddings of data.x (n x d float32), read from the cache when computed before.

    The cache key is (backbone, image size, precision, the images' content key), so a
    different subset, size, backbone or dtype policy never reuses stale features.
    """
    path = features_path(data, backbone, image_size)
    cached = load_cached(path, lambda p: np.load(p, allow_pickle=False))
    if cached is not None and cached.shape[0] == len(data):
        return cached
    if extractor is None:
        from tlutils.backbones import feature_extractor

        extractor = feature_extractor(backbone, image_size)
    if isinstance(data.x, DiskImages):  # a big folder: read from disk, batch by batch
        feats = extractor.predict(batches(data.x, batch_size=batch_size), verbose=0)
    else:
        feats = extractor.predict(data.x, batch_size=batch_size, verbose=0)
    feats = feats.astype(np.float32)
    save_atomic(path, lambda f: np.save(f, feats))
    return feats
