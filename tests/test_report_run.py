"""tlutils.course.report and run: metrics files, the report, parameter injection, the runner."""

import json
import os
import re
from pathlib import Path

import nbformat
import pytest

from tlutils.course import report, run

ROOT = Path(__file__).resolve().parent.parent

RECORDS_GOOD = "from tlutils.course import report\nreport.record('good', 'cpu', {'acc': 0.9}, 1.0)"


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


def test_the_report_leaves_out_metrics_of_notebooks_the_course_no_longer_has(tmp_path,
                                                                              monkeypatch):
    monkeypatch.setenv("TLU_BUILD_DIR", str(tmp_path / "build"))
    course = tmp_path / "notebooks"
    course.mkdir()
    (course / "01_x.ipynb").write_text("{}")
    report.record("01_x", "smoke", {"acc": 0.9}, wall_s=1.0)
    old = report.record("06_split_since", "smoke", {"acc": 0.8}, wall_s=1.0)
    text = report.aggregate("smoke", sources=course)[0].read_text()
    assert "| 01_x |" in text and "## 06_split_since" not in text
    assert "Left out: 06_split_since, metrics of notebooks the course no longer has" in text
    assert old.exists(), "the report never deletes a metrics file"
    assert "## 06_split_since" in report.aggregate("smoke")[0].read_text(), "no course given"


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


