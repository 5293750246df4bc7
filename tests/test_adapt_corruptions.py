"""Unit tests for tlutils.shift: corruptions and adaptation methods (small, offline models)."""

import keras
import numpy as np
import pytest

from tlutils import adapt, backbones, corruptions, fitting


def _images(n=4, size=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3)).astype(np.uint8)


def _bn_model(seed=0):
    """A tiny model with BatchNorm inside a nested model, like a backbone in a classifier."""
    keras.utils.set_random_seed(seed)
    inner_in = keras.Input((6,))
    h = keras.layers.Dense(5, name="dense_in")(inner_in)
    h = keras.layers.BatchNormalization(name="bn")(h)
    inner = keras.Model(inner_in, keras.layers.ReLU()(h), name="inner")
    inputs = keras.Input((6,))
    outputs = keras.layers.Dense(3, activation="softmax", name="head")(inner(inputs))
    return keras.Model(inputs, outputs)


def _values(weights):
    return [keras.ops.convert_to_numpy(w).copy() for w in weights]


@pytest.mark.parametrize("corruption", list(corruptions.SEVERITIES))
def test_corruptions_keep_shape_and_grow_with_severity(corruption):
    x = _images(size=96)
    dist = []
    for severity in range(1, 6):
        out = corruptions.corrupt(x, corruption, severity)
        assert out.shape == x.shape and out.dtype == np.uint8
        dist.append(np.abs(out.astype(float) - x).mean())
    assert dist[0] > 0, "even severity 1 should change the images"
    assert dist[-1] > dist[0], f"{corruption}: severity 5 should change more than severity 1"


def test_corruption_is_deterministic_and_rejects_unknown_names():
    x = _images()
    assert np.array_equal(corruptions.corrupt(x, "gaussian_noise", 3, seed=1),
                          corruptions.corrupt(x, "gaussian_noise", 3, seed=1))
    with pytest.raises(ValueError, match="Unknown corruption"):
        corruptions.corrupt(x, "fog", 1)


def test_blur_of_a_constant_image_is_the_same_image():
    x = np.full((2, 40, 40, 3), 100, np.uint8)
    assert np.array_equal(corruptions.corrupt(x, "gaussian_blur", 5), x)


def test_batchnorm_layers_finds_nested_layers():
    model = _bn_model()
    assert [bn.name for bn in backbones.batchnorm_layers(model)] == ["bn"]
    assert [la.name for la in backbones.leaf_layers(model)] == ["dense_in", "bn", "re_lu", "head"]


def test_adabn_sets_the_target_statistics_and_changes_nothing_else():
    model = _bn_model()
    x = np.random.default_rng(1).normal(3.0, 2.0, (50, 6)).astype(np.float32)
    bn = backbones.batchnorm_layers(model)[0]
    stats = {id(bn.moving_mean), id(bn.moving_variance)}
    others = [w for w in model.weights if id(w) not in stats]
    before = _values(others)
    adapt.adabn(model, x, batch_size=50)
    pre_bn = keras.ops.convert_to_numpy(model.get_layer("inner").get_layer("dense_in")(x))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(bn.moving_mean), pre_bn.mean(0),
                               rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(bn.moving_variance), pre_bn.var(0),
                               rtol=1e-3, atol=1e-4)
    for a, b in zip(before, _values(others), strict=True):
        np.testing.assert_array_equal(a, b)
    assert bn.momentum == 0.99, "adabn should put the momentum back"


def test_adabn_averages_batches_and_restores_layer_settings():
    model = _bn_model()
    bn = backbones.batchnorm_layers(model)[0]
    bn.trainable = False
    x = np.random.default_rng(2).normal(-1.0, 1.0, (40, 6)).astype(np.float32)
    adapt.adabn(model, x, batch_size=10)
    pre_bn = keras.ops.convert_to_numpy(model.get_layer("inner").get_layer("dense_in")(x))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(bn.moving_mean), pre_bn.mean(0),
                               rtol=1e-4, atol=1e-4)
    assert bn.trainable is False and bn.momentum == 0.99


