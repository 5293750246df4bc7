"""09's transformer path: a registered model fetched, checked and repaired like every asset,
local folders that keras_hub could not load refused in one sentence, the hf:// handle offline,
trimmed batches equal to padded ones, the embedding cache, and SST-2-style bad input."""

import dataclasses
import hashlib
import shutil

import numpy as np
import pytest

from tests.conftest import SHARED
from tlutils import text
from tlutils.course import assets, offline

keras_hub = pytest.importorskip("keras_hub")
MINILM = "all-MiniLM-L6-v2"
SHARED_MINILM = SHARED / "text" / "minilm" / MINILM
needs_minilm = pytest.mark.skipif(not SHARED_MINILM.is_dir(), reason="needs shared/data")
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "good", "bad", "film", "dull", "not"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny random BERT saved as a keras_hub preset folder."""
    folder = tmp_path_factory.mktemp("tiny")
    backbone = keras_hub.models.BertBackbone(vocabulary_size=len(VOCAB), num_layers=1,
                                             num_heads=2, hidden_dim=8, intermediate_dim=16,
                                             max_sequence_length=16)
    backbone.save_to_preset(folder)
    keras_hub.models.BertTokenizer(vocabulary=VOCAB).save_to_preset(folder)
    return folder


def test_trimmed_batches_give_what_padding_gives_and_train(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "cache"))
    backbone, tokenizer = text.load_transformer(str(tiny))
    sentences = ["a good film", "a dull film , not good", "good", "bad film"]
    ids = text.token_ids(tokenizer, sentences, seq_len=6)
    assert [len(r) for r in ids] == [5, 6, 3, 4], "[CLS] and [SEP] added, cut at seq_len"
    assert ids[1][0] == VOCAB.index("[CLS]") and ids[1][-1] == VOCAB.index("[SEP]")
    encoder = text.sentence_model(backbone)
    trimmed = text.outputs(encoder, ids, batch_size=2)
    batch = text.padded(ids, np.arange(4))
    full = {k: np.pad(v, ((0, 0), (0, 10 - v.shape[1]))) for k, v in batch.items()}
    assert np.allclose(trimmed, encoder.predict_on_batch(full), atol=1e-5)
    assert np.allclose(np.linalg.norm(trimmed, axis=1), 1, atol=1e-5)
    cached = text.cached_outputs(encoder, ids, "tiny")
    assert np.allclose(cached, trimmed) and len(list((tmp_path / "cache").rglob("*.npy"))) == 1
    assert np.array_equal(text.cached_outputs(None, ids, "tiny"), cached), "read, not computed"
    classifier = text.sentence_model(backbone, n_classes=2)
    classifier.compile("adam", "sparse_categorical_crossentropy")
    loss = classifier.train_on_batch(text.padded(ids, np.arange(4)), np.array([1, 0, 1, 0]))
    assert np.isfinite(loss) and text.outputs(classifier, ids).shape == (4, 2)


def _fake_checkpoint(folder, tensors: bool = True):
    """A folder in Hugging Face's layout whose model.safetensors holds one small tensor."""
    from safetensors.numpy import save_file

    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "bert"}')
    (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    save_file({"w": np.arange(1000, dtype=np.float32)}, str(folder / "model.safetensors"))
    return folder


@pytest.mark.parametrize("damage, words", [
    ("truncate", "model.safetensors is cut short: "),
    ("no_vocab", "has no vocab.txt, the word-piece vocabulary its tokenizer reads"),
    ("neither", "is neither a keras_hub preset (metadata.json) nor a Hugging Face checkpoint"),
    ("config", "config.json is not JSON"),
    ("header", "not a safetensors file (its header does not describe tensors)"),
    ("vocab_size", "word pieces where config.json declares 99:"),
])
def test_a_folder_keras_hub_could_not_load_is_refused_in_one_sentence(tmp_path, damage, words):
    folder = _fake_checkpoint(tmp_path / "checkpoint")
    weights = folder / "model.safetensors"
    original = weights.read_bytes()
    if damage == "truncate":
        weights.write_bytes(original[: len(original) // 2])
    elif damage == "config":
        (folder / "config.json").write_text("{model_type: bert")
    elif damage == "vocab_size":
        (folder / "config.json").write_text('{"model_type": "bert", "vocab_size": 99}')
    elif damage == "header":
        header = b'{"w": 5}'
        weights.write_bytes(len(header).to_bytes(8, "little") + header)
    elif damage == "no_vocab":
        (folder / "vocab.txt").unlink()
    else:
        for f in list(folder.iterdir()):
            f.unlink()
        (folder / "notes.txt").write_text("my model")
    with pytest.raises(assets.DataError) as err:
        text.load_transformer(str(folder))
    assert words in str(err.value) and "\n" not in str(err.value)


def test_safetensors_check_accepts_a_whole_file_and_names_a_foreign_one(tmp_path):
    folder = _fake_checkpoint(tmp_path / "checkpoint")
    assert text.safetensors_problem(folder / "model.safetensors") is None
    (tmp_path / "x.safetensors").write_bytes((5).to_bytes(8, "little") + b"hello")
    assert "header is not JSON" in text.safetensors_problem(tmp_path / "x.safetensors")


@needs_minilm
def test_the_registered_model_is_checked_repaired_and_named_when_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "cache"))
    spec = assets.MODELS[MINILM]
    assert spec.files == {p.relative_to(SHARED_MINILM).as_posix():
                          hashlib.sha256(p.read_bytes()).hexdigest()
                          for p in sorted(SHARED_MINILM.rglob("*")) if p.is_file()}
    root, _, _ = offline.build_offline_cache(SHARED)
    folder = assets.model_folder(MINILM)
    assert folder == root / "models" / spec.folder
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1_000_000])  # a download cut short
    with pytest.raises(assets.DataError, match=r"model.safetensors is damaged .*offline-cache"):
        text.load_transformer(MINILM)
    assert offline.build_offline_cache(SHARED)[1] == [folder], "offline-cache repairs it"
    assert assets.model_folder(MINILM) == folder
    shutil.rmtree(folder)
    monkeypatch.setitem(assets.MODELS, MINILM, dataclasses.replace(spec, url="http://127.0.0.1:9"))
    with pytest.raises(assets.DataError) as err:
        assets.require(models=[MINILM])
    message = str(err.value)
    assert "Could not get 1_Pooling/config.json of all-MiniLM-L6-v2" in message
    assert str(folder) in message