def test_unknown_parameters_are_refused_with_the_valid_names(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TLU_BUILD_DIR", str(tmp_path / "build"))
    nb = _notebook(tmp_path / "t.ipynb", "print(X)")
    with pytest.raises(ValueError, match="Unknown parameter EPOCHS: this notebook's parameters"):
        run.execute(nb, "cpu", {"EPOCHS": 3})
    assert run.run_all([nb], "cpu", {"EPOCHS": 3}) == 1
    assert "FAIL unknown parameter EPOCHS: the parameters are X." in capsys.readouterr().out
    assert not (tmp_path / "build" / "cpu" / "notebooks").exists(), "nothing ran"


def test_a_parameter_of_the_wrong_type_stops_the_run_at_once(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TLU_BUILD_DIR", str(tmp_path / "build"))
    nb = _notebook(tmp_path / "t.ipynb", "raise SystemExit('training would start here')")
    assert run.run_all([nb], "cpu", run.parse_params(["X=abc"])) == 1
    fail = [line for line in capsys.readouterr().out.splitlines() if line.startswith("FAIL")]
    assert "ParameterError: X='abc' is of type str, but this notebook's X is of type int " \
        "(default 1)." in fail[0]
    assert run.checked("LR", 0.001, 1) == 1.0 and isinstance(run.checked("LR", 0.001, 1), float)
    assert run.checked("SHOTS", [2, None], (4,)) == (4,) and run.checked("D", None, "x") == "x"
    with pytest.raises(run.ParameterError, match="is of type bool"):
        run.checked("EPOCHS", 3, True)


def test_relative_paths_mean_where_the_command_was_typed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run.parse_params(["DATA_DIR=photos", "NEW_IMAGE=a/b.jpg", "NAME=photos"]) == {
        "DATA_DIR": str(tmp_path / "photos"), "NEW_IMAGE": str(tmp_path / "a" / "b.jpg"),
        "NAME": "photos"}
    monkeypatch.setenv("TLU_BUILD_DIR", "build")
    monkeypatch.setenv("KERAS_HOME", "my-cache")
    nb = _notebook(tmp_path / "t.ipynb", "print(os.environ['KERAS_HOME'], os.getcwd())")
    out, error = run.execute(nb, "cpu")
    assert error is None and out == tmp_path / "build" / "cpu" / "notebooks" / "t.ipynb"
    printed = nbformat.read(out, as_version=4).cells[1].outputs[0]["text"].split()
    assert printed == [str(tmp_path / "my-cache"), str(tmp_path)]


def test_each_notebook_gets_the_parameters_it_defines(tmp_path, monkeypatch):
    monkeypatch.setenv("TLU_BUILD_DIR", str(tmp_path / "build"))
    a = _notebook(tmp_path / "a.ipynb", "assert X == 7, X")
    b = tmp_path / "b.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("Y = 1", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("assert Y == 1 and 'X' not in globals()")],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}}), b)
    assert run.run_all([a, b], "cpu", {"X": 7}) == 0


def test_inject_needs_a_parameters_cell():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    with pytest.raises(ValueError, match="parameters"):
        run.inject_parameters(nb, {"x": 2})


def test_precision_policy_per_gpu_generation():
    from tlutils.course import profiles

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


def test_log_noise_finds_library_lines_only():
    outputs = [
        {"output_type": "stream", "name": "stderr",
         "text": "WARNING: All log messages before absl::InitializeLog() is called are written to "
                 "STDERR\nvalidation accuracy 0.9\n"},
        {"output_type": "stream", "name": "stderr",
         "text": "WARNING:tensorflow:5 out of the last 11 calls to <function> triggered "
                 "tf.function retracing.\n"},
        {"output_type": "execute_result", "data": {"text/plain": "cudart_stub"}},
    ]
    assert len(run.log_noise(outputs)) == 2
    assert run.log_noise([{"output_type": "stream", "text": "accuracy 0.9\n"}]) == []


def test_compiled_code_stderr_goes_to_the_log_not_the_notebook(tmp_path, monkeypatch):
    monkeypatch.setenv("TLU_BUILD_DIR", str(tmp_path / "build"))
    body = ("import os, sys, warnings\n"
            "os.write(2, b'I0000 cudart_stub.cc:31] Could not find cuda drivers\\n')\n"
            "warnings.warn('a real warning')\n"
            "print('done', file=sys.stderr)")
    out, error = run.execute(_notebook(tmp_path / "t.ipynb", body), "cpu")
    assert error is None
    outputs = [o for c in nbformat.read(out, as_version=4).cells if c.cell_type == "code"
               for o in c.outputs]
    text = "".join(o.get("text", "") for o in outputs)
    assert run.log_noise(outputs) == [] and "cudart_stub" not in text
    assert "a real warning" in text and "done" in text, "Python's own stderr still shows"
    assert "cudart_stub" in (tmp_path / "build" / "cpu" / "logs" / "t.stderr.txt").read_text()


def test_runner_refuses_paths_that_are_not_notebooks_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TLU_BUILD_DIR", str(tmp_path / "build"))
    (tmp_path / "notes.txt").write_text("hello")
    paths = [tmp_path / "missing.ipynb", tmp_path, tmp_path / "notes.txt"]
    assert run.run_all(paths, "cpu", {}) == 3
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"FAIL {tmp_path / 'missing.ipynb'} does not exist.",
                     f"FAIL {tmp_path} is a folder; name the notebooks in it (or none, to run "
                     "them all).",
                     f"FAIL {tmp_path / 'notes.txt'} is not a notebook (.ipynb)."]


def test_failed_notebooks_are_listed_in_the_report_without_colour_codes(tmp_path, monkeypatch,
                                                                       capsys):
    monkeypatch.setenv("TLU_BUILD_DIR", str(tmp_path / "build"))
    good = _notebook(tmp_path / "good.ipynb", RECORDS_GOOD)
    bad = _notebook(tmp_path / "bad.ipynb", "raise ValueError('broken on purpose')")
    assert run.run_all([good, bad], "cpu", {}) == 1
    out = capsys.readouterr().out
    assert "\x1b" not in out, "no terminal colour codes in the recorded error"
    report_md = (tmp_path / "build" / "cpu" / "report.md").read_text()
    assert "| bad |" in report_md and "FAILED: ValueError: broken on purpose" in report_md
    assert "| good |" in report_md and "acc=0.9" in report_md


def test_a_dead_kernel_is_one_line_naming_the_notebook(tmp_path, monkeypatch):
    monkeypatch.setenv("TLU_BUILD_DIR", str(tmp_path / "build"))
    body = "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"
    nb = _notebook(tmp_path / "oom.ipynb", body)
    out, error = run.execute(nb, "cpu")
    assert error.startswith("the kernel died in cell 2 ('import os, signal') of oom.ipynb: "
                            "compiled code crashed"), error


def test_runner_command_line_mistakes_are_one_line(monkeypatch, capsys):
    from tlutils.course.cli import main

    nb = str(run.all_notebooks()[0])
    assert main(["run", nb, "--profile", "smoke", "-p", "oops"]) == 2
    assert capsys.readouterr().err == "Error: Parameters look like NAME=VALUE; got 'oops'.\n"
    monkeypatch.setenv("TLU_PROFILE", "bogus")
    assert main(["run", nb]) == 2
    err = capsys.readouterr().err
    assert err == "Error: Unknown profile 'bogus': choose one of smoke, cpu, gpu.\n"


def test_ctrl_c_names_the_notebook_and_still_writes_the_report(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TLU_BUILD_DIR", str(tmp_path / "build"))
    good = _notebook(tmp_path / "good.ipynb", RECORDS_GOOD)
    slow = _notebook(tmp_path / "slow.ipynb", "print('never reached')")
    real = run.execute

    def interrupted(nb, *args, **kwargs):
        if Path(nb).stem == "slow":
            raise KeyboardInterrupt
        return real(nb, *args, **kwargs)

    monkeypatch.setattr(run, "execute", interrupted)
    assert run.run_all([good, slow], "cpu", {}) == 1
    assert "Interrupted during slow; the report lists what ran." in capsys.readouterr().out
    report_md = (tmp_path / "build" / "cpu" / "report.md").read_text()
    assert "| slow |" in report_md and "FAILED: interrupted (Ctrl-C)" in report_md
    assert "| good |" in report_md


def test_finish_says_this_runs_time_next_to_the_overviews(tmp_path, monkeypatch):
    monkeypatch.setenv("TLU_BUILD_DIR", str(tmp_path))
    line = report.finish("01_feature_extraction", "smoke", {"acc": 0.91234, "n": 3}, wall_s=41.7)
    stated = json.loads((ROOT / "data" / "notebook_times.json").read_text())["notebooks"]
    assert line == (
        "This run took 42 s in the smoke profile (the Overview says about "
        f"{stated['01_feature_extraction']['smoke_s']} s, measured on the course's 2-core CI "
        "machine; machines differ by 1.5x or more). Headline: acc=0.912. Saved for the run report."
    )
    assert str(tmp_path) not in line, "no machine paths in what a learner reads"
    assert (tmp_path / "smoke" / "metrics" / "01_feature_extraction.json").exists()
    assert "3.0 minutes in the gpu profile (the Overview says about" in report.finish(
        "01_feature_extraction", "gpu", {"acc": 0.9}, wall_s=180)


def test_shown_paths_are_relative_to_the_checkout(tmp_path):
    assert report.shown(ROOT / "build" / "smoke" / "export") == "build/smoke/export"
    assert report.shown(tmp_path / "x") == str(tmp_path / "x")


class _Stream:
    """A stdout stand-in that says whether it is a terminal."""

    def __init__(self, tty: bool):
        self.text, self.tty = "", tty

    def write(self, s):
        self.text += s

    def flush(self):
        pass

    def isatty(self):
        return self.tty


def test_progress_names_the_cell_the_time_and_the_stated_time(tmp_path, monkeypatch):
    monkeypatch.setenv("TLU_BUILD_DIR", str(tmp_path / "build"))
    log = _Stream(tty=False)
    nb = _notebook(tmp_path / "t.ipynb", "x = 1\nprint(x)")
    progress = run.Progress("t", 3, 100.0, stream=log, every=0.0)
    assert run.execute(nb, "cpu", progress=progress)[1] is None
    lines = log.text.splitlines()
    assert re.fullmatch(r"  t: cell 1 of 3, \d+ s so far, about \d+ s to go", lines[0]), lines
    assert len(lines) == 2 and "cell 2 of 3" in lines[1]  # one line per cell started
    quiet = _Stream(tty=False)
    run.Progress("t", 3, None, stream=quiet, every=3600).cell_started(cell_index=0)
    assert quiet.text == "", "off a terminal, at most one line per `every` seconds"
    terminal = _Stream(tty=True)
    progress = run.Progress("t", 3, 1.0, stream=terminal)
    progress.start -= 5
    progress.cell_started(cell_index=2)
    progress.done()
    assert terminal.text.startswith("\r  t: cell 3 of 3, 5 s so far, past the stated 1 s")
    assert terminal.text.endswith("\r"), "the progress line is cleared for the result line"


def test_stated_seconds_come_from_notebook_times():
    times = json.loads((ROOT / "data" / "notebook_times.json").read_text())["notebooks"]
    first = sorted(times)[0]
    assert run.stated_seconds(first, "smoke") == times[first]["smoke_s"]
    assert run.stated_seconds(first, "cpu") == 60 * times[first]["cpu_min"]
    assert run.stated_seconds("99_none", "smoke") is None


def test_the_runner_keeps_tensorflow_start_up_lines_out_of_the_terminal(tmp_path):
    import subprocess
    import sys

    nb = _notebook(tmp_path / "t.ipynb", RECORDS_GOOD)
    env = {**os.environ, "TLU_BUILD_DIR": str(tmp_path / "build")}
    done = subprocess.run([sys.executable, "-m", "tlutils", "run", str(nb), "--profile", "cpu"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    said = done.stdout + done.stderr
    noise = [line for line in said.splitlines() if run.LOG_NOISE.search(line)]
    assert noise == [] and "ok   t" in done.stdout, said
    assert done.stderr == "", "nothing at all on stderr for a run that worked"
    assert (tmp_path / "build" / "logs" / "runner.stderr.txt").exists()


def test_progress_of_a_loop_is_one_output_in_a_notebook_and_short_lines_elsewhere(
        tmp_path, monkeypatch, capsys):
    from tlutils import fitting

    assert list(fitting.progress(range(3), "runs", every=3600)) == [0, 1, 2]
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2, "off a notebook and a terminal: the first and last redraw, as lines"
    assert lines[-1].startswith("runs: 3 of 3 |█") and lines[-1].endswith("00:00 to go")
    monkeypatch.setenv("TLU_BUILD_DIR", str(tmp_path / "build"))
    body = ("from tlutils import fitting\n"
            "total = sum(fitting.progress(range(5), 'paired runs'))\nprint(total)")
    out, error = run.execute(_notebook(tmp_path / "t.ipynb", body), "cpu")
    assert error is None, error
    outputs = nbformat.read(out, as_version=4).cells[1].outputs
    shown = [o["data"]["text/plain"] for o in outputs if o.get("output_type") == "display_data"]
    assert len(shown) == 1 and shown[0].startswith("paired runs: 5 of 5 |█"), outputs
    assert outputs[-1]["text"] == "10\n"
