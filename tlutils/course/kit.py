"""A workshop kit: `python3 -m tlutils workshop-kit DIR [--profile P ...]` writes a folder an
instructor copies to a USB stick or serves on the room's network (docs/workshop.md).

    DIR/wheels/     the wheels of requirements.lock (and of tlutils) for the named platforms
    DIR/cache/      a filled, checked Keras cache: point KERAS_HOME at a writable copy
    DIR/mirror/     the same files by download name, to serve as TLU_MIRROR
    DIR/notebooks/  the notebooks
    DIR/book/<P>/   the course as a book: the notebooks as the profile's last run executed
                    them (tlutils.course.book), to read in a browser with no network
    DIR/README.md   how to install and run offline, and what the kit lacks

Anything it cannot get is listed, one sentence each, and the kit is written for the rest.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tlutils.course import assets

ROOT = Path(__file__).resolve().parents[2]


def profile_assets(profile_names: list[str]) -> dict[str, list[str]]:
    """Every dataset, file, weights file and model the named profiles' notebooks use."""
    from tlutils.course import profiles

    # 16_choose_what_to_transfer also compares SqueezeNet, and in cpu and gpu larger backbones
    # (its BIG_CANDIDATES)
    bigger = {"smoke": [], "cpu": ["vgg16"], "gpu": ["vgg16", "efficientnet_b0"]}
    datasets, weights = [], []
    for name in profile_names:
        p = profiles.PROFILES[name]
        datasets.append(p.dataset)
        weights += [assets.backbone_weights_name(b, p.image_size)
                    for b in [p.backbone, "squeezenet_11", *bigger[name]]]
    # 06 and 10: the PACS subset (smoke) or full PACS; the digit files and 09's transformer
    # are in every profile
    datasets += ["pacs"] if {"cpu", "gpu"} & set(profile_names) else []
    datasets += ["pacs_subset"] if "smoke" in profile_names else []
    return {"datasets": list(dict.fromkeys(datasets)), "files": list(assets.FILES),
            "weights": list(dict.fromkeys(weights)), "models": list(assets.MODELS)}


def _cached(kind: str, name: str) -> tuple[Path, list[tuple[Path, str]]]:
    """The checked cache path of one asset, and its (file, download name) pairs for a
    mirror. Raises assets.DataError, with what to do, when it is missing or damaged."""
    if kind == "datasets":
        path, spec = assets.fetch(name), assets.DATASETS[name]
        archive = assets.cache_root() / "datasets" / spec.archive_name
        return path, [(archive, spec.archive_name)] if archive.is_file() else []
    if kind == "files":
        path = assets.fetch_file(name)
        return path, [(path, name)]
    if kind == "weights":
        path = assets.weights_file(name)
        return path, [(path, name)]
    folder, spec = assets.model_folder(name), assets.MODELS[name]
    return folder, [(folder / rel, f"{spec.folder}/{rel}") for rel in spec.files]


