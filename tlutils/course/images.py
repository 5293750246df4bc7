"""The machinery under tlutils.data's image loading: which sub-folders are splits, and a
folder decoded once into a cache file that is read back whole or row by row.

A learner reads tlutils.data (decode_image, load_image_folder, load_train_val, the splits);
this module never imports it: data passes its decoder in, so calls flow one way.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tlutils.course.assets import DataError, cache_root, files_under, load_cached, save_atomic

DECODE_VERSION = 3  # bump when decode_image changes, so old decoded caches are not reused


STREAM_ABOVE_MB = 1024  # decoded folders bigger than this stay on disk (10_your_own_data)


class DiskImages:
    """Decoded images (uint8, n x size x size x 3) that stay in their .npy cache file: x[i],
    x[a:b] and x[indices] read just those rows, so memory does not grow with the folder.
    The streaming path of 10_your_own_data; decoded_folder picks it for big folders."""

    def __init__(self, path: str | Path, rows=None):
        self.path = Path(path)
        with open(self.path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                    else np.lib.format.read_array_header_2_0)
            shape, _, dtype = read(f)
            self.offset = f.tell()
        self.image_shape, self.dtype = tuple(shape[1:]), np.dtype(dtype)
        self.row_bytes = int(np.prod(self.image_shape)) * self.dtype.itemsize
        self.rows = np.arange(shape[0]) if rows is None else np.asarray(rows, dtype=np.int64)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.rows), *self.image_shape)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            return self._read(self.rows[[key]])[0]
        return self._read(self.rows[key])

    def take(self, idx) -> DiskImages:
        """A view of some rows, still on disk."""
        return DiskImages(self.path, self.rows[np.asarray(idx)])

    def __array__(self, *args, **kwargs):
        raise TypeError("These images stay on disk: index them (x[a:b]) or feed a model "
                        "with data.batches(...), rather than converting them all at once.")

    def _read(self, rows: np.ndarray) -> np.ndarray:
        out = np.empty((len(rows), *self.image_shape), self.dtype)
        with open(self.path, "rb", buffering=0) as f:
            for j in np.argsort(rows, kind="stable"):  # in file order
                f.seek(self.offset + int(rows[j]) * self.row_bytes)
                f.readinto(memoryview(out[j]).cast("B"))
        return out


def content_id(path: str | Path) -> int:
    """A 63-bit number from the file's bytes: byte-identical copies (a photo downloaded twice,
    saved under another name or in another class) share it."""
    return int.from_bytes(hashlib.sha256(Path(path).read_bytes()).digest()[:8], "big") >> 1


SPLIT_NAMES = {  # folder names (any case) that mean a split, not a class
    "train": {"train", "training", "train_set", "training_set", "trainset", "trainingset"},
    "val": {"val", "valid", "validation", "val_set", "validation_set", "valset", "dev"},
    "test": {"test", "testing", "test_set", "testset"},
}


def find_splits(root: Path) -> dict[str, Path]:
    """The split folders of root by their usual names in any case (train/, Train/, Val/,
    training_set/, test_set/, ...): {"train": path, "val": path}, with test/ standing in for
    a missing val/. {} when root holds class folders only. One ambiguous layout (splits
    beside class folders, a split twice, a split alone) raises DataError in one sentence.
    The layouts are shown in 10_your_own_data."""
    folders = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    kinds = {d: next((k for k, names in SPLIT_NAMES.items() if d.name.lower() in names), None)
             for d in folders}
    splits = [d for d in folders if kinds[d]]
    if not splits:
        return {}
    others = [d.name + "/" for d in folders if not kinds[d]]
    if others:
        raise DataError(f"{root} mixes split folders ({', '.join(d.name + '/' for d in splits)})"
                        f" with other folders ({', '.join(others[:3])}): put every class "
                        "folder inside the splits, or the splits' classes in one folder.")
    found: dict[str, Path] = {}
    for d in splits:
        if kinds[d] in found:
            raise DataError(f"{root} has two {kinds[d]} folders ({found[kinds[d]].name}/ and "
                            f"{d.name}/); keep one.")
        found[kinds[d]] = _unnest(d)
    held_out = found.get("val") or found.get("test")
    if "train" not in found or held_out is None:
        names = " and ".join(d.name + "/" for d in splits)
        raise DataError(f"{root} has {names} but needs a training folder and a validation "
                        "(or test) folder, each with one sub-folder per class.")
    return {"train": found["train"], "val": held_out}


def _unnest(split: Path) -> Path:
    """training_set/training_set/cats -> training_set/training_set (Kaggle's double folder)."""
    inner = [d for d in split.iterdir() if not d.name.startswith(".")]
    if len(inner) == 1 and inner[0].is_dir() and inner[0].name.lower() == split.name.lower():
        return inner[0]
    return split


def class_folders(root: Path) -> list[str]:
    """The class names of a folder with one sub-folder per class (sorted; no files read)."""
    return sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))


