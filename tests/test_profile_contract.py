"""Every profile's backbone, at its image size and random weights (no download), through every
tlutils call the notebooks make, under each dtype policy the profile can get; the registry's
other backbones (16_choose_what_to_transfer) the same way at a small size."""

import keras
import numpy as np
import pytest

from tlutils import backbones
from tlutils.course import profiles

CASES = [("smoke", "float32"), ("cpu", "float32"),
         ("gpu", "mixed_float16"),  # Colab's T4 (compute capability 7.5)
         ("gpu", "mixed_bfloat16")]  # Ampere and newer
# backbones no profile uses, at a small size (VGG16's smallest is 32)
OTHERS = [("vgg16", 32), ("squeezenet_11", 64)]
POLICIES = ["float32", "mixed_float16", "mixed_bfloat16"]


@pytest.fixture
def policy(request):
    keras.config.set_dtype_policy(request.param)
    yield request.param
    keras.config.set_dtype_policy("float32")


def _batch(size: int, n: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (n, size, size, 3), dtype=np.uint8), np.array([0, 1, 2, 0])


def test_the_profiles_use_the_policies_tested_here():
    gpu = profiles.PROFILES["gpu"]
    assert {profiles.precision_policy(gpu, cc) for cc in [(7, 5), (8, 0), (9, 0)]} == {
        "mixed_float16", "mixed_bfloat16"}
    for name in ["smoke", "cpu"]:
        assert profiles.precision_policy(profiles.PROFILES[name], (9, 0)) == "float32"


@pytest.mark.parametrize("name, policy", CASES, indirect=["policy"])
def test_profile_backbone_blocks_embeddings_and_a_training_step(name, policy):
    p = profiles.PROFILES[name]
    _blocks_embeddings_and_a_training_step(p.backbone, p.image_size, policy, min_blocks=8)


@pytest.mark.parametrize("policy", POLICIES, indirect=True)
@pytest.mark.parametrize("backbone, size", OTHERS)
def test_other_backbone_blocks_embeddings_and_a_training_step(backbone, size, policy):
    _blocks_embeddings_and_a_training_step(backbone, size, policy, min_blocks=5)


def _blocks_embeddings_and_a_training_step(backbone, size, policy, min_blocks):
    x, y = _batch(size)
    clf = backbones.build_classifier(backbone, 3, size, weights=None)
    base = backbones.backbone_of(clf)
    assert base.compute_dtype == keras.DTypePolicy(policy).compute_dtype
    blocks = backbones.list_blocks(base, backbone)
    assert len(blocks) >= min_blocks, [b for b, _ in blocks]
    assert sum(len(layers) for _, layers in blocks) == len(base.layers) - 1, "every layer"
    bn = keras.layers.BatchNormalization
    empty = [b for b, layers in blocks
             if not any(layer.weights and not isinstance(layer, bn) for layer in layers)]
    assert not empty, f"blocks without weights to unfreeze: {empty}"
    head = backbones.count_trainable(clf)
    one, two = (backbones.unfreeze_top(clf, backbone, k) for k in (1, 2))
    assert two > one > head
    assert not any(bn.trainable for bn in backbones.batchnorm_layers(base)), "BN stays frozen"
    emb = backbones.embedding_model(clf).predict(x, verbose=0)
    assert emb.dtype == np.float32 and emb.shape[0] == 4 and np.isfinite(emb).all()
    clf.compile(keras.optimizers.Adam(1e-4), "sparse_categorical_crossentropy")
    loss = clf.fit(x, y, batch_size=4, epochs=1, verbose=0).history["loss"][0]
    assert np.isfinite(loss), f"{backbone} under {policy}: loss {loss}"
    assert clf.predict(x, verbose=0).dtype == np.float32


@pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated:UserWarning")
@pytest.mark.parametrize("name, policy", CASES, indirect=["policy"])
def test_profile_model_saves_reloads_and_exports(name, policy, tmp_path):
    """As 07 does: .keras in safe mode, then a float32 copy to SavedModel and TFLite."""
    p = profiles.PROFILES[name]
    _saves_reloads_and_exports(p.backbone, p.image_size, tmp_path)


@pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated:UserWarning")
@pytest.mark.parametrize("backbone, size", OTHERS)
def test_other_backbone_saves_reloads_and_exports(backbone, size, tmp_path):
    _saves_reloads_and_exports(backbone, size, tmp_path)


def _saves_reloads_and_exports(backbone, size, tmp_path):
    x, _ = _batch(size)
    clf = backbones.build_classifier(backbone, 3, size, weights=None)
    backbones.unfreeze_top(clf, backbone, 1)
    probs = clf.predict(x, verbose=0)
    clf.save(tmp_path / "model.keras")
    back = keras.models.load_model(tmp_path / "model.keras", safe_mode=True, compile=False)
    assert np.abs(back.predict(x, verbose=0) - probs).max() < 1e-5
    if keras.backend.backend() != "tensorflow":
        pytest.skip("SavedModel and TFLite export need TensorFlow")
    import tensorflow as tf

    keras.config.set_dtype_policy("float32")
    deploy = backbones.build_classifier(backbone, 3, size, weights=None)
    deploy.set_weights(clf.get_weights())
    expected = deploy.predict(x, verbose=0)
    assert (expected.argmax(1) == probs.argmax(1)).mean() >= 0.75
    deploy.export(tmp_path / "savedmodel", verbose=False)
    tflite = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "savedmodel")).convert()
    interpreter = tf.lite.Interpreter(model_content=tflite)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    interpreter.set_tensor(inp["index"], x[:1].astype("float32"))
    interpreter.invoke()
    assert np.abs(interpreter.get_tensor(out["index"])[0] - expected[0]).max() < 1e-4
