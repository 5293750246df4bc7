"""tlutils.text (11_word_vectors, 12_pretrained_transformer): the SST-2 loader on bad lines,
GloVe, the embedding matrix, the label curve (the transformer path: tests/test_transformer.py)."""

import numpy as np
import pytest

from tlutils import text
from tlutils.course import assets


def test_labelled_lines_survive_empty_lines_and_non_ascii(tmp_path):
    path = tmp_path / "reviews.txt"
    path.write_bytes("1 a café-set charmer , naïve and warm\n\n   \n0 dull — très dull\n"
                     .encode())
    texts, labels = text.read_labelled_lines(path)
    assert texts == ["a café-set charmer , naïve and warm", "dull — très dull"]
    assert labels.tolist() == [1, 0]


@pytest.mark.parametrize("bad", ["good movie", "2 an unknown label", "1", "positive great"])
def test_a_malformed_line_is_refused_naming_the_file_and_line(tmp_path, bad):
    path = tmp_path / "reviews.txt"
    path.write_text(f"1 fine\n\n{bad}\n0 bad\n", encoding="utf-8")
    with pytest.raises(assets.DataError) as err:
        text.read_labelled_lines(path)
    message = str(err.value)
    assert message.startswith(f"{path}, line 3: expected a label 0..1") and "\n" not in message


def _in_cache(name: str) -> bool:
    spec = assets.FILES[name]
    return (assets.cache_root() / "datasets" / spec.folder / spec.name).exists()


@pytest.mark.skipif(not _in_cache(text.GLOVE_FILE), reason="text data not in the cache")
def test_sst2_and_glove_load_with_the_published_sizes():
    sizes = {split: len(text.load_sst2(split)[0]) for split in ["train", "dev", "test"]}
    assert sizes == {"train": 6920, "dev": 872, "test": 1821}
    words, vectors = text.load_glove()
    assert len(words) == 10000 and vectors.shape == (10000, 50) and vectors.dtype == np.float32
    assert words[:4] == ["the", ",", ".", "of"]
    index = {w: i for i, w in enumerate(words)}
    near = [w for w, _ in text.nearest(vectors[index["dog"]], vectors, words, 3, ("dog",))]
    assert near == ["cat", "dogs", "horse"]  # as shared/data/MANIFEST.md records


def test_embedding_matrix_and_mean_vectors():
    words, vectors = ["good", "film"], np.array([[1.0, 0.0], [0.0, 2.0]], np.float32)
    vocab = ["", "[UNK]", "film", "zzz", "good"]
    matrix, known = text.embedding_matrix(vocab, words, vectors)
    assert known.tolist() == [False, False, True, False, True]
    assert np.array_equal(matrix[2], [0, 2]) and np.array_equal(matrix[4], [1, 0])
    assert not matrix[0].any(), "padding stays zero"
    ids = np.array([[4, 2, 3, 0], [3, 0, 0, 0]])
    means = text.mean_vectors(ids, matrix, known)
    assert np.allclose(means[0], [0.5, 1.0]), "unknown words and padding left out"
    assert np.allclose(means[1], [0, 0]), "a sentence without a known word"


def test_label_curve_trains_every_arm_on_the_same_subsets():
    rng = np.random.default_rng(0)
    y_train, y_dev = np.repeat([0, 1], 20), np.repeat([0, 1], 10)
    x_train = (2.0 * y_train[:, None] - 1) + rng.normal(0, 0.5, (len(y_train), 3))
    x_dev = (2.0 * y_dev[:, None] - 1) + rng.normal(0, 0.5, (len(y_dev), 3))
    arms = {"a": (x_train, x_dev), "b": (x_train.copy(), x_dev), "noise": (
        rng.normal(size=x_train.shape), rng.normal(size=x_dev.shape))}
    curve = text.label_curve(arms, y_train, y_dev, [3, 6], seeds=2, cs=(0.1, 1.0))
    assert [row["per_class"] for row in curve] == [3, 6]
    for row in curve:
        assert row["a_runs"] == row["b_runs"], "the same features on the same subsets"
        assert row["a_c"] in (0.1, 1.0) and len(row["a_runs"]) == 2
        assert row["a_mean"] > row["noise_mean"] and row["a_mean"] >= 0.8
