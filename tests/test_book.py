"""The course as a book (tlutils.course.book): built from a synthetic run in a temporary
folder (the index, the ledger, a stale or missing run, the swap that keeps the last good book,
the runner's last line, the workshop kit), from nbval's executed copies (conftest.py), and the
real run's book loaded in headless Chromium after the notebooks."""

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import nbformat
import pytest

from tlutils.course import book, kit

ROOT = Path(__file__).resolve().parent.parent
BADGE = ("[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
         "(https://colab.research.google.com/github/tl-course/transfer-learning-keras/blob/main/"
         "notebooks/{name}.ipynb)")
PNG = base64.b64encode(bytes.fromhex(  # a 1x1 white PNG
    "89504e470d0a1a0a0000000d49484452000000010000000108020000009077"
    "53de0000000c4944415408d763f8ffff3f0005fe02fea7d6a4380000000049454e44ae426082")).decode()
CLAIMS = [
    {"id": "fe", "text": "Frozen features beat the same network from scratch", "arm": "fe",
     "value": 0.87, "against": {"scratch": {"value": 0.71, "kind": "no_transfer"},
                                "majority": {"value": 0.54, "kind": "trivial"}},
     "gap": 0.16, "se": 0.03, "n": 3, "verdict": "better", "expect": ["better"], "held": True},
    {"id": "aug", "text": "Augmentation helps the frozen head", "arm": "aug", "value": 0.86,
     "against": {"plain": {"value": 0.87, "kind": "no_method"}}, "gap": -0.01, "se": 0.02,
     "n": 3, "verdict": "not clearly different", "expect": ["better"], "held": False},
    {"id": "speed", "text": "Caching is faster", "arm": "cached", "value": 4.5,
     "against": {"in loop": {"value": 20.5, "kind": "budget_matched"}}, "gap": -16.0,
     "se": 1.0, "n": 3, "verdict": "worse", "expect": None, "held": None},
]


def _write_notebook(path: Path, title: str, subtitle: str, cells: list) -> None:
    intro = f"# {title}\n\n{subtitle}\n\n{BADGE.format(name=path.stem)}"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(intro), *cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def _code(source: str, *outputs) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell(source, outputs=list(outputs), execution_count=1)


LESSONS = {
    "01_alpha": ("01 · Alpha: reuse a backbone", "Train a head on frozen features.", [
        nbformat.v4.new_markdown_cell("Next: [beta](02_beta.ipynb), [numbers]"
                                      "(../docs/performance.md), [start](00_start_here.ipynb)."
                                      "\n\n$$L = \\alpha\\,\\mathrm{CE}(y, s)$$"),
        _code("print('hello')", nbformat.v4.new_output("stream", name="stdout", text="hello\n")),
        _code("x = " + "'a long line of code that must wrap, not widen the page' + " * 12 + "''"),
        _code("show()", nbformat.v4.new_output("display_data", data={"image/png": PNG,
                                                                     "text/plain": "<Figure>"})),
    ]),
    "02_beta": ("02 · Beta: fine-tune", "Unfreeze the top blocks.", [_code("y = 2")]),
    "03_gamma": ("03 · Gamma: a failure", "This one broke.", [_code("1/0", nbformat.v4.new_output(
        "error", ename="ZeroDivisionError", evalue="division by zero", traceback=[]))]),
}


def _metrics(build: Path, name: str, metrics: dict, wall_s: float) -> None:
    payload = {"notebook": name, "profile": "smoke", "backend": "tensorflow",
               "device": "CPU (2 cores)", "wall_s": wall_s, "metrics": metrics}
    (build / "smoke" / "metrics").mkdir(parents=True, exist_ok=True)
    (build / "smoke" / "metrics" / f"{name}.json").write_text(json.dumps(payload))


