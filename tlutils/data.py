"""Images: decoded once into a cache, held in memory or on disk, batched, and split.

Loading and splits are explained in 01_feature_extraction; your own folders and the
streaming path in 10_your_own_data.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import Counter
from pathlib import Path

import numpy as np

from tlutils.course.assets import DATASETS, DataError, fetch
from tlutils.course.images import DiskImages, class_folders, decoded_folder, find_splits


def batches(x, y=None, batch_size: int = 32, shuffle: bool = False, seed: int = 0):
    """A keras.utils.PyDataset over x (an array or DiskImages) and optional labels: batches
    read on demand, reshuffled each epoch when shuffle is set. Feeds fit() and predict()
    on every backend (10_your_own_data)."""
    import keras

    class Batches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.epoch, self.order = 0, np.arange(len(x))
            self.on_epoch_end()

        def __len__(self) -> int:
            return int(np.ceil(len(x) / batch_size))

        def __getitem__(self, i):
            idx = np.sort(self.order[i * batch_size:(i + 1) * batch_size])
            return x[idx] if y is None else (x[idx], np.asarray(y)[idx])

        def on_epoch_end(self):
            if shuffle:
                self.order = np.random.default_rng([seed, self.epoch]).permutation(len(x))
            self.epoch += 1

    return Batches()


@dataclasses.dataclass
class ImageData:
    """Decoded images (uint8, n x size x size x 3, in memory or DiskImages) with labels."""

    x: np.ndarray | DiskImages
    y: np.ndarray
    class_names: list[str]
    paths: list[str]
    skipped: list[tuple[str, str]]  # (path, reason) of files that could not be used
    key: str  # identifies the content; caches of derived data (features) use it
    groups: np.ndarray | None = None  # content hash of each file: copies share one

    def __len__(self) -> int:
        return len(self.y)

    def take(self, idx) -> ImageData:
        idx = np.asarray(idx)
        key = hashlib.sha1(self.key.encode() + idx.tobytes()).hexdigest()[:16]
        paths = [self.paths[i] for i in idx]
        groups = None if self.groups is None else self.groups[idx]
        x = self.x.take(idx) if isinstance(self.x, DiskImages) else self.x[idx]
        return ImageData(x, self.y[idx], self.class_names, paths, [], key, groups)


def decode_image(path: str | Path, size: int, min_side: int = 8) -> np.ndarray:
    """Open any image Pillow reads and return it as size x size RGB uint8.

    Handles EXIF rotation, greyscale, palette, RGBA (on white), CMYK and high bit depth
    (see to_8bit); the centre is cropped to a square, so nothing is squashed. Raises on
    unreadable or tiny images, and on pixel values whose scale cannot be known.
    """
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        im.draft("RGB", (size, size))  # JPEG: decode huge photos at a reduced scale
        im = ImageOps.exif_transpose(im)
        if min(im.size) < min_side:
            raise ValueError(f"too small ({im.size[0]}x{im.size[1]} pixels)")
        im = to_8bit(im)
        if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
            im = im.convert("RGBA")
            im = Image.alpha_composite(Image.new("RGBA", im.size, (255, 255, 255, 255)), im)
        im = ImageOps.fit(im.convert("RGB"), (size, size), Image.Resampling.BILINEAR)
        return np.asarray(im, dtype=np.uint8)


def to_8bit(im):
    """High bit-depth greyscale (Pillow modes I;16, I, F) as 8-bit "L", scaled, not clipped:
    16-bit values (0..65535) by 255/65535, floats in 0..1 by 255. 32-bit integers beyond
    16 bits and floats outside 0..1 have no known scale: ValueError says so. Other modes
    are returned unchanged."""
    from PIL import Image

    if im.mode not in ("I", "F") and not im.mode.startswith("I;16"):
        return im
    a = np.asarray(im, dtype=np.float64)
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if im.mode == "F" and (lo < 0 or hi > 1):
        raise ValueError(f"32-bit float pixels from {lo:g} to {hi:g}, not 0..1: their scale "
                         "is unknown; save the image as 8 or 16 bit")
    if im.mode != "F" and (lo < 0 or hi > 65535):
        raise ValueError(f"32-bit integer pixels from {lo:g} to {hi:g}, beyond 16 bits: their "
                         "scale is unknown; save the image as 8 or 16 bit")
    scale = 255.0 if im.mode == "F" else 255.0 / 65535.0
    return Image.fromarray(np.round(a * scale).astype(np.uint8), "L")


def load_image_folder(root: str | Path, size: int, class_names: list[str] | None = None,
                      cache: bool = True) -> ImageData:
    """Decode a one-sub-folder-per-class folder with decode_image once into the cache (image
    by image, never the whole folder in memory), and load it: into memory when it is small,
    otherwise as DiskImages read batch by batch (10_your_own_data). With cache=False it is
    decoded again. Files that cannot be used are skipped and listed in `.skipped`, never a
    crash later. The cache itself is course machinery (course.images.decoded_folder)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root} is not a folder.")
    class_names = class_names or class_folders(root)
    images, meta, key = decoded_folder(root, size, class_names, decode_image, cache)
    skipped = [tuple(s) for s in meta["skipped"].tolist()]
    return ImageData(images, meta["y"], class_names, meta["paths"].tolist(), skipped, key,
                     meta["groups"])