def test_tent_trains_only_batchnorm_scale_and_shift():
    model = _bn_model()
    adapt.prepare_tent(model, learning_rate=0.05)
    names = sorted(w.path.rsplit("/", 1)[-1] for w in model.trainable_weights)
    assert names == ["beta", "gamma"]
    bn = backbones.batchnorm_layers(model)[0]
    affine = {id(bn.gamma), id(bn.beta)}
    stats = {id(bn.moving_mean), id(bn.moving_variance)}
    frozen = [w for w in model.weights if id(w) not in affine | stats]
    before_frozen, before_affine = _values(frozen), _values([bn.gamma, bn.beta])
    x = np.random.default_rng(3).normal(0, 1, (64, 6)).astype(np.float32)
    entropy_before = float(keras.ops.mean(adapt.entropy(None, model.predict(x, verbose=0))))
    adapt.adabn(model, x)
    model.fit(x, np.zeros(len(x), np.float32), epochs=5, batch_size=16, verbose=0)  # as in 06
    for a, b in zip(before_frozen, _values(frozen), strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(not np.allclose(a, b) for a, b in zip(before_affine, _values([bn.gamma, bn.beta]),
                                                     strict=True))
    entropy_after = float(keras.ops.mean(adapt.entropy(None, model.predict(x, verbose=0))))
    assert entropy_after < entropy_before, "TENT should make the predictions more confident"


def test_entropy_is_zero_for_one_hot_and_log_k_for_uniform():
    p = np.array([[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]], np.float32)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(adapt.entropy(None, p)),
                               [0.0, np.log(3)], atol=1e-5)


def _one_sgd_step(with_reversal: bool) -> float:
    """Change of w after one SGD step on (w * x - 1)^2, optionally through the reversal."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((1,))
    dense = keras.layers.Dense(1, use_bias=False, kernel_initializer="ones")
    out = dense(inputs)
    if with_reversal:
        out = adapt.GradientReversal(scale=0.5)(out)
    model = keras.Model(inputs, out)
    model.compile(keras.optimizers.SGD(0.1), "mse")
    x, y = np.array([[2.0]], np.float32), np.array([[0.0]], np.float32)
    np.testing.assert_allclose(model.predict(x, verbose=0), [[2.0]])  # identity forward
    model.fit(x, y, epochs=1, verbose=0)
    return float(keras.ops.convert_to_numpy(dense.kernel)[0, 0]) - 1.0


def test_gradient_reversal_flips_and_scales_the_gradient():
    plain, reversed_ = _one_sgd_step(False), _one_sgd_step(True)
    assert plain < 0, "plain gradient descent should shrink w towards the target 0"
    np.testing.assert_allclose(reversed_, -0.5 * plain, rtol=1e-5)


def test_gradient_reversal_is_identity_forward_and_serialisable():
    layer = adapt.GradientReversal(scale=2.0)
    x = np.linspace(-3, 3, 7, dtype=np.float32)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x)), x)
    assert adapt.GradientReversal.from_config(layer.get_config()).scale == 2.0


def test_dann_trains_both_outputs():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    model = adapt.build_dann(8, 3, hidden=16)
    model.compile(keras.optimizers.Adam(1e-2),
                  loss={"label": "sparse_categorical_crossentropy",
                        "domain": "binary_crossentropy"})
    start = fitting.snapshot(model)
    x = rng.normal(0, 1, (40, 8)).astype(np.float32)
    y = {"label": rng.integers(0, 3, 40), "domain": np.repeat([0.0, 1.0], 20)}
    w = {"label": np.repeat([1.0, 0.0], 20), "domain": np.ones(40)}
    model.fit(x, y, sample_weight=w, epochs=2, verbose=0)
    out = model.predict(x, verbose=0)
    assert out["label"].shape == (40, 3) and out["domain"].shape == (40, 1)
    fitting.restore(model, start)
    assert np.allclose(_values(model.weights)[0], start[0])


def test_coral_matches_target_mean_and_covariance():
    rng = np.random.default_rng(0)
    source = rng.normal(0, 1, (500, 4)) @ np.diag([1.0, 2.0, 0.5, 1.0])
    target = rng.normal(5, 1, (500, 4)) @ np.array([[1, 0.5, 0, 0], [0, 1, 0, 0],
                                                   [0, 0, 3, 0], [0, 0, 0, 0.2]])
    out = adapt.coral(source, target, eps=1e-6)
    np.testing.assert_allclose(out.mean(0), target.mean(0), atol=1e-4)
    np.testing.assert_allclose(np.cov(out, rowvar=False), np.cov(target, rowvar=False),
                               atol=1e-3)


def test_blur_spreads_an_impulse_symmetrically_and_keeps_its_mass():
    x = np.zeros((1, 41, 41, 1), np.float32)
    x[0, 20, 20, 0] = 1.0
    out = corruptions._blur(x, 2.0)[0, ..., 0]
    np.testing.assert_allclose(out.sum(), 1.0, rtol=1e-5)
    np.testing.assert_allclose(out, out.T, atol=1e-7)
    np.testing.assert_allclose(out, out[::-1, ::-1], atol=1e-7)
    assert out[20, 20] == out.max() and out[20, 20] < 0.1