@pytest.fixture
def run(tmp_path, monkeypatch) -> dict[str, Path]:
    """A run of profile smoke in tmp_path/build: three executed notebooks (01 with a claims
    ledger, 02 without, 03 failed and without metrics) of the four in tmp_path/notebooks."""
    build, sources = tmp_path / "build", tmp_path / "notebooks"
    monkeypatch.setenv("TLU_BUILD_DIR", str(build))
    for name, (title, subtitle, cells) in {**LESSONS, "04_delta": ("04 · Delta", "Not run.",
                                                                    [])}.items():
        _write_notebook(sources / f"{name}.ipynb", title, subtitle, [])
        os.utime(sources / f"{name}.ipynb", (time.time() - 60, time.time() - 60))
        if name != "04_delta":
            _write_notebook(build / "smoke" / "notebooks" / f"{name}.ipynb", title, subtitle,
                            cells)
    _metrics(build, "01_alpha", {"fe_acc": 0.8692, "claims": CLAIMS}, 104.7)
    _metrics(build, "02_beta", {"ft_acc": 0.91}, 130.0)
    return {"build": build, "sources": sources, "book": build / "smoke" / "book"}


def test_the_index_lists_each_lesson_with_its_time_headline_and_claims(run):
    index, old = book.build_book("smoke", sources=run["sources"])
    assert index == run["book"] / "index.html" and old == []
    page = index.read_text()
    for text in ("01 · Alpha: reuse a backbone", "Train a head on frozen features.", "105 s",
                 "fe_acc=0.869", "1 of 2", "02 · Beta: fine-tune", "2.2 min", "ft_acc=0.910",
                 "no ledger yet", "03 · Gamma: a failure", "failed in this run",
                 "no metrics recorded", "Not in this run: 04_delta.", "<dd>smoke</dd>",
                 "<dd>tensorflow</dd>", "<dd>CPU (2 cores)</dd>", "<dt>commit</dt>"):
        assert text in page, text
    assert re.findall(r'<a href="(\d\d_\w+\.html)">', page) == [
        "01_alpha.html", "02_beta.html", "03_gamma.html"], "the lessons in order"


def test_a_lesson_page_has_its_outputs_badge_links_and_claims_ledger(run):
    book.build_book("smoke", sources=run["sources"])
    alpha = (run["book"] / "01_alpha.html").read_text()
    ledger = alpha[alpha.index('id="claims-ledger"'):]
    for text in ("Frozen features beat the same network from scratch", "fe 0.870",
                 "scratch 0.710", "(no transfer)", "majority 0.540", "(trivial)",
                 "+0.160 ± 0.030 (3 pairs)", "better", "held", "Augmentation helps",
                 "did not hold (expected better)", "not clearly different", "(budget matched)",
                 "reported, not asserted", "-16.000 ± 1.000 (3 pairs)"):
        assert text in ledger, text
    assert "hello" in alpha and f"data:image/png;base64,{PNG}" in alpha
    assert 'src="_static/colab-badge.svg"' in alpha and "colab-badge.svg\"" in alpha
    assert 'href="https://colab.research.google.com/github/tl-course/' in alpha
    assert 'href="02_beta.html"' in alpha and 'rel="next"' in alpha and 'rel="prev"' not in alpha
    assert ('href="https://github.com/tl-course/transfer-learning-keras/blob/main/docs/'
            'performance.md"') in alpha
    assert ('href="https://github.com/tl-course/transfer-learning-keras/blob/main/notebooks/'
            '00_start_here.ipynb"') in alpha, "a notebook not in the book links to GitHub"
    assert 'highlight hl-ipython3"><pre>' in alpha, "code is highlighted"
    beta = (run["book"] / "02_beta.html").read_text()
    assert "This notebook records no claims ledger yet." in beta and 'rel="prev"' in beta
    gamma = (run["book"] / "03_gamma.html").read_text()
    assert "No metrics were recorded for this notebook in this run" in gamma
    for page in run["book"].glob("*.html"):
        text = page.read_text()
        assert "<script src=\"http" not in text and "cdn" not in text.lower(), page.name
        assert 'rel="stylesheet" href="http' not in text, page.name


