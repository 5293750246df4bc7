"""A workshop kit: `python3 -m tlutils workshop-kit DIR [--profile P ...]` writes a folder an
instructor copies to a USB stick or serves on the room's network (docs/workshop.md).

    DIR/wheels/     the wheels of requirements.lock (and of tlutils) for the named platforms
    DIR/cache/      a filled, checked Keras cache: point KERAS_HOME at a writable copy
    DIR/mirror/     the same files by download name, to serve as TLU_MIRROR
    DIR/notebooks/  the notebooks
    DIR/README.md   how to install and run offline, and what the kit lacks

Anything it cannot get is listed, one sentence each, and the kit is written for the rest.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tlutils.course import assets

ROOT = Path(__file__).resolve().parents[2]


def profile_assets(profile_names: list[str]) -> dict[str, list[str]]:
    """Every dataset, file, weights file and model the named profiles' notebooks use."""
    from tlutils import backbones
    from tlutils.course import profiles

    # 09_efficient_transfer also compares SqueezeNet, and in cpu and gpu larger backbones
    # (its BIG_CANDIDATES)
    bigger = {"smoke": [], "cpu": ["vgg16"], "gpu": ["vgg16", "efficientnet_b0"]}
    datasets, weights = [], []
    for name in profile_names:
        p = profiles.PROFILES[name]
        datasets.append(p.dataset)
        weights += [backbones.weights_name(b, p.image_size)
                    for b in [p.backbone, "squeezenet_11", *bigger[name]]]
    # 05 and 08: the PACS subset (smoke) or full PACS; the digit files and 07's transformer
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
    Path(dst).unlink(missing_ok=True)
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
                    pip_args: list[str]) -> list[str]:
    """pip download every requirement for each platform (None: this machine) into wheels/;
    return a sentence for each requirement that pip could not get."""
    missing = []
    for platform in platforms or [None]:
        where = ["--platform", platform, "--only-binary=:all:",
                 "--python-version", f"{sys.version_info.major}{sys.version_info.minor}",
                 "--implementation", "cp"] if platform else []
        base = ["download", "--no-deps", "-d", str(wheels), *where, *pip_args]
        if pip(*base, "-r", str(requirements)).returncode == 0:
            continue
        for req in _requirements(requirements):  # find which ones failed, one by one
            done = pip(*base, req)
            if done.returncode != 0:
                said = (done.stderr.strip().splitlines() or ["no message"])[-1]
                missing.append(f"{req} for {platform or 'this machine'}: pip said {said!r}.")
    # the course's own wheel; its build needs setuptools>=77, from the index unless pip has it
    course = pip("wheel", "--no-deps", "-w", str(wheels), str(ROOT))
    if course.returncode != 0:
        course = pip("wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(ROOT))
    if course.returncode != 0:
        missing.append("the tlutils wheel: pip wheel said "
                       f"{(course.stderr.strip().splitlines() or ['no message'])[-1]!r}.")
    return missing


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

## What this kit lacks
{missing}
"""


def build_kit(dest: str | Path, profile_names: list[str], platforms: list[str] = (),
              requirements: Path | None = None, pip_args: list[str] = (),
              only: dict[str, list[str]] | None = None) -> tuple[Path, list[str]]:
    """Write the kit into dest (see the module docstring); return it and what it lacks.

    `only` replaces the profiles' asset list, and `requirements` requirements.lock (tests
    build small kits with both)."""
    kit = Path(dest).expanduser().absolute()
    kit.mkdir(parents=True, exist_ok=True)
    requirements = Path(requirements or ROOT / "requirements.lock")
    missing = download_wheels(requirements, kit / "wheels", list(platforms), list(pip_args))
    got = [r for r in _requirements(requirements) if not any(m.startswith(f"{r} for ")
                                                            for m in missing)]
    (kit / "requirements.lock").write_text("".join(f"{r}\n" for r in got))  # what it has
    missing += copy_assets(only or profile_assets(profile_names), kit)
    shutil.copytree(ROOT / "notebooks", kit / "notebooks", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    (kit / "README.md").write_text(ROOM_README.format(
        profiles=", ".join(profile_names), platforms=", ".join(platforms) or "this machine",
        python=f"{sys.version_info.major}.{sys.version_info.minor}", first=profile_names[0],
        missing="\n".join(f"- {m}" for m in missing) or "Nothing: everything was found."),
        encoding="utf-8")
    return kit, missing


def kit_size(kit: Path) -> int:
    """Bytes in the kit, each hard-linked file counted once."""
    seen, total = set(), 0
    for path in kit.rglob("*"):
        if path.is_file() and (st := path.stat()).st_ino not in seen:
            seen.add(st.st_ino)
            total += st.st_size
    return total
