"""Small generated image folders for tests: learnable classes plus every kind of awkward file.

Class "red" is reddish with horizontal stripes, class "blue" bluish with vertical stripes,
so a pretrained backbone separates them after a few examples.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

# file -> the reason the validator gives for skipping it
BAD = {
    "red/truncated.jpg": "truncated or corrupt image data",
    "red/notes.jpg": "not an image Pillow can read",
    "blue/empty.jpg": "empty file (0 bytes)",
    "blue/tiny.png": "too small (1x1 pixels)",
}
# file -> a word the validator's conversion note contains
HANDLED = {
    "red/grey.jpg": "greyscale",
    "red/cmyk.jpg": "CMYK",
    "red/rotated.jpg": "EXIF orientation 6",
    "blue/rgba.png": "transparency",
    "blue/palette.png": "palette",
    "blue/huge.jpg": "huge",
}


def pattern(cls: str, width: int = 64, height: int = 48, seed: int = 0) -> np.ndarray:
    """An RGB uint8 image of the class: its colour and stripe direction, plus noise."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:height, 0:width]
    stripes = ((rows if cls == "red" else cols) // 6) % 2
    base = np.array([200, 40, 40] if cls == "red" else [40, 60, 200], float)
    img = base * (0.55 + 0.45 * stripes[..., None]) + rng.normal(0, 12, (height, width, 3))
    return img.clip(0, 255).astype(np.uint8)


def write_good(folder: Path, cls: str, n: int, seed: int = 0) -> list[Path]:
    """n plain RGB JPEGs of the class in folder/cls/."""
    (folder / cls).mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / cls / f"{cls}_{i:02d}.jpg"
        Image.fromarray(pattern(cls, seed=seed + i)).save(path, quality=90)
        paths.append(path)
    return paths


def write_bad(root: Path) -> None:
    """The four unusable files of BAD."""
    good = root / "red" / "red_00.jpg"
    data = good.read_bytes()
    (root / "red" / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (root / "red" / "notes.jpg").write_text("This is a text file with an image's name.\n")
    (root / "blue" / "empty.jpg").write_bytes(b"")
    Image.new("RGB", (1, 1), (40, 60, 200)).save(root / "blue" / "tiny.png")


def write_handled(root: Path) -> None:
    """The six awkward but usable files of HANDLED."""
    red, blue = pattern("red", seed=100), pattern("blue", seed=101)
    Image.fromarray(red).convert("L").save(root / "red" / "grey.jpg")
    Image.fromarray(red).convert("CMYK").save(root / "red" / "cmyk.jpg")
    stored = Image.fromarray(red).transpose(Image.Transpose.ROTATE_90)  # shown upright via EXIF
    exif = stored.getexif()
    exif[0x0112] = 6
    stored.save(root / "red" / "rotated.jpg", exif=exif)
    rgba = Image.fromarray(blue).convert("RGBA")
    rgba.putalpha(Image.fromarray(np.full(blue.shape[:2], 200, np.uint8)))
    rgba.save(root / "blue" / "rgba.png")
    Image.fromarray(blue).convert("P").save(root / "blue" / "palette.png", transparency=0)
    huge = Image.fromarray(pattern("blue", 60, 40, seed=102)).resize((6000, 4000))
    huge.save(root / "blue" / "huge.jpg", quality=80)


def make_folder(root: Path, n_good: int = 8, bad: bool = True, handled: bool = True) -> Path:
    """root/red/ and root/blue/ with n_good plain images each, plus BAD and HANDLED files."""
    for i, cls in enumerate(["red", "blue"]):
        write_good(root, cls, n_good, seed=10 * i)
    if bad:
        write_bad(root)
    if handled:
        write_handled(root)
    return root
