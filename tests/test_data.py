"""tlutils.course.assets and tlutils.data: downloads (against a local HTTP server), decoding,
caching, splits; tlutils.digits."""

import dataclasses
import hashlib
import http.server
import io
import threading
import zipfile
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tlutils import data, digits
from tlutils.course import assets, images, offline


def _png_bytes(color, size=(40, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("KERAS_HOME", str(root))
    return root


@pytest.fixture()
def server(tmp_path):
    """Serves tmp_path/www on 127.0.0.1: tiny.zip (good), truncated.zip (cut in half)."""
    www = tmp_path / "www"
    www.mkdir()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for cls, color in [("cats", "red"), ("dogs", "blue")]:
            for i in range(3):
                z.writestr(f"tiny/train/{cls}/{i}.png", _png_bytes(color))
                z.writestr(f"tiny/val/{cls}/{i}.png", _png_bytes(color))
    (www / "tiny.zip").write_bytes(buf.getvalue())
    (www / "truncated.zip").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", hashlib.sha256(buf.getvalue()).hexdigest()
    httpd.shutdown()


def _spec(url, name="tiny.zip", sha=None):
    extracted = f"{name.split('.')[0]}_extracted/tiny"
    return assets.DatasetSpec(name="tiny", url=f"{url}/{name}", path=extracted,
                            layout="train/ and val/ with cats/ and dogs/", archive_sha256=sha)


def test_good_download_with_checksum(cache, server):
    url, sha = server
    root = assets.fetch(_spec(url, sha=sha))
    assert root == cache / "datasets" / "tiny_extracted" / "tiny"
    assert sorted(p.name for p in (root / "train").iterdir()) == ["cats", "dogs"]
    # A second call finds the folder and downloads nothing (the server could be gone).
    assert assets.fetch(_spec("http://127.0.0.1:9", sha=sha)) == root


def test_checksum_mismatch_is_refused_and_removed(cache, server):
    url, _ = server
    with pytest.raises(assets.DataError, match=r"Could not download tiny \(.*tiny.zip"):
        assets.fetch(_spec(url, sha="0" * 64))
    assert not (cache / "datasets" / "tiny.zip").exists()
    assert not (cache / "datasets" / "tiny_extracted" / "tiny").exists()


def test_truncated_archive_is_refused_and_removed(cache, server):
    url, _ = server
    with pytest.raises(assets.DataError, match="truncated.zip is damaged"):
        assets.fetch(_spec(url, name="truncated.zip"))
    assert not (cache / "datasets" / "truncated.zip").exists()


def test_missing_file_offline_names_url_and_place(cache):
    spec = _spec("http://127.0.0.1:9")
    with pytest.raises(assets.DataError) as err:
        assets.fetch(spec)
    message = str(err.value)
    assert "http://127.0.0.1:9/tiny.zip" in message
    assert str(cache / "datasets" / "tiny_extracted" / "tiny") in message
    assert "\n" not in message


def test_folder_checksum_mismatch(cache, server):
    url, sha = server
    spec = _spec(url, sha=sha)
    root = assets.fetch(spec)
    bad = assets.DatasetSpec(**{**spec.__dict__, "folder_sha256": "f" * 64})
    assert assets.folder_sha256(root) != "f" * 64
    with pytest.raises(assets.DataError, match="checksum mismatch"):
        assets.fetch(bad)


def test_read_only_cache_is_refused(tmp_path, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    monkeypatch.setenv("KERAS_HOME", str(ro))
    try:
        if not __import__("os").access(ro, __import__("os").W_OK):  # root can write anyway
            with pytest.raises(assets.DataError, match="not writable"):
                assets.cache_root()
    finally:
        ro.chmod(0o755)


def _folder(root: Path, n=4) -> Path:
    for cls, color in [("a", (200, 30, 30)), ("b", (30, 30, 200))]:
        (root / cls).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (50 + i, 40), color).save(root / cls / f"{i}.jpg")
    return root


def test_load_image_folder_decodes_skips_and_caches(cache, tmp_path):
    root = _folder(tmp_path / "imgs")
    (root / "a" / "notes.jpg").write_text("not an image")
    (root / "b" / "empty.png").write_bytes(b"")
    Image.new("RGB", (1, 1)).save(root / "b" / "dot.png")
    Image.new("L", (30, 60), 128).save(root / "b" / "grey.png")
    d = data.load_image_folder(root, 32)
    assert d.x.shape == (9, 32, 32, 3) and d.x.dtype == np.uint8
    assert d.class_names == ["a", "b"] and np.bincount(d.y).tolist() == [4, 5]
    skipped = {Path(p).name: why for p, why in d.skipped}
    assert set(skipped) == {"notes.jpg", "empty.png", "dot.png"}
    assert "too small" in skipped["dot.png"]
    assert d.x[0, 16, 16].tolist() == pytest.approx([200, 30, 30], abs=3)
    again = data.load_image_folder(root, 32)  # from the decoded cache
    assert again.key == d.key and np.array_equal(again.x, d.x) and again.skipped == d.skipped
    assert len(list((cache / "tlutils" / "decoded").glob("*.npz"))) == 1


def test_a_cached_load_lists_the_folder_once(cache, tmp_path, monkeypatch):
    """A load from the decoded cache walks the folder once, for its fingerprint, with or
    without class names given: listing every file to learn the class names would walk it
    again."""
    root = _folder(tmp_path / "imgs")
    data.load_image_folder(root, 32)
    walked = []
    real = images.files_under
    monkeypatch.setattr(images, "files_under", lambda d: walked.append(d) or real(d))
    again = data.load_image_folder(root, 32)
    named = data.load_image_folder(root, 32, class_names=again.class_names)
    assert walked == [root, root] and named.key == again.key


def test_rgba_is_composited_on_white(tmp_path, cache):
    path = tmp_path / "t.png"
    Image.new("RGBA", (20, 20), (0, 0, 0, 0)).save(path)
    assert data.decode_image(path, 8)[4, 4].tolist() == [255, 255, 255]


def test_load_train_val_split_when_no_train_folder(cache, tmp_path):
    root = _folder(tmp_path / "imgs", n=10)
    train, val = data.load_train_val(root, 16, val_fraction=0.2, seed=0)
    assert len(train) == 16 and len(val) == 4
    assert np.bincount(val.y).tolist() == [2, 2]
    assert not set(train.paths) & set(val.paths)
    assert train.key != val.key


def test_stratified_split_and_subsets():
    y = np.array([0] * 10 + [1] * 30)
    tr, va = data.stratified_split(y, 0.2, seed=1)
    assert np.bincount(y[va]).tolist() == [2, 6]
    assert sorted(np.concatenate([tr, va]).tolist()) == list(range(40))
    assert np.array_equal(tr, data.stratified_split(y, 0.2, seed=1)[0])
    sub = data.per_class_subset(y, 5, seed=0)
    assert np.bincount(y[sub]).tolist() == [5, 5]
    assert len(data.per_class_subset(y, 20)) == 30  # all of class 0, 20 of class 1
    assert len(data.per_class_subset(y, None)) == 40


def test_build_offline_cache_refuses_wrong_folder(tmp_path):
    with pytest.raises(assets.DataError, match="no MANIFEST.md"):
        offline.build_offline_cache(tmp_path)


# Domain-shift data (07_measure_a_shift): PACS specs, single files with mirrors, digits.

def test_pacs_specs_point_into_the_archive_and_the_shared_copy():
    full, subset = assets.DATASETS["pacs"], assets.DATASETS["pacs_subset"]
    commit = "33f7def03be34c3fbb1a4d5c97384ab602884833"
    assert full.url.endswith(f"{commit}.zip") and subset.built_from == "pacs"
    assert full.path == f"{commit}_extracted/Homework3-PACS-{commit}/PACS"
    assert subset.shared_copy == "domains/pacs_subset" and len(subset.folder_sha256) == 64


def test_file_specs_are_single_files_with_sha256():
    for spec in assets.FILES.values():
        assert len(spec.sha256) == 64 and spec.urls
        assert all(url.endswith(spec.name) for url in spec.urls), "one file, not an archive"


def test_fetch_file_tries_the_mirrors_in_order(cache, server, monkeypatch):
    url, sha = server
    dead = "http://127.0.0.1:9/tiny.zip"
    spec = assets.FileSpec("tiny.zip", (dead, f"{url}/tiny.zip"), "files", sha)
    monkeypatch.setitem(assets.FILES, "tiny.zip", spec)
    path = assets.fetch_file("tiny.zip")
    assert path == cache / "datasets" / "files" / "tiny.zip"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha
    dead_spec = assets.FileSpec("tiny.zip", (dead,), "files", sha)
    monkeypatch.setitem(assets.FILES, "tiny.zip", dead_spec)
    assert assets.fetch_file("tiny.zip") == path  # cached and verified: no download


def test_fetch_file_offline_or_corrupt_names_the_url_and_the_place(cache, server, monkeypatch):
    url, _ = server
    spec = assets.FileSpec("tiny.zip", (f"{url}/tiny.zip",), "files", "0" * 64)
    monkeypatch.setitem(assets.FILES, "tiny.zip", spec)
    with pytest.raises(assets.DataError) as err:
        assets.fetch_file("tiny.zip")
    message = str(err.value)
    assert f"{url}/tiny.zip" in message
    assert str(cache / "datasets" / "files" / "tiny.zip") in message and "\n" not in message
    assert not (cache / "datasets" / "files" / "tiny.zip").exists(), "a corrupt download is removed"


def test_offline_cache_copies_single_files(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    (shared / "domains" / "usps").mkdir(parents=True)
    (shared / "MANIFEST.md").write_text("test")
    (shared / "domains" / "usps" / "usps.h5").write_bytes(b"not really h5")
    fake = hashlib.sha256(b"not really h5").hexdigest()  # the registry must agree
    monkeypatch.setitem(assets.FILES, "usps.h5",
                        dataclasses.replace(assets.FILES["usps.h5"], sha256=fake))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "cache"))
    root, repaired, _ = offline.build_offline_cache(shared, tmp_path / "cache")
    assert repaired == []
    assert (root / "datasets" / "usps" / "usps.h5").read_bytes() == b"not really h5"
    assert not (root / "datasets" / "mnist_t10k").exists(), "absent files are skipped"


def test_digits_load_with_the_documented_shapes():
    for spec in assets.FILES.values():
        if not (assets.cache_root() / "datasets" / spec.folder / spec.name).exists():
            pytest.skip("digits not in the cache")
    x, y = digits.load_mnist_t10k()
    assert x.shape == (10000, 28, 28) and x.dtype == np.uint8
    assert np.bincount(y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    u, v = digits.load_usps("test")
    assert u.shape == (2007, 16, 16) and u.dtype == np.uint8 and set(np.unique(v)) == set(range(10))
    assert u.max() == 255 and u.mean() < 128, "dark background, bright digits, as in MNIST"


def test_resize_digits_keeps_uint8_range_and_repeats_channels():
    x = np.zeros((3, 16, 16), np.uint8)
    x[:, 4:12, 7:9] = 255  # a white stroke on black
    one = digits.resize_digits(x, 28)
    three = digits.resize_digits(x, 48, channels=3)
    assert one.shape == (3, 28, 28, 1) and one.dtype == np.uint8
    assert three.shape == (3, 48, 48, 3) and three.dtype == np.uint8
    assert one.max() == 255 and one.min() == 0
    np.testing.assert_array_equal(three[..., 0], three[..., 2])


def test_hidden_files_do_not_change_the_folder_checksum(tmp_path):
    (tmp_path / "ants").mkdir()
    (tmp_path / "ants" / "a.jpg").write_bytes(b"an image")
    before = assets.folder_sha256(tmp_path)
    (tmp_path / ".DS_Store").write_bytes(b"finder")
    (tmp_path / "ants" / ".DS_Store").write_bytes(b"finder")
    (tmp_path / ".ipynb_checkpoints").mkdir()
    (tmp_path / ".ipynb_checkpoints" / "x.jpg").write_bytes(b"copy")
    assert assets.folder_sha256(tmp_path) == before
    (tmp_path / "ants" / "b.jpg").write_bytes(b"another image")
    assert assets.folder_sha256(tmp_path) != before, "a real file still counts"


def test_images_behind_a_symlinked_class_folder_are_seen_by_the_cache(cache, tmp_path):
    elsewhere = _folder(tmp_path / "elsewhere")  # holds a/ and b/, 4 images each
    root = tmp_path / "imgs"
    root.mkdir()
    (root / "a").symlink_to(elsewhere / "a", target_is_directory=True)
    (root / "b").symlink_to(elsewhere / "b", target_is_directory=True)
    assert len(data.load_image_folder(root, 32)) == 8
    Image.new("RGB", (50, 40), (200, 30, 30)).save(elsewhere / "a" / "new.jpg")
    assert len(data.load_image_folder(root, 32)) == 9, "the cache key must see the new image"


def test_a_hidden_sub_folder_inside_a_class_adds_nothing(cache, tmp_path):
    root = _folder(tmp_path / "imgs")
    (root / "a" / ".thumbnails").mkdir()
    Image.new("RGB", (50, 40)).save(root / "a" / ".thumbnails" / "0.jpg")
    assert np.bincount(data.load_image_folder(root, 32).y).tolist() == [4, 4]


@pytest.mark.parametrize("part", [".meta.npz", ".npy"])
def test_a_corrupt_decoded_cache_is_rebuilt(cache, tmp_path, part):
    root = _folder(tmp_path / "imgs")
    first = data.load_image_folder(root, 32)
    (cut,) = (cache / "tlutils" / "decoded").glob(f"*{part}")
    cut.write_bytes(cut.read_bytes()[:300])  # a write cut short
    again = data.load_image_folder(root, 32)
    assert np.array_equal(again.x, first.x)
    (meta,) = (cache / "tlutils" / "decoded").glob("*.meta.npz")
    assert assets.load_cached(meta, images._read_meta) is not None, "rebuilt in place"


def test_a_failed_cache_write_leaves_no_file_and_no_temporary(tmp_path):
    target = tmp_path / "cache" / "x.npy"

    def disk_full(f):
        f.write(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        assets.save_atomic(target, disk_full)
    assert list(target.parent.iterdir()) == []
    assets.save_atomic(target, lambda f: np.save(f, np.arange(3)))
    assets.save_atomic(target, lambda f: np.save(f, np.arange(4)))  # a second writer, same entry
    assert np.load(target).tolist() == [0, 1, 2, 3] and len(list(target.parent.iterdir())) == 1


def test_mnist_layout_puts_a_frame_filling_digit_in_a_20_pixel_box():
    x = np.full((2, 16, 16), 255, np.uint8)  # digits that fill their frame, as USPS's do
    out = digits.mnist_layout(x)
    assert out.shape == (2, 28, 28, 1) and out.dtype == np.uint8
    assert (out[:, 4:24, 4:24] == 255).all() and out[:, :4].max() == 0 and out[:, 24:].max() == 0


def test_a_registered_placeholder_is_left_out_and_said(tmp_path):
    """hymenoptera's "image not found" GIF is filed under ants: the registered dataset leaves
    it out and lists it in `skipped` (#39); a folder of your own keeps it (07 finds it)."""
    from tlutils.data import ImageData, without_placeholders

    paths = [str(tmp_path / "train" / c / f) for c, f in
             [("ants", "a.jpg"), ("ants", "imageNotFound.gif"), ("bees", "b.jpg")]]
    images = ImageData(np.zeros((3, 4, 4, 3), np.uint8), np.array([0, 0, 1]), ["ants", "bees"],
                       paths, [], "k")
    kept = without_placeholders(images, ("train/ants/imageNotFound.gif",))
    assert kept.paths == [paths[0], paths[2]] and kept.y.tolist() == [0, 1]
    assert kept.skipped == [(paths[1], "a placeholder, not a picture of its class "
                                       "(data/registry.json)")]
    assert without_placeholders(images, ("val/ants/x.gif",)) is images


@pytest.mark.parametrize("module", ["assets", "images", "offline", "profiles", "kit"])
def test_machinery_under_the_lessons_imports_no_lesson(module):
    """The cache, the image cache and the profiles sit under the lesson helpers: importing one
    loads no tlutils lesson module (tlutils.data calls course.images, never the reverse)."""
    import subprocess
    import sys

    code = (f"import sys; import tlutils.course.{module}; lessons = [m for m in sys.modules "
            "if m.startswith('tlutils.') and not m.startswith('tlutils.course')]; "
            "print(lessons); assert not lessons")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stdout + done.stderr
