"""Assets: where every dataset, data file and weights file comes from, how it is checked,
and how it reaches the cache (data/registry.json): download, unpack all or nothing, verify,
the offline cache and its repair. Course machinery: it knows nothing of the lessons.

Fetching and the cache are shown in 00_start_here.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import numpy as np


class DataError(RuntimeError):
    """A dataset cannot be fetched or used; the message says what to do."""

    def _render_traceback_(self) -> list[str]:  # IPython shows the sentence, not a traceback
        return [f"{type(self).__name__}: {self}"]


def project_data(name: str) -> Path:
    """A file of the course's own data/ folder (the registry, file lists, published numbers):
    data/ in a checkout, or its copy inside the installed package."""
    package = Path(__file__).resolve().parents[1]
    for folder in (package / "_data", package.parent / "data"):
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
    placeholders: tuple[str, ...] = ()  # files that are not pictures of their class: left out

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


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A pretrained model kept as a folder of files (a Hugging Face checkpoint): the upstream
    folder, each file's sha256, and its folder under <cache>/models."""

    name: str
    url: str  # the upstream folder: file f is at url/f
    folder: str  # relative to <cache>/models
    layout: str  # what the folder holds, in words (used in error messages)
    files: dict  # path inside the folder -> sha256
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


MODELS: dict[str, ModelSpec] = {name: ModelSpec(name, **m)
                                for name, m in _registry()["models"].items()}
WEIGHTS: dict[str, dict] = _registry()["weights"]  # file name -> url, sha256 or md5, shared_copy
# backbone name -> url (a template with {rows}), sizes (those with their own file)
BACKBONE_WEIGHTS: dict[str, dict] = _registry()["backbone_weights"]


def cache_root() -> Path:
    """The writable cache Keras uses: $KERAS_HOME, else ~/.keras.

    Keras silently falls back to /tmp/.keras when KERAS_HOME is not writable; we refuse
    instead, so a pre-filled cache is never ignored without a word.
    """
    root = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras").expanduser()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(f"The cache folder {root} cannot be created ({err.strerror or err}): "
                        "point KERAS_HOME at a folder you can write to.") from None
    if not os.access(root, os.W_OK):
        raise DataError(
            f"The cache folder {root} is not writable. Copy it to a writable place and "
            "point KERAS_HOME at the copy."
        )
    return root


def files_under(folder: Path) -> list[Path]:
    """Every file below folder, sorted, following symbolic links to folders; hidden files
    and folders (.DS_Store, .thumbnails) left out."""
    found = []
    for here, dirs, names in os.walk(folder, followlinks=True):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [Path(here) / n for n in names if not n.startswith(".")]
    return sorted(p for p in found if p.is_file())


def folder_sha256(folder: str | Path) -> str:
    """sha256 of the sorted per-file sha256 digests (the MANIFEST.md folder hash).

    The files are those the loader reads (files_under): hidden ones such as .DS_Store or
    .ipynb_checkpoints/, which a file browser adds to a good dataset, do not count.
    """
    digests = sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in files_under(Path(folder)))
    return hashlib.sha256("".join(d + "\n" for d in digests).encode()).hexdigest()


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


def download(fname: str, urls: list[str], subdir: str, file_hash: str | None = None,
             mirror_name: str | None = None) -> Path:
    """keras.utils.get_file into <cache>/subdir from the first source that answers, checking
    file_hash where one is known: $TLU_MIRROR/<mirror_name or fname> first when that is set
    (a workshop's own server, e.g. `python3 -m http.server` in a folder of the files), then
    the upstream URLs. Raises DataError with what each source said."""
    import keras

    mirror = os.environ.get("TLU_MIRROR", "").rstrip("/")
    errors = []
    for url in ([f"{mirror}/{mirror_name or fname}"] if mirror else []) + list(urls):
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


def backbone_weights_url(backbone: str, size: int) -> str:
    """The URL of the ImageNet weights file (no top) a backbone loads at this input size: the
    size's own file where the registry lists one, else the file of its first size, as
    keras.applications does (backbones.BackboneSpec.weights_source returns it)."""
    spec = BACKBONE_WEIGHTS[backbone]
    rows = size if size in spec["sizes"] else spec["sizes"][0]
    return spec["url"].format(rows=rows)


def backbone_weights_name(backbone: str, size: int) -> str:
    """The file name of that weights file: its name in <cache>/models and in WEIGHTS, which
    weights_file and require take. Used in every notebook's require call."""
    return backbone_weights_url(backbone, size).rsplit("/", 1)[-1]


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


def read_h5_weights(path: str | Path) -> dict[str, list[np.ndarray]]:
    """The arrays of a Keras 1/2 .h5 weights file (top level, or under model_weights in a
    saved model), by layer name with "/" read as "_"; layers without weights left out."""
    import h5py

    def text(v) -> str:
        return v.decode() if isinstance(v, bytes) else str(v)

    try:
        with h5py.File(path, "r") as f:
            root = f["model_weights"] if "model_weights" in f else f
            found = {}
            for layer in map(text, root.attrs["layer_names"]):
                names = [text(n) for n in root[layer].attrs["weight_names"]]
                if names:
                    found[layer.replace("/", "_")] = [np.asarray(root[layer][n]) for n in names]
            return found
    except (OSError, KeyError) as err:
        raise DataError(f"{path} is not a Keras weights file ({str(err).splitlines()[0][:80]})"
                        ": delete it and run again to download it.") from None


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


def model_folder(name: str) -> Path:
    """The cache folder of a registered model (data/registry.json "models"): each missing
    file is downloaded, and every file is checked against its sha256, so a cut or altered
    file is named instead of failing deep inside a loader (text.load_transformer). A
    workshop mirror serves the files in a folder of the model's name."""
    spec = MODELS[name]
    folder = cache_root() / "models" / spec.folder
    for rel, sha in spec.files.items():
        path = folder / rel
        if not path.exists():
            try:
                download(path.name, [f"{spec.url}/{rel}"], str(path.parent.relative_to(
                    cache_root())), sha, mirror_name=f"{spec.folder}/{rel}")
            except DataError as err:
                raise DataError(f"Could not get {rel} of {name} ({err}). Download "
                                f"{spec.url}/{rel} and put it at {path}.") from None
        elif _sha256(path) != sha:
            raise DataError(f"{path} is damaged (its sha256 is not the published one): delete "
                            "it and run again to download it, or run `python3 -m tlutils "
                            "offline-cache SHARED_DATA` to copy it from the shared data.")
    return folder


def require(datasets: list[str] = (), files: list[str] = (), weights: list[str] = (),
            models: list[str] = ()) -> None:
    """Fetch what a notebook needs before it trains anything. Every asset is tried, and one
    DataError lists each one that is missing or damaged, a sentence each. Explained in
    00_start_here; every notebook calls it after its parameters cell."""
    problems = []
    for get, names in ((fetch, datasets), (fetch_file, files), (weights_file, weights),
                       (model_folder, models)):
        for name in names:
            try:
                get(name)
            except DataError as err:
                problems.append(str(err))
    if problems:
        raise DataError(f"{len(problems)} of the files this needs cannot be used:\n"
                        + "\n".join(f"- {p}" for p in problems))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
