"""A connected machine without shared/: every smoke asset comes from a server on 127.0.0.1
that holds the upstream files, laid out as upstream lays them out (TLU_MIRROR points there).
The runner then executes notebook 00 from that cache alone (all seven ran this way once by
hand; see docs/dependencies.md)."""

import http.server
import os
import shutil
import subprocess
import sys
import threading
import zipfile
from functools import partial
from pathlib import Path

import pytest

from tests.conftest import ROOT, SHARED
from tlutils.course import assets

pytestmark = pytest.mark.skipif(not SHARED.is_dir(), reason="needs shared/data to serve")
COMMIT = "33f7def03be34c3fbb1a4d5c97384ab602884833"


def _upstream_files(www: Path) -> None:
    """hymenoptera_data.zip, full PACS as GitHub zips it (the subset's files plus fillers up
    to each domain's count of 9,991), the MNIST test set, USPS, the MobileNet weights and
    09's transformer."""
    with zipfile.ZipFile(www / "hymenoptera_data.zip", "w") as z:
        for p in assets.files_under(SHARED / "images" / "hymenoptera_data"):
            z.write(p, f"hymenoptera_data/{p.relative_to(SHARED / 'images' / 'hymenoptera_data')}")
    subset = SHARED / "domains" / "pacs_subset"
    prefix = f"Homework3-PACS-{COMMIT}/PACS"
    with zipfile.ZipFile(www / f"{COMMIT}.zip", "w") as z:
        z.writestr(f"Homework3-PACS-{COMMIT}/README.md", "PACS")
        for domain, n in assets.DATASETS["pacs"].counts.items():
            kept = assets.files_under(subset / domain)
            for p in kept:
                z.write(p, f"{prefix}/{p.relative_to(subset)}")
            for i in range(n - len(kept)):  # images the subset does not keep
                z.writestr(f"{prefix}/{domain}/dog/zz_{i:04d}.jpg", b"not kept")
    for spec in assets.FILES.values():
        (www / spec.name).write_bytes((SHARED / spec.shared_copy).read_bytes())
    for name, spec in assets.WEIGHTS.items():
        if spec.get("shared_copy"):
            (www / name).write_bytes((SHARED / spec["shared_copy"]).read_bytes())
    for spec in assets.MODELS.values():  # a model's files in a folder of its name
        shutil.copytree(SHARED / spec.shared_copy, www / spec.folder)


@pytest.fixture()
def mirror(tmp_path):
    www = tmp_path / "www"
    www.mkdir()
    _upstream_files(www)
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_smoke_runs_on_a_connected_machine_without_shared(tmp_path, mirror):
    env = {**os.environ, "KERAS_HOME": str(tmp_path / "empty-cache"), "TLU_MIRROR": mirror,
           "TLU_BUILD_DIR": str(tmp_path / "build"), "TLU_PROFILE": "smoke"}
    cmd = [sys.executable, "-m", "tlutils"]
    fetched = subprocess.run(cmd + ["fetch"], env=env, cwd=ROOT, capture_output=True, text=True)
    assert fetched.returncode == 0, fetched.stderr
    cache = tmp_path / "empty-cache" / "datasets"
    subset = assets.DATASETS["pacs_subset"]
    assert assets.folder_sha256(cache / "pacs_subset") == subset.folder_sha256
    assert not list(cache.glob(".*.tmp")), "no temporary folder left behind"
    ran = subprocess.run(cmd + ["run", "notebooks/00_start_here.ipynb"], env=env, cwd=ROOT,
                         capture_output=True, text=True)
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]
    assert "ok   00_start_here" in ran.stdout
