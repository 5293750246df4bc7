"""The streaming path for big folders (10_your_own_data): decoded images that stay on disk,
read batch by batch, with the same numbers as the in-memory path."""

import keras
import numpy as np
import pytest
from image_folders import write_good

from tlutils import data, features
from tlutils.course import images


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "cache"))


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "photos"
    for cls in ["red", "blue"]:
        write_good(root, cls, 6)
    (root / "red" / "broken.jpg").write_bytes(b"not an image")  # skipped: a zero row on disk
    return root


def _both(folder, monkeypatch):
    memory = data.load_image_folder(folder, 32)
    monkeypatch.setattr(images, "STREAM_ABOVE_MB", 0)
    return memory, data.load_image_folder(folder, 32)


def test_disk_images_read_what_memory_holds(folder, monkeypatch):
    memory, disk = _both(folder, monkeypatch)
    assert isinstance(memory.x, np.ndarray) and isinstance(disk.x, images.DiskImages)
    assert disk.x.shape == memory.x.shape == (12, 32, 32, 3) and len(disk.x) == 12
    assert np.array_equal(disk.x[3], memory.x[3])
    assert np.array_equal(disk.x[2:7], memory.x[2:7])
    assert np.array_equal(disk.x[[9, 0, 4]], memory.x[[9, 0, 4]]), "any order"
    view = disk.take([5, 1])
    assert isinstance(view.x, images.DiskImages) and np.array_equal(view.x[0:2], memory.x[[5, 1]])
    assert disk.skipped == memory.skipped and len(disk.skipped) == 1
    with pytest.raises(TypeError, match="stay on disk"):
        np.asarray(disk.x)


def test_the_cache_is_reused_not_decoded_again(folder, monkeypatch):
    first = data.load_image_folder(folder, 32)

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again")

    monkeypatch.setattr(data, "decode_image", no_decoding)
    assert np.array_equal(data.load_image_folder(folder, 32).x, first.x)


def test_splits_embeddings_and_training_stream_from_disk(folder, monkeypatch):
    memory, _ = _both(folder, monkeypatch)
    train, val = data.load_train_val(folder, 32, val_fraction=0.3, seed=0)
    assert isinstance(train.x, images.DiskImages) and isinstance(val.x, images.DiskImages)
    inputs = keras.Input((32, 32, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(inputs))
    extractor = keras.Model(inputs, pooled)
    streamed = features.extract_features(train, "toy", 32, 4, extractor)
    assert np.allclose(streamed, extractor.predict(train.x[0:len(train)], verbose=0))
    model = keras.Sequential([extractor, keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    feed = data.batches(train.x, train.y, batch_size=4, shuffle=True, seed=1)
    assert len(feed) == int(np.ceil(len(train) / 4))
    history = model.fit(feed, epochs=2, verbose=0).history
    assert len(history["loss"]) == 2 and np.isfinite(history["loss"]).all()
    probs = model.predict(data.batches(val.x, batch_size=4), verbose=0)
    assert probs.shape == (len(val), 2)


def test_batches_cover_every_row_once_per_epoch():
    x, y = np.arange(10).reshape(10, 1), np.arange(10)
    feed = data.batches(x, y, batch_size=4, shuffle=True, seed=0)
    seen = np.concatenate([feed[i][1] for i in range(len(feed))])
    assert sorted(seen.tolist()) == list(range(10))
    feed.on_epoch_end()
    again = np.concatenate([feed[i][1] for i in range(len(feed))])
    assert sorted(again.tolist()) == list(range(10)) and not np.array_equal(seen, again)
