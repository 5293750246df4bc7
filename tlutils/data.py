"""Datasets: where they come from, how they are fetched, decoded once, and split.

Fetching and the cache are explained in 00_start_here; loading and splits in
01_feature_extraction.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import re
import shutil
import tarfile
import tempfile
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import numpy as np

DECODE_VERSION = 3  # bump when decode_image changes, so old decoded caches are not reused
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff"}


class DataError(RuntimeError):
    """A dataset cannot be fetched or used; the message says what to do."""

    def _render_traceback_(self) -> list[str]:  # IPython shows the sentence, not a traceback
        return [f"{type(self).__name__}: {self}"]


def project_data(name: str) -> Path:
    """A file of the course's own data/ folder (the registry, file lists, published numbers):
    data/ in a checkout, or its copy inside the installed package."""
    here = Path(__file__).resolve().parent
    for folder in (here / "_data", here.parent / "data"):
        if (folder / name).exists():
            return folder / name
    raise DataError(f"The course file data/{name} is missing: reinstall tlutils.")


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset comes from, how to check it, and where it lives in the cache
    (data/registry.json; data/README.md explains each field)."""

    name: str
    url: str  # the upstream archive
    path: str  # the unpacked folder, relative to <cache>/datasets
    layout: str  # what the folder holds, in words (used in error messages)
    archive_sha256: str | None = None  # checksum of the archive, where upstream is stable
    folder_sha256: str | None = None  # hash of the unpacked folder (see folder_sha256())
    counts: dict | None = None  # files per top-level sub-folder: a complete copy has these
    max_unpacked_mb: int = 500  # an archive that expands beyond this is refused
    shared_copy: str | None = None  # offline copy under shared/data, for workshops and CI
    built_from: str | None = None  # a subset: the dataset it is cut from ...
    file_list: str | None = None  # ... and the data/ file listing its files (sha256sum format)

    @property
    def archive_name(self) -> str:
        return self.url.rstrip("/").rsplit("/", 1)[-1]


@dataclasses.dataclass(frozen=True)
class FileSpec:
    """A single data file (no archive): its download sources, checksum and cache place."""

    name: str
    urls: tuple[str, ...]  # tried in order; the first is the one error messages name
    folder: str  # relative to <cache>/datasets
    sha256: str
    shared_copy: str | None = None  # offline copy under shared/data


def _registry() -> dict:
    return json.loads(project_data("registry.json").read_text(encoding="utf-8"))


def _datasets() -> dict[str, DatasetSpec]:
    reg = _registry()["datasets"]
    return {name: DatasetSpec(name=name, **fields) for name, fields in reg.items()}


def _files() -> dict[str, FileSpec]:
    reg = _registry()["files"]
    return {name: FileSpec(name, tuple(f.pop("urls")), **f) for name, f in reg.items()}


DATASETS: dict[str, DatasetSpec] = _datasets()
FILES: dict[str, FileSpec] = _files()
WEIGHTS: dict[str, dict] = _registry()["weights"]  # file name -> url, sha256 or md5, shared_copy
DIGIT_FILES = ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]  # load_mnist_t10k


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


def download(fname: str, urls: list[str], subdir: str, file_hash: str | None = None) -> Path:
    """keras.utils.get_file into <cache>/subdir from the first source that answers, checking
    file_hash where one is known: $TLU_MIRROR/<fname> first when that is set (a workshop's
    own server, e.g. `python3 -m http.server` in a folder of the files), then the upstream
    URLs. Raises DataError with what each source said."""
    import keras

    mirror = os.environ.get("TLU_MIRROR", "").rstrip("/")
    errors = []
    for url in ([f"{mirror}/{fname}"] if mirror else []) + list(urls):
        try:
            return Path(keras.utils.get_file(fname=fname, origin=url, file_hash=file_hash,
                                             cache_dir=str(cache_root()), cache_subdir=subdir))
        except Exception as err:  # network failure, HTTP error or checksum mismatch
            errors.append(f"{url}: {err}")
    (cache_root() / subdir / fname).unlink(missing_ok=True)  # one that failed its checksum
    raise DataError("; ".join(errors))


