"""tlutils.finetune: warm heads, schedules, layer-wise learning rates, L2-SP."""

import keras
import numpy as np
import pytest

from tlutils import backbones, finetune


def tiny_classifier(n_in: int = 4, n_classes: int = 2) -> keras.Model:
    """A model shaped like build_classifier's: a sub-model named "backbone", then "head"."""
    base_in = keras.Input((n_in,))
    base = keras.Model(base_in, keras.layers.Dense(3, name="inner")(base_in), name="backbone")
    inputs = keras.Input((n_in,))
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="head")(base(inputs))
    return keras.Model(inputs, outputs)


@pytest.fixture(scope="module")
def mobilenet():
    return backbones.build_classifier("mobilenet_025", 2, 96, weights=None)


def test_warmup_cosine_shape():
    schedule = finetune.warmup_cosine(1e-3, total_steps=20, warmup_steps=5, final_fraction=0.1)
    lrs = np.array([float(schedule(step)) for step in range(21)])
    assert lrs[0] == pytest.approx(0.0, abs=1e-9)
    assert lrs[5] == pytest.approx(1e-3) and lrs.max() == pytest.approx(1e-3)
    assert np.all(np.diff(lrs[:6]) > 0) and np.all(np.diff(lrs[5:]) < 0)
    assert lrs[20] == pytest.approx(1e-4, rel=1e-3)


def test_block_lr_multipliers_fall_toward_the_input(mobilenet):
    factors = finetune.block_lr_multipliers(mobilenet, "mobilenet_025", top=0.1, bottom=0.01)
    assert factors["conv_pw_13/kernel"] == pytest.approx(0.1)
    assert factors["conv1/kernel"] == pytest.approx(0.01)
    order = [factors[f"conv_pw_{i}/kernel"] for i in range(1, 14)]
    assert np.all(np.diff(order) > 0)
    assert "head/kernel" not in factors  # the head keeps the full learning rate


def test_layerwise_adam_scales_each_step():
    a, b = keras.Variable(np.zeros(3), name="a"), keras.Variable(np.zeros(3), name="b")
    opt = finetune.LayerwiseAdam({a.path: 0.1, b.path: 0.0}, learning_rate=0.01)
    c = keras.Variable(np.zeros(3), name="c")  # not listed: factor 1
    grads = [np.ones(3, "float32"), np.ones(3, "float32"), np.ones(3, "float32")]
    opt.apply(grads, [a, b, c])
    step_a, step_c = np.abs(keras.ops.convert_to_numpy(a)), np.abs(keras.ops.convert_to_numpy(c))
    np.testing.assert_allclose(step_c, 0.01, rtol=1e-3)  # Adam's first step is about lr
    np.testing.assert_allclose(step_a, 0.001, rtol=1e-3)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(b), 0.0)


def test_l2sp_value():
    anchor = np.array([1.0, 2.0], "float32")
    reg = finetune.L2SP(0.5, anchor)
    assert float(reg(keras.ops.convert_to_tensor(anchor))) == pytest.approx(0.0)
    assert float(reg(keras.ops.convert_to_tensor([2.0, 0.0]))) == pytest.approx(0.5 * (1 + 4))
    assert float(finetune.L2SP(0.5)(keras.ops.convert_to_tensor([2.0, 0.0]))) == pytest.approx(2.0)


def test_attach_l2sp_start_zero_and_off():
    model = tiny_classifier()
    inner = model.get_layer("backbone").get_layer("inner")
    model.get_layer("backbone").trainable = True
    assert finetune.attach_l2sp(model, 0.1, "start") == 4 * 3 + 3
    assert float(sum(model.losses)) == pytest.approx(0.0)  # at the anchor
    inner.kernel.assign(inner.kernel + 1.0)
    assert float(sum(model.losses)) == pytest.approx(0.1 * 12, rel=1e-4)
    finetune.attach_l2sp(model, 0.1, "zero")
    expected = 0.1 * sum(float(np.sum(np.square(w))) for w in inner.get_weights())
    assert float(sum(model.losses)) == pytest.approx(expected, rel=1e-4)
    assert finetune.attach_l2sp(model, 0.0) == 0 and not model.losses
    model.get_layer("backbone").trainable = False
    assert finetune.attach_l2sp(model, 0.1) == 0  # frozen weights are never penalized
    with pytest.raises(ValueError):
        finetune.attach_l2sp(model, 0.1, "origin")


def test_l2sp_keeps_fitted_weights_near_the_start():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    distances = {}
    for strength in (0.0, 1.0):
        keras.utils.set_random_seed(0)
        model = tiny_classifier()
        start = model.get_layer("backbone").get_weights()
        finetune.attach_l2sp(model, strength, "start")
        model.compile(keras.optimizers.Adam(0.05), "sparse_categorical_crossentropy")
        model.fit(x, y, epochs=5, batch_size=16, verbose=0)
        end = model.get_layer("backbone").get_weights()
        moved = [float(np.sum((e - s) ** 2)) for e, s in zip(end, start, strict=True)]
        distances[strength] = sum(moved)
    assert distances[1.0] < 0.5 * distances[0.0]


def test_fit_heads_and_epoch_timer():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(80, 8)).astype("float32")
    y = (f[:, 0] > 0).astype("int64")
    accs, weights = finetune.fit_heads(f[:60], y[:60], f[60:], y[60:], seeds=[0, 1, 0], epochs=15,
                                       lr=0.05, batch_size=16)
    assert len(accs) == len(weights) == 3 and min(accs) >= 0.8
    assert [w.shape for w in weights[0]] == [(8, 2), (2,)]
    assert not np.allclose(weights[0][0], weights[1][0])  # each seed its own head
    model = backbones.build_head(8, 2)
    model.get_layer("head").set_weights(weights[1])
    acc = float(np.mean(model.predict(f[60:], verbose=0).argmax(1) == y[60:]))
    assert acc == pytest.approx(accs[1])
    timer = finetune.EpochTimer()
    finetune.fit_heads(f, y, f, y, seeds=[0], epochs=3, lr=0.05, callbacks=[timer])
    assert len(timer.seconds) == 3 and min(timer.seconds) > 0


def test_restore_with_a_seed_gives_each_seed_its_own_random_draws():
    """snapshot() keeps the dropout layers' random state, so without a seed every restored run
    replays the same masks (#39); with one, each seed draws its own, reproducibly."""
    from tlutils import fitting

    model = keras.Sequential([keras.Input((64,)), keras.layers.Dropout(0.5)])
    model.compile(keras.optimizers.SGD(), "mse")
    start = fitting.snapshot(model)
    x = np.ones((1, 64), dtype="float32")

    def mask(seed=None):
        fitting.restore(model, start, seed)
        return keras.ops.convert_to_numpy(model(x, training=True)) > 0

    assert (mask() == mask()).all()  # the replay the seed argument exists to avoid
    assert (mask(0) == mask(0)).all()
    assert (mask(0) != mask(1)).any()