def _place(src: Path, dst: Path) -> None:
    """dst as a hard link to src where the file system allows, else a copy."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, dst, copy_function=_link_or_copy, dirs_exist_ok=True)
    else:
        _link_or_copy(src, dst)


def _link_or_copy(src, dst) -> None:
    """A hard link, else a copy; never over an existing file (it could be src itself)."""
    if os.path.lexists(dst):
        raise FileExistsError(f"{dst} exists already; the kit writes only new files.")
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def copy_assets(wanted: dict[str, list[str]], kit: Path) -> list[str]:
    """Check each asset in this machine's cache and put it in kit/cache (same layout) and
    kit/mirror (by download name); return a sentence for each one that is not there."""
    root, missing = assets.cache_root(), []
    for kind, names in wanted.items():
        for name in names:
            try:
                path, mirror_files = _cached(kind, name)
            except assets.DataError as err:
                missing.append(f"{name}: {err}")
                continue
            _place(path, kit / "cache" / path.relative_to(root))
            for src, served in mirror_files:
                _place(src, kit / "mirror" / served)
            if kind == "datasets" and not mirror_files:
                missing.append(f"{name}: its archive is not in this cache, so the mirror "
                               "cannot serve it; laptops get it from cache/ instead.")
    return missing


def pip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True)


def _requirements(path: Path) -> list[str]:
    lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    return [line for line in lines if line]


def download_wheels(requirements: Path, wheels: Path, platforms: list[str],
                    pip_args: list[str]) -> tuple[list[str], set[str]]:
    """pip download every requirement for each platform (None: this machine) into wheels/;
    return a sentence for each requirement pip could not get (one for a platform where it
    got none: a mistyped tag), and those requirements."""
    missing, lacking = [], set()
    reqs = _requirements(requirements)
    for platform in platforms or [None]:
        where = ["--platform", platform, "--only-binary=:all:",
                 "--python-version", f"{sys.version_info.major}{sys.version_info.minor}",
                 "--implementation", "cp"] if platform else []
        base = ["download", "--no-deps", "-d", str(wheels), *where, *pip_args]
        if pip(*base, "-r", str(requirements)).returncode == 0:
            continue
        failed = {}
        for req in reqs:  # find which ones failed, one by one
            done = pip(*base, req)
            if done.returncode != 0:
                failed[req] = _pip_said(done.stderr)
        lacking |= set(failed)
        if platform and len(failed) == len(reqs) > 1:
            missing.append(f"every wheel for platform {platform!r}: pip found none (it said "
                           f"{next(iter(failed.values()))!r}); check the tag, e.g. "
                           "manylinux2014_x86_64, macosx_11_0_arm64 or win_amd64.")
            continue
        missing += [f"{req} for {platform or 'this machine'}: pip said {said!r}."
                    for req, said in failed.items()]
    # the course's own wheel; its build needs setuptools>=77, from the index unless pip has it
    course = pip("wheel", "--no-deps", "-w", str(wheels), str(ROOT))
    if course.returncode != 0:
        course = pip("wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(ROOT))
    if course.returncode != 0:
        missing.append(f"the tlutils wheel: pip wheel said {_pip_said(course.stderr)!r}.")
    return missing, lacking


def _pip_said(stderr: str) -> str:
    """The line of pip's error output that names the cause: its first ERROR line that is not
    a summary ("Failed to build", a hint), else its last line."""
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    causes = [line for line in lines if line.startswith("ERROR:") and not any(
        word in line for word in ("Failed to build", "failed-wheel-build", "subprocess-exited"))]
    return (causes or lines or ["no message"])[0]


ROOM_README = """# Workshop kit: transfer learning with Keras 3

Built for the profile(s) {profiles}; wheels for {platforms} (Python {python}).

## 1. Install, with no network
```bash
python3 -m venv .venv
.venv/bin/pip install --no-index --find-links wheels -r requirements.lock
.venv/bin/pip install --no-index --find-links wheels --no-deps tlutils
```

## 2. The data and weights
Keras ignores a cache it cannot write to, so copy `cache/` to each laptop first, then:
```bash
export KERAS_HOME=/path/to/the/copy/of/cache
```
Or serve the files from one machine and let each laptop download them as it goes:
```bash
python3 -m http.server 8000 --directory mirror   # on the instructor's machine
export TLU_MIRROR=http://<that machine's address>:8000   # on each laptop
```

## 3. Run
```bash
.venv/bin/python -m tlutils run notebooks/00_start_here.ipynb --profile {first}
.venv/bin/python -m tlutils lab   # or open the notebooks in JupyterLab
```

## 4. Read the course as a book
`book/<profile>/index.html` is every notebook as it ran on the instructor's machine, with
its outputs, plots and claims: open it in any browser, no network needed.

