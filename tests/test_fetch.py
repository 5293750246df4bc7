"""Fetching from upstream layouts on a 127.0.0.1 server: all-or-nothing unpacking, the
registry's checks, the PACS subset cut from full PACS, weights files, the offline cache."""

import dataclasses
import errno
import hashlib
import http.server
import io
import json
import tarfile
import threading
import zipfile
from functools import partial
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import SHARED
from tlutils import backbones, data
from tlutils.course import assets, offline

COMMIT = "33f7def03be34c3fbb1a4d5c97384ab602884833"


def _jpeg(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 24), (seed * 37 % 256, 90, 160)).save(buf, "JPEG")
    return buf.getvalue()


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture()
def www(tmp_path):
    """(folder, url): files put in the folder are served from url on 127.0.0.1."""
    folder = tmp_path / "www"
    folder.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield folder, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for name, payload in members.items():
            z.writestr(name, payload)
    return path


def _spec(url: str, archive: str, counts: dict, **extra) -> assets.DatasetSpec:
    stem = archive.split(".")[0]
    return assets.DatasetSpec(name="demo", url=f"{url}/{archive}", path=f"{stem}_extracted/demo",
                            layout="a/ and b/", counts=counts, **extra)


FILES8 = {f"demo/{c}/{i}.jpg": _jpeg(i) for c in "ab" for i in range(4)}


def test_a_bad_member_leaves_nothing_half_unpacked(cache, www):
    folder, url = www
    raw = bytearray(_zip(folder / "bad.zip", FILES8).read_bytes())
    payload = FILES8["demo/b/2.jpg"]
    at = bytes(raw).index(payload) + len(payload) // 2
    raw[at] ^= 0xFF  # one flipped byte in a member: Bad CRC-32 while unpacking
    (folder / "bad.zip").write_bytes(bytes(raw))
    spec = _spec(url, "bad.zip", {"a": 4, "b": 4})
    for _ in range(2):  # the second call must not find a partial folder and return it
        with pytest.raises(assets.DataError, match="is damaged .*nothing was kept unpacked"):
            assets.fetch(spec)
        assert not (cache / "datasets" / "bad_extracted").exists()
        assert not list((cache / "datasets").glob(".*.tmp"))


def test_a_full_disk_while_unpacking_leaves_nothing_and_keeps_the_archive(cache, www, monkeypatch):
    folder, url = www
    _zip(folder / "demo.zip", FILES8)
    real = zipfile.ZipFile._extract_member
    calls = []

    def fill_up(self, member, *args):
        calls.append(member)
        if len(calls) == 5:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, member, *args)

    monkeypatch.setattr(zipfile.ZipFile, "_extract_member", fill_up)
    spec = _spec(url, "demo.zip", {"a": 4, "b": 4})
    with pytest.raises(assets.DataError, match="No space left on device. Nothing was left half"):
        assets.fetch(spec)
    assert not (cache / "datasets" / "demo_extracted").exists()
    assert (cache / "datasets" / "demo.zip").exists(), "the download is kept for the next try"
    monkeypatch.setattr(zipfile.ZipFile, "_extract_member", real)
    # space again: complete, from the archive
    assert len(assets.files_under(assets.fetch(spec))) == 8


def test_a_partial_folder_left_by_an_earlier_unpack_is_caught(cache, www):
    folder, url = www
    _zip(folder / "demo.zip", FILES8)
    spec = _spec(url, "demo.zip", {"a": 4, "b": 4})
    root = assets.fetch(spec)
    (root / "b" / "3.jpg").unlink()  # what Keras' own extract=True leaves after a failure
    with pytest.raises(assets.DataError, match=r"incomplete or altered: b/ has 3 files where demo"):
        assets.fetch(spec)