def fetch(dataset: str | DatasetSpec, verify: bool = True) -> Path:
    """Return the unpacked dataset folder, downloading and unpacking it into the cache if
    needed. Unpacking is all or nothing, and the folder is checked against the registry, so a
    partial copy is never used. Offline, the error names the URL and where to put the data.
    """
    spec = DATASETS[dataset] if isinstance(dataset, str) else dataset
    target = cache_root() / "datasets" / spec.path
    if not target.is_dir():
        if spec.built_from:
            _build_subset(spec, target)
        else:
            _download_and_unpack(spec, target)
    if verify:
        check_complete(spec, target)
    return target


def check_complete(spec: DatasetSpec, target: Path) -> None:
    """Raise DataError unless target matches the registry: its folder hash where one is
    published, else its number of files in each top-level sub-folder."""
    if spec.folder_sha256 and folder_sha256(target) != spec.folder_sha256:
        raise DataError(
            f"{target} differs from the published {spec.name} (folder checksum mismatch). "
            f"Move it aside and fetch again from {spec.url}."
        )
    for sub, expected in (spec.counts or {}).items():
        found = len(files_under(target / sub)) if (target / sub).is_dir() else 0
        if found != expected:
            raise DataError(
                f"{target} is incomplete or altered: {sub}/ has {found} files where "
                f"{spec.name} has {expected} (an interrupted unpack?). Move "
                f"{_top_folder(spec)} aside and run again: it unpacks again from the archive."
            )


def _top_folder(spec: DatasetSpec) -> Path:
    return cache_root() / "datasets" / spec.path.split("/")[0]


def _download_and_unpack(spec: DatasetSpec, target: Path) -> None:
    archive, top = cache_root() / "datasets" / spec.archive_name, _top_folder(spec)
    if top.exists():
        raise DataError(
            f"{top} exists but has no {target.relative_to(top)} (not what {spec.url} unpacks "
            f"to). Move it aside and run again, or arrange it so that {target} holds "
            f"{spec.layout}."
        )
    try:
        download(spec.archive_name, [spec.url], "datasets", spec.archive_sha256)
    except DataError as err:
        raise DataError(
            f"Could not download {spec.name} ({err}). Download it "
            f"yourself and unpack it so that {target} holds {spec.layout}."
        ) from None
    unpack(archive, top, spec.max_unpacked_mb * 10**6)
    if not target.is_dir():
        shutil.rmtree(top)
        archive.unlink(missing_ok=True)
        raise DataError(
            f"The archive from {spec.url} did not unpack to {target} (not the expected "
            f"archive); it was removed. Fetch it again, or unpack it by hand so that {target} "
            f"holds {spec.layout}."
        )


def unpack(archive: Path, dest: Path, max_bytes: int) -> None:
    """Unpack a zip or tar archive into dest, all or nothing: into a temporary folder renamed
    to dest only when every member is out. Members outside dest, links and devices, and
    archives that expand beyond max_bytes are refused. A damaged archive is removed."""
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp"))
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                _check_members(archive, [(m.filename, m.file_size, True) for m in z.infolist()],
                               max_bytes)
                z.extractall(tmp)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as t:
                members = t.getmembers()
                _check_members(archive, [(m.name, m.size, m.isfile() or m.isdir())
                                         for m in members], max_bytes)
                t.extractall(tmp, members=members,
                             **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
        else:
            raise zipfile.BadZipFile("neither a complete zip nor a tar archive")
        _move_into_place(tmp, dest)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, OSError) as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DataError(f"Unpacking {archive} stopped: {err.strerror}. Nothing was left "
                            "half unpacked; free some space and run again.") from None
        archive.unlink(missing_ok=True)
        raise DataError(f"{archive} is damaged ({err}); it was removed and nothing was kept "
                        "unpacked. Run again to download it again.") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _check_members(archive: Path, members: list[tuple[str, int, bool]], max_bytes: int) -> None:
    total = 0
    for name, size, plain in members:
        parts = PurePosixPath(name.replace("\\", "/")).parts
        if not plain or not parts or parts[0] in ("/", "..") or ".." in parts or ":" in parts[0]:
            raise DataError(f"{archive} holds {name!r}, a link or a path outside its folder; "
                            "refused. Check where the archive came from.")
        total += size
    if total > max_bytes:
        raise DataError(f"{archive} would unpack to {total / 1e6:,.0f} MB, more than the "
                        f"{max_bytes / 1e6:,.0f} MB expected of it; refused (a wrong or "
                        "malicious archive). Remove it and check its URL.")


