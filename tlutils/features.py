"""Embeddings from a frozen backbone, computed once and cached on disk.

The cached-feature path is explained in 01_feature_extraction; the extractor itself is
backbones.feature_extractor.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tlutils.course.assets import cache_root, load_cached, save_atomic
from tlutils.course.images import DiskImages
from tlutils.data import ImageData, batches


def _precision_tag() -> str:
    """"" under float32, else "-" + the dtype policy: bfloat16 embeddings differ from float32
    ones, so cache names carry it."""
    import keras

    policy = keras.config.dtype_policy().name
    return "" if policy == "float32" else f"-{policy}"


def features_path(data: ImageData, backbone: str, image_size: int) -> Path:
    """Where extract_features caches these embeddings; the precision is part of the name."""
    name = f"{backbone}-{image_size}{_precision_tag()}-{data.key}.npy"
    return cache_root() / "tlutils" / "features" / name


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


def content_key(x: np.ndarray) -> str:
    """A short key for an image array, from its bytes: equal arrays, equal keys."""
    import hashlib

    x = np.ascontiguousarray(x)
    return hashlib.sha1(str(x.shape).encode() + x.tobytes()).hexdigest()[:16]


def block_features(x: np.ndarray, backbone: str, image_size: int,
                   weights: str | None = "imagenet", seed: int = 0,
                   batch_size: int = 64) -> dict[str, np.ndarray]:
    """The pooled output of every block for images x (0..255): block name -> (n x channels)
    float32, cached on disk like extract_features, keyed by the images' bytes, the backbone,
    size, weights (random ones by seed) and precision. Explained in 16_choose_what_to_transfer."""
    import keras

    from tlutils.backbones import block_outputs_model

    tag = ("imagenet" if weights == "imagenet" else f"random{seed}") + _precision_tag()
    name = f"{backbone}-{image_size}-blocks-{tag}-{content_key(x)}.npz"
    path = cache_root() / "tlutils" / "features" / name
    cached = load_cached(path, lambda p: dict(np.load(p, allow_pickle=False)))
    if cached and all(len(v) == len(x) for v in cached.values()):
        return cached
    model, names = block_outputs_model(backbone, image_size, weights, seed)
    parts: list[list[np.ndarray]] = [[] for _ in names]
    for start in range(0, len(x), batch_size):  # called, not predict(): no tracing per model
        batch = keras.ops.convert_to_tensor(np.asarray(x[start:start + batch_size]), "float32")
        for part, out in zip(parts, model(batch, training=False), strict=True):
            part.append(keras.ops.convert_to_numpy(out))
    feats = {n: np.concatenate(p).astype(np.float32) for n, p in zip(names, parts, strict=True)}
    save_atomic(path, lambda f: np.savez(f, **feats))
    return feats
