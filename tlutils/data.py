"""Datasets: where they come from, how they are fetched, decoded once, and split.

Fetching and the cache are explained in 00_start_here; loading and splits in
01_feature_extraction.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

DECODE_VERSION = 1  # bump when decode_image changes, so old decoded caches are not reused
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff"}


# PACS (Li et al., ICCV 2017) as a GitHub archive pinned to the commit the shared subset
# was taken from; it unpacks to Homework3-PACS-<commit>/PACS/<domain>/<class>/.
PACS_COMMIT = "33f7def03be34c3fbb1a4d5c97384ab602884833"
PACS_URL = f"https://github.com/MachineLearning2020/Homework3-PACS/archive/{PACS_COMMIT}.zip"


class DataError(RuntimeError):
    """A dataset cannot be fetched or used; the message says what to do."""


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset comes from and where its unpacked copy lives in the cache."""

    name: str
    url: str  # the upstream archive
    path: str  # the unpacked folder, relative to <cache>/datasets
    layout: str  # what the folder holds, in words (used in error messages)
    archive_sha256: str | None = None  # checksum of the archive, where known
    folder_sha256: str | None = None  # hash of the unpacked folder (see folder_sha256())
    shared_copy: str | None = None  # offline copy under shared/data, for workshops and CI

    @property
    def archive_name(self) -> str:
        return self.url.rstrip("/").rsplit("/", 1)[-1]


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in [
        DatasetSpec(
            name="hymenoptera",
            url="https://download.pytorch.org/tutorial/hymenoptera_data.zip",
            path="hymenoptera_data_extracted/hymenoptera_data",
            layout="train/{ants,bees}/ and val/{ants,bees}/ (245 + 153 images)",
            folder_sha256="5feac30d162605875083bc6e3b38d368741febf62cf62512b03f92b698502403",
            shared_copy="images/hymenoptera_data",
        ),
        DatasetSpec(
            name="flower_photos",
            url="https://storage.googleapis.com/download.tensorflow.org/example_images/flower_photos.tgz",
            path="flower_photos_extracted/flower_photos",
            layout="5 class folders (daisy, dandelion, roses, sunflowers, tulips), 3,670 images",
        ),
        DatasetSpec(
            name="pacs",
            url=PACS_URL,
            path=f"{PACS_COMMIT}_extracted/Homework3-PACS-{PACS_COMMIT}/PACS",
            layout="4 domain folders (art_painting, cartoon, photo, sketch), each with 7 "
                   "class folders (dog, elephant, giraffe, guitar, horse, house, person), "
                   "9,991 images",
        ),
        DatasetSpec(
            name="pacs_subset",
            url=PACS_URL,
            path="pacs_subset",
            layout="the course's PACS subset: 4 domain folders x 7 class folders x 40 images "
                   "(copy shared/data/domains/pacs_subset there, or run `python -m tlutils "
                   "offline-cache SHARED_DATA`; MANIFEST.md gives the selection rule)",
            folder_sha256="da91e315681618116f86f1d52350313fb8a16ba7d77866e9a0e128f161b7d640",
            shared_copy="domains/pacs_subset",
        ),
    ]
}


@dataclasses.dataclass(frozen=True)
class FileSpec:
    """A single data file (no archive): its download sources, checksum and cache place."""

    name: str
    urls: tuple[str, ...]  # tried in order; the first is the one error messages name
    folder: str  # relative to <cache>/datasets
    sha256: str
    shared_copy: str | None = None  # offline copy under shared/data


MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/",
                 "https://raw.githubusercontent.com/pmallari/MNIST/"
                 "cffbed29f2a5bd3b662ffe9cea7c07129fdad5d2/",
                 "http://yann.lecun.com/exdb/mnist/")