def _move_into_place(tmp: Path, dest: Path) -> None:
    """Rename a finished temporary folder to dest; if another process got there first, keep
    theirs."""
    try:
        os.rename(tmp, dest)
    except OSError:
        if not dest.is_dir():
            raise
        shutil.rmtree(tmp, ignore_errors=True)


def _build_subset(spec: DatasetSpec, target: Path) -> None:
    """Cut a subset (pacs_subset) out of its full dataset by the file list in data/, each
    file's sha256 checked; the folder appears only when complete."""
    try:
        source = fetch(spec.built_from)
    except DataError as err:
        raise DataError(f"{spec.name} is cut from {spec.built_from}, which is missing: {err} "
                        f"Or copy shared/data/{spec.shared_copy} to {target}.") from None
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    try:
        for line in project_data(spec.file_list).read_text(encoding="utf-8").splitlines():
            sha, rel = line.split("  ", 1)
            src = source / rel
            if not src.is_file() or hashlib.sha256(src.read_bytes()).hexdigest() != sha:
                raise DataError(f"{src} is missing or altered, so {spec.name} cannot be cut "
                                f"from {source}. Move {source} aside and fetch again.")
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, tmp / rel)
        _move_into_place(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


STREAM_ABOVE_MB = 1024  # decoded folders bigger than this stay on disk (06_your_own_data)


class DiskImages:
    """Decoded images (uint8, n x size x size x 3) that stay in their .npy cache file: x[i],
    x[a:b] and x[indices] read just those rows, so memory does not grow with the folder.
    The streaming path of 06_your_own_data; load_image_folder picks it for big folders."""

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


def batches(x, y=None, batch_size: int = 32, shuffle: bool = False, seed: int = 0):
    """A keras.utils.PyDataset over x (an array or DiskImages) and optional labels: batches
    read on demand, reshuffled each epoch when shuffle is set. Feeds fit() and predict()
    on every backend (06_your_own_data)."""
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


def _decode_folder(root: Path, size: int, class_names: list[str], npy: Path) -> dict:
    """Decode every file once, writing each image straight into npy, one row per file (a
    skipped file's row stays zero), so that a big folder never sits in memory whole."""
    found = list_class_folder(root)
    files = [(label, p) for label, name in enumerate(class_names) for p in found.get(name, [])]
    meta = {"y": [], "paths": [], "skipped": [], "groups": [], "valid": []}

    def write(f):
        np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False,
                                                 "shape": (len(files), size, size, 3)})
        for row, (label, path) in enumerate(files):
            try:
                image = decode_image(path, size)
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


def content_id(path: str | Path) -> int:
    """A 63-bit number from the file's bytes: byte-identical copies (a photo downloaded twice,
    saved under another name or in another class) share it."""
    return int.from_bytes(hashlib.sha256(Path(path).read_bytes()).digest()[:8], "big") >> 1


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


