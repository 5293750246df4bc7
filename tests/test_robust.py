"""Helpers of 14_weight_averaging and 15_tune_a_sliver: block groups, training one group
only, interpolation."""

import keras
import numpy as np
import pytest

from tlutils import backbones, finetune


@pytest.fixture(scope="module")
def model():
    return backbones.build_classifier("mobilenet_025", 3, 64, weights=None)


def test_block_groups_cover_the_blocks_in_order(model):
    base = backbones.backbone_of(model)
    groups = backbones.block_groups(base, "mobilenet_025")
    assert list(groups) == ["early", "middle", "late"]
    names = [layer.name for layers in groups.values() for layer in layers]
    assert names == [layer.name for layer in base.layers[1:]]  # every layer once, in order
    blocks = [name for name, _ in backbones.list_blocks(base, "mobilenet_025")]
    assert blocks == ["stem"] + [str(i) for i in range(1, 14)]  # 14 blocks: 5 + 5 + 4
    assert groups["early"][0].name == "conv1" and groups["late"][-1].name == "conv_pw_13_relu"
    assert groups["middle"][0].name == "conv_dw_5" and groups["late"][0].name == "conv_dw_10"


@pytest.mark.parametrize("chosen", [["early"], ["late"], ["head"], ["middle", "head"]])
def test_train_only_trains_the_chosen_groups(model, chosen):
    n = backbones.train_only(model, "mobilenet_025", chosen)
    base = backbones.backbone_of(model)
    groups = backbones.block_groups(base, "mobilenet_025")
    expected = sum(int(np.prod(w.shape)) for g in chosen if g != "head" for layer in groups[g]
                   if not isinstance(layer, keras.layers.BatchNormalization)
                   for w in layer.weights)
    expected += 256 * 3 + 3 if "head" in chosen else 0
    assert n == expected == backbones.count_trainable(model)
    assert not any(w.trainable for bn in backbones.batchnorm_layers(model) for w in bn.weights)


def test_train_only_refuses_unknown_groups(model):
    with pytest.raises(ValueError, match="Unknown groups"):
        backbones.train_only(model, "mobilenet_025", ["top"])


def test_interpolate_weights_ends_and_middle():
    a = [np.zeros((2, 3), "float32"), np.array([1, 2], "int64")]
    b = [np.ones((2, 3), "float32"), np.array([3, 4], "int64")]
    end = finetune.interpolate_weights(a, b, 0.0)
    assert all(np.array_equal(x, y) for x, y in zip(end, a, strict=True))
    end = finetune.interpolate_weights(a, b, 1.0)
    assert all(np.array_equal(x, y) for x, y in zip(end, b, strict=True))
    mid = finetune.interpolate_weights(a, b, 0.25)
    assert mid[0].dtype == np.float32 and np.allclose(mid[0], 0.25)
    assert np.array_equal(mid[1], [1, 2])  # integers (counters) are cast back
    with pytest.raises(ValueError, match="differ"):
        finetune.interpolate_weights(a, b[:1], 0.5)
    with pytest.raises(ValueError, match="shape"):
        finetune.interpolate_weights(a, [b[0].T, b[1]], 0.5)


def test_interpolated_model_matches_output_mixing_for_a_linear_model():
    inputs = keras.Input((4,))
    net = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    w0 = net.get_weights()
    w1 = [w + 1.0 for w in w0]
    out0 = net.predict(x, verbose=0)
    net.set_weights(w1)
    out1 = net.predict(x, verbose=0)
    net.set_weights(finetune.interpolate_weights(w0, w1, 0.3))
    # a linear model is linear in its weights: the interpolated model mixes the outputs
    assert np.allclose(net.predict(x, verbose=0), 0.7 * out0 + 0.3 * out1, atol=1e-5)


@pytest.mark.parametrize("backbone, size", [("mobilenet_v2", 64), ("efficientnet_b0", 64),
                                            ("vgg16", 32), ("squeezenet_11", 64)])
def test_groups_and_train_only_for_every_registry_backbone(backbone, size):
    """The cpu and gpu profiles' backbones, and 12's bigger candidates, at random weights."""
    clf = backbones.build_classifier(backbone, 3, size, weights=None)
    base = backbones.backbone_of(clf)
    groups = backbones.block_groups(base, backbone)
    assert all(groups.values()), {g: len(v) for g, v in groups.items()}
    assert sum(len(v) for v in groups.values()) == len(base.layers) - 1
    counts = {g: backbones.train_only(clf, backbone, [g]) for g in [*backbones.GROUPS, "head"]}
    assert all(n > 0 for n in counts.values()), counts  # every group has weights to train
    width = clf.get_layer("head").kernel.shape[0]
    assert counts["head"] == width * 3 + 3


def test_mean_se_and_paired_gap_share_one_formula():
    from tlutils import stats

    assert stats.mean_se([1.0, 2.0, 3.0]) == pytest.approx((2.0, 1.0 / np.sqrt(3)))
    assert stats.mean_se([0.5]) == (0.5, 0.0)
    assert stats.paired_gap([2, 3, 5], [1, 1, 1]) == pytest.approx(stats.mean_se([1, 2, 4]))
    assert stats.paired_gap([1, 1], [1, 1], floor=0.01) == (0.0, 0.01)
