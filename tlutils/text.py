"""Text transfer: SST-2 sentences, GloVe vectors, a pretrained transformer, and what the
notebooks build from them.

Explained in 11_word_vectors (GloVe, the label curve) and 12_pretrained_transformer.
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
import zipfile
from pathlib import Path

import numpy as np

from tlutils import baselines, data
from tlutils.course.assets import (
    MODELS,
    DataError,
    cache_root,
    fetch_file,
    load_cached,
    model_folder,
    save_atomic,
)
from tlutils.stats import cosine

SST2_LABELS = ["negative", "positive"]
GLOVE_FILE = "glove.6B.50d.10k.zip"


def read_labelled_lines(path: str | Path, n_labels: int = 2,
                        long_words: int = 200) -> tuple[list[str], np.ndarray]:
    """Sentences and integer labels from a `LABEL TEXT` file, one sentence a line, UTF-8.

    A line without text, or whose label is not 0..n_labels-1, raises DataError naming the
    file and the line. What is handled instead is printed in one line: empty lines
    (skipped), bytes that are not UTF-8 (read as U+FFFD) and lines of more than long_words
    words (kept; a model cuts them to its own length).
    """
    texts, labels, empty, not_utf8, long = [], [], 0, [], []
    for number, raw in enumerate(Path(path).read_bytes().splitlines(), 1):
        line = raw.decode("utf-8", errors="replace")
        if "\ufffd" in line and "\ufffd".encode() not in raw:
            not_utf8.append(number)
        if not line.strip():
            empty += 1
            continue
        label, _, text = line.strip().partition(" ")
        if not text.strip() or label not in {str(i) for i in range(n_labels)}:
            shown = line.strip()[:60]
            raise DataError(f"{path}, line {number}: expected a label 0..{n_labels - 1}, a "
                            f"space and the sentence, got {shown!r}; fix or remove that line.")
        if len(text.split()) > long_words:
            long.append(number)
        texts.append(text.strip())
        labels.append(int(label))
    notes = [f"skipped {empty} empty line(s)"] * bool(empty)
    notes += [f"read line(s) {_lines(not_utf8)} with U+FFFD for bytes that are not UTF-8"] * bool(
        not_utf8)
    notes += [f"kept line(s) {_lines(long)} of more than {long_words} words"] * bool(long)
    if notes:
        print(f"{Path(path).name}: " + "; ".join(notes) + ".")
    return texts, np.array(labels, dtype=np.int64)


def _lines(numbers: list[int]) -> str:
    return ", ".join(map(str, numbers[:5])) + (f" and {len(numbers) - 5} more" if len(numbers) > 5
                                               else "")


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


def label_curve(features: dict, y_train: np.ndarray, y_dev: np.ndarray, sizes: list[int],
                seeds: int, cs) -> list[dict]:
    """Dev accuracy of a logistic regression per arm (name -> (train features, dev features))
    on `seeds` subsets of each size (sentences per class), the same subsets for every arm. Each
    arm picks C from cs by cross-validation on the first subset and keeps it for the others.
    One row per size: per_class, and <arm>_c, _mean, _std, _runs. Explained in
    11_word_vectors."""
    curve = []
    for per_class in sizes:
        subsets = [data.per_class_subset(y_train, per_class, seed) for seed in range(seeds)]
        row = {"per_class": per_class}
        for arm, (a_train, a_dev) in features.items():
            c = baselines.fit_logreg(a_train[subsets[0]], y_train[subsets[0]], cs).chosen_c
            runs = [float(baselines.fit_logreg(a_train[i], y_train[i], (c,)).score(a_dev, y_dev))
                    for i in subsets]
            row.update({f"{arm}_c": c, f"{arm}_mean": float(np.mean(runs)),
                        f"{arm}_std": float(np.std(runs)), f"{arm}_runs": runs})
        curve.append(row)
    return curve


def transformer_preset(preset: str) -> str:
    """What keras_hub's from_preset should load: a registered model's checked cache folder
    (data/registry.json "models"), a local folder once check_model_folder accepts it, or
    any other handle unchanged (hf://..., a Kaggle preset name)."""
    if preset in MODELS:
        return str(model_folder(preset))
    folder = Path(preset).expanduser()
    if folder.is_dir():
        check_model_folder(folder)
        return str(folder)
    return preset


def check_model_folder(folder: Path) -> None:
    """Refuse, in one sentence, a local folder keras_hub could not load: neither a keras_hub
    preset (metadata.json) nor a Hugging Face checkpoint (config.json, model.safetensors),
    a checkpoint without its vocab.txt, or a model.safetensors cut short."""
    if (folder / "metadata.json").exists():
        return
    if not ((folder / "config.json").exists() and (folder / "model.safetensors").exists()):
        raise DataError(f"{folder} is neither a keras_hub preset (metadata.json) nor a Hugging "
                        "Face checkpoint (config.json and model.safetensors): point TRANSFORMER "
                        "at a folder that holds one, or at a handle such as "
                        "hf://sentence-transformers/all-MiniLM-L6-v2.")
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except ValueError as err:
        raise DataError(f"{folder / 'config.json'} is not JSON ({err}): copy it again from "
                        "where the checkpoint came from.") from None
    if not (folder / "vocab.txt").exists():
        raise DataError(f"{folder} has no vocab.txt, the word-piece vocabulary its tokenizer "
                        "reads: copy vocab.txt from where the checkpoint came from into it.")
    words = len((folder / "vocab.txt").read_text(encoding="utf-8").splitlines())
    declared = config.get("vocab_size") if isinstance(config, dict) else None
    if isinstance(declared, int) and words != declared:
        raise DataError(f"{folder / 'vocab.txt'} has {words:,} word pieces where config.json "
                        f"declares {declared:,}: the two files come from different models.")
    problem = safetensors_problem(folder / "model.safetensors")
    if problem:
        raise DataError(f"{folder / 'model.safetensors'} is {problem}: download it again.")


def safetensors_problem(path: Path) -> str | None:
    """Why a .safetensors file cannot be whole (None if it can): its 8-byte header length,
    JSON header and tensor offsets must account for every byte of the file."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little") if size >= 8 else size
        if n > size - 8:
            return f"cut short ({size:,} bytes, less than its own header)"
        try:
            header = json.loads(f.read(n))
        except ValueError:
            return "not a safetensors file (its header is not JSON)"
    try:
        end = max((int(t["data_offsets"][1]) for k, t in header.items() if k != "__metadata__"),
                  default=0)
    except (AttributeError, KeyError, TypeError, IndexError, ValueError):
        return "not a safetensors file (its header does not describe tensors)"
    if 8 + n + end != size:
        return f"cut short: {size:,} bytes, where its header describes {8 + n + end:,}"
    return None


def load_transformer(preset: str):
    """(backbone, tokenizer) of a pretrained transformer through keras_hub's from_preset, for
    a registered model, a local folder or a handle (transformer_preset). Explained in
    12_pretrained_transformer."""
    try:
        with warnings.catch_warnings():  # tqdm's note that Jupyter widgets are not installed
            warnings.filterwarnings("ignore", message="IProgress not found")
            import keras_hub
    except ImportError:
        raise ImportError("The transformer needs keras-hub: `pip install keras-hub` (on Colab: "
                          "`%pip install -q keras-hub`), then run the section again.") from None
    path = transformer_preset(preset)
    _expected_retracing_quiet()
    try:
        backbone = keras_hub.models.Backbone.from_preset(path)
        tokenizer = keras_hub.models.Tokenizer.from_preset(path)
    except Exception as err:
        if not str(path).startswith(("hf://", "kaggle://")):
            raise
        said = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise DataError(f"Could not load {path} ({said}). Without a network, download its "
                        "folder (config.json, model.safetensors, vocab.txt) on a connected "
                        "machine and point TRANSFORMER at that folder.") from None
    return backbone, tokenizer


class _ExpectedRetracing(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


def _expected_retracing_quiet() -> None:
    """Trimmed batches change shape on purpose, so TensorFlow's advice against retracing (a
    WARNING after a few traced shapes) does not apply to them: drop that one message."""
    logger = logging.getLogger("tensorflow")
    if not any(isinstance(f, _ExpectedRetracing) for f in logger.filters):
        logger.addFilter(_ExpectedRetracing())


def token_ids(tokenizer, texts: list[str], seq_len: int) -> list[np.ndarray]:
    """Each sentence as word-piece ids, [CLS] first and [SEP] last, cut to seq_len ids."""
    rows = tokenizer(list(texts))
    rows = rows.to_list() if hasattr(rows, "to_list") else [list(r) for r in rows]
    first, last = tokenizer.cls_token_id, tokenizer.sep_token_id
    return [np.array([first, *r[: seq_len - 2], last], dtype="int32") for r in rows]


def by_length(ids: list[np.ndarray], batch_size: int) -> list[np.ndarray]:
    """Batches of sentence indices, shortest sentences first, so each batch pads little."""
    order = np.argsort([len(r) for r in ids], kind="stable")
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def padded(ids: list[np.ndarray], idx) -> dict[str, np.ndarray]:
    """The backbone's inputs for sentences idx, padded only to the longest of them (id 0 is
    [PAD]): trimming each batch instead of padding every sentence to seq_len."""
    tokens = np.zeros((len(idx), max(len(ids[i]) for i in idx)), "int32")
    for row, i in enumerate(idx):
        tokens[row, :len(ids[i])] = ids[i]
    return {"token_ids": tokens, "padding_mask": tokens > 0, "segment_ids": np.zeros_like(tokens)}


def outputs(model, ids: list[np.ndarray], batch_size: int = 64) -> np.ndarray:
    """model's output for every sentence, in the order of ids, computed batch by batch in
    length order with each batch trimmed (by_length, padded)."""
    rows = {}
    for idx in by_length(ids, batch_size):
        out = np.asarray(model.predict_on_batch(padded(ids, idx)))
        rows.update(zip(idx.tolist(), out, strict=True))
    return np.stack([rows[i] for i in range(len(ids))])


def cached_outputs(model, ids: list[np.ndarray], key: str, batch_size: int = 64) -> np.ndarray:
    """outputs() kept on disk under <cache>/tlutils/text/, keyed by `key` (what the model
    is) and the token ids themselves, so a rerun does not compute them again."""
    h = hashlib.sha1(key.encode())
    for r in ids:
        h.update(r.tobytes() + b"|")
    path = cache_root() / "tlutils" / "text" / f"{h.hexdigest()[:20]}.npy"
    found = load_cached(path, np.load)
    if found is None or len(found) != len(ids):
        found = outputs(model, ids, batch_size)
        save_atomic(path, lambda f: np.save(f, found))
    return found


def sentence_model(backbone, n_classes: int | None = None, dropout: float = 0.1):
    """The backbone's token vectors averaged over the real tokens (padding left out). With
    n_classes None, L2-normalised: the sentence embedding all-MiniLM was trained to give.
    Otherwise dropout and a softmax layer follow: the classifier that is fine-tuned. BERT's
    pooler of the [CLS] vector, unused here, is frozen, so no weight lacks a gradient."""
    import keras
    from keras import ops

    for layer in backbone.layers:
        if layer.name == "pooled_dense":
            layer.trainable = False

    inputs = {"token_ids": keras.Input((None,), dtype="int32", name="token_ids"),
              "padding_mask": keras.Input((None,), dtype="bool", name="padding_mask"),
              "segment_ids": keras.Input((None,), dtype="int32", name="segment_ids")}
    tokens = backbone(inputs)["sequence_output"]
    mask = ops.expand_dims(ops.cast(inputs["padding_mask"], tokens.dtype), -1)
    mean = ops.sum(tokens * mask, axis=1) / ops.maximum(ops.sum(mask, axis=1), 1.0)
    if n_classes is None:
        return keras.Model(inputs, ops.normalize(mean, axis=-1))
    x = keras.layers.Dropout(dropout)(mean)
    return keras.Model(inputs, keras.layers.Dense(n_classes, activation="softmax",
                                                  dtype="float32")(x))