## What this kit lacks
{missing}
"""


MARKER = ".tlutils-kit"  # in a kit: the files it wrote, one a line; a rebuild may replace them


def build_kit(dest: str | Path, profile_names: list[str], platforms: list[str] = (),
              requirements: Path | None = None, pip_args: list[str] = (),
              only: dict[str, list[str]] | None = None) -> tuple[Path, list[str]]:
    """Write the kit into dest (see the module docstring); return it and what it lacks.

    dest must be new, empty or a kit built before (check_destination). The kit is built in
    a temporary folder beside it that becomes dest only when complete, so a failure (a full
    disk) leaves dest as it was. `only` replaces the profiles' asset list, and
    `requirements` requirements.lock (tests build small kits with both)."""
    kit = Path(dest).expanduser().absolute()
    check_destination(kit)
    requirements = Path(requirements or ROOT / "requirements.lock")
    try:
        kit.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(dir=kit.parent, prefix=f".{kit.name}.", suffix=".partial"))
    except OSError as err:
        raise assets.DataError(f"Cannot create the kit at {kit}: {_reason(err)}. Name a "
                               "folder you can write to.") from None
    try:
        new = work / "kit"
        new.mkdir()
        missing = _write_kit(new, profile_names, list(platforms), requirements, list(pip_args),
                             only)
        written = sorted(p.relative_to(new).as_posix() for p in new.rglob("*") if p.is_file())
        (new / MARKER).write_text("".join(f"{w}\n" for w in written), encoding="utf-8")
        if kit.is_dir():
            os.rename(kit, work / "old")  # empty, or only what an earlier build wrote
        os.rename(new, kit)
    except OSError as err:
        raise assets.DataError(f"Could not write the kit: {_reason(err)}. {kit} is as it was "
                               "before; free some space or name another folder.") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)  # the temporary folder this call made
    return kit, missing


def _write_kit(kit: Path, profile_names: list[str], platforms: list[str], requirements: Path,
               pip_args: list[str], only: dict[str, list[str]] | None) -> list[str]:
    """Fill an empty folder with the kit's parts; return what it lacks."""
    missing, lacking = download_wheels(requirements, kit / "wheels", platforms, pip_args)
    got = [r for r in _requirements(requirements) if r not in lacking]
    (kit / "requirements.lock").write_text("".join(f"{r}\n" for r in got))  # what it has
    missing += copy_assets(only or profile_assets(profile_names), kit)
    shutil.copytree(ROOT / "notebooks", kit / "notebooks",
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    missing += copy_books(profile_names, kit)
    (kit / "README.md").write_text(ROOM_README.format(
        profiles=", ".join(profile_names), platforms=", ".join(platforms) or "this machine",
        python=f"{sys.version_info.major}.{sys.version_info.minor}", first=profile_names[0],
        missing="\n".join(f"- {m}" for m in missing) or "Nothing: everything was found."),
        encoding="utf-8")
    return missing


def copy_books(profile_names: list[str], kit: Path, sources: Path | None = None) -> list[str]:
    """Put each profile's book in kit/book/<profile>/: the last one built, when it is as new
    as the run and the notebooks, else one built now from the run; return a sentence for
    each profile whose run is missing or older than its notebooks."""
    from tlutils.course import book

    missing = []
    for name in profile_names:
        try:
            index = book.current_book(name, sources) or book.build_book(name, sources=sources)[0]
        except book.BookError as err:
            missing.append(f"the book of profile {name}: {err}")
            continue
        _place(index.parent, kit / "book" / name)
    return missing


def check_destination(kit: Path) -> None:
    """Refuse, in one sentence, a kit folder that is a file, holds the checkout or the cache
    the kit copies from (or sits inside it), or holds files an earlier kit did not write."""
    cache = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras").expanduser().absolute()
    if kit.exists() and not kit.is_dir():
        raise assets.DataError(f"{kit} is a file: name a new folder for the kit.")
    for what, place in (("the course's checkout", ROOT), ("the cache it copies from", cache)):
        if place.resolve().is_relative_to(kit.resolve()) or kit.resolve().is_relative_to(
                place.resolve()):
            raise assets.DataError(f"{kit} overlaps {what} ({place}): name a new folder "
                                   "outside it.")
    if not kit.is_dir() or not any(kit.iterdir()):
        return
    marker = kit / MARKER
    written = set(marker.read_text(encoding="utf-8").splitlines()) if marker.is_file() else set()
    others = sorted(p.relative_to(kit).as_posix() for p in kit.rglob("*")
                    if not p.is_dir() and p != marker
                    and p.relative_to(kit).as_posix() not in written)
    if others:
        shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        raise assets.DataError(f"{kit} holds files the kit did not write ({shown}): name a new "
                               "or empty folder, or move them out first.")


def _reason(err: OSError) -> str:
    """An OSError in words: its strerror and file, or the first of shutil.Error's list."""
    if isinstance(err, shutil.Error) and err.args and isinstance(err.args[0], list):
        src, _, why = err.args[0][0]
        return f"{why} ({src})"
    return f"{err.strerror or err}" + (f" ({err.filename})" if err.filename else "")


def kit_size(kit: Path) -> int:
    """Bytes in the kit, each hard-linked file counted once."""
    seen, total = set(), 0
    for path in kit.rglob("*"):
        if path.is_file() and (st := path.stat()).st_ino not in seen:
            seen.add(st.st_ino)
            total += st.st_size
    return total