def test_a_copy_of_a_notebook_the_course_no_longer_has_is_left_out(run):
    """After a notebook is renamed or split, its last executed copy is no lesson (#41)."""
    _write_notebook(run["build"] / "smoke" / "notebooks" / "05_old_name.ipynb", "05 · Old",
                    "Renamed since.", [_code("z = 1")])
    index, old = book.build_book("smoke", sources=run["sources"])
    assert old == [] and not (run["book"] / "05_old_name.html").exists()
    assert ("Left out: 05_old_name, executed copies of notebooks the course no longer has."
            in index.read_text())
    assert (run["build"] / "smoke" / "notebooks" / "05_old_name.ipynb").exists(), "not deleted"


def test_a_stale_or_missing_run_is_one_sentence_naming_the_command(run, capsys):
    from tlutils.course.cli import main

    os.utime(run["sources"] / "02_beta.ipynb")  # edited after the run
    with pytest.raises(book.BookError) as err:
        book.build_book("smoke", sources=run["sources"])
    assert str(err.value) == (
        f"The executed copy of 02_beta in {run['build'] / 'smoke' / 'notebooks'} is older "
        "than the notebook in notebooks/: run `python3 -m tlutils run --profile smoke` to run "
        "it again.")
    assert not run["book"].exists(), "nothing built"
    index, old = book.build_book("smoke", if_stale="leave out", sources=run["sources"])
    assert old == ["02_beta"] and not (run["book"] / "02_beta.html").exists()
    assert "Left out: 02_beta, executed before their notebook last changed" in index.read_text()
    assert main(["book", "--profile", "cpu"]) == 2
    said = capsys.readouterr().err
    assert said == (f"Error: No executed notebooks for profile 'cpu' in {run['build'] / 'cpu'}"
                    "/notebooks; runs exist for smoke: pass --profile smoke.\n")
    shutil.rmtree(run["build"] / "smoke" / "notebooks")
    with pytest.raises(book.BookError, match=r"run `python3 -m tlutils run --profile smoke` "
                                             r"first\.$"):
        book.build_book("smoke", sources=run["sources"])


def test_a_failed_build_keeps_the_last_book_and_never_deletes_files_it_did_not_write(
        run, monkeypatch):
    book.build_book("smoke", sources=run["sources"])
    before = (run["book"] / "index.html").read_text()

    def broken(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(book, "notebook_html", broken)
    with pytest.raises(OSError, match="No space left"):
        book.build_book("smoke", sources=run["sources"])
    assert (run["book"] / "index.html").read_text() == before
    assert sorted(p.name for p in run["book"].parent.iterdir()) == [
        "book", "metrics", "notebooks"], "no temporary folder left"
    (run["book"] / "my-notes.txt").write_text("mine")
    with pytest.raises(book.BookError, match=r"holds files the book did not write "
                                             r"\(my-notes.txt\)"):
        book.build_book("smoke", sources=run["sources"])
    assert (run["book"] / "my-notes.txt").read_text() == "mine"


def test_the_run_ends_by_naming_the_book_and_a_broken_book_hides_nothing(run, monkeypatch,
                                                                         capsys):
    from tlutils.course import run as runner

    nb = run["sources"] / "05_epsilon.ipynb"  # a notebook of the course: the book keeps it
    nbformat.write(nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("X = 1", metadata={"tags": ["parameters"]})],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}}), nb)
    monkeypatch.setattr(book, "source_dir", lambda: run["sources"])
    assert runner.run_all([nb], "smoke", {}) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == f"Book: {run['book'] / 'index.html'}"
    assert (run["book"] / "05_epsilon.html").exists()

    def broken(*args, **kwargs):
        raise RuntimeError("the disk is gone")

    monkeypatch.setattr(book, "build_book", broken)
    executed = run["build"] / "smoke" / "notebooks" / nb.name
    monkeypatch.setattr(runner, "execute", lambda *args, **kwargs: (executed, None))
    assert runner.run_all([nb], "smoke", {}) == 0
    out = capsys.readouterr().out
    assert "ok   05_epsilon" in out
    assert out.strip().splitlines()[-1] == "No book: RuntimeError: the disk is gone"


