"""Check a folder of your own images before training on it: a report, or one clear refusal.

Explained in 06_your_own_data.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

import numpy as np

from tlutils.data import DataError, decode_image, list_class_folder

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
    if info.mode in ("1", "L", "LA", "I", "I;16", "F"):
        notes.append(f"greyscale ({info.mode}) to RGB")
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
        lines = [f"{self.root} ({self.layout}): {len(self.class_names)} classes, "
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
    has = {s: (root / s).is_dir() for s in ("train", "val")}
    if has["train"] != has["val"]:
        there, missing = ("train", "val") if has["train"] else ("val", "train")
        raise FolderError(f"{root} has a {there}/ folder but no {missing}/ folder; add {missing}/ "
                          f"with the same class sub-folders, or put the class folders in {root}.")
    splits = ["train", "val"] if has["train"] else ["images"]
    files = {s: list_class_folder(root / s if s != "images" else root) for s in splits}
    class_names = list(files[splits[0]])
    if len(class_names) < 2:
        found = f" (found only {class_names[0]!r})" if class_names else ""
        inside = f"{root / 'train'}" if has["train"] else f"{root}"
        raise FolderError(f"{inside} needs at least two class sub-folders with images{found}; "
                          f"put each class's images in a sub-folder named after the class.")
    report = FolderReport(root, "train/ and val/" if has["train"] else "one folder", class_names,
                          {c: dict.fromkeys(splits, 0) for c in class_names}, [], [],
                          np.zeros((0, 2), int), Counter(), _ignored(root, splits), [])
    sizes = []
    for split in splits:
        for cls, paths in files[split].items():
            if cls not in report.counts:
                report.warnings.append(f"val/{cls}/ has no matching train/{cls}/ and is ignored")
                continue
            for p in paths:
                check, rel = check_image(p, min_side), p.relative_to(root).as_posix()
                if check.problem:
                    report.skipped.append((rel, check.problem))
                    continue
                report.counts[cls][split] += 1
                report.modes[check.mode] += 1
                sizes.append(check.size)
                if check.notes:
                    report.converted.append((rel, ", ".join(check.notes)))
    report.sizes = np.array(sizes, dtype=int).reshape(-1, 2)
    _refuse_unusable(report, splits)
    return report


def _ignored(root: Path, splits: list[str]) -> list[str]:
    """Entries the loader never reads: loose files, and with train/ and val/ other folders."""
    folders = [root] + ([root / s for s in splits] if splits != ["images"] else [])
    out = [p for f in folders for p in sorted(f.iterdir()) if p.is_file()]
    if splits != ["images"]:
        out += [p for p in sorted(root.iterdir()) if p.is_dir() and p.name not in splits]
    return [p.relative_to(root).as_posix() + ("/" if p.is_dir() else "") for p in out
            if not p.name.startswith(".")]


def _refuse_unusable(report: FolderReport, splits: list[str]) -> None:
    """Raise FolderError for a class without usable images or a split with nothing left."""
    first = splits[0]
    for cls in report.class_names:
        n = report.counts[cls][first]
        inside = f" in {first}/" if first != "images" else ""
        if n == 0:
            prefix = f"{first}/{cls}/" if first != "images" else f"{cls}/"
            bad = [f"{p}: {why}" for p, why in report.skipped if p.startswith(prefix)]
            why = (f"all {len(bad)} of its files were skipped ({'; '.join(bad[:3])}"
                   f"{'; ...' if len(bad) > 3 else ''})" if bad else "its folder is empty")
            raise FolderError(f"Class {cls!r} has no usable image{inside}: {why}; add images "
                              f"to {report.root / prefix} or remove that folder.")
        if first == "images" and n == 1:
            raise FolderError(f"Class {cls!r} has only one usable image; put at least two in "
                              f"each class, so that one can go to the validation split.")
    if "val" in splits:
        if sum(report.counts[c]["val"] for c in report.class_names) == 0:
            raise FolderError(f"{report.root / 'val'} has no usable image; put some images of "
                              f"each class in val/<class>/.")
        report.warnings += [f"class {c!r} has no usable image in val/, so validation cannot "
                            "measure it" for c in report.class_names if not report.counts[c]["val"]]
