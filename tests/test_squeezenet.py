"""SqueezeNet v1.1 built in tlutils.backbones, its ImageNet arrays copied from rcmalli's Keras 2
.h5 by layer name (16_choose_what_to_transfer), and the caffe-style preprocessing it shares with
VGG16."""

import shutil

import h5py
import keras
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from tlutils import backbones, data
from tlutils.course import assets

NAME = backbones.weights_name("squeezenet_11", 227)


@pytest.fixture(scope="module")
def weights_path():
    return assets.weights_file(NAME)


@pytest.fixture(scope="module")
def pretrained():
    return backbones.load_backbone("squeezenet_11", 96)


def _write_keras2_h5(path, layers: dict) -> None:
    """A weights file in the Keras 1/2 layout: layer_names, each layer's weight_names."""
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [name.encode() for name in layers]
        for name, arrays in layers.items():
            group = f.create_group(name)
            names = [f"{name}_1/w{i}:0" for i in range(len(arrays))]
            group.attrs["weight_names"] = [n.encode() for n in names]
            for n, a in zip(names, arrays, strict=True):
                group[n] = a


def _file_layers(path) -> dict:
    """The arrays of rcmalli's file under its own layer names ("fire2/squeeze1x1")."""
    with h5py.File(path, "r") as f:
        return {
            name: [np.asarray(f[name][w]) for w in f[name].attrs["weight_names"]]
            for name in (n.decode() for n in f.attrs["layer_names"])
            if len(f[name].attrs["weight_names"])
        }


def test_every_weight_comes_from_the_file(pretrained, weights_path):
    arrays = {k.replace("/", "_"): v for k, v in _file_layers(weights_path).items()}
    assert pretrained.count_params() == 722_496 == sum(a.size for v in arrays.values() for a in v)
    with_weights = [layer for layer in pretrained.layers if layer.weights]
    assert {layer.name for layer in with_weights} == set(arrays)  # 1 + 8 x 3 convolutions
    assert len(with_weights) == 25
    for layer in with_weights:
        for w, a in zip(layer.get_weights(), arrays[layer.name], strict=True):
            np.testing.assert_array_equal(w, a)


def test_layer_names_are_rcmalli_s(pretrained, weights_path):
    with h5py.File(weights_path, "r") as f:
        theirs = [n.decode().replace("/", "_") for n in f.attrs["layer_names"]][1:]
    assert [layer.name for layer in pretrained.layers][1:] == theirs
    blocks = backbones.list_blocks(pretrained, "squeezenet_11")
    assert [b for b, _ in blocks] == ["stem"] + [f"fire{i}" for i in range(2, 10)]
    assert [layer.name for layer in blocks[0][1]] == ["conv1", "relu_conv1", "pool1"]


def test_preprocessing_is_keras_caffe_mode():
    x = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3)).astype("float32")
    expected = keras.applications.vgg16.preprocess_input(x.copy())
    for name in ["squeezenet_11", "vgg16"]:
        layer = backbones.preprocess_layer(name)
        assert isinstance(layer, backbones.CaffePreprocess)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)), expected, atol=1e-4)


def test_classifier_and_feature_extractor():
    clf = backbones.build_classifier("squeezenet_11", 3, 64, weights=None)
    assert backbones.count_trainable(clf) == 512 * 3 + 3
    fire9 = (512 * 64 + 64) + (64 * 256 + 256) + (9 * 64 * 256 + 256)  # squeeze, expands
    assert backbones.unfreeze_top(clf, "squeezenet_11", 1) == 512 * 3 + 3 + fire9
    extractor = backbones.feature_extractor("squeezenet_11", 64, weights=None)
    assert extractor.output_shape == (None, 512)


def test_a_damaged_or_missing_weights_file_is_a_data_error(tmp_path, monkeypatch, weights_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.delenv("TLU_MIRROR", raising=False)
    monkeypatch.setitem(
        assets.WEIGHTS, NAME, {**assets.WEIGHTS[NAME], "url": f"http://127.0.0.1:9/{NAME}"}
    )
    with pytest.raises(assets.DataError, match="Could not get the weights file") as err:
        backbones.load_backbone("squeezenet_11", 96)
    assert NAME in str(err.value) and str(tmp_path / "models") in str(err.value)
    copy = tmp_path / "models" / NAME
    copy.parent.mkdir(exist_ok=True)
    copy.write_bytes(weights_path.read_bytes()[:100_000])
    with pytest.raises(assets.DataError, match="is damaged") as err:
        backbones.load_backbone("squeezenet_11", 96)
    assert str(copy) in str(err.value)


def test_copy_refuses_a_file_that_does_not_fit(tmp_path, weights_path):
    model = backbones.squeezenet_11(input_shape=(64, 64, 3))
    good = _file_layers(weights_path)
    cases = {
        "without": (
            {k: v for k, v in good.items() if k != "fire9/expand3x3"},
            "layers without arrays in the file ['fire9_expand3x3']",
        ),
        "extra": (
            {**good, "conv10": [np.zeros((1, 1, 512, 1000), "float32")]},
            "arrays for no layer ['conv10']",
        ),
        "shape": (
            {**good, "conv1": [np.zeros((3, 3, 3, 96), "float32"), np.zeros(96, "float32")]},
            "layer conv1 has weights of shapes",
        ),
    }
    before = [w.copy() for w in model.get_weights()]
    for case, (layers, message) in cases.items():
        _write_keras2_h5(tmp_path / f"{case}.h5", layers)
        with pytest.raises(assets.DataError, match=r"does not fit squeezenet") as err:
            backbones.copy_h5_weights(model, tmp_path / f"{case}.h5")
        assert message in str(err.value), case
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))
    _write_keras2_h5(tmp_path / "good.h5", good)  # the same arrays rewritten: accepted
    backbones.copy_h5_weights(model, tmp_path / "good.h5")
    (tmp_path / "html.h5").write_bytes(b"<html>rate limited</html>")
    with pytest.raises(assets.DataError, match="is not a Keras weights file"):
        backbones.copy_h5_weights(model, tmp_path / "html.h5")
    shutil.copy(weights_path, tmp_path / "real.h5")
    backbones.copy_h5_weights(model, tmp_path / "real.h5")


def _probe_accuracy(weights, train, val, size: int) -> float:
    keras.utils.set_random_seed(0)
    extractor = backbones.feature_extractor("squeezenet_11", size, weights=weights)
    f_train, f_val = (extractor.predict(np.asarray(d.x), verbose=0) for d in (train, val))
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
    return float(probe.fit(f_train, train.y).score(f_val, val.y))


def test_a_linear_probe_on_imagenet_features_beats_random_ones():
    """hymenoptera's own split, 30 images a class on each side, at 160 px. Measured: 0.78
    with the ImageNet weights, 0.43 with random ones (0.43 to 0.62 over seeds 0 to 4)."""
    size = 160
    train, val = data.load_train_val("hymenoptera", size)
    train, val = (d.take(data.per_class_subset(d.y, 30)) for d in (train, val))
    pretrained = _probe_accuracy("imagenet", train, val, size)
    random = _probe_accuracy(None, train, val, size)
    assert pretrained >= 0.7 and pretrained - random >= 0.1, (pretrained, random)