def load_train_val(source: str | Path, size: int, val_fraction: float = 0.2,
                   seed: int = 0) -> tuple[ImageData, ImageData]:
    """Train and validation sets from a registered dataset name or a folder.

    Uses its split folders when it has them (find_splits: train/ and val/, Train/ and
    Val/, training_set/ and test_set/, ...); otherwise a stratified split.
    """
    spec = DATASETS.get(str(source))
    root = fetch(source) if spec else Path(source)
    splits = find_splits(root) if root.is_dir() else {}
    if splits:
        train = load_image_folder(splits["train"], size)
        val = load_image_folder(splits["val"], size, class_names=train.class_names)
    else:
        data = load_image_folder(root, size)
        train_idx, val_idx = stratified_split(data.y, val_fraction, seed, data.groups)
        train, val = data.take(train_idx), data.take(val_idx)
        train.skipped = data.skipped
    if spec and spec.placeholders:
        train, val = (without_placeholders(d, spec.placeholders) for d in (train, val))
    return train, val


def without_placeholders(images: ImageData, placeholders) -> ImageData:
    """`images` less the files a registered dataset lists as placeholders (a picture that is
    not of its class, such as hymenoptera's "image not found" GIF among the ants, which
    notebook 07 finds by looking), each listed in `skipped` with its reason."""
    bad = [i for i, p in enumerate(images.paths)
           if any(Path(p).as_posix().endswith("/" + name) for name in placeholders)]
    if not bad:
        return images
    kept = images.take(np.setdiff1d(np.arange(len(images)), bad))
    kept.skipped = images.skipped + [
        (images.paths[i], "a placeholder, not a picture of its class (data/registry.json)")
        for i in bad]
    return kept


def stratified_split(y: np.ndarray, val_fraction: float, seed: int = 0,
                     groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val) with each class split in the same proportion.

    With `groups` (the content_id of each file), all copies of one file land on the same
    side, so a copy in the validation set never has its twin in training. Explained in
    10_your_own_data."""
    rng = np.random.default_rng(seed)
    groups = (np.arange(len(y)) if groups is None else np.asarray(groups)).tolist()
    size = Counter(zip(groups, np.asarray(y).tolist(), strict=True))  # (group, class): files
    side: dict[int, bool] = {}  # group -> in val
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_val = max(1, round(len(idx) * val_fraction)) if len(idx) > 1 else 0
        taken = 0
        for i in idx:
            if groups[i] not in side:
                side[groups[i]] = taken < n_val
                taken += size[(groups[i], int(c))]
    in_val = np.array([side[g] for g in groups], dtype=bool)
    return np.flatnonzero(~in_val).astype(np.int64), np.flatnonzero(in_val).astype(np.int64)


def per_class_subset(y: np.ndarray, k: int | None, seed: int = 0) -> np.ndarray:
    """Indices of k examples per class (all of a class if it has fewer; None: all)."""
    if k is None:
        return np.arange(len(y))
    rng = np.random.default_rng(seed)
    picked = [rng.permutation(np.flatnonzero(y == c))[:k] for c in np.unique(y)]
    return np.sort(np.concatenate(picked))
