"""Training throughput of each notebook's main training run: real input path vs. compute ceiling.

For each configuration, trains the profile's model for a few epochs (after one warm-up epoch
that pays for tracing/compilation) twice:
- real: on the decoded uint8 NumPy arrays the notebooks use (host -> device every batch);
- synthetic: on the same number of float tensors already in device memory (the ceiling).
The ratio real/synthetic tells how much the input path costs (target on a GPU: >= 0.7).

    python benchmarks/throughput.py --profile smoke
    KERAS_BACKEND=jax python benchmarks/throughput.py --profile gpu --epochs 3

On a GPU a small dataset is only a few steps an epoch; --images repeats the training images
to that many, so the timed epochs are long enough to measure. --dataset and --backbone
replace the profile's (e.g. the gpu profile's settings on the smoke profile's offline assets).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from tlutils import augment, backbones, data, digits  # noqa: E402
from tlutils.course import profiles, report  # noqa: E402

# configuration -> the notebooks whose main training run it is
CASES = {
    "scratch": "01 (baseline from scratch)",
    "frozen_in_loop": "01 (frozen backbone in the loop)",
    "augment_frozen": "04 (augmentation, frozen backbone)",
    "digits_augment_ft": "04 (low-data curve: digits, augmentation, all blocks fine-tuned)",
    "partial_top2": "02, 07 (top 2 blocks unfrozen)",
    "full_fine_tune": "03, 06 (all blocks unfrozen)",
}


DIGIT_SIZE = 48  # 05_data_augmentation's digits


def digit_images(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first n MNIST test digits as notebook 04 feeds them: DIGIT_SIZE px, 3 channels, uint8."""
    x, y = digits.load_mnist_t10k()
    return digits.resize_digits(x[:n], DIGIT_SIZE, channels=3), y[:n]


def build(case: str, p: profiles.Profile, n_classes: int) -> keras.Model:
    weights = None if case == "scratch" else "imagenet"
    if case == "digits_augment_ft":
        return _compiled(keras.Sequential([
            keras.Input((DIGIT_SIZE, DIGIT_SIZE, 3)),
            augment.RandomAffine(0.03, 0.1, 0.1, fill_mode="constant", seed=0),
            backbones.build_classifier(p.backbone, 10, DIGIT_SIZE, trainable=True),
        ]))
    model = backbones.build_classifier(p.backbone, n_classes, p.image_size, weights=weights,
                                       trainable=case == "scratch", bn_inference=case != "scratch")
    if case == "augment_frozen":
        inputs = keras.Input((p.image_size, p.image_size, 3))
        model = keras.Model(inputs, model(augment.augmenter("medium", seed=0)(inputs)))
    elif case == "partial_top2":
        backbones.unfreeze_top(model, p.backbone, 2)
    elif case == "full_fine_tune":
        backbones.unfreeze_top(model, p.backbone, 10_000)
    return _compiled(model)


def _compiled(model: keras.Model) -> keras.Model:
    model.compile(keras.optimizers.Adam(1e-4), "sparse_categorical_crossentropy")
    return model


def images_per_s(model, x, y, batch_size: int, epochs: int) -> float:
    model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)  # warm-up: tracing, compiling
    start = time.perf_counter()
    model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0)
    return epochs * len(y) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default=None)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    parser.add_argument("--dataset", help="instead of the profile's (a name in assets.DATASETS)")
    parser.add_argument("--backbone", help="instead of the profile's")
    parser.add_argument("--batch-size", type=int, help="instead of the profile's")
    parser.add_argument("--images", type=int, default=0,
                        help="repeat the training images to this many (default: the set once)")
    args = parser.parse_args()
    name = profiles.current(args.profile)
    p = dataclasses.replace(profiles.PROFILES[name], **{
        k: v for k, v in [("dataset", args.dataset), ("backbone", args.backbone),
                          ("batch_size", args.batch_size)] if v})
    policy = profiles.configure(name)
    train, _ = data.load_train_val(p.dataset, p.image_size)
    n = args.images or len(train)
    n -= n % p.batch_size  # whole batches only: one traced shape
    reps = -(-n // len(train))  # repetitions of the training set needed for n images
    x_real, y = np.tile(train.x, (reps, 1, 1, 1))[:n], np.tile(train.y, reps)[:n]
    rows = []
    for case in args.cases:
        model = build(case, p, len(train.class_names))
        xr, yr = digit_images(n) if case == "digits_augment_ft" else (x_real, y)
        x_syn = keras.random.uniform(xr.shape, 0, 255, seed=0)
        real = images_per_s(model, xr, yr, p.batch_size, args.epochs)
        y_syn = keras.ops.convert_to_tensor(yr)
        synthetic = images_per_s(model, x_syn, y_syn, p.batch_size, args.epochs)
        rows.append({"case": case, "notebooks": CASES[case], "real_img_s": round(real, 1),
                     "synthetic_img_s": round(synthetic, 1), "ratio": round(real / synthetic, 2)})
        print(f"{case:16s} real {real:8.1f} img/s   synthetic {synthetic:8.1f} img/s   "
              f"ratio {real / synthetic:.2f}", flush=True)
    result = {"profile": name, "backend": keras.backend.backend(), "device": profiles.device(),
              "policy": policy, "batch_size": p.batch_size, "image_size": p.image_size,
              "backbone": p.backbone, "dataset": p.dataset, "images": n, "epochs": args.epochs,
              "cases": rows}
    out = report.build_dir(name) / "benchmark.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"\n{result['device']}, {result['backend']}, {policy}: written to {out}")


if __name__ == "__main__":
    main()
