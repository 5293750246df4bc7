"""tlutils.report and tlutils.run: metrics files, the report, parameter injection, the runner."""

import json
import os

import nbformat
import pytest

from tlutils import report, run


def test_record_and_aggregate(tmp_path, monkeypatch):
    monkeypatch.setenv("TLU_BUILD_DIR", str(tmp_path))
    path = report.record("01_x", "smoke", {"acc": 0.91234, "n": 3, "table": [{"k": 1, "acc": 0.5}]},
                         wall_s=12.345)
    payload = json.loads(path.read_text())
    assert path == tmp_path / "smoke" / "metrics" / "01_x.json"
    assert set(payload) == {"notebook", "profile", "backend", "device", "wall_s", "metrics"}
    assert payload["wall_s"] == 12.3
    md, js = report.aggregate("smoke")
    text = md.read_text()
    assert "| 01_x | 12.3 |" in text and "acc=0.912" in text and "| 1 | 0.5 |" in text
    assert json.loads(js.read_text())[0]["metrics"]["n"] == 3


def test_report_without_metrics_says_which_profile_has_them(tmp_path, monkeypatch):
    monkeypatch.setenv("TLU_BUILD_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="tlutils run --profile cpu"):
        report.aggregate("cpu")
    report.record("01_x", "smoke", {"acc": 0.9}, wall_s=1.0)
    with pytest.raises(FileNotFoundError, match="metrics exist for smoke: pass --profile smoke"):
        report.aggregate("cpu")
    assert not (tmp_path / "cpu").exists(), "a failed report must not create folders"


def test_parse_params():
    assert run.parse_params(["EPOCHS=3", "DATA_DIR=/x/y", "SHOTS=[1, 2]", "LR=1e-3"]) == {
        "EPOCHS": 3, "DATA_DIR": "/x/y", "SHOTS": [1, 2], "LR": 0.001}
    with pytest.raises(ValueError, match="NAME=VALUE"):
        run.parse_params(["oops"])


def _notebook(path, body):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import os\nX = 1", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, path)
    return path


def test_execute_injects_parameters_and_profile(tmp_path, monkeypatch):
    monkeypatch.setenv("TLU_BUILD_DIR", str(tmp_path / "build"))
    nb = _notebook(tmp_path / "t.ipynb",
                   "assert X == 5, X\nassert os.environ['TLU_PROFILE'] == 'cpu'\nprint('ran', X)")
    out, error = run.execute(nb, "cpu", {"X": 5})
    assert error is None
    executed = nbformat.read(out, as_version=4)
    assert executed.cells[1].metadata["tags"] == ["injected-parameters"]
    assert "ran 5" in executed.cells[2].outputs[0]["text"]
    out, error = run.execute(nb, "cpu", {"X": 2})
    assert error is not None and "AssertionError" in error
    assert os.environ.get("TLU_PROFILE") != "cpu", "the profile must not leak into this process"


def test_inject_needs_a_parameters_cell():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    with pytest.raises(ValueError, match="parameters"):
        run.inject_parameters(nb, {"x": 2})


def test_precision_policy_per_gpu_generation():
    from tlutils import profiles

    gpu, smoke = profiles.PROFILES["gpu"], profiles.PROFILES["smoke"]
    assert profiles.precision_policy(gpu, (7, 5)) == "mixed_float16"  # T4
    assert profiles.precision_policy(gpu, (8, 0)) == "mixed_bfloat16"  # A100
    assert profiles.precision_policy(gpu, (9, 0)) == "mixed_bfloat16"  # H100
    assert profiles.precision_policy(gpu, None) == "float32"  # no GPU
    assert profiles.precision_policy(smoke, (9, 0)) == "float32"
    assert profiles.configure("smoke") == "float32"


def test_run_all_with_nothing_recorded_reports_the_failure_without_a_traceback(
        tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TLU_BUILD_DIR", str(tmp_path / "build"))
    nb = _notebook(tmp_path / "t.ipynb", "raise ValueError('broken on purpose')")
    assert run.run_all([nb], "cpu", {}) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "broken on purpose" in out and "No report: No metrics recorded" in out
