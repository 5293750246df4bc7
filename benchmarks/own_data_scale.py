"""10_your_own_data at scale: wall time and peak memory on generated folders.

    python benchmarks/own_data_scale.py --sizes 2000 10000 50000
    python benchmarks/own_data_scale.py --copies 5     # byte-identical copies vs none

Folders are generated from the PACS photos in the Keras cache (`pacs_subset`, 7 classes x
40 photos): each file is a photo with its own random crop, so no two files are identical
(they are near-duplicates of each other, which inflates validation accuracy; this measures
time and memory). `--copies K` instead compares the 280 photos with a folder holding K
byte-identical copies of each, to show that the split keeps copies together.

Each folder runs through the runner (`-p DATA_DIR=... -p FT_EPOCHS=1`, the smoke profile)
under GNU time; peak memory is its "Maximum resident set size", the kernel included. Prints
a Markdown table for docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


def photos() -> dict[str, list[Image.Image]]:
    from tlutils.course import assets

    source = assets.fetch("pacs_subset") / "photo"
    return {c.name: [Image.open(p).convert("RGB") for p in assets.files_under(c)]
            for c in sorted(source.iterdir()) if c.is_dir()}


def generate(folder: Path, n: int, base: dict[str, list[Image.Image]], seed: int = 0) -> None:
    """n distinct JPEGs, spread evenly over the classes: random crops of the photos."""
    rng = np.random.default_rng(seed)
    classes = list(base)
    for i in range(n):
        cls = classes[i % len(classes)]
        im = base[cls][(i // len(classes)) % len(base[cls])]
        w, h = im.size
        s = rng.uniform(0.8, 0.95)
        left, top = rng.integers(0, int(w * (1 - s)) + 1), rng.integers(0, int(h * (1 - s)) + 1)
        crop = im.crop((left, top, left + int(w * s), top + int(h * s)))
        (folder / cls).mkdir(parents=True, exist_ok=True)
        crop.save(folder / cls / f"{i:06d}.jpg", quality=90)


def copies(folder: Path, k: int, base: dict[str, list[Image.Image]]) -> None:
    for cls, images in base.items():
        (folder / cls).mkdir(parents=True, exist_ok=True)
        for j, im in enumerate(images):
            im.save(folder / cls / f"{j:03d}.jpg", quality=90)
            for c in range(1, k):
                shutil.copy(folder / cls / f"{j:03d}.jpg", folder / cls / f"{j:03d}_copy{c}.jpg")


def run_06(folder: Path, build: Path) -> dict:
    env = {**os.environ, "TLU_BUILD_DIR": str(build), "TLU_PROFILE": "smoke"}
    cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "tlutils", "run",
           "notebooks/10_your_own_data.ipynb", "--profile", "smoke",
           "-p", f"DATA_DIR={folder}", "-p", "FT_EPOCHS=1"]
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)[1])
    if done.returncode != 0:
        print(done.stdout[-3000:], file=sys.stderr)
    metrics_file = build / "smoke" / "metrics" / "10_your_own_data.json"
    m = json.loads(metrics_file.read_text())["metrics"] if metrics_file.exists() else {}
    return {"ok": done.returncode == 0, "wall_s": round(wall), "peak_gb": peak_kb / 1e6,
            "val_acc": m.get("val_acc"), "streamed": m.get("streamed"),
            "n_images": m.get("n_images"), "duplicates": m.get("n_duplicate_files")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[])
    parser.add_argument("--copies", type=int, default=0)
    parser.add_argument("--work", type=Path, default=None, help="default: a temporary folder")
    args = parser.parse_args()
    base = photos()
    work = args.work or Path(tempfile.mkdtemp(prefix="own-data-"))
    rows = []
    plans = [(f"{n} generated", lambda f, n=n: generate(f, n, base)) for n in args.sizes]
    if args.copies:
        plans += [("280 photos", lambda f: copies(f, 1, base)),
                  (f"280 photos x {args.copies} copies", lambda f: copies(f, args.copies, base))]
    for name, make in plans:
        folder = work / name.replace(" ", "_")
        shutil.rmtree(folder, ignore_errors=True)
        t = time.perf_counter()
        make(folder)
        made = time.perf_counter() - t
        row = {"folder": name, "generate_s": round(made), **run_06(folder, work / "build")}
        rows.append(row)
        print(json.dumps(row), flush=True)
        shutil.rmtree(folder, ignore_errors=True)
    print("\n| folder | images | wall time | peak memory | val_acc | streamed | copies |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['folder']} | {r['n_images']} | {r['wall_s']} s | {r['peak_gb']:.2f} GB | "
              f"{r['val_acc']:.3f} | {r['streamed']} | {r['duplicates']} |")


if __name__ == "__main__":
    main()