FILES: dict[str, FileSpec] = {
    spec.name: spec
    for spec in [
        FileSpec("t10k-images-idx3-ubyte.gz",
                 tuple(m + "t10k-images-idx3-ubyte.gz" for m in MNIST_MIRRORS), "mnist_t10k",
                 "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                 "domains/mnist_t10k/t10k-images-idx3-ubyte.gz"),
        FileSpec("t10k-labels-idx1-ubyte.gz",
                 tuple(m + "t10k-labels-idx1-ubyte.gz" for m in MNIST_MIRRORS), "mnist_t10k",
                 "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                 "domains/mnist_t10k/t10k-labels-idx1-ubyte.gz"),
        FileSpec("usps.h5",
                 ("https://raw.githubusercontent.com/niuers/Learning-From-Data-A-Short-Course/"
                  "35684e893b63bf4039bafcc6d34fe935851baf9a/data/usps.h5",), "usps",
                 "734f88c541104a956d88be2c95d03b4a463ffd74ccc2ba9c80841fb98e3fcb36",
                 "domains/usps/usps.h5"),
    ]
}


def cache_root() -> Path:
    """The writable cache Keras uses: $KERAS_HOME, else ~/.keras.

    Keras silently falls back to /tmp/.keras when KERAS_HOME is not writable; we refuse
    instead, so a pre-filled cache is never ignored without a word.
    """
    root = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras").expanduser()
    root.mkdir(parents=True, exist_ok=True)
    if not os.access(root, os.W_OK):
        raise DataError(
            f"The cache folder {root} is not writable. Copy it to a writable place and "
            "point KERAS_HOME at the copy."
        )
    return root


def folder_sha256(folder: str | Path) -> str:
    """sha256 of the sorted per-file sha256 digests (the MANIFEST.md folder hash).

    The files are those the loader reads (files_under): hidden ones such as .DS_Store or
    .ipynb_checkpoints/, which a file browser adds to a good dataset, do not count.
    """
    digests = sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in files_under(Path(folder)))
    return hashlib.sha256("".join(d + "\n" for d in digests).encode()).hexdigest()


def fetch(dataset: str | DatasetSpec, verify: bool = True) -> Path:
    """Return the unpacked dataset folder, downloading it into the cache if needed.

    Offline, with the folder missing, the error names the URL and where to put the data.
    """
    spec = DATASETS[dataset] if isinstance(dataset, str) else dataset
    datasets = cache_root() / "datasets"
    target = datasets / spec.path
    if not target.is_dir():
        import keras

        archive = datasets / spec.archive_name
        try:
            keras.utils.get_file(
                fname=spec.archive_name,
                origin=spec.url,
                file_hash=spec.archive_sha256,
                cache_dir=str(cache_root()),
                cache_subdir="datasets",
                extract=True,
            )
        except Exception as err:  # network failure, HTTP error or checksum mismatch
            archive.unlink(missing_ok=True)
            raise DataError(
                f"Could not download {spec.name} from {spec.url} ({err}). Download it "
                f"yourself and unpack it so that {target} holds {spec.layout}."
            ) from None
        if not target.is_dir():
            archive.unlink(missing_ok=True)
            raise DataError(
                f"The archive from {spec.url} did not unpack to {target} (truncated or not "
                f"the expected archive); it was removed. Fetch it again, or unpack it by "
                f"hand so that {target} holds {spec.layout}."
            )
    if verify and spec.folder_sha256 and folder_sha256(target) != spec.folder_sha256:
        raise DataError(
            f"{target} differs from the published {spec.name} (folder checksum mismatch). "
            f"Delete it and fetch again from {spec.url}."
        )
    return target


@dataclasses.dataclass
class ImageData:
    """Decoded images (uint8, n x size x size x 3) with integer labels."""

    x: np.ndarray
    y: np.ndarray
    class_names: list[str]
    paths: list[str]
    skipped: list[tuple[str, str]]  # (path, reason) of files that could not be used
    key: str  # identifies the content; caches of derived data (features) use it

    def __len__(self) -> int:
        return len(self.y)

    def take(self, idx) -> ImageData:
        idx = np.asarray(idx)
        key = hashlib.sha1(self.key.encode() + idx.tobytes()).hexdigest()[:16]
        paths = [self.paths[i] for i in idx]
        return ImageData(self.x[idx], self.y[idx], self.class_names, paths, [], key)


def decode_image(path: str | Path, size: int, min_side: int = 8) -> np.ndarray:
    """Open any image Pillow reads and return it as size x size RGB uint8.

    Handles EXIF rotation, greyscale, palette, RGBA (on white) and CMYK; the centre is
    cropped to a square, so nothing is squashed. Raises on unreadable or tiny images.
    """
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        im.draft("RGB", (size, size))  # JPEG: decode huge photos at a reduced scale
        im = ImageOps.exif_transpose(im)
        if min(im.size) < min_side:
            raise ValueError(f"too small ({im.size[0]}x{im.size[1]} pixels)")
        if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
            im = im.convert("RGBA")
            im = Image.alpha_composite(Image.new("RGBA", im.size, (255, 255, 255, 255)), im)
        im = ImageOps.fit(im.convert("RGB"), (size, size), Image.Resampling.BILINEAR)
        return np.asarray(im, dtype=np.uint8)


def files_under(folder: Path) -> list[Path]:
    """Every file below folder, sorted, following symbolic links to folders; hidden files
    and folders (.DS_Store, .thumbnails) left out."""
    found = []
    for here, dirs, names in os.walk(folder, followlinks=True):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [Path(here) / n for n in names if not n.startswith(".")]
    return sorted(p for p in found if p.is_file())


def list_class_folder(root: Path) -> dict[str, list[Path]]:
    """Class name -> files (sorted) for a folder with one sub-folder per class."""
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    return {c: files_under(root / c) for c in classes}


def save_atomic(path: Path, write: Callable) -> None:
    """Write a cache file through a uniquely named temporary file, renamed into place: two
    runs filling the same entry never share a temporary file, a reader never sees half a
    file, and a failed write (a full disk) leaves nothing behind. write(f) gets the open
    binary file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_cached(path: Path, read: Callable):
    """read(path) for a cache file the course wrote itself, or None when it is missing or
    unreadable (truncated, corrupt): then it is removed, to be rebuilt."""
    if not path.exists():
        return None
    try:
        return read(path)
    except Exception:  # BadZipFile, a short read, a wrong header: rebuild, never trust it
        path.unlink(missing_ok=True)
        return None


def _decode_folder(root: Path, size: int, class_names: list[str]) -> ImageData:
    files = list_class_folder(root)
    xs, ys, paths, skipped = [], [], [], []
    for label, name in enumerate(class_names):
        for path in files.get(name, []):
            try:
                xs.append(decode_image(path, size))
            except Exception as err:  # unreadable, truncated, not an image, too small
                reason = str(err) or type(err).__name__
                skipped.append((str(path), reason.split("\n")[0][:120]))
                continue
            ys.append(label)
            paths.append(str(path))
    x = np.stack(xs) if xs else np.zeros((0, size, size, 3), np.uint8)
    return ImageData(x, np.array(ys, dtype=np.int64), class_names, paths, skipped, key="")


def _fingerprint(root: Path, size: int) -> str:
    h = hashlib.sha1(f"{root.resolve()}|{size}|{DECODE_VERSION}".encode())
    for p in files_under(root):  # the files the loader reads, through symbolic links too
        st = p.stat()
        h.update(f"{p.relative_to(root)}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def _read_decoded(path: Path) -> dict:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in ("x", "y", "paths", "skipped")}


def load_image_folder(root: str | Path, size: int, class_names: list[str] | None = None,
                      cache: bool = True) -> ImageData:
    """Decode a one-sub-folder-per-class folder once, caching the arrays in the cache.

    Files that cannot be used are skipped and listed in `.skipped`, never a crash later.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root} is not a folder.")
    class_names = class_names or list(list_class_folder(root))
    names_key = hashlib.sha1("|".join(class_names).encode()).hexdigest()[:6]
    key = f"{_fingerprint(root, size)}-{names_key}"
    npz = cache_root() / "tlutils" / "decoded" / f"{root.name}-{size}-{key}.npz"
    z = load_cached(npz, _read_decoded) if cache else None
    if z is not None:
        skipped = [tuple(s) for s in z["skipped"].tolist()]
        return ImageData(z["x"], z["y"], class_names, z["paths"].tolist(), skipped, key)
    data = _decode_folder(root, size, class_names)
    data.key = key
    if cache:
        skipped = np.array(data.skipped, dtype=str).reshape(-1, 2)
        save_atomic(npz, lambda f: np.savez(f, x=data.x, y=data.y, skipped=skipped,
                                            paths=np.array(data.paths, dtype=str)))
    return data


