"""Unit tests for tlutils.augment (fast, offline: small random images, no weights)."""

import keras
import numpy as np
import pytest

from tlutils import augment


def _images(n=8, size=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3)).astype("float32")


def _probe_model(size=32, classes=3):
    """A deterministic model: per-channel means -> softmax over 3 classes."""
    inputs = keras.Input((size, size, 3))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    outputs = keras.layers.Dense(classes, activation="softmax", kernel_initializer="ones")(x / 255)
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("strength", sorted(augment.STRENGTHS))
def test_augmenter_is_identity_at_inference_and_random_in_training(strength):
    x = _images()
    aug = augment.augmenter(strength, seed=1)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(aug(x, training=False)), x)
    a = keras.ops.convert_to_numpy(aug(x, training=True))
    b = keras.ops.convert_to_numpy(aug(x, training=True))
    assert a.shape == x.shape
    assert a.min() >= 0 and a.max() <= 255
    assert not np.allclose(a, x) and not np.allclose(a, b)


def test_always_on_augments_inside_predict():
    x = _images()
    flip = keras.layers.RandomFlip("horizontal", seed=0)
    plain = keras.Sequential([keras.Input(x.shape[1:]), flip])
    forced = keras.Sequential([keras.Input(x.shape[1:]), augment.AlwaysOn(flip)])
    np.testing.assert_allclose(plain.predict(x, verbose=0), x)
    out = forced.predict(x, verbose=0)
    flipped = x[:, :, ::-1]
    per_image = [np.allclose(o, xi) or np.allclose(o, fi)
                 for o, xi, fi in zip(out, x, flipped, strict=True)]
    assert all(per_image) and not np.allclose(out, x)


def test_view_predictions_and_tta_shapes_and_average():
    x = _images(n=5)
    model = _probe_model()
    contrast = keras.layers.RandomContrast(0.5, seed=0)
    views = augment.view_predictions(model, x, contrast, n_views=3, batch_size=4)
    assert views.shape == (3, 5, 3)
    np.testing.assert_allclose(views.sum(axis=-1), 1, atol=1e-5)
    clean = model.predict(x, verbose=0)
    np.testing.assert_allclose(augment.tta_predict(model, x, contrast, n_views=0), clean)
    # Flips do not change channel means, so every view predicts what the clean image does.
    flip = keras.layers.RandomFlip("horizontal_and_vertical", seed=0)
    np.testing.assert_allclose(augment.tta_predict(model, x, flip, n_views=3), clean, atol=1e-5)


@pytest.mark.parametrize("layer", [keras.layers.MixUp(alpha=0.4, seed=0),
                                   keras.layers.CutMix(seed=0)])
def test_mix_batches_mixes_images_and_labels_within_batches(layer):
    x = _images(n=12)
    y = np.eye(3, dtype="float32")[np.arange(12) % 3]
    xm, ym = augment.mix_batches(layer, x, y, batch_size=4)
    assert xm.shape == x.shape and xm.dtype == np.float32 and ym.shape == y.shape
    np.testing.assert_allclose(ym.sum(axis=1), 1, atol=1e-5)
    assert not np.allclose(xm, x), "at least some images should be mixed"
    assert (ym.max(axis=1) < 1 - 1e-6).any(), "at least some labels should be soft"
    # Batch of 4 from rows 0..3 (classes 0,1,2,0): mixing never brings in another batch's pixels.
    lo, hi = x[:4].min(axis=0), x[:4].max(axis=0)
    assert np.all(xm[:4] >= lo - 1e-3) and np.all(xm[:4] <= hi + 1e-3)


def test_augmenter_layers_get_distinct_seeds():
    # Why it matters: two augmentation layers built with the same seed draw the same numbers.
    x = _images()
    twins = [keras.layers.RandomRotation(0.2, seed=3) for _ in range(2)]
    np.testing.assert_allclose(*[keras.ops.convert_to_numpy(t(x, training=True)) for t in twins])
    seeds = [layer.seed for layer in augment.augmenter("medium", seed=3).layers]
    assert len(set(seeds)) == len(seeds)
    assert all(layer.seed is None for layer in augment.augmenter("medium").layers)