def list_class_folder(root: Path) -> dict[str, list[Path]]:
    """Class name -> files (sorted) for a folder with one sub-folder per class."""
    return {c: files_under(root / c) for c in class_folders(root)}


def decoded_folder(root: Path, size: int, class_names: list[str],
                   decode: Callable[[Path, int], np.ndarray],
                   cache: bool = True) -> tuple[np.ndarray | DiskImages, dict, str]:
    """The files of a class folder (labels in class_names' order) decoded by `decode` into
    one .npy file in the cache, once: (images, meta, key). Images are in memory up to
    STREAM_ABOVE_MB, else DiskImages; meta holds y, paths, groups (content_id) and skipped
    ((path, reason) of each file `decode` refused); key names the content. With cache=False
    it decodes again."""
    names_key = hashlib.sha1(os.fsencode("|".join(class_names))).hexdigest()[:6]
    key = f"{_fingerprint(root, size)}-{names_key}"
    stem = cache_root() / "tlutils" / "decoded" / f"{_slug(root.name)}-{size}-{key}"
    npy, meta_path = stem.with_name(stem.name + ".npy"), stem.with_name(stem.name + ".meta.npz")
    meta = load_cached(meta_path, _read_meta) if cache else None
    if meta is None:
        found = list_class_folder(root)
        files = [(label, p) for label, c in enumerate(class_names) for p in found.get(c, [])]
        meta = _decode_files(files, size, decode, npy)
        rows = len(meta["y"]) + len(meta["skipped"])
        save_atomic(meta_path, lambda f: np.savez(f, rows=rows, **meta))
    images = DiskImages(npy, meta["valid"])
    if images.shape[0] * images.row_bytes <= STREAM_ABOVE_MB * 1e6:
        everything = np.load(npy)
        images = everything if len(meta["valid"]) == len(everything) else everything[meta["valid"]]
    return images, meta, key


def _decode_files(files: list[tuple[int, Path]], size: int,
                  decode: Callable[[Path, int], np.ndarray], npy: Path) -> dict:
    """Decode every file once, writing each image straight into npy, one row per file (a
    skipped file's row stays zero), so that a big folder never sits in memory whole."""
    meta: dict[str, list] = {"y": [], "paths": [], "skipped": [], "groups": [], "valid": []}

    def write(f):
        np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False,
                                                 "shape": (len(files), size, size, 3)})
        for row, (label, path) in enumerate(files):
            try:
                image = decode(path, size)
            except Exception as err:  # unreadable, truncated, not an image, too small
                reason = str(err) or type(err).__name__
                meta["skipped"].append((str(path), reason.split("\n")[0][:120]))
                f.write(bytes(size * size * 3))
                continue
            f.write(image.tobytes())
            for k, v in zip(("y", "paths", "groups", "valid"),
                            (label, str(path), content_id(path), row), strict=True):
                meta[k].append(v)

    save_atomic(npy, write)
    arrays = {k: np.array(meta[k], np.int64) for k in ("y", "groups", "valid")}
    return {**arrays, "paths": np.array(meta["paths"], dtype=str),
            "skipped": np.array(meta["skipped"], dtype=str).reshape(-1, 2)}


def _fingerprint(root: Path, size: int) -> str:
    h = hashlib.sha1(os.fsencode(f"{root.resolve()}|{size}|{DECODE_VERSION}"))
    for p in files_under(root):  # the files the loader reads, through symbolic links too
        st = p.stat()  # names as bytes: an old Windows zip's non-UTF-8 names hash too
        h.update(os.fsencode(f"{p.relative_to(root)}|{st.st_size}|{st.st_mtime_ns}"))
    return h.hexdigest()[:16]


def _slug(name: str, limit: int = 40) -> str:
    """A short, portable stand-in for a folder name inside a cache file name (the content key
    beside it keeps it unique): any length, any encoding."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)[:limit] or "folder"


def _read_meta(path: Path) -> dict:
    with np.load(path, allow_pickle=False) as z:
        meta = {k: z[k] for k in ("y", "paths", "skipped", "groups", "valid", "rows")}
    npy = path.with_name(path.name.replace(".meta.npz", ".npy"))
    images = DiskImages(npy)  # a cut or missing image file fails here: both are rebuilt
    if len(images) != int(meta["rows"]) or npy.stat().st_size != (
            images.offset + len(images) * images.row_bytes):
        raise ValueError(f"{npy} is incomplete")
    return meta
