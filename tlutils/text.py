"""Text transfer: SST-2 sentences, GloVe vectors, and what the notebook builds from them.

Explained in 07_text_transfer.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from tlutils.course.assets import DataError, fetch_file
from tlutils.stats import cosine

SST2_LABELS = ["negative", "positive"]
GLOVE_FILE = "glove.6B.50d.10k.zip"


def read_labelled_lines(path: str | Path, n_labels: int = 2) -> tuple[list[str], np.ndarray]:
    """Sentences and integer labels from a `LABEL TEXT` file, one sentence a line, UTF-8.

    Empty lines are skipped; a line without text, or whose label is not 0..n_labels-1,
    raises DataError naming the file and the line.
    """
    texts, labels = [], []
    raw = Path(path).read_bytes().decode("utf-8", errors="replace")
    for number, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        label, _, text = line.strip().partition(" ")
        if not text.strip() or label not in {str(i) for i in range(n_labels)}:
            shown = line.strip()[:60]
            raise DataError(f"{path}, line {number}: expected a label 0..{n_labels - 1}, a "
                            f"space and the sentence, got {shown!r}; fix or remove that line.")
        texts.append(text.strip())
        labels.append(int(label))
    return texts, np.array(labels, dtype=np.int64)


def load_sst2(split: str) -> tuple[list[str], np.ndarray]:
    """SST-2 sentences (lower-cased, tokenised) and labels, 0 negative, 1 positive; split
    "train" (6,920), "dev" (872) or "test" (1,821)."""
    return read_labelled_lines(fetch_file(f"stsa.binary.{split}"))


def load_glove() -> tuple[list[str], np.ndarray]:
    """GloVe 6B 50d for the 10,000 most frequent words: (words, float32 vectors), read
    straight from the zip, most frequent word first."""
    words, rows = [], []
    with zipfile.ZipFile(fetch_file(GLOVE_FILE)) as z:
        with z.open(z.namelist()[0]) as f:
            for line in f:
                word, *values = line.decode("utf-8").rstrip().split(" ")
                words.append(word)
                rows.append(np.array(values, dtype=np.float32))
    return words, np.stack(rows)


def nearest(query: np.ndarray, vectors: np.ndarray, words: list[str], k: int = 5,
            exclude: tuple[str, ...] = ()) -> list[tuple[str, float]]:
    """The k words whose vectors have the highest cosine similarity with query."""
    scores = cosine(vectors, query)
    order = [i for i in np.argsort(-scores) if words[i] not in exclude]
    return [(words[i], float(scores[i])) for i in order[:k]]


def embedding_matrix(vocabulary: list[str], words: list[str], vectors: np.ndarray,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Rows for a TextVectorization vocabulary: the GloVe vector where the word has one,
    small random values elsewhere (row 0, padding, is zero). Returns (matrix, known mask)."""
    index = {w: i for i, w in enumerate(words)}
    rng = np.random.default_rng(seed)
    matrix = rng.normal(0, vectors.std(), (len(vocabulary), vectors.shape[1])).astype("float32")
    known = np.array([w in index for w in vocabulary])
    matrix[known] = vectors[[index[w] for w in vocabulary if w in index]]
    matrix[0] = 0.0
    return matrix, known


def mean_vectors(ids: np.ndarray, matrix: np.ndarray, known: np.ndarray) -> np.ndarray:
    """The mean of each sentence's known-word vectors (token ids in, one row per sentence):
    the cached fast path, a sentence embedding computed once without training."""
    use = known[ids] & (ids > 0)
    sums = np.einsum("nt,ntd->nd", use.astype("float32"), matrix[ids])
    return sums / np.maximum(use.sum(axis=1, keepdims=True), 1)


def fine_tune_transformer(preset: str, texts: list[str], labels: np.ndarray,
                          dev_texts: list[str], dev_labels: np.ndarray, *, epochs: int,
                          lr: float, batch_size: int, seq_len: int, seed: int = 0) -> float:
    """Fine-tune a keras_hub text classifier loaded from `preset` (a Kaggle or Hugging Face
    handle, or a local folder) on the sentences, in a fixed shuffled order; return its
    accuracy on the dev sentences. Explained in 07_text_transfer."""
    import keras

    try:
        import keras_hub
    except ImportError:
        raise ImportError("The transformer needs keras-hub: `pip install keras-hub` (on Colab: "
                          "`%pip install -q keras-hub`), then run the section again.") from None
    keras.utils.set_random_seed(seed)
    classifier = keras_hub.models.TextClassifier.from_preset(preset, num_classes=2)
    classifier.preprocessor.sequence_length = seq_len
    classifier.compile(optimizer=keras.optimizers.AdamW(lr),
                       loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    order = np.random.default_rng(seed).permutation(len(texts))
    classifier.fit([texts[i] for i in order], np.asarray(labels)[order], epochs=epochs,
                   batch_size=batch_size, shuffle=False, verbose=0)
    logits = classifier.predict(list(dev_texts), batch_size=64, verbose=0)
    return float(np.mean(np.argmax(logits, axis=1) == np.asarray(dev_labels)))