def load_image_folder(root: str | Path, size: int, class_names: list[str] | None = None,
                      cache: bool = True) -> ImageData:
    """Decode a one-sub-folder-per-class folder once into the cache (image by image, never
    the whole folder in memory), and load it: into memory up to STREAM_ABOVE_MB, otherwise
    as DiskImages read batch by batch (06_your_own_data). With cache=False it is decoded
    again. Files that cannot be used are skipped and listed in `.skipped`, never a crash
    later."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root} is not a folder.")
    class_names = class_names or list(list_class_folder(root))
    names_key = hashlib.sha1(os.fsencode("|".join(class_names))).hexdigest()[:6]
    key = f"{_fingerprint(root, size)}-{names_key}"
    stem = cache_root() / "tlutils" / "decoded" / f"{_slug(root.name)}-{size}-{key}"
    npy, meta_path = stem.with_name(stem.name + ".npy"), stem.with_name(stem.name + ".meta.npz")
    meta = load_cached(meta_path, _read_meta) if cache else None
    if meta is None:
        meta = _decode_folder(root, size, class_names, npy)
        rows = len(meta["y"]) + len(meta["skipped"])
        save_atomic(meta_path, lambda f: np.savez(f, rows=rows, **meta))
    images = DiskImages(npy, meta["valid"])
    if images.shape[0] * images.row_bytes <= STREAM_ABOVE_MB * 1e6:
        everything = np.load(npy)
        images = everything if len(meta["valid"]) == len(everything) else everything[meta["valid"]]
    skipped = [tuple(s) for s in meta["skipped"].tolist()]
    return ImageData(images, meta["y"], class_names, meta["paths"].tolist(), skipped, key,
                     meta["groups"])


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
    Explained in 06_your_own_data."""
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


def load_train_val(source: str | Path, size: int, val_fraction: float = 0.2,
                   seed: int = 0) -> tuple[ImageData, ImageData]:
    """Train and validation sets from a registered dataset name or a folder.

    Uses its split folders when it has them (find_splits: train/ and val/, Train/ and
    Val/, training_set/ and test_set/, ...); otherwise a stratified split.
    """
    root = fetch(source) if str(source) in DATASETS else Path(source)
    splits = find_splits(root) if root.is_dir() else {}
    if splits:
        train = load_image_folder(splits["train"], size)
        return train, load_image_folder(splits["val"], size, class_names=train.class_names)
    data = load_image_folder(root, size)
    train_idx, val_idx = stratified_split(data.y, val_fraction, seed, data.groups)
    train, val = data.take(train_idx), data.take(val_idx)
    train.skipped = data.skipped
    return train, val


def stratified_split(y: np.ndarray, val_fraction: float, seed: int = 0,
                     groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val) with each class split in the same proportion.

    With `groups` (data.content_id of each file), all copies of one file land on the same
    side, so a copy in the validation set never has its twin in training. Explained in
    06_your_own_data."""
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


def fetch_file(name: str) -> Path:
    """Return a single data file from the cache, downloading it (checksum verified) if needed.

    Offline, with the file missing, the error names the URL and where to put the file.
    The digit loaders (load_mnist_t10k, load_usps) read their files through it.
    """
    spec = FILES[name]
    target = cache_root() / "datasets" / spec.folder / spec.name
    try:
        return download(spec.name, spec.urls, f"datasets/{spec.folder}", spec.sha256)
    except DataError as err:
        raise DataError(
            f"Could not download {name} ({err}). Download {spec.urls[0]} yourself "
            f"and put it at {target} (sha256 {spec.sha256})."
        ) from None


def weights_file(fname: str) -> Path:
    """A weights file in <cache>/models (where keras.applications looks), downloaded when
    missing and checked against data/registry.json: its checksum, or, where none is
    published, that it opens. A damaged file is named, with what to do."""
    spec, path = WEIGHTS.get(fname, {}), cache_root() / "models" / fname
    if not path.exists() and spec:
        try:
            download(fname, [spec["url"]], "models")
        except DataError as err:
            raise DataError(f"Could not get the weights file {fname} ({err}). Download "
                            f"{spec['url']} and put it in {path.parent}/.") from None
    problem = _weights_problem(path, spec) if path.exists() else None
    if problem:
        raise DataError(
            f"{path} is damaged ({problem}): delete it and run again to download it, or run "
            "`python3 -m tlutils offline-cache SHARED_DATA` to copy it from the shared data."
        )
    return path


def _weights_problem(path: Path, spec: dict) -> str | None:
    for algo in ("sha256", "md5"):
        if spec.get(algo):
            digest = hashlib.new(algo, path.read_bytes()).hexdigest()
            ok = digest == spec[algo]
            return None if ok else f"{algo} {digest[:12]}... is not the published one"
    try:
        import h5py

        with h5py.File(path, "r"):
            return None
    except Exception as err:  # truncated, not HDF5
        return f"not a readable HDF5 file: {str(err).splitlines()[0][:80]}"


def require(datasets: list[str] = (), files: list[str] = (), weights: list[str] = ()) -> None:
    """Fetch what a notebook needs before it trains anything. Every asset is tried, and one
    DataError lists each one that is missing or damaged, a sentence each. Explained in
    00_start_here; every notebook calls it after its parameters cell."""
    problems = []
    for get, names in ((fetch, datasets), (fetch_file, files), (weights_file, weights)):
        for name in names:
            try:
                get(name)
            except DataError as err:
                problems.append(str(err))
    if problems:
        raise DataError(f"{len(problems)} of the files this needs cannot be used:\n"
                        + "\n".join(f"- {p}" for p in problems))


def load_mnist_t10k() -> tuple[np.ndarray, np.ndarray]:
    """The MNIST *test* set (10,000 digits, 28 x 28 uint8) and its labels.

    load_digit_task turns it into a task far from ImageNet; 05_domain_shift uses it as the
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


