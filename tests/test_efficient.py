"""Helpers of 16_choose_what_to_transfer: every block's pooled features, cached; content keys."""

import numpy as np
import pytest

from tlutils import backbones, features


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).integers(0, 256, (5, 64, 64, 3), dtype=np.uint8)


def test_block_outputs_model_gives_one_pooled_output_per_block():
    model, names = backbones.block_outputs_model("mobilenet_025", 64, weights=None)
    assert names == ["stem"] + [str(i) for i in range(1, 14)]
    assert [tuple(o.shape) for o in model.outputs][-1] == (None, 256)
    assert len(model.outputs) == len(names)


def test_block_features_are_cached_and_keyed_by_weights(images, tmp_path, monkeypatch):
    monkeypatch.setattr(features, "cache_root", lambda: tmp_path)
    first = features.block_features(images, "mobilenet_025", 64, weights=None, seed=0)
    files = sorted((tmp_path / "tlutils" / "features").glob("*.npz"))
    assert len(files) == 1 and "random0" in files[0].name
    assert list(first) == ["stem"] + [str(i) for i in range(1, 14)]
    assert all(f.shape[0] == len(images) and f.dtype == np.float32 for f in first.values())
    again = features.block_features(images, "mobilenet_025", 64, weights=None, seed=0)
    assert all(np.array_equal(first[k], again[k]) for k in first)
    other = features.block_features(images, "mobilenet_025", 64, weights=None, seed=1)
    assert not np.allclose(first["stem"], other["stem"])  # another seed, another network
    assert len(list((tmp_path / "tlutils" / "features").glob("*.npz"))) == 2


def test_a_truncated_block_cache_is_rebuilt(images, tmp_path, monkeypatch):
    monkeypatch.setattr(features, "cache_root", lambda: tmp_path)
    first = features.block_features(images, "mobilenet_025", 64, weights=None)
    (path,) = (tmp_path / "tlutils" / "features").glob("*.npz")
    path.write_bytes(path.read_bytes()[:100])
    rebuilt = features.block_features(images, "mobilenet_025", 64, weights=None)
    assert all(np.allclose(first[k], rebuilt[k]) for k in first)


def test_content_key_follows_the_bytes(images):
    assert features.content_key(images) == features.content_key(images.copy())
    changed = images.copy()
    changed[0, 0, 0, 0] ^= 1
    assert features.content_key(changed) != features.content_key(images)
    assert features.content_key(images[:4]) != features.content_key(images)


@pytest.mark.parametrize("backbone, size", [("mobilenet_v2", 64), ("efficientnet_b0", 64),
                                            ("vgg16", 32), ("squeezenet_11", 64)])
def test_block_outputs_model_for_every_registry_backbone(backbone, size):
    """12 in the cpu and gpu profiles: their backbones, and the bigger candidates."""
    model, names = backbones.block_outputs_model(backbone, size, weights=None)
    blocks = backbones.list_blocks(backbones.load_backbone(backbone, size, None), backbone)
    assert names == [name for name, _ in blocks]
    x = np.random.default_rng(1).integers(0, 256, (2, size, size, 3)).astype("float32")
    outs = model(x)
    assert len(outs) == len(names) and all(o.shape[0] == 2 and o.ndim == 2 for o in outs)
