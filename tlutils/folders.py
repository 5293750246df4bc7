"""Check a folder of your own images before training on it: a report, or one clear refusal.

Explained in 10_your_own_data.
"""

from __future__ import annotations

import dataclasses
import os
from collections import Counter
from pathlib import Path

import numpy as np

from tlutils.course.assets import DataError
from tlutils.course.images import content_id, find_splits, list_class_folder
from tlutils.course.report import shown
from tlutils.data import decode_image

CHECK_SIZE = 32  # decode size for checking: small and fast (JPEG draft mode), same failures
HUGE_SIDE = 4000  # images with a longer side are reported as huge (still usable)


class FolderError(DataError):
    """The folder cannot be used; the message is one sentence that says why and what to do.

    In a notebook it shows as that sentence alone, without a traceback.
    """

    def _render_traceback_(self) -> list[str]:  # IPython calls this instead of printing a traceback
        return [f"{type(self).__name__}: {self}"]


@dataclasses.dataclass
class ImageCheck:
    """What checking one file found: size and mode, conversions, or why it is unusable."""

    size: tuple[int, int] | None = None  # (width, height) as stored
    mode: str | None = None  # Pillow mode as stored: RGB, L, RGBA, P, CMYK, ...
    notes: list[str] = dataclasses.field(default_factory=list)  # conversions decoding applies
    problem: str | None = None  # why the file cannot be used; None if usable