def test_the_workshop_kit_carries_each_profiles_book_or_says_why_not(run, tmp_path):
    dest = tmp_path / "kit"
    missing = kit.copy_books(["smoke", "cpu"], dest, sources=run["sources"])
    assert (dest / "book" / "smoke" / "index.html").is_file(), "built from the run"
    assert (dest / "book" / "smoke" / "_static" / "book.css").is_file()
    assert missing == [f"the book of profile cpu: No executed notebooks for profile 'cpu' in "
                       f"{run['build'] / 'cpu' / 'notebooks'}; runs exist for smoke: pass "
                       "--profile smoke."]
    built = (run["book"] / "index.html").stat().st_mtime_ns
    kit.copy_books(["smoke"], tmp_path / "kit2", sources=run["sources"])
    assert (run["book"] / "index.html").stat().st_mtime_ns == built, "a current book is reused"
    with pytest.raises(shutil.Error, match="exists already"):  # the kit writes only new files
        kit.copy_books(["smoke"], dest, sources=run["sources"])
    assert "book/<profile>/index.html" in kit.ROOM_README


def test_nbval_writes_each_executed_notebook_with_its_last_display(tmp_path):
    """conftest.py's NotebookCells: nbval saves no executed copy; the book needs one."""
    cells = ["print('first')",
             "h = display('step 0 of 3', display_id=True)\nfor i in range(1, 4):\n"
             "    h.update(f'step {i} of 3')",
             "1 + 1"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, tmp_path / "learner.ipynb")
    env = {**os.environ, "TLU_BUILD_DIR": str(tmp_path / "build"), "TLU_PROFILE": "smoke"}
    anchor = "tests/test_exercises.py::test_the_snippet_rule_catches_a_missing_name"
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "--nbval-lax", "-p",
                           "no:cacheprovider", anchor, str(tmp_path / "learner.ipynb")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert "4 passed" in done.stdout, done.stdout
    executed = nbformat.read(tmp_path / "build" / "smoke" / "notebooks" / "learner.ipynb", 4)
    first, shown, result = executed.cells
    assert first.outputs[0]["text"] == "first\n" and first.execution_count == 1
    assert [o["data"]["text/plain"] for o in shown.outputs] == ["'step 3 of 3'"]
    assert result.outputs[0]["data"]["text/plain"] == "2" and result.execution_count == 3


# The real run's book in headless Chromium, over the Chrome DevTools protocol


def chromium() -> str | None:
    return next(filter(None, map(shutil.which, ("chromium", "chromium-browser",
                                                "google-chrome"))), None)


class Tab:
    """One Chromium tab driven over the DevTools protocol; `events` collects what it says."""

    def __init__(self, ws_url: str):
        import websocket  # websocket-client

        self.ws = websocket.create_connection(ws_url, timeout=60, suppress_origin=True)
        self.events: list[dict] = []
        self.last_id = 0

    def call(self, method: str, **params) -> dict:
        self.last_id += 1
        self.ws.send(json.dumps({"id": self.last_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.last_id:
                assert "error" not in msg, (method, msg["error"])
                return msg["result"]
            self.events.append(msg)

    def wait_for(self, event: str) -> None:
        while not any(e.get("method") == event for e in self.events):
            self.events.append(json.loads(self.ws.recv()))

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, awaitPromise=True,
                           returnByValue=True)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"]["value"]

    def screenshot(self, path: Path) -> Path:
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", format="png")[
            "data"]))
        return path


