"""tlutils.backbones, features and training: blocks, freezing, cached features, snapshots."""

import keras
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from tlutils import backbones, data, features, fitting
from tlutils.course import assets


@pytest.fixture(scope="module")
def model():
    return backbones.build_classifier("mobilenet_025", 3, 96, weights=None)


def test_classifier_shape_and_frozen_backbone(model):
    assert model.output_shape == (None, 3)
    assert not backbones.backbone_of(model).trainable
    # only the head trains: 256 features x 3 classes + 3 biases
    assert backbones.count_trainable(model) == 256 * 3 + 3


def test_list_blocks_mobilenet(model):
    blocks = backbones.list_blocks(backbones.backbone_of(model), "mobilenet_025")
    names = [name for name, _ in blocks]
    assert names == ["stem"] + [str(i) for i in range(1, 14)]
    assert [layer.name for layer in blocks[-1][1]][:2] == ["conv_dw_13", "conv_dw_13_bn"]
    assert sum(len(layers) for _, layers in blocks) == len(backbones.backbone_of(model).layers) - 1


def test_unfreeze_top_keeps_batchnorm_frozen(model):
    n1 = backbones.unfreeze_top(model, "mobilenet_025", 1)
    n2 = backbones.unfreeze_top(model, "mobilenet_025", 2)
    assert backbones.count_trainable(model) == n2 > n1 > 256 * 3 + 3
    base = backbones.backbone_of(model)
    trainable = {layer.name for layer in base.layers if layer.trainable and layer.weights}
    assert trainable == {"conv_dw_12", "conv_pw_12", "conv_dw_13", "conv_pw_13"}
    assert backbones.unfreeze_top(model, "mobilenet_025", 0) == 256 * 3 + 3
    backbones.backbone_of(model).trainable = False
    assert backbones.count_trainable(model) == 256 * 3 + 3


def test_missing_weights_offline_names_url_and_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(assets.DataError) as err:
        backbones.load_backbone("mobilenet_025", 128)
    message = str(err.value)
    assert "mobilenet_2_5_128_tf_no_top.h5" in message
    assert "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet/" in message
    assert str(tmp_path / "models") in message


def test_weights_file_falls_back_to_224_for_other_sizes():
    assert assets.backbone_weights_name("mobilenet_025", 96) == "mobilenet_2_5_224_tf_no_top.h5"
    assert assets.backbone_weights_name("mobilenet_025", 160) == "mobilenet_2_5_160_tf_no_top.h5"
    # what notebook 00 prints, and the name every notebook's require call uses: the registry's
    spec = backbones.BACKBONES["mobilenet_025"]
    assert spec.weights_source(96) == assets.backbone_weights_url("mobilenet_025", 96)
    assert spec.weights_source(96).endswith("/mobilenet_2_5_224_tf_no_top.h5")
    assert backbones.weights_name("mobilenet_025", 160) == "mobilenet_2_5_160_tf_no_top.h5"


def test_pretrained_weights_load_from_cache():
    base = backbones.load_backbone("mobilenet_025", 224)
    assert base.name == "backbone" and base.count_params() == 218_544
    # ImageNet weights, not the random initialisation
    assert float(np.std(base.get_layer("conv1").get_weights()[0])) > 0.1


