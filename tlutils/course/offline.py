"""The offline cache: fill a writable Keras cache from a shared/data folder, and repair a
cached copy that differs from the shared one (a cut download, a damaged file).

Course machinery; `python3 -m tlutils offline-cache SHARED_DATA` calls it (00_start_here).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from tlutils.course.assets import (
    DATASETS,
    FILES,
    MODELS,
    WEIGHTS,
    DataError,
    _move_into_place,
    _sha256,
    cache_root,
    folder_sha256,
)


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
    pairs += [(shared / m.shared_copy, root / "models" / m.folder)
              for m in MODELS.values() if m.shared_copy]
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