# What each page shows the test: its images once decoded, its links, its ids, its lessons.
PAGE_FACTS = """(async () => {
  const images = Array.from(document.images);
  await Promise.all(images.map(i => i.decode().catch(() => null)));
  return {
    images: images.filter(i => !(i.naturalWidth > 0)).map(i => i.src.slice(0, 80)),
    n_images: images.length,
    links: Array.from(document.querySelectorAll("a[href]"), a => a.href),
    ids: Array.from(document.querySelectorAll("[id]"), e => e.id),
    lessons: Array.from(document.querySelectorAll("table.lessons a"),
                        a => a.getAttribute("href")),
    overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
    math: document.querySelectorAll(".katex").length,
    ledger: document.querySelector("table.ledger") !== null,
  };
})()"""


def problems(events: list[dict], base: str) -> list[str]:
    """Console errors, uncaught exceptions, failed requests and requests that leave base."""
    found = []
    for e in events:
        method, p = e.get("method"), e.get("params", {})
        if method == "Runtime.consoleAPICalled" and p["type"] in ("error", "assert"):
            found.append(f"console: {[a.get('value') for a in p['args']]}")
        elif method == "Runtime.exceptionThrown":
            found.append(f"exception: {p['exceptionDetails'].get('text')}")
        elif method == "Log.entryAdded" and p["entry"]["level"] == "error":
            found.append(f"log: {p['entry']['text']}")
        elif method == "Network.loadingFailed":
            found.append(f"failed request: {p['errorText']}")
        elif method == "Network.responseReceived" and p["response"]["status"] >= 400:
            found.append(f"HTTP {p['response']['status']}: {p['response']['url']}")
        elif method == "Network.requestWillBeSent" and not p["request"]["url"].startswith(
                (base, "data:")):
            found.append(f"request outside the book: {p['request']['url']}")
    return found