def load_train_val(source: str | Path, size: int, val_fraction: float = 0.2,
                   seed: int = 0) -> tuple[ImageData, ImageData]:
    """Train and validation sets from a registered dataset name or a folder.

    Uses `train/` and `val/` when the folder has them; otherwise a stratified split.
    """
    root = fetch(source) if str(source) in DATASETS else Path(source)
    if (root / "train").is_dir() and (root / "val").is_dir():
        train = load_image_folder(root / "train", size)
        return train, load_image_folder(root / "val", size, class_names=train.class_names)
    data = load_image_folder(root, size)
    train_idx, val_idx = stratified_split(data.y, val_fraction, seed)
    train, val = data.take(train_idx), data.take(val_idx)
    train.skipped = data.skipped
    return train, val


def stratified_split(y: np.ndarray, val_fraction: float,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val) with each class split in the same proportion."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_val = max(1, round(len(idx) * val_fraction)) if len(idx) > 1 else 0
        val.extend(idx[:n_val])
        train.extend(idx[n_val:])
    return np.sort(np.array(train, dtype=np.int64)), np.sort(np.array(val, dtype=np.int64))


def per_class_subset(y: np.ndarray, k: int | None, seed: int = 0) -> np.ndarray:
    """Indices of k examples per class (all of a class if it has fewer; None: all)."""
    if k is None:
        return np.arange(len(y))
    rng = np.random.default_rng(seed)
    picked = [rng.permutation(np.flatnonzero(y == c))[:k] for c in np.unique(y)]
    return np.sort(np.concatenate(picked))


