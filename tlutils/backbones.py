"""Pretrained backbones: a registry, a classifier builder, and freezing by blocks.

The classifier recipe is explained in 01_feature_extraction; blocks and
`trainable` vs `training` in 02_partial_fine_tuning; SqueezeNet, VGG16 and caffe-style
preprocessing in 16_choose_what_to_transfer.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from pathlib import Path

import keras
import numpy as np

from tlutils.course.assets import (
    DataError,
    backbone_weights_name,
    backbone_weights_url,
    read_h5_weights,
    weights_file,
)


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
    """How to build one keras.applications backbone and feed it. Which ImageNet weights file
    it loads is the course registry's (assets.backbone_weights_url)."""

    name: str
    constructor: str  # attribute of keras.applications
    kwargs: dict
    default_size: int
    scale: float | None  # Rescaling(scale, offset) maps 0..255 to the backbone's range;
    offset: float  # scale None: the backbone rescales inside itself (EfficientNet)
    block_pattern: str  # regex whose first group names a layer's block
    builder: str | None = None  # not in keras.applications: a function here builds it
    caffe: bool = False  # inputs RGB -> BGR minus the ImageNet mean (CaffePreprocess), no scale

    def weights_source(self, size: int) -> str:
        """The URL of the weights file Keras loads at this input size (00_start_here)."""
        return backbone_weights_url(self.name, size)


BACKBONES: dict[str, BackboneSpec] = {
    spec.name: spec
    for spec in [
        BackboneSpec(
            "mobilenet_025", "MobileNet", {"alpha": 0.25}, 224, 1 / 127.5, -1.0,
            r"^conv_(?:dw|pw|pad)_(\d+)",
        ),
        BackboneSpec(
            "mobilenet_v2", "MobileNetV2", {"alpha": 1.0}, 160, 1 / 127.5, -1.0,
            r"^(?:block_(\d+)_|(expanded_conv)_|(Conv_1)|out_relu)",  # out_relu joins Conv_1
        ),
        BackboneSpec(
            "efficientnet_b0", "EfficientNetB0", {}, 224, None, 0.0,
            r"^(?:block(\d[a-z])_|(top)_)",
        ),
        BackboneSpec(
            "vgg16", "VGG16", {}, 224, None, 0.0, r"^block(\d)_", caffe=True,
        ),
        BackboneSpec(
            "squeezenet_11", "SqueezeNet", {}, 227, None, 0.0, r"^(fire\d)_",
            builder="squeezenet_11", caffe=True,
        ),
    ]
}


def weights_name(name: str, image_size: int) -> str:
    """The file name of the ImageNet weights the backbone loads at this size (no top), for
    assets.require in every notebook; the registry's (assets.backbone_weights_name)."""
    return backbone_weights_name(name, image_size)


def load_backbone(name: str, image_size: int, weights: str | None = "imagenet") -> keras.Model:
    """The backbone without its top, named "backbone", weights from the Keras cache.

    The weights file is fetched and checked first (assets.weights_file): offline with the
    file missing, or with a damaged file, the error names the file, its URL and folder.
    A backbone with a `builder` (SqueezeNet) is built here and gets the file's path.
    Keras's warning that it loads the weights made for 224 pixels at another size is silenced:
    a convolution's weights do not depend on the image size (04_when_fine_tuning_pays).
    """
    spec = BACKBONES[name]
    build = globals()[spec.builder] if spec.builder else getattr(keras.applications,
                                                                 spec.constructor)
    shape = (image_size, image_size, 3)
    url, fname = backbone_weights_url(name, image_size), backbone_weights_name(name, image_size)
    if weights == "imagenet":
        path = weights_file(fname)
    source = path if spec.builder and weights == "imagenet" else weights
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*Weights for input shape")
            base = build(include_top=False, weights=source, input_shape=shape, **spec.kwargs)
    except DataError:
        raise
    except Exception as err:
        if weights != "imagenet":
            raise
        if path.exists():
            raise DataError(f"{path} could not be loaded ({str(err).splitlines()[0][:120]}): "
                            "delete it and run again to download it.") from None
        raise DataError(
            f"Could not get the ImageNet weights for {name} ({err}). Download {url} "
            f"and put it in {path.parent}/ as {fname}."
        ) from None
    base.name = "backbone"
    return base