def test_archives_that_expand_too_far_or_escape_are_refused(cache, www):
    folder, url = www
    _zip(folder / "big.zip", {"demo/a/zeros.bin": bytes(3_000_000)})
    with pytest.raises(assets.DataError, match="would unpack to 3 MB, more than the 1 MB"):
        assets.fetch(_spec(url, "big.zip", {"a": 1}, max_unpacked_mb=1))
    _zip(folder / "escape.zip", {"demo/a/0.jpg": b"x", "../outside.txt": b"x"})
    with pytest.raises(assets.DataError, match="a link or a path outside its folder"):
        assets.fetch(_spec(url, "escape.zip", {"a": 1}))
    with tarfile.open(folder / "link.tgz", "w:gz") as t:
        info = tarfile.TarInfo("demo/a/link.jpg")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        t.addfile(info)
    with pytest.raises(assets.DataError, match="a link or a path outside its folder"):
        assets.fetch(_spec(url, "link.tgz", {"a": 1}))
    assert not (cache / "tmp" / "outside.txt").exists()
    assert not [p for p in (cache / "datasets").iterdir() if p.is_dir()], "nothing unpacked"


def test_every_registered_dataset_can_be_checked():
    for spec in assets.DATASETS.values():
        assert spec.folder_sha256 or spec.counts, f"{spec.name}: nothing to check a copy against"
        assert spec.max_unpacked_mb > 0 and spec.url.startswith("https://")


def test_flower_photos_upstream_layout_goes_through_fetch_and_load(cache, www, monkeypatch):
    folder, url = www
    classes = ["daisy", "dandelion", "roses", "sunflowers", "tulips"]
    with tarfile.open(folder / "flower_photos.tgz", "w:gz") as t:
        for name, payload in [("flower_photos/LICENSE.txt", b"CC-BY")] + [
                (f"flower_photos/{c}/{i}.jpg", _jpeg(i)) for c in classes for i in range(5)]:
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            t.addfile(info, io.BytesIO(payload))
    real = assets.DATASETS["flower_photos"]
    spec = dataclasses.replace(real, url=f"{url}/flower_photos.tgz", counts=dict.fromkeys(
        classes, 5))
    monkeypatch.setitem(assets.DATASETS, "flower_photos", spec)
    train, val = data.load_train_val("flower_photos", 32)
    assert train.class_names == classes and len(train) + len(val) == 25
    assert (cache / "datasets" / real.path / "LICENSE.txt").exists()


@pytest.mark.skipif(not SHARED.is_dir(), reason="needs shared/data")
def test_pacs_subset_is_cut_from_the_upstream_pacs_archive(cache, www, monkeypatch):
    """A connected machine without shared/: the full archive, laid out like upstream's,
    yields the subset with the published folder hash."""
    folder, url = www
    shared = SHARED / "domains" / "pacs_subset"
    members = {f"Homework3-PACS-{COMMIT}/PACS/{p.relative_to(shared)}": p.read_bytes()
               for p in assets.files_under(shared)}
    for domain in ["art_painting", "cartoon", "photo", "sketch"]:  # files the subset skips
        members[f"Homework3-PACS-{COMMIT}/PACS/{domain}/dog/zz_extra.jpg"] = _jpeg(1)
    members[f"Homework3-PACS-{COMMIT}/README.md"] = b"PACS"
    _zip(folder / f"{COMMIT}.zip", members)
    full = dataclasses.replace(assets.DATASETS["pacs"], url=f"{url}/{COMMIT}.zip",
                               counts=dict.fromkeys(["art_painting", "cartoon", "photo",
                                                     "sketch"], 281))
    monkeypatch.setitem(assets.DATASETS, "pacs", full)
    subset = assets.fetch("pacs_subset")
    assert assets.folder_sha256(subset) == assets.DATASETS["pacs_subset"].folder_sha256
    train, val = data.load_train_val(subset / "sketch", 32)
    assert len(train.class_names) == 7 and len(train) + len(val) == 280