def check_image(path: str | Path, min_side: int = 8) -> ImageCheck:
    """Open and fully decode one file as training will, and say what happened in words."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if path.stat().st_size == 0:
        return ImageCheck(problem="empty file (0 bytes)")
    try:
        with Image.open(path) as im:
            info = ImageCheck(im.size, im.mode)
            orientation = im.getexif().get(0x0112, 1)
            transparent = im.mode in ("RGBA", "LA", "PA") or (
                im.mode == "P" and "transparency" in im.info)  # what decode_image puts on white
    except UnidentifiedImageError:
        return ImageCheck(problem="not an image Pillow can read")
    except Image.DecompressionBombError as err:
        return ImageCheck(problem=f"too many pixels to decode safely ({err})")
    except Exception as err:  # a broken header
        return ImageCheck(problem=f"unreadable ({_first_line(err)})")
    try:
        decode_image(path, CHECK_SIZE, min_side)
    except ValueError as err:
        info.problem = _first_line(err)  # "too small (1x1 pixels)"
    except Exception as err:  # truncated data, broken stream
        text = _first_line(err)
        truncated = "truncat" in text
        info.problem = "truncated or corrupt image data" if truncated else f"corrupt ({text})"
    if info.problem is None:
        info.notes = _conversions(info, orientation, transparent)
    return info


def _conversions(info: ImageCheck, orientation: int, transparent: bool) -> list[str]:
    notes = []
    if info.mode in ("1", "L", "LA"):
        notes.append(f"greyscale ({info.mode}) to RGB")
    if info.mode in ("I", "F") or info.mode.startswith("I;16"):
        depth = "32-bit float" if info.mode == "F" else "high bit-depth"
        notes.append(f"{depth} greyscale ({info.mode}) scaled to 8 bits, then RGB")
    if info.mode == "P":
        notes.append("palette to RGB")
    if info.mode == "CMYK":
        notes.append("CMYK to RGB")
    if transparent:
        notes.append("transparency on white")
    if orientation not in (None, 1):
        notes.append(f"EXIF orientation {orientation} applied")
    if max(info.size) > HUGE_SIDE:
        notes.append(f"huge ({info.size[0]}x{info.size[1]}), downscaled")
    return notes


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")  # a name that was not UTF-8 on disk holds lone surrogates
        return True
    except UnicodeEncodeError:
        return False


def _first_line(err: Exception) -> str:
    return (str(err) or type(err).__name__).splitlines()[0][:120]


@dataclasses.dataclass
class FolderReport:
    """What validate_folder found: classes, usable images, sizes, modes, skipped files."""

    root: Path
    layout: str  # "train/ and val/" or "one folder" (split into train and val later)
    class_names: list[str]
    counts: dict[str, dict[str, int]]  # class -> {"train": n, "val": n} or {"images": n}
    skipped: list[tuple[str, str]]  # (path relative to root, reason)
    converted: list[tuple[str, str]]  # (path relative to root, what decoding converts)
    sizes: np.ndarray  # (n, 2): width and height of each usable image, as stored
    modes: Counter  # Pillow mode -> usable images
    ignored: list[str]  # entries outside the class folders, relative to root
    warnings: list[str]
    duplicates: list[list[str]] = dataclasses.field(default_factory=list)  # byte-identical
    conflicts: list[list[str]] = dataclasses.field(default_factory=list)  # ... across classes

    @property
    def n_images(self) -> int:
        return sum(self.totals().values())

    @property
    def n_skipped(self) -> int:
        return len(self.skipped)

    def totals(self) -> dict[str, int]:
        """Usable images per class, all splits together."""
        return {c: sum(self.counts[c].values()) for c in self.class_names}

    @property
    def imbalance(self) -> float:
        """Largest class over smallest class (1.0: balanced)."""
        totals = list(self.totals().values())
        return max(totals) / max(1, min(totals))

    def rows(self) -> list[dict]:
        """One dict per class: usable images per split and in total."""
        total = len(next(iter(self.counts.values()))) > 1
        return [{"class": c, **self.counts[c], **({"total": n} if total else {})}
                for c, n in self.totals().items()]

    def summary(self, max_listed: int = 20) -> str:
        """The report as text: counts, imbalance, sizes, modes, conversions, skipped files."""
        cols = list(self.rows()[0])[1:]
        width = max(len(c) for c in ["class", *self.class_names])
        lines = [f"{shown(self.root)} ({self.layout}): {len(self.class_names)} classes, "
                 f"{self.n_images} usable images, {self.n_skipped} skipped",
                 "  " + "class".ljust(width) + "".join(f"{h:>8}" for h in cols)]
        for row in self.rows():
            lines.append("  " + row["class"].ljust(width) + "".join(f"{row[h]:>8}" for h in cols))
        lines.append(f"imbalance (largest / smallest class): {self.imbalance:.1f}")
        area = self.sizes.prod(axis=1)
        small, large = self.sizes[area.argmin()], self.sizes[area.argmax()]
        median = np.median(self.sizes, axis=0).astype(int)
        lines.append(f"sizes (width x height): smallest {small[0]}x{small[1]}, "
                     f"median {median[0]}x{median[1]}, largest {large[0]}x{large[1]}")
        lines.append("modes: " + ", ".join(f"{m} {n}" for m, n in self.modes.most_common()))
        for title, items in [("converted when loaded", self.converted), ("skipped", self.skipped)]:
            lines.append(f"{title}: {len(items) or 'none'}")
            lines += [f"  {path}: {why}" for path, why in items[:max_listed]]
            if len(items) > max_listed:
                lines.append(f"  ... and {len(items) - max_listed} more")
        extra = sum(len(g) - 1 for g in self.duplicates)
        lines.append(f"duplicates: {extra or 'none'}" + (
            f" ({extra} files are byte-identical copies of another, in {len(self.duplicates)} "
            f"groups; {len(self.conflicts)} groups span two classes)" if extra else ""))
        lines += [f"  {' = '.join(g)}" for g in self.duplicates[:max_listed]]
        if len(self.duplicates) > max_listed:
            lines.append(f"  ... and {len(self.duplicates) - max_listed} more groups")
        if self.ignored:
            lines.append(f"ignored (outside the class folders): {', '.join(self.ignored)}")
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def validate_folder(path: str | Path, min_side: int = 8) -> FolderReport:
    """Check every file of a one-sub-folder-per-class folder (optionally in train/ and val/).

    Decodes each file as training will, and raises FolderError, with one sentence, when the
    folder cannot be used: it does not exist, has fewer than two classes, a class without a
    usable image, or (one folder, no train/ and val/) a class with a single image.
    """
    root = Path(path).expanduser()
    where = "set DATA_DIR to a folder with one sub-folder per class"
    if not root.exists():
        raise FolderError(f"{root} does not exist; {where}.")
    if not root.is_dir():
        raise FolderError(f"{root} is a file, not a folder; {where}.")
    try:
        found = find_splits(root)  # train/ and val/, Train/ and Val/, training_set/ ...
    except DataError as err:
        raise FolderError(str(err)) from None
    dirs = found or {"images": root}
    splits = list(dirs)
    files = {s: list_class_folder(d) for s, d in dirs.items()}
    class_names = list(files[splits[0]])
    if len(class_names) < 2:
        found_one = f" (found only {class_names[0]!r})" if class_names else ""
        raise FolderError(f"{dirs[splits[0]]} needs at least two class sub-folders with "
                          f"images{found_one}; put each class's images in a sub-folder named "
                          "after the class.")
    not_utf8 = [c for c in class_names if not _is_utf8(c)]
    if not_utf8:
        raise FolderError(f"The class folder {os.fsencode(not_utf8[0])!r} in {dirs[splits[0]]} "
                          "has a name that is not UTF-8 (an old Windows zip?); rename it, so "
                          "that the labels file can hold it.")
    layout = " and ".join(f"{d.relative_to(root).as_posix()}/" for d in dirs.values()) \
        if found else "one folder"
    report = FolderReport(root, layout, class_names,
                          {c: dict.fromkeys(splits, 0) for c in class_names}, [], [],
                          np.zeros((0, 2), int), Counter(), _ignored(root, dirs), [])
    sizes, copies = [], {}
    for split in splits:
        for cls, paths in files[split].items():
            if cls not in report.counts:
                report.warnings.append(f"{dirs[split].name}/{cls}/ has no matching "
                                       f"{dirs[splits[0]].name}/{cls}/ and is ignored")
                continue
            for p in paths:
                check, rel = check_image(p, min_side), p.relative_to(root).as_posix()
                if check.problem:
                    report.skipped.append((rel, check.problem))
                    continue
                report.counts[cls][split] += 1
                copies.setdefault(content_id(p), []).append((rel, cls, split))
                report.modes[check.mode] += 1
                sizes.append(check.size)
                if check.notes:
                    report.converted.append((rel, ", ".join(check.notes)))
    report.sizes = np.array(sizes, dtype=int).reshape(-1, 2)
    groups = [sorted(g) for g in copies.values() if len(g) > 1]
    report.duplicates = sorted([rel for rel, _, _ in g] for g in groups)
    report.conflicts = sorted([r for r, _, _ in g] for g in groups if len({c for _, c, _ in g}) > 1)
    leaks = sum(1 for g in groups if len({s for _, _, s in g}) > 1)
    if leaks:
        report.warnings.append(f"{leaks} images in {dirs['val'].name}/ have a byte-identical copy "
                               f"in {dirs['train'].name}/: validation then partly measures memory")
    _refuse_unusable(report, dirs)
    return report


def _ignored(root: Path, dirs: dict[str, Path]) -> list[str]:
    """Entries the loader never reads: loose files, and with split folders other folders."""
    split = "images" not in dirs
    folders = [root] + (list(dirs.values()) if split else [])
    out = [p for f in folders for p in sorted(f.iterdir()) if p.is_file()]
    if split:
        used = {d.relative_to(root).parts[0] for d in dirs.values()}
        out += [p for p in sorted(root.iterdir()) if p.is_dir() and p.name not in used]
    return [p.relative_to(root).as_posix() + ("/" if p.is_dir() else "") for p in out
            if not p.name.startswith(".")]


def _refuse_unusable(report: FolderReport, dirs: dict[str, Path]) -> None:
    """Raise FolderError for a class without usable images or a split with nothing left."""
    first = next(iter(dirs))
    base = dirs[first].relative_to(report.root).as_posix()
    for cls in report.class_names:
        n = report.counts[cls][first]
        inside = f" in {base}/" if first != "images" else ""
        if n == 0:
            prefix = f"{base}/{cls}/" if first != "images" else f"{cls}/"
            bad = [f"{p}: {why}" for p, why in report.skipped if p.startswith(prefix)]
            why = (f"all {len(bad)} of its files were skipped ({'; '.join(bad[:3])}"
                   f"{'; ...' if len(bad) > 3 else ''})" if bad else "its folder is empty")
            raise FolderError(f"Class {cls!r} has no usable image{inside}: {why}; add images "
                              f"to {report.root / prefix} or remove that folder.")
        if first == "images" and n == 1:
            raise FolderError(f"Class {cls!r} has only one usable image; put at least two in "
                              f"each class, so that one can go to the validation split.")
    if "val" in dirs:
        val = dirs["val"].relative_to(report.root).as_posix()
        if sum(report.counts[c]["val"] for c in report.class_names) == 0:
            raise FolderError(f"{dirs['val']} has no usable image; put some images of "
                              f"each class in {val}/<class>/.")
        report.warnings += [f"class {c!r} has no usable image in {val}/, so validation cannot "
                            "measure it" for c in report.class_names if not report.counts[c]["val"]]