def fetch_file(name: str) -> Path:
    """Return a single data file from the cache, downloading it (checksum verified) if needed.

    Offline, with the file missing, the error names the URL and where to put the file.
    The digit loaders (load_mnist_t10k, load_usps) read their files through it.
    """
    import keras

    spec = FILES[name]
    target = cache_root() / "datasets" / spec.folder / spec.name
    errors = []
    for url in spec.urls:
        try:
            return Path(keras.utils.get_file(fname=spec.name, origin=url, file_hash=spec.sha256,
                                             cache_dir=str(cache_root()),
                                             cache_subdir=f"datasets/{spec.folder}"))
        except Exception as err:  # network failure, HTTP error or checksum mismatch
            errors.append(f"{url}: {err}")
    target.unlink(missing_ok=True)  # a download that failed its checksum
    raise DataError(
        f"Could not download {name} ({'; '.join(errors)}). Download {spec.urls[0]} yourself "
        f"and put it at {target} (sha256 {spec.sha256})."
    )


def load_mnist_t10k() -> tuple[np.ndarray, np.ndarray]:
    """The MNIST *test* set (10,000 digits, 28 x 28 uint8) and its labels.

    load_digit_task turns it into a task far from ImageNet; 05_domain_shift uses it as the
    source domain (the full training set is not shipped).
    """
    import gzip

    with gzip.open(fetch_file("t10k-images-idx3-ubyte.gz")) as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(fetch_file("t10k-labels-idx1-ubyte.gz")) as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
    return x, y


def load_usps(split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """USPS digits (split "train": 7,291, "test": 2,007) as 16 x 16 uint8, with labels.

    The target domain of the digits part of 05_domain_shift.
    """
    import h5py

    with h5py.File(fetch_file("usps.h5"), "r") as f:
        x = np.asarray(f[split]["data"]).reshape(-1, 16, 16)
        y = np.asarray(f[split]["target"]).astype(np.int64)
    return np.round(np.clip(x, 0, 1) * 255).astype(np.uint8), y


def load_digit_task(size: int, n_val: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    """MNIST test digits as a colour-image task far from ImageNet: (x_pool, y_pool, x_val,
    y_val), each digit resized to `size` px in 3 channels, `n_val` of them held out.

    Explained in 03_full_fine_tuning; 04_data_augmentation uses it too.
    """
    x, y = load_mnist_t10k()
    pool, val = stratified_split(y, n_val / len(y), seed)
    return (resize_digits(x[pool], size, channels=3), y[pool],
            resize_digits(x[val], size, channels=3), y[val])


def resize_digits(x: np.ndarray, size: int, channels: int = 1) -> np.ndarray:
    """Grey digits (n, h, w) uint8 -> (n, size, size, channels) uint8, bilinear, still 0..255.

    channels=3 repeats the grey level for an ImageNet backbone (load_digit_task);
    05_domain_shift brings 16-pixel USPS digits to MNIST's 28 pixels.
    """
    import keras

    big = keras.ops.image.resize(x[..., None].astype("float32"), (size, size))
    big = np.clip(np.round(keras.ops.convert_to_numpy(big)), 0, 255).astype("uint8")
    return np.repeat(big, channels, axis=-1) if channels > 1 else big


def build_offline_cache(shared_data: str | Path, cache: str | Path | None = None) -> Path:
    """Copy the offline assets of shared/data into a writable Keras cache.

    Weights go to <cache>/models (where keras.applications looks), datasets to the
    folder fetch() checks. Files already there are left alone.
    """
    shared = Path(shared_data)
    if not (shared / "MANIFEST.md").exists():
        raise DataError(f"{shared} is not a shared data folder (it has no MANIFEST.md).")
    if cache is not None:
        os.environ["KERAS_HOME"] = str(Path(cache).resolve())
    root = cache_root()
    (root / "models").mkdir(exist_ok=True)
    for f in sorted((shared / "keras" / "models").glob("*")):
        _copy_atomic(f, root / "models" / f.name)
    for spec in DATASETS.values():
        if spec.shared_copy and (shared / spec.shared_copy).exists():
            _copy_atomic(shared / spec.shared_copy, root / "datasets" / spec.path)
    for f in FILES.values():
        if f.shared_copy and (shared / f.shared_copy).exists():
            _copy_atomic(shared / f.shared_copy, root / "datasets" / f.folder / f.name)
    return root


def _copy_atomic(src: Path, dst: Path) -> None:
    """Copy a file or folder unless dst exists; a parallel run never sees half a copy."""
    if dst.exists():
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    if src.is_dir():
        shutil.copytree(src, tmp)
    else:
        shutil.copy2(src, tmp)
    try:
        tmp.rename(dst)
    except OSError:  # another process got there first
        shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()