def preprocess_layer(backbone: str) -> keras.Layer:
    """Maps pixel values 0..255 to the range the backbone was trained on."""
    spec = BACKBONES[backbone]
    if spec.caffe:
        return CaffePreprocess(name="preprocess")
    if spec.scale is None:
        return keras.layers.Identity(name="preprocess")
    return keras.layers.Rescaling(spec.scale, spec.offset, name="preprocess")


@keras.saving.register_keras_serializable(package="tlutils")
class CaffePreprocess(keras.layers.Layer):
    """RGB 0..255 -> BGR minus the ImageNet mean of each channel, as keras' "caffe" mode
    (imagenet_utils.preprocess_input) does for VGG16 and rcmalli's SqueezeNet weights.
    Explained in 16_choose_what_to_transfer."""

    MEAN_BGR = (103.939, 116.779, 123.68)

    def call(self, inputs):
        bgr = keras.ops.flip(keras.ops.cast(inputs, self.compute_dtype), axis=-1)
        return bgr - keras.ops.convert_to_tensor(self.MEAN_BGR, dtype=self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape


def _conv_relu(x, filters: int, size: int, name: str, **kwargs):
    """A convolution and its ReLU, as rcmalli names them: `name` and `relu_` + name."""
    x = keras.layers.Conv2D(filters, size, name=name, **kwargs)(x)
    relu = f"{name[:6]}relu_{name[6:]}" if name.startswith("fire") else f"relu_{name}"
    return keras.layers.Activation("relu", name=relu)(x)


def _fire(x, fire_id: int, squeeze: int, expand: int):
    """SqueezeNet's fire module: a 1x1 squeeze, then 1x1 and 3x3 expands side by side."""
    p = f"fire{fire_id}_"
    x = _conv_relu(x, squeeze, 1, p + "squeeze1x1")
    left = _conv_relu(x, expand, 1, p + "expand1x1")
    right = _conv_relu(x, expand, 3, p + "expand3x3", padding="same")
    return keras.layers.Concatenate(axis=-1, name=p + "concat")([left, right])


def squeezenet_11(include_top: bool = False, weights: str | Path | None = None,
                  input_shape: tuple[int, int, int] = (227, 227, 3)) -> keras.Model:
    """SqueezeNet v1.1 without its classifier (conv10), as rcmalli/keras-squeezenet builds it
    ("/" in its layer names is "_" here). weights: None (random) or the path of its no-top
    .h5 file, copied in by copy_h5_weights. Explained in 16_choose_what_to_transfer."""
    if include_top or weights == "imagenet":
        raise ValueError("squeezenet_11 has no top; pass the weights file's path "
                         "(load_backbone does).")
    inputs = keras.Input(input_shape, name="image")
    x = _conv_relu(inputs, 64, 3, "conv1", strides=2)
    x = keras.layers.MaxPooling2D(3, 2, name="pool1")(x)
    for fire_id, squeeze in zip(range(2, 10), [16, 16, 32, 32, 48, 48, 64, 64], strict=True):
        x = _fire(x, fire_id, squeeze, 4 * squeeze)  # expand = 4 x squeeze, as in v1.1
        if fire_id in (3, 5):
            x = keras.layers.MaxPooling2D(3, 2, name=f"pool{fire_id}")(x)
    model = keras.Model(inputs, x, name="squeezenet")
    if weights is not None:
        copy_h5_weights(model, weights)
    return model


def copy_h5_weights(model: keras.Model, path: str | Path) -> None:
    """Set every weight of `model` from a Keras 1/2 .h5 file, matched by layer name. All or
    nothing: DataError, naming the layers, unless each layer with weights gets arrays of its
    shapes and every array of the file is used. Explained in 16_choose_what_to_transfer."""
    arrays = read_h5_weights(path)
    layers = {layer.name: layer for layer in model.layers if layer.weights}
    missing, unused = sorted(set(layers) - set(arrays)), sorted(set(arrays) - set(layers))
    if missing or unused:
        raise DataError(f"{path} does not fit {model.name}: layers without arrays in the "
                        f"file {missing or 'none'}, arrays for no layer {unused or 'none'}.")
    for name, layer in layers.items():
        want, got = [tuple(w.shape) for w in layer.weights], [a.shape for a in arrays[name]]
        if want != got:
            raise DataError(f"{path} does not fit {model.name}: layer {name} has weights of "
                            f"shapes {want}, the file {got}.")
    for name, layer in layers.items():
        layer.set_weights(arrays[name])


def build_classifier(backbone: str, n_classes: int, image_size: int, *,
                     weights: str | None = "imagenet", dropout: float = 0.2,
                     bn_inference: bool = True, trainable: bool = False) -> keras.Model:
    """Images (0..255) -> preprocessing -> backbone -> average pool -> dropout -> softmax.

    bn_inference=True keeps the backbone's BatchNorm layers frozen, so they use their
    ImageNet statistics even while other weights train: a frozen BatchNormalization always
    runs in inference mode in Keras 3. The training=False call alone is not enough: in
    Keras 3.15 fit's training=True overrides it (see 02_partial_fine_tuning).
    """
    base = load_backbone(backbone, image_size, weights)
    base.trainable = trainable
    if bn_inference:
        for layer in base.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.trainable = False
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = preprocess_layer(backbone)(inputs)
    x = base(x, training=False if bn_inference else None)
    # float32 from the pooling on: under mixed precision (gpu profile) the embeddings that
    # extractors read from "pool" stay NumPy/scikit-learn friendly, and the softmax stable
    x = keras.layers.GlobalAveragePooling2D(name="pool", dtype="float32")(x)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="head", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=f"{backbone}_classifier")


