"""The workshop kit (tlutils.course.kit): built from local wheels and a partial cache, then
installed into a fresh virtual environment with --no-index, and notebook 00 run from it.

The heavy packages (TensorFlow, Keras, JupyterLab) would make a kit of about a gigabyte;
the test's kit holds the wheel of a small package it builds itself, plus the course's own
wheel (built from this checkout; its build needs setuptools>=77, which pip takes from its
cache or the package index, as for any `pip install .`). The fresh environment sees this
environment's packages through a path file, so only what the kit installs is new.
"""

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import nbformat

from tlutils.course import assets, kit, profiles

ROOT = Path(__file__).resolve().parent.parent


def _probe_wheel(tmp_path: Path) -> Path:
    """A wheelhouse holding one small package this test controls."""
    src = tmp_path / "probe"
    (src / "tlu_kit_probe").mkdir(parents=True)
    (src / "tlu_kit_probe" / "__init__.py").write_text("ANSWER = 42\n")
    (src / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "tlu-kit-probe"\nversion = "0.1.0"\n')
    house = tmp_path / "wheelhouse"
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                           "--no-build-isolation", "-w", str(house), str(src)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return house


def test_profile_assets_cover_what_the_notebooks_require():
    smoke = profiles.PROFILES["smoke"]
    wanted = kit.profile_assets(["smoke"])
    assert smoke.dataset in wanted["datasets"] and "pacs_subset" in wanted["datasets"]
    for backbone in [smoke.backbone, "squeezenet_11"]:  # 12 compares the two
        assert assets.backbone_weights_name(backbone, smoke.image_size) in wanted["weights"]
    gpu = kit.profile_assets(["gpu"])["weights"]
    gpu_size = profiles.PROFILES["gpu"].image_size
    assert assets.backbone_weights_name("efficientnet_b0", gpu_size) in gpu
    assert set(wanted["files"]) == set(assets.FILES)
    assert set(wanted["models"]) == set(assets.MODELS)


def test_the_kit_needs_no_lesson_module():
    """Course machinery knows nothing of the lessons: listing a profile's assets imports no
    lesson helper (tlutils.backbones, say)."""
    code = ("import sys; from tlutils.course import kit; kit.profile_assets(['smoke', 'gpu']); "
            "lessons = [m for m in sys.modules if m.startswith('tlutils.')"
            " and not m.startswith('tlutils.course')]; print(lessons); assert not lessons")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_kit_installs_offline_and_runs_notebook_00(tmp_path, monkeypatch):
    p = profiles.PROFILES["smoke"]
    weights = assets.backbone_weights_name(p.backbone, p.image_size)
    house = _probe_wheel(tmp_path)
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("tlu-kit-probe==0.1.0\nno-such-package-tlu==1.0\n")
    # a source cache holding only notebook 00's assets, so the kit must list the rest
    real = Path(os.environ["KERAS_HOME"])  # the suite's filled cache (conftest, .ci/run)
    source = tmp_path / "source-cache"
    monkeypatch.setenv("KERAS_HOME", str(source))
    kit._place(real / "datasets" / assets.DATASETS[p.dataset].path,
               source / "datasets" / assets.DATASETS[p.dataset].path)
    kit._place(real / "models" / weights, source / "models" / weights)
    only = {"datasets": [p.dataset], "weights": [weights], "files": ["usps.h5"]}
    out, missing = kit.build_kit(tmp_path / "kit", ["smoke"], requirements=requirements,
                                 pip_args=["--no-index", "--find-links", str(house)], only=only)

    assert any(m.startswith("no-such-package-tlu==1.0 for this machine: pip said")
               for m in missing)
    assert any(m.startswith("usps.h5: Could not download usps.h5") for m in missing), missing
    readme = (out / "README.md").read_text()
    assert "pip install --no-index --find-links wheels" in readme and "TLU_MIRROR" in readme
    assert all(m in readme for m in missing), "the room's README lists what the kit lacks"
    assert (out / "mirror" / weights).is_file()
    assert (out / "notebooks" / "00_start_here.ipynb").exists()

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "course-env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    assert (out / "requirements.lock").read_text() == "tlu-kit-probe==0.1.0\n"
    # --ignore-installed: this environment's editable tlutils shows through the path file
    for args in (["-r", str(out / "requirements.lock")],
                 ["--no-deps", "--ignore-installed", "tlutils"]):
        done = subprocess.run([py, "-m", "pip", "install", "-q", "--no-index", "--find-links",
                               str(out / "wheels"), *args], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    where = subprocess.run([py, "-c", "import tlutils, tlu_kit_probe; print(tlutils.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path, check=True)
    assert where.stdout.startswith(str(venv)), "tlutils must come from the kit's wheel"

    cache = tmp_path / "laptop-cache"  # a laptop copies the kit's cache to a writable place
    kit._place(out / "cache", cache)
    env = {**os.environ, "KERAS_HOME": str(cache), "TLU_BUILD_DIR": str(tmp_path / "build"),
           "TLU_MIRROR": ""}
    notebook = out / "notebooks" / "00_start_here.ipynb"
    done = subprocess.run([py, "-m", "tlutils", "run", str(notebook), "--profile", "smoke"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    build = tmp_path / "build" / "smoke"
    executed = nbformat.read(build / "notebooks" / "00_start_here.ipynb", 4)
    assert not [o for c in executed.cells if c.cell_type == "code" for o in c.outputs
                if o.get("output_type") == "error"]
    metrics = json.loads((build / "metrics" / "00_start_here.json").read_text())
    assert metrics["profile"] == "smoke"
