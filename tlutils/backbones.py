"""Pretrained backbones: a registry, a classifier builder, and freezing by blocks.

The classifier recipe is explained in 01_feature_extraction; blocks and
`trainable` vs `training` in 02_partial_fine_tuning.
"""

from __future__ import annotations

import dataclasses
import re

import keras
import numpy as np

from tlutils.data import DataError, weights_file


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
    """How to build one keras.applications backbone and feed it."""

    name: str
    constructor: str  # attribute of keras.applications
    kwargs: dict
    default_size: int
    scale: float | None  # Rescaling(scale, offset) maps 0..255 to the backbone's range;
    offset: float  # scale None: the backbone rescales inside itself (EfficientNet)
    block_pattern: str  # regex whose first group names a layer's block
    weights_url: str  # where keras.applications downloads the ImageNet weights from
    weights_sizes: tuple[int, ...]  # sizes with their own weights file; others use the first

    def weights_source(self, size: int) -> str:
        """The URL of the weights file Keras loads at this input size."""
        rows = size if size in self.weights_sizes else self.weights_sizes[0]
        return self.weights_url.format(rows=rows)


BACKBONES: dict[str, BackboneSpec] = {
    spec.name: spec
    for spec in [
        BackboneSpec(
            "mobilenet_025", "MobileNet", {"alpha": 0.25}, 224, 1 / 127.5, -1.0,
            r"^conv_(?:dw|pw|pad)_(\d+)",
            "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet/"
            "mobilenet_2_5_{rows}_tf_no_top.h5",
            (224, 128, 160, 192),
        ),
        BackboneSpec(
            "mobilenet_v2", "MobileNetV2", {"alpha": 1.0}, 160, 1 / 127.5, -1.0,
            r"^(?:block_(\d+)_|(expanded_conv)_|(Conv_1)|out_relu)",  # out_relu joins Conv_1
            "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/"
            "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{rows}_no_top.h5",
            (224, 96, 128, 160, 192),
        ),
        BackboneSpec(
            "efficientnet_b0", "EfficientNetB0", {}, 224, None, 0.0,
            r"^(?:block(\d[a-z])_|(top)_)",
            "https://storage.googleapis.com/keras-applications/efficientnetb0_notop.h5",
            (224,),
        ),
    ]
}


def weights_name(name: str, image_size: int) -> str:
    """The file name of the ImageNet weights the backbone loads at this size (no top)."""
    return BACKBONES[name].weights_source(image_size).rsplit("/", 1)[-1]


def load_backbone(name: str, image_size: int, weights: str | None = "imagenet") -> keras.Model:
    """The backbone without its top, named "backbone", weights from the Keras cache.

    The weights file is fetched and checked first (data.weights_file): offline with the
    file missing, or with a damaged file, the error names the file, its URL and folder.
    """
    spec = BACKBONES[name]
    build = getattr(keras.applications, spec.constructor)
    shape = (image_size, image_size, 3)
    url = spec.weights_source(image_size)
    fname = weights_name(name, image_size)
    if weights == "imagenet":
        path = weights_file(fname)
    try:
        base = build(include_top=False, weights=weights, input_shape=shape, **spec.kwargs)
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
    if spec.scale is None:
        return keras.layers.Identity(name="preprocess")
    return keras.layers.Rescaling(spec.scale, spec.offset, name="preprocess")


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

    Explained in 06_your_own_data; also used in 05_domain_shift.
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
    """Every BatchNormalization layer inside a model, nested models included (02, 05)."""
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