@needs_minilm
def test_the_hf_handle_loads_offline_from_a_hugging_face_cache(tmp_path, monkeypatch):
    """cpu and gpu learners may set TRANSFORMER = "hf://sentence-transformers/...": the same
    from_preset call, here served from a Hugging Face cache with the hub offline."""
    repo = tmp_path / "hub" / "models--sentence-transformers--all-MiniLM-L6-v2"
    commit = assets.MODELS[MINILM].url.rsplit("/", 1)[-1]
    shutil.copytree(SHARED_MINILM, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as hf

    monkeypatch.setattr(hf, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(hf, "HF_HUB_OFFLINE", True)
    backbone, tokenizer = text.load_transformer("hf://sentence-transformers/all-MiniLM-L6-v2")
    ids = text.token_ids(tokenizer, ["This is an example sentence"], 64)
    embedding = text.outputs(text.sentence_model(backbone), ids)[0]
    # the upstream model card's example
    assert np.allclose(embedding[:5], [0.0677, 0.0634, 0.0488, 0.0792, 0.0374], atol=1e-4)


def test_an_hf_handle_with_no_network_is_one_sentence(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as hf

    monkeypatch.setattr(hf, "HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    monkeypatch.setattr(hf, "HF_HUB_OFFLINE", True)
    with pytest.raises(assets.DataError) as err:
        text.load_transformer("hf://sentence-transformers/all-MiniLM-L6-v2")
    message = str(err.value)
    assert message.startswith("Could not load hf://sentence-transformers/all-MiniLM-L6-v2 (")
    assert "point TRANSFORMER at that folder" in message and "\n" not in message


def test_sst2_style_input_empty_lines_bad_bytes_and_a_long_sentence(tmp_path, tiny, capsys):
    path = tmp_path / "reviews.txt"
    long = " ".join(["good"] * 500)
    path.write_bytes(b"1 a good film\n\n0 a dull \xff film\n   \n1 " + long.encode() + b"\n")
    texts, labels = text.read_labelled_lines(path)
    assert labels.tolist() == [1, 0, 1] and texts[1] == "a dull \ufffd film"
    note = capsys.readouterr().out.strip()
    assert note == ("reviews.txt: skipped 2 empty line(s); read line(s) 3 with U+FFFD for bytes "
                    "that are not UTF-8; kept line(s) 5 of more than 200 words.")
    _, tokenizer = text.load_transformer(str(tiny))
    ids = text.token_ids(tokenizer, texts, seq_len=64)
    assert len(ids[2]) == 64, "a 500-word sentence is cut to the model's length"
