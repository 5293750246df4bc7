"""Dependencies: compatible ranges for shared runtimes (Colab), one lock file for the tested set."""

import base64
import hashlib
import json
import re
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import tomllib
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
LOCK = {
    line.split("==")[0].lower(): line.split("==")[1]
    for line in (ROOT / "requirements.lock").read_text().splitlines()
    if line and not line.startswith("#")
}


def test_ranges_have_a_tested_floor_and_the_lock_sits_inside_them():
    for spec in PROJECT["dependencies"]:
        req = Requirement(spec)
        floors = [s for s in req.specifier if s.operator == ">="]
        assert floors and any(s.operator == "<" for s in req.specifier), spec
        assert req.specifier.contains(LOCK[req.name.lower()]), (spec, LOCK[req.name.lower()])
    for spec in PROJECT["optional-dependencies"]["dev"]:
        req = Requirement(spec)
        assert req.specifier.contains(LOCK[req.name.lower()]), (spec, LOCK[req.name.lower()])


def test_every_install_path_uses_the_lock():
    lines = (ROOT / "requirements.lock").read_text().splitlines()
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[^=\s]+", x) for x in lines
               if x and not x.startswith("#")), "every locked package pinned with =="
    assert "-r requirements.lock" in (ROOT / "environment.yml").read_text()
    assert "-r requirements.lock" in (ROOT / ".ci" / "run").read_text()
    assert '"requirements.lock"' in (ROOT / "tlutils" / "course" / "cli.py").read_text()
    torch = (ROOT / "requirements-torch.lock").read_text().splitlines()
    assert "torch==2.13.0" in torch and all(
        re.fullmatch(r"[A-Za-z0-9_.\-]+==[^=\s+]+", x) for x in torch if x and not x.startswith("#")
    ), "PyTorch pinned without a local build label, so each platform's index picks its build"
    assert not {x.split("==")[0].lower() for x in torch if "==" in x} & set(LOCK), "no overlap"
    for installer in [ROOT / "environment.yml", ROOT / ".ci" / "run",
                      ROOT / "tlutils" / "course" / "cli.py"]:
        assert "requirements-torch.lock" in installer.read_text(), installer


def _stub(site: Path, name: str, version: str, requires: list[str] = ()) -> None:
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    meta = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    (info / "METADATA").write_text("\n".join(meta + [f"Requires-Dist: {r}" for r in requires]))
    (info / "INSTALLER").write_text("pip\n")
    (info / "RECORD").write_text("")


def _course_wheel(folder: Path) -> None:
    """A wheel with the course's metadata only: what pip resolves for the Colab cell."""
    meta = "\n".join(["Metadata-Version: 2.1", f"Name: {PROJECT['name']}",
                      f"Version: {PROJECT['version']}"]
                     + [f"Requires-Dist: {r}" for r in PROJECT["dependencies"]]) + "\n"
    wheel = "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    info = f"tlutils-{PROJECT['version']}.dist-info"
    files = {f"{info}/METADATA": meta, f"{info}/WHEEL": wheel}
    digest = {n: base64.urlsafe_b64encode(hashlib.sha256(t.encode()).digest()).decode()
              for n, t in files.items()}
    record = [f"{n},sha256={digest[n].rstrip('=')},{len(t)}" for n, t in files.items()]
    files[f"{info}/RECORD"] = "\n".join(record + [f"{info}/RECORD,,"]) + "\n"
    with zipfile.ZipFile(folder / f"tlutils-{PROJECT['version']}-py3-none-any.whl", "w") as z:
        for name, text in files.items():
            z.writestr(name, text)


def test_the_colab_install_changes_nothing_colab_already_has(tmp_path):
    """pip's own resolver, offline: the course on top of a Colab-like package set."""
    venv.create(tmp_path / "colab", with_pip=False)
    site = next((tmp_path / "colab" / "lib").glob("python3*/site-packages"))
    snapshot = [line.split("==") for line in (ROOT / "tests" / "colab_like_packages.txt")
                .read_text().splitlines() if line and not line.startswith("#")]
    for name, version in snapshot:
        _stub(site, name, version)
    (tmp_path / "wheels").mkdir()
    _course_wheel(tmp_path / "wheels")
    report = tmp_path / "report.json"
    cmd = [sys.executable, "-m", "pip", "--python", str(tmp_path / "colab" / "bin" / "python"),
           "install", "--dry-run", "--no-index", "--find-links", str(tmp_path / "wheels"),
           "--report", str(report), "-q", "tlutils"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    installs = [i["metadata"]["name"] for i in json.loads(report.read_text())["install"]]
    assert installs == ["tlutils"], f"pip would also install or replace {installs[1:]}"