def test_extract_features_is_cached(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    d = data.ImageData(rng.integers(0, 255, (5, 224, 224, 3), dtype=np.uint8), np.zeros(5, int),
                       ["a"], [f"{i}" for i in range(5)], [], key="unit-test")
    f = features.extract_features(d, "mobilenet_025", 224)
    assert f.shape == (5, 256) and f.dtype == np.float32
    path = features.features_path(d, "mobilenet_025", 224)
    assert path.exists()
    np.save(path, np.ones((5, 256), np.float32))  # a cache hit reads the file, no model
    assert features.extract_features(d, "mobilenet_025", 224).sum() == 5 * 256
    assert features.features_path(d.take([0, 1]), "mobilenet_025", 224) != path
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:  # embeddings computed in bfloat16 are cached apart from float32 ones
        assert features.features_path(d, "mobilenet_025", 224) != path
    finally:
        keras.config.set_dtype_policy("float32")
    path.unlink()


def test_snapshot_restore_gives_the_same_run():
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    m.compile(keras.optimizers.Adam(0.1), "sparse_categorical_crossentropy")
    x, y = np.random.default_rng(0).normal(size=(16, 4)), np.arange(16) % 2
    state = fitting.snapshot(m)
    m.fit(x, y, epochs=3, verbose=0, shuffle=False)
    first = m.get_weights()
    fitting.restore(m, state)
    assert np.allclose(m.get_weights()[0], state[0])
    m.fit(x, y, epochs=3, verbose=0, shuffle=False)
    assert all(np.allclose(a, b) for a, b in zip(first, m.get_weights(), strict=True))
    assert fitting.accuracy(m, x, y) >= 0.0


def _moving_mean_moves(model) -> bool:
    bn = backbones.backbone_of(model).get_layer("conv1_bn")
    before = keras.ops.convert_to_numpy(bn.moving_mean).copy()
    model.compile(keras.optimizers.SGD(0.0), "sparse_categorical_crossentropy")
    x = np.random.default_rng(0).integers(0, 255, (8, 96, 96, 3)).astype("float32")
    model.fit(x, np.zeros(8, int), epochs=1, batch_size=8, verbose=0)
    return not np.allclose(before, keras.ops.convert_to_numpy(bn.moving_mean))


def test_bn_inference_keeps_statistics_while_the_backbone_trains():
    kept = backbones.build_classifier("mobilenet_025", 2, 96, weights=None, trainable=True)
    assert not _moving_mean_moves(kept)
    assert backbones.count_trainable(kept) > 200_000  # the convolutions still train
    updating = backbones.build_classifier("mobilenet_025", 2, 96, weights=None, trainable=True,
                                          bn_inference=False)
    assert _moving_mean_moves(updating)


@pytest.mark.parametrize("n_classes, scaled", [(2, False), (3, True), (2, True)])
def test_copy_logistic_head_reproduces_probabilities(n_classes, scaled):
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, (60, 5)).astype("float32")
    y = np.arange(60) % n_classes
    x[:, 0] += y * 2.0
    clf = LogisticRegression(max_iter=500)
    clf = make_pipeline(StandardScaler(), clf).fit(x, y) if scaled else clf.fit(x, y)
    head = backbones.build_head(5, n_classes).get_layer("head")
    backbones.copy_logistic_head(head, clf)
    probs = keras.ops.convert_to_numpy(head(x))
    assert np.abs(probs - clf.predict_proba(x)).max() < 1e-4


def test_embeddings_and_probabilities_stay_float32_under_mixed_precision():
    """The gpu profile computes in bfloat16; what reaches NumPy and scikit-learn must not."""
    x = np.random.default_rng(0).integers(0, 255, (4, 96, 96, 3), dtype=np.uint8)
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        extractor = backbones.feature_extractor("mobilenet_025", 96, weights=None)
        clf = backbones.build_classifier("mobilenet_025", 3, 96, weights=None)
        pool = keras.Model(clf.inputs, clf.get_layer("pool").output)  # as 06 and 07 read it
        assert clf.get_layer("backbone").compute_dtype == "bfloat16"
    finally:
        keras.config.set_dtype_policy("float32")
    for model in (extractor, clf, pool):
        out = model.predict(x, verbose=0)
        assert out.dtype == np.float32, (model.name, out.dtype)
    LogisticRegression().fit(extractor.predict(x, verbose=0), [0, 1, 0, 1])  # bfloat16 would fail


def test_corrupt_embedding_cache_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    images = data.ImageData(np.zeros((3, 32, 32, 3), np.uint8), np.array([0, 1, 0]), ["a", "b"],
                            ["x", "y", "z"], [], key="corrupt-test")
    extractor = backbones.feature_extractor("mobilenet_025", 32, weights=None)
    first = features.extract_features(images, "mobilenet_025", 32, extractor=extractor)
    path = features.features_path(images, "mobilenet_025", 32)
    path.write_bytes(path.read_bytes()[:50])
    again = features.extract_features(images, "mobilenet_025", 32, extractor=extractor)
    np.testing.assert_allclose(again, first, atol=1e-6)