def embedding_model(classifier: keras.Model) -> keras.Model:
    """The part of a build_classifier model up to its "pool" layer: images to embeddings.

    It shares the classifier's weights, so it always sees their current values.
    Explained in 01_feature_extraction.
    """
    return keras.Model(classifier.inputs, classifier.get_layer("pool").output,
                       name=f"{classifier.name}_embeddings")


def feature_extractor(backbone: str, image_size: int,
                      weights: str | None = "imagenet") -> keras.Model:
    """A classifier cut at its pooling layer, backbone frozen: images (0..255) to float32
    embedding vectors. Explained in 01_feature_extraction."""
    return embedding_model(build_classifier(backbone, 2, image_size, weights=weights))


def build_head(n_features: int, n_classes: int, dropout: float = 0.2) -> keras.Model:
    """The classifier's top alone (dropout -> softmax), trained on cached features."""
    inputs = keras.Input((n_features,), name="features")
    x = keras.layers.Dropout(dropout, name="dropout")(inputs)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="head", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="head_only")


def copy_logistic_head(dense: keras.layers.Dense, classifier) -> None:
    """Load a fitted scikit-learn LogisticRegression, or a StandardScaler -> LogisticRegression
    pipeline, into a Dense softmax layer, which then gives the same probabilities.

    Explained in 10_your_own_data; also used in 09_trust_your_model.
    """
    steps = getattr(classifier, "steps", None)
    logreg = classifier[-1] if steps else classifier
    kernel, bias = logreg.coef_.T.astype(np.float64), logreg.intercept_.astype(np.float64)
    if kernel.shape[1] == 1:  # two classes: one score z for class 1; softmax over (0, z)
        kernel, bias = np.hstack([np.zeros_like(kernel), kernel]), np.array([0.0, bias[0]])
    if steps and len(steps) > 1:  # a standardiser in front folds into the same linear map
        scaler = classifier[0]
        bias = bias - (scaler.mean_ / scaler.scale_) @ kernel
        kernel = kernel / scaler.scale_[:, None]
    dense.set_weights([kernel.astype("float32"), bias.astype("float32")])


def leaf_layers(model: keras.Layer) -> list[keras.Layer]:
    """Every layer inside a model that is not itself a model (nor an input), nested included."""
    found = []
    for layer in getattr(model, "layers", []):
        if hasattr(layer, "layers"):
            found.extend(leaf_layers(layer))
        elif not isinstance(layer, keras.layers.InputLayer):
            found.append(layer)
    return found


def batchnorm_layers(model: keras.Layer) -> list[keras.layers.BatchNormalization]:
    """Every BatchNormalization layer inside a model, nested models included (02, 06)."""
    return [la for la in leaf_layers(model) if isinstance(la, keras.layers.BatchNormalization)]