def build_offline_cache(shared_data: str | Path,
                        cache: str | Path | None = None) -> tuple[Path, list[Path]]:
    """Copy the offline assets of shared/data into a writable Keras cache; return the cache
    and the cached copies it repaired (they differed from the shared ones: a cut download,
    a damaged file).

    Weights go to <cache>/models (where keras.applications looks), datasets to the
    folder fetch() checks. Identical copies already there are left alone.
    """
    shared = Path(shared_data)
    if not (shared / "MANIFEST.md").exists():
        raise DataError(f"{shared} is not a shared data folder (it has no MANIFEST.md).")
    if cache is not None:
        os.environ["KERAS_HOME"] = str(Path(cache).resolve())
    root = cache_root()
    pairs = [(f, root / "models" / f.name) for f in sorted((shared / "keras" / "models").glob("*"))]
    pairs += [(shared / w["shared_copy"], root / "models" / name)
              for name, w in WEIGHTS.items() if w.get("shared_copy")]
    pairs += [(shared / s.shared_copy, root / "datasets" / s.path)
              for s in DATASETS.values() if s.shared_copy]
    pairs += [(shared / f.shared_copy, root / "datasets" / f.folder / f.name)
              for f in FILES.values() if f.shared_copy]
    repaired = []
    for src, dst in dict((d, (s, d)) for s, d in pairs).values():
        if src.exists() and _copy_atomic(src, dst):
            repaired.append(dst)
    return root, repaired


def _same(a: Path, b: Path) -> bool:
    if a.is_dir() != b.is_dir():
        return False
    if a.is_dir():
        return folder_sha256(a) == folder_sha256(b)
    return a.stat().st_size == b.stat().st_size and _sha256(a) == _sha256(b)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _copy_atomic(src: Path, dst: Path) -> bool:
    """Copy a file or folder to dst unless an identical copy is there; a differing one is
    replaced in one rename (True is returned). A parallel run never sees half a copy."""
    existed = dst.exists()
    if existed and _same(src, dst):
        return False
    dst.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".tmp"))
    try:
        new = work / "new"
        shutil.copytree(src, new) if src.is_dir() else shutil.copy2(src, new)
        if existed:
            os.rename(dst, work / "old")  # out of the way; a folder cannot be replaced in place
        _move_into_place(new, dst) if src.is_dir() else os.replace(new, dst)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return existed