def _blob(n=16, size=33):
    """n copies of a centred Gaussian spot on black, in 0..255."""
    r = np.arange(size) - size // 2
    spot = 255 * np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * 3.0**2))
    return np.repeat(spot[None, :, :, None], 3, axis=-1).repeat(n, axis=0).astype("float32")


def _centroids(x):
    m = x[..., 0]
    ys, xs = np.mgrid[:m.shape[1], :m.shape[2]]
    total = m.sum(axis=(1, 2))
    return np.stack([(m * ys).sum(axis=(1, 2)) / total, (m * xs).sum(axis=(1, 2)) / total], 1)


def test_random_affine_identity_unless_training_and_with_zero_ranges():
    x = _images()
    layer = augment.RandomAffine(0.1, 0.2, 0.1, seed=0)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x, training=False)), x)
    still = augment.RandomAffine(0.0, 0.0, 0.0, seed=0)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(still(x, training=True)), x, atol=1e-3)


def test_random_affine_rotates_and_zooms_about_the_centre_and_shifts_within_range():
    x, centre = _blob(), 16.0
    turned = keras.ops.convert_to_numpy(augment.RandomAffine(rotation=0.5, fill_mode="constant",
                                                             seed=0)(x, training=True))
    np.testing.assert_allclose(_centroids(turned), centre, atol=0.05)  # a round spot stays put
    np.testing.assert_allclose(turned.sum(axis=(1, 2)), x.sum(axis=(1, 2)), rtol=0.02)
    zoomed = keras.ops.convert_to_numpy(augment.RandomAffine(zoom=0.3, fill_mode="constant",
                                                             seed=0)(x, training=True))
    np.testing.assert_allclose(_centroids(zoomed), centre, atol=0.05)
    sizes = zoomed.sum(axis=(1, 2, 3))
    assert np.ptp(sizes) > 0.2 * x[0].sum(), "zoom should change the spot's size"
    moved = _centroids(keras.ops.convert_to_numpy(
        augment.RandomAffine(shift=0.2, fill_mode="constant", seed=0)(x, training=True)))
    offsets = moved - centre
    assert np.all(np.abs(offsets) <= 0.2 * 33 + 0.05) and np.abs(offsets).max() > 1.0


def test_random_affine_trains_inside_fit_and_survives_saving(tmp_path):
    x, y = _images(n=16, size=16), np.arange(16) % 3
    model = keras.Sequential([keras.Input((16, 16, 3)),
                              augment.RandomAffine(0.05, 0.1, 0.1, seed=0),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert reloaded.layers[0].get_config()["zoom"] == 0.1
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-5)


def test_fit_converged_on_one_hot_labels_is_the_plain_fit_and_soft_labels_weigh_rows():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    feats = rng.normal(size=(30, 4)) + np.repeat(np.eye(3, 4) * 3, 10, axis=0)
    y = np.repeat(np.arange(3), 10)
    plain = LogisticRegression(C=0.5, max_iter=5000).fit(feats, y)
    one_hot = augment.fit_converged(feats, np.eye(3)[y], 0.5)
    np.testing.assert_allclose(one_hot.coef_, plain.coef_, atol=1e-4)
    # a row labelled half class 0, half class 1 counts as two rows of weight one half
    mixed = np.array([[0.5, 0.5, 0.0]])
    soft = augment.fit_converged(np.vstack([feats, feats[:1]]), np.vstack([np.eye(3)[y], mixed]),
                                 0.5)
    weighted = LogisticRegression(C=0.5, max_iter=5000).fit(
        np.vstack([feats, feats[:1], feats[:1]]), np.concatenate([y, [0, 1]]),
        sample_weight=np.concatenate([np.ones(30), [0.5, 0.5]]))
    np.testing.assert_allclose(soft.coef_, weighted.coef_, atol=1e-4)
