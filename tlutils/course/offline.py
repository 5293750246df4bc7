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
    files_under,
    folder_sha256,
)


def build_offline_cache(shared_data: str | Path,
                        cache: str | Path | None = None) -> tuple[Path, list[Path], list[str]]:
    """Copy the offline assets of shared/data into a writable Keras cache; return the cache,
    the cached copies it repaired (they differed from the shared ones: a cut download,
    a damaged file) and a sentence for each shared copy it skipped.

    Weights go to <cache>/models (where keras.applications looks), datasets to the
    folder fetch() checks. Identical copies already there are left alone. Each shared copy
    is checked first (shared_problem) and one that fails is never copied, so a damaged
    shared file cannot replace a good cached one.
    """
    shared = Path(shared_data)
    if not (shared / "MANIFEST.md").exists():
        raise DataError(f"{shared} is not a shared data folder (it has no MANIFEST.md).")
    if cache is not None:
        os.environ["KERAS_HOME"] = str(Path(cache).resolve())
    root = cache_root()
    sums = read_sums(shared)
    repaired, skipped, found = [], [], 0
    for src, dst, expected in shared_pairs(shared, root):
        if not src.exists():
            continue
        found += 1
        problem = shared_problem(src, shared, sums, expected)
        if problem:
            kept = " the cached copy is kept;" if dst.exists() else ""
            skipped.append(f"{src}: {problem};{kept} not copied. Get a good copy of it "
                           "(or run `sha256sum -c SHA256SUMS` in the shared folder).")
        elif _copy_atomic(src, dst):
            repaired.append(dst)
    if not found:
        raise DataError(f"{shared} holds none of the course's files (see data/registry.json's "
                        "shared_copy entries): is it the shared data folder?")
    return root, repaired, skipped


def shared_pairs(shared: Path, root: Path) -> list[tuple[Path, Path, dict]]:
    """(shared copy, cache place, the registry's checksums for it) for every offline asset."""
    keras_models = sorted((shared / "keras" / "models").glob("*"))
    pairs = [(f, root / "models" / f.name, {}) for f in keras_models]
    pairs += [(shared / w["shared_copy"], root / "models" / name, {"sha256": w.get("sha256")})
              for name, w in WEIGHTS.items() if w.get("shared_copy")]
    pairs += [(shared / s.shared_copy, root / "datasets" / s.path, {"folder": s.folder_sha256})
              for s in DATASETS.values() if s.shared_copy]
    pairs += [(shared / f.shared_copy, root / "datasets" / f.folder / f.name, {"sha256": f.sha256})
              for f in FILES.values() if f.shared_copy]
    pairs += [(shared / m.shared_copy, root / "models" / m.folder, {"files": m.files})
              for m in MODELS.values() if m.shared_copy]
    by_place: dict[Path, tuple[Path, Path, dict]] = {}
    for src, dst, expected in pairs:  # a registry entry refines the plain keras/models copy
        by_place[dst] = (src, dst, {**by_place.get(dst, (None, None, {}))[2],
                                    **{k: v for k, v in expected.items() if v}})
    return list(by_place.values())


def read_sums(shared: Path) -> dict[str, str]:
    """The shared folder's SHA256SUMS (sha256sum format) as {relative path: sha256}."""
    path = shared / "SHA256SUMS"
    if not path.exists():
        return {}
    pairs = (line.split(None, 1) for line in path.read_text(encoding="utf-8").splitlines()
             if line.strip())
    return {name.strip().lstrip("*"): digest for digest, name in pairs}


def shared_problem(src: Path, shared: Path, sums: dict[str, str], expected: dict) -> str | None:
    """Why the shared copy src cannot be trusted, or None: a file that differs from
    SHA256SUMS or from the registry's checksum, a folder with a file that does, or a folder
    whose hash is not the registry's."""
    files = files_under(src) if src.is_dir() else [src]
    for path in files:
        rel = path.relative_to(shared).as_posix()
        if rel in sums and _sha256(path) != sums[rel]:
            return f"{rel} does not match SHA256SUMS"
    if expected.get("sha256") and _sha256(src) != expected["sha256"]:
        return "it does not match the checksum in data/registry.json"
    if expected.get("folder") and folder_sha256(src) != expected["folder"]:
        return "its files do not match the folder hash in data/registry.json"
    for rel, digest in (expected.get("files") or {}).items():
        if not (src / rel).is_file() or _sha256(src / rel) != digest:
            return f"its {rel} is missing or does not match data/registry.json"
    return None


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