def test_pacs_subset_offline_says_both_ways_to_get_it(cache, monkeypatch):
    full = dataclasses.replace(assets.DATASETS["pacs"], url="http://127.0.0.1:9/pacs.zip")
    monkeypatch.setitem(assets.DATASETS, "pacs", full)
    with pytest.raises(assets.DataError) as err:
        assets.fetch("pacs_subset")
    assert "http://127.0.0.1:9/pacs.zip" in str(err.value)
    assert "shared/data/domains/pacs_subset" in str(err.value)


def _cache_with_weights(cache: Path, payload: bytes) -> Path:
    path = cache / "models" / "mobilenet_2_5_224_tf_no_top.h5"
    path.parent.mkdir(parents=True)
    path.write_bytes(payload)
    return path


@pytest.mark.skipif(not SHARED.is_dir(), reason="needs shared/data")
def test_a_truncated_weights_file_is_named_and_offline_cache_repairs_it(cache):
    good = (SHARED / "keras" / "models" / "mobilenet_2_5_224_tf_no_top.h5").read_bytes()
    path = _cache_with_weights(cache, good[: len(good) // 2])
    with pytest.raises(assets.DataError) as err:
        backbones.load_backbone("mobilenet_025", 224)
    assert str(path) in str(err.value) and "offline-cache" in str(err.value)
    root, repaired, _ = offline.build_offline_cache(SHARED, cache)
    assert path in repaired and path.read_bytes() == good
    assert offline.build_offline_cache(SHARED, cache)[1] == [], "identical copies are left alone"
    assert backbones.load_backbone("mobilenet_025", 224).name == "backbone"


def test_a_weights_file_without_a_checksum_must_open(cache):
    name = assets.backbone_weights_name("mobilenet_v2", 160)
    assert not {"sha256", "md5"} & set(assets.WEIGHTS[name])
    path = cache / "models" / name
    path.parent.mkdir(parents=True)
    path.write_bytes(b"<html>rate limited</html>")
    with pytest.raises(assets.DataError, match="not a readable HDF5 file"):
        assets.weights_file(name)


def test_require_lists_every_missing_file_in_one_pass(cache, monkeypatch):
    for name in ["pacs", "hymenoptera"]:
        spec = dataclasses.replace(assets.DATASETS[name], url=f"http://127.0.0.1:9/{name}.zip")
        monkeypatch.setitem(assets.DATASETS, name, spec)
    monkeypatch.setitem(assets.WEIGHTS, "w.h5", {"url": "http://127.0.0.1:9/w.h5"})
    with pytest.raises(assets.DataError) as err:
        assets.require(["hymenoptera", "pacs"], [], ["w.h5"])
    lines = str(err.value).splitlines()
    assert lines[0].startswith("3 of the files") and len(lines) == 4
    assert all(line.startswith("- ") for line in lines[1:])


@pytest.mark.parametrize("backbone", sorted(n for n, s in backbones.BACKBONES.items()
                                            if not s.builder))  # SqueezeNet: test_squeezenet
def test_registry_weights_agree_with_keras_applications(backbone, monkeypatch):
    """The file name, URL and checksum Keras itself asks for, captured from its own get_file
    call, are the registry's (backbone_weights and weights)."""
    import keras

    asked = {}

    def capture(fname, origin, **kwargs):
        asked.update(fname=fname, origin=origin, file_hash=kwargs.get("file_hash"))
        raise InterruptedError

    monkeypatch.setattr(keras.src.utils.file_utils, "get_file", capture)
    spec = backbones.BACKBONES[backbone]
    for profile_size in sorted({spec.default_size, 224}):
        with pytest.raises(InterruptedError):
            getattr(keras.applications, spec.constructor)(
                include_top=False, weights="imagenet",
                input_shape=(profile_size, profile_size, 3), **spec.kwargs)
        name = assets.backbone_weights_name(backbone, profile_size)
        assert asked["fname"] == name
        assert asked["origin"] == assets.backbone_weights_url(backbone, profile_size)
        entry = assets.WEIGHTS.get(name)
        if entry is not None:
            assert entry["url"] == asked["origin"]
            if asked["file_hash"]:  # Keras checks this file: so must the registry, alike
                assert asked["file_hash"] in (entry.get("md5"), entry.get("sha256"))


def test_the_registry_is_data_and_is_installed_with_the_package():
    path = assets.project_data("registry.json")
    registry = json.loads(path.read_text(encoding="utf-8"))
    assert set(registry["datasets"]) == set(assets.DATASETS)
    assert set(registry["backbone_weights"]) == set(backbones.BACKBONES)
    lines = assets.project_data("pacs_subset.sha256").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1120 and all(len(line.split("  ")[0]) == 64 for line in lines)
    digests = sorted(line.split("  ")[0] for line in lines)
    joined = "".join(d + "\n" for d in digests).encode()
    assert hashlib.sha256(joined).hexdigest() == assets.DATASETS["pacs_subset"].folder_sha256


def test_offline_cache_repairs_a_damaged_dataset_copy(tmp_path, cache, monkeypatch):
    # a one-image stand-in for hymenoptera: the registry's folder hash would refuse it
    spec = dataclasses.replace(assets.DATASETS["hymenoptera"], folder_sha256=None)
    monkeypatch.setitem(assets.DATASETS, "hymenoptera", spec)
    shared = tmp_path / "shared"
    (shared / "MANIFEST.md").parent.mkdir(parents=True)
    (shared / "MANIFEST.md").write_text("test")
    images = shared / "images" / "hymenoptera_data" / "train" / "ants"
    images.mkdir(parents=True)
    (images / "a.jpg").write_bytes(_jpeg(1))
    root, repaired, _ = offline.build_offline_cache(shared, tmp_path / "cache")
    copy = root / "datasets" / assets.DATASETS["hymenoptera"].path
    assert repaired == [] and (copy / "train" / "ants" / "a.jpg").read_bytes() == _jpeg(1)
    (copy / "train" / "ants" / "a.jpg").write_bytes(_jpeg(1)[:100])  # a cut copy
    (copy / "train" / "ants" / ".DS_Store").write_bytes(b"finder")  # not a difference
    assert offline.build_offline_cache(shared, tmp_path / "cache")[1] == [copy]
    assert (copy / "train" / "ants" / "a.jpg").read_bytes() == _jpeg(1)
    assert not list(copy.parent.glob(".*.tmp")), "no temporary folder left behind"


def test_fetch_all_lists_everything_missing_in_one_pass(cache, monkeypatch, capsys):
    from tlutils.course.cli import main

    for name, spec in list(assets.DATASETS.items()):
        monkeypatch.setitem(assets.DATASETS, name, dataclasses.replace(
            spec, url=f"http://127.0.0.1:9/{spec.archive_name}"))
    for name, spec in list(assets.FILES.items()):
        monkeypatch.setitem(assets.FILES, name, dataclasses.replace(
            spec, urls=(f"http://127.0.0.1:9/{name}",)))
    for name, spec in list(assets.WEIGHTS.items()):
        monkeypatch.setitem(assets.WEIGHTS, name, {**spec, "url": f"http://127.0.0.1:9/{name}"})
    for name, spec in list(assets.MODELS.items()):
        monkeypatch.setitem(assets.MODELS, name, dataclasses.replace(spec, url="http://127.0.0.1:9"))
    assert main(["fetch", "--all"]) == 2
    lines = capsys.readouterr().err.splitlines()
    # hymenoptera, flower_photos, pacs, pacs_subset; every single file; 5 weights files
    # (MobileNet at two sizes, SqueezeNet, and 11's VGG16 and EfficientNet-B0); models
    n = 4 + len(assets.FILES) + 5 + len(assets.MODELS)
    assert lines[0] == f"Error: {n} of the files this needs cannot be used:", lines[0]
    assert len(lines) == n + 1 and all(line.startswith("- ") for line in lines[1:])