def serve(folder: Path) -> ThreadingHTTPServer:
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def open_chromium(exe: str, profile_dir: Path) -> tuple[subprocess.Popen, Tab]:
    """Headless Chromium with a DevTools port, and its first tab."""
    proc = subprocess.Popen([exe, "--headless", "--no-sandbox", "--disable-gpu",
                             "--disable-dev-shm-usage", "--no-first-run",
                             "--disable-background-networking", "--disable-component-update",
                             "--remote-debugging-port=0", f"--user-data-dir={profile_dir}",
                             "--window-size=1280,900", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port_file, deadline = profile_dir / "DevToolsActivePort", time.monotonic() + 60
    while not port_file.exists() or not port_file.read_text().strip():
        assert proc.poll() is None and time.monotonic() < deadline, "Chromium did not start"
        time.sleep(0.1)
    port = port_file.read_text().split()[0]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as r:
        page = next(t for t in json.load(r) if t["type"] == "page")
    tab = Tab(page["webSocketDebuggerUrl"])
    for domain in ("Page", "Runtime", "Log", "Network"):
        tab.call(f"{domain}.enable")
    return proc, tab


def visit(tab: Tab, url: str) -> dict:
    """Load url; its PAGE_FACTS and the problems its loading reported."""
    tab.events.clear()
    tab.call("Page.navigate", url=url)
    tab.wait_for("Page.loadEventFired")
    facts = tab.evaluate(PAGE_FACTS)
    facts["problems"] = problems(tab.events, url.rsplit("/", 1)[0] + "/")
    return facts


def broken_links(seen: dict[str, dict], base: str, folder: Path) -> list[str]:
    """Links inside the book whose file is missing or whose #id is not on its page."""
    bad = []
    for page, facts in seen.items():
        for link in facts["links"]:
            if not link.startswith(base):
                continue
            target, _, anchor = link[len(base):].partition("#")
            if not (folder / (target or "index.html")).is_file():
                bad.append(f"{page} -> {target}")
            elif anchor and anchor not in seen.get(target or "index.html", {"ids": [anchor]})[
                    "ids"]:
                bad.append(f"{page} -> {target}#{anchor}")
    return bad


def browse(exe: str, folder: Path, out: Path) -> tuple[dict[str, dict], dict[str, Path]]:
    """Serve the book on 127.0.0.1, load its index and every lesson it lists in Chromium;
    each page's facts, and screenshots: the index, the first lesson with plots, the first
    claims ledger."""
    server = serve(folder)
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    proc, tab = open_chromium(exe, out / "chromium-profile")
    try:
        seen = {"index.html": visit(tab, base + "index.html")}
        shots = {"index": tab.screenshot(out / "index.png")}
        for page in seen["index.html"]["lessons"]:
            seen[page] = visit(tab, base + page)
            if "lesson" not in shots and seen[page]["n_images"] > 1:
                shots["lesson"] = tab.screenshot(out / f"{Path(page).stem}.png")
            if "ledger" not in shots and seen[page]["ledger"]:
                tab.evaluate('document.getElementById("claims-ledger").scrollIntoView()')
                shots["ledger"] = tab.screenshot(out / f"{Path(page).stem}-ledger.png")
        seen["index.html"]["broken"] = broken_links(seen, base, folder)
    finally:
        tab.ws.close()
        proc.terminate()
        proc.wait(30)
        server.shutdown()
        shutil.rmtree(out / "chromium-profile", ignore_errors=True)
    return seen, shots


@pytest.mark.after_notebooks
def test_the_book_in_a_browser(request):
    """Runs after nbval has executed the notebooks (conftest orders it last): builds the book
    from build/<profile>/notebooks and loads every page in headless Chromium."""
    exe, profile = chromium(), os.environ["TLU_PROFILE"]
    if not exe:
        pytest.skip("Chromium is not installed: apt-get install chromium (.ci/run does)")
    if not book.executed_copies(profile):
        pytest.skip(f"no executed notebooks in build/{profile}/notebooks: run the notebooks")
    ran = {Path(str(i.parent.fspath)).stem for i in request.session.items if hasattr(i, "cell")}
    course = {p.stem for p in book.source_dir().glob("*.ipynb")}
    since = float(os.environ["TLU_TEST_START"])
    fresh = {p.stem for p in book.executed_copies(profile) if p.stat().st_mtime >= since}
    assert ran <= fresh, f"nbval ran {sorted(ran - fresh)} but wrote no executed copy"
    start = time.perf_counter()  # CI runs every notebook: then the book must be whole
    index, _ = book.build_book(profile, if_stale="refuse" if ran >= course else "keep")
    built, folder = time.perf_counter() - start, index.parent
    out = folder.parent / "book-test"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    seen, shots = browse(exe, folder, out)
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6
    print(f"book: built in {built:.1f} s ({size:.1f} MB), {len(seen)} pages checked in "
          f"{time.perf_counter() - start - built:.1f} s; screenshots: "
          f"{', '.join(map(str, shots.values()))}")
    lessons = seen["index.html"]["lessons"]
    assert lessons == [f"{p.stem}.html" for p in book.executed_copies(profile)], lessons
    if ran >= course:
        assert {Path(p).stem for p in lessons} == course, "every notebook of the run"
    assert {p: f["problems"] for p, f in seen.items() if f["problems"]} == {}
    assert {p: f["images"] for p, f in seen.items() if f["images"]} == {}, "undecoded images"
    # every lesson that shows a figure has it on its page, besides the Colab badge: a kernel
    # without an inline backend would run plt.show() and leave nothing to see
    shows = [p for p in lessons if "plt.show()" in
             (book.source_dir() / f"{Path(p).stem}.ipynb").read_text(encoding="utf-8")]
    assert [p for p in shows if seen[p]["n_images"] < 2] == [], "figures missing from the book"
    assert seen["index.html"]["broken"] == [], "links inside the book that lead nowhere"
    assert {p: f["overflow"] for p, f in seen.items() if f["overflow"] > 0} == {}, "too wide"
    if (folder / "_static" / "katex").is_dir():  # each formula typeset
        notebooks = {p: nbformat.read(folder.parent / "notebooks" / f"{Path(p).stem}.ipynb", 4)
                     for p in lessons}
        assert [p for p in lessons if book.has_math(notebooks[p]) and not seen[p]["math"]] == []