def list_blocks(base: keras.Model, backbone: str) -> list[tuple[str, list[keras.Layer]]]:
    """The backbone's layers grouped into blocks, input side first.

    Layers before the first block form "stem"; a layer whose name matches no block
    joins the block before it (a padding or activation layer, say).
    """
    pattern = re.compile(BACKBONES[backbone].block_pattern)
    blocks: list[tuple[str, list[keras.Layer]]] = [("stem", [])]
    for layer in base.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        match = pattern.match(layer.name)
        label = next((g for g in match.groups() if g), None) if match else None
        if label is not None and label != blocks[-1][0]:
            blocks.append((label, []))
        blocks[-1][1].append(layer)
    return [b for b in blocks if b[1]]


def backbone_of(model: keras.Model) -> keras.Model:
    """The backbone inside a model built by build_classifier."""
    return model.get_layer("backbone")


def unfreeze_top(model: keras.Model, backbone: str, k: int) -> int:
    """Unfreeze the top k blocks of the backbone, BatchNorm layers kept frozen.

    Returns the number of trainable weights (scalars) in the whole model afterwards.
    Recompile the model after calling this.
    """
    base = backbone_of(model)
    base.trainable = True
    blocks = list_blocks(base, backbone)
    top = {id(layer) for _, layers in blocks[len(blocks) - k:] for layer in layers} if k else set()
    for layer in base.layers:
        is_bn = isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = id(layer) in top and not is_bn
    return count_trainable(model)


def count_trainable(model: keras.Model) -> int:
    """Number of trainable scalars in a model."""
    return int(sum(keras.ops.size(w) for w in model.trainable_weights))


GROUPS = ("early", "middle", "late")


def block_groups(base: keras.Model, backbone: str) -> dict[str, list[keras.Layer]]:
    """The backbone's blocks cut into three runs of (nearly) equal numbers of blocks, input
    side first: "early", "middle" and "late". Surgical fine-tuning in 15_tune_a_sliver.
    """
    blocks = list_blocks(base, backbone)
    cuts = np.array_split(np.arange(len(blocks)), len(GROUPS))
    return {name: [layer for i in part for layer in blocks[i][1]]
            for name, part in zip(GROUPS, cuts, strict=True)}


def train_only(model: keras.Model, backbone: str, groups) -> int:
    """Make only the named groups trainable: any of block_groups' names and "head".

    BatchNorm layers stay frozen, as in unfreeze_top. Returns the number of trainable
    scalars; recompile the model afterwards. Explained in 15_tune_a_sliver.
    """
    choices = [*GROUPS, "head"]
    unknown = set(groups) - set(choices)
    if unknown:
        raise ValueError(f"Unknown groups {sorted(unknown)}: choose from {choices}.")
    base = backbone_of(model)
    base.trainable = True
    chosen = {id(layer) for name, layers in block_groups(base, backbone).items()
              if name in groups for layer in layers}
    for layer in base.layers:
        is_bn = isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = id(layer) in chosen and not is_bn
    model.get_layer("head").trainable = "head" in groups
    return count_trainable(model)


def block_outputs_model(backbone: str, image_size: int, weights: str | None = "imagenet",
                        seed: int = 0) -> tuple[keras.Model, list[str]]:
    """Images (0..255) -> the average-pooled output of every block (list_blocks), one
    float32 (n x channels) output per block, and the block names. weights None: random
    initialisation from `seed`, the floor a pretrained backbone must beat.
    Explained in 16_choose_what_to_transfer."""
    keras.utils.set_random_seed(seed)
    base = load_backbone(backbone, image_size, weights)
    blocks = list_blocks(base, backbone)
    pooled = [keras.layers.GlobalAveragePooling2D(dtype="float32", name=f"pool_{name}")(
        layers[-1].output) for name, layers in blocks]
    inner = keras.Model(base.inputs, pooled, name=f"{backbone}_blocks")
    inputs = keras.Input((image_size, image_size, 3), name="image")
    outputs = inner(preprocess_layer(backbone)(inputs))
    return keras.Model(inputs, outputs, name=inner.name), [name for name, _ in blocks]
