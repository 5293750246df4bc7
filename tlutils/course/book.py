"""The course as a book: `python3 -m tlutils book [--profile P]` turns the executed notebooks
of the last run (build/<P>/notebooks/) into a static HTML site, build/<P>/book/index.html, that
needs no network to build or to read (docs/book.md says how, and why nbconvert).

The index lists the lessons with this run's time, headline and claims held; each lesson page
has every output, highlighted code, the Colab badge, previous and next links and, at its end,
the notebook's claims ledger (tlutils.course.claims). The book is built in a temporary folder
that replaces the last one only when complete, and never over files it did not write.
"""

from __future__ import annotations

import dataclasses
import datetime
import html
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from tlutils.course.report import build_dir, headline, repo_root, shown

MARKER = ".tlutils-book"  # in a book: the files it wrote, one a line
KATEX = Path("/usr/share/javascript/katex")  # Debian's libjs-katex, vendored when installed
TITLE = "Transfer learning with Keras 3, hands on"
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"

if TYPE_CHECKING:
    from nbformat import NotebookNode


class BookError(ValueError):
    """The run cannot make a book; the one sentence says what to run."""


@dataclasses.dataclass
class Lesson:
    """One executed notebook and what the run recorded for it."""

    name: str  # the notebook's stem, 01_feature_extraction
    nb: NotebookNode  # the executed notebook
    title: str
    subtitle: str
    run: dict | None  # build/<P>/metrics/<name>.json, None when the notebook recorded none

    @property
    def page(self) -> str:
        return f"{self.name}.html"

    @property
    def failed(self) -> bool:
        return any(o.get("output_type") == "error" for c in self.nb.cells
                   if c.cell_type == "code" for o in c.get("outputs", []))


def run_command(profile: str) -> str:
    """The command that runs the notebooks of a profile again."""
    return f"python3 -m tlutils run --profile {profile}"


def source_dir() -> Path:
    """The course's notebooks/ folder, against which executed copies are checked."""
    return (repo_root() or Path.cwd()) / "notebooks"


def executed_copies(profile: str) -> list[Path]:
    """build/<P>/notebooks/*.ipynb, in course order (temporary files left out)."""
    folder = build_dir(profile) / "notebooks"
    return sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith("."))


def default_profile() -> str:
    """$TLU_PROFILE, else the profile whose run is the most recent, else profiles.current()."""
    if os.environ.get("TLU_PROFILE"):
        return os.environ["TLU_PROFILE"]
    runs = [(max(p.stat().st_mtime for p in executed_copies(name)), name)
            for name in ("smoke", "cpu", "gpu") if executed_copies(name)]
    if runs:
        return max(runs)[1]
    from tlutils.course import profiles

    return profiles.current()


def stale(copies: list[Path], sources: Path) -> list[str]:
    """The executed copies older than their notebook in `sources`."""
    return [p.stem for p in copies if (sources / p.name).exists()
            and p.stat().st_mtime < (sources / p.name).stat().st_mtime]


def gone(profile: str, sources: Path) -> list[str]:
    """Executed copies of notebooks `sources` no longer has (renamed or split since that run):
    never a lesson of the book, and left where they are."""
    return [p.stem for p in executed_copies(profile) if not (sources / p.name).exists()]


IF_STALE = ("refuse", "leave out", "keep")  # what to do with executed copies older than sources


def check_run(profile: str, sources: Path,
              if_stale: str = "refuse") -> tuple[list[Path], list[str]]:
    """The executed copies to put in the book, and the stale ones (older than their notebook
    in `sources`); BookError, in one sentence naming the command to run, when there are none,
    or when any is stale and `if_stale` is "refuse" (all are, for "leave out")."""
    if if_stale not in IF_STALE:
        raise ValueError(f"if_stale is one of {', '.join(IF_STALE)}; got {if_stale!r}.")
    copies = [p for p in executed_copies(profile) if (sources / p.name).exists()]  # see gone()
    if not copies:
        others = [p for p in ("smoke", "cpu", "gpu") if p != profile and executed_copies(p)]
        hint = (f"; runs exist for {', '.join(others)}: pass --profile {others[0]}" if others
                else f": run `{run_command(profile)}` first")
        raise BookError(f"No executed notebooks for profile {profile!r} in "
                        f"{shown(build_dir(profile) / 'notebooks')}{hint}.")
    old = stale(copies, sources)
    if old and (if_stale == "refuse" or if_stale == "leave out" and len(old) == len(copies)):
        one = len(old) == 1
        names = ", ".join(old[:3]) + (f" and {len(old) - 3} more" if len(old) > 3 else "")
        raise BookError(f"The executed {'copy' if one else 'copies'} of {names} in "
                        f"{shown(build_dir(profile) / 'notebooks')} {'is' if one else 'are'} "
                        f"older than the notebook{'' if one else 's'} in notebooks/: run "
                        f"`{run_command(profile)}` to run {'it' if one else 'them'} again.")
    return [p for p in copies if if_stale == "keep" or p.stem not in old], old


def title_and_subtitle(nb: NotebookNode) -> tuple[str, str]:
    """The `# title` of the first markdown cell and the first line after it (the badge is
    not a subtitle)."""
    first = next((c.source for c in nb.cells if c.cell_type == "markdown"), "")
    lines = [line.strip() for line in first.splitlines()]
    heads = [i for i, line in enumerate(lines) if line.startswith("# ")]
    start = heads[0] + 1 if heads else 0
    after = (line for line in lines[start:] if line and not line.startswith("[!["))
    return (lines[heads[0]][2:].strip() if heads else ""), next(after, "")


def read_lesson(path: Path, profile: str) -> Lesson:
    """An executed notebook, its title and subtitle, and its metrics file if the run wrote one."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    title, subtitle = title_and_subtitle(nb)
    metrics = build_dir(profile) / "metrics" / f"{path.stem}.json"
    run = json.loads(metrics.read_text(encoding="utf-8")) if metrics.exists() else None
    return Lesson(path.stem, nb, title or path.stem, subtitle, run)


def claims_held(run: dict | None) -> tuple[int, int] | None:
    """(claims held, claims asserted) of a run's ledger; None when it records no ledger."""
    claims = ((run or {}).get("metrics") or {}).get("claims")
    if claims is None:
        return None
    asserted = [c for c in claims if c.get("held") is not None]
    return sum(c["held"] is True for c in asserted), len(asserted)


HELD = {True: "held", False: "did not hold", None: "reported, not asserted"}


def _claim_row(c: dict) -> str:
    e = html.escape
    against = "<br>".join(f"{e(name)} {b['value']:.3f} <span class=\"kind\">"
                          f"({e(b['kind'].replace('_', ' '))})</span>"
                          for name, b in (c.get("against") or {}).items())
    expect = f" (expected {' or '.join(c['expect'])})" if c.get("expect") else ""
    held = c.get("held")
    return (f'<tr class="held-{str(held).lower()}"><td>{e(c["text"])}</td>'
            f'<td>{e(c["arm"])} {c["value"]:.3f}</td><td>{against}</td>'
            f'<td class="num">{c["gap"]:+.3f} ± {c["se"]:.3f} ({c["n"]} pairs)</td>'
            f'<td>{e(c["verdict"])}</td><td>{HELD[held]}{e(expect)}</td></tr>')


def ledger_html(run: dict | None) -> str:
    """The claims ledger of a notebook's run as a table, or the sentence saying why none."""
    if run is None:
        return ("<p>No metrics were recorded for this notebook in this run (it failed or "
                "stopped before its end), so there is no claims ledger.</p>")
    claims = (run.get("metrics") or {}).get("claims")
    if claims is None:
        return "<p>This notebook records no claims ledger yet.</p>"
    if not claims:
        return "<p>This notebook's claims ledger is empty.</p>"
    head = "".join(f"<th>{h}</th>" for h in ("claim", "arm and value", "against (kind)",
                                              "gap ± se (n pairs)", "verdict", "held"))
    rows = "".join(map(_claim_row, claims))
    return (f'<table class="ledger"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody>'
            "</table>")


def took(wall_s: float) -> str:
    """A run's time as the index shows it: seconds below two minutes, else minutes."""
    return f"{wall_s:.0f} s" if wall_s < 120 else f"{wall_s / 60:.1f} min"


def _index_row(lesson: Lesson) -> str:
    e, run = html.escape, lesson.run
    held = claims_held(run)
    claims = ("no ledger yet" if held is None else f"{held[0]} of {held[1]}") if run else "—"
    failed = ' <span class="failed">failed in this run</span>' if lesson.failed else ""
    return (f'<tr><td><a href="{lesson.page}">{e(lesson.title)}</a>{failed}'
            f'<div class="subtitle">{e(lesson.subtitle)}</div></td>'
            f'<td class="num">{took(run["wall_s"]) if run else "—"}</td>'
            f'<td><code>{e(headline(run["metrics"])) if run else "no metrics recorded"}</code></td>'
            f'<td class="num">{claims}</td></tr>')


def index_html(lessons: list[Lesson], facts: dict[str, str], notes: list[str]) -> str:
    """The book's first page: the run's facts, then one row per lesson."""
    e = html.escape
    dl = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in facts.items())
    head = "".join(f"<th>{h}</th>" for h in ("lesson", "this run", "headline", "claims held"))
    rows = "".join(map(_index_row, lessons))
    notes_html = "".join(f'<p class="note">{e(n)}</p>' for n in notes)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1.0">'
            f'<title>{e(TITLE)}</title><link rel="icon" href="data:,">'
            f'<link rel="stylesheet" href="_static/book.css"></head>'
            f'<body class="book-index"><main><h1>{e(TITLE)}</h1>'
            f'<p>The notebooks as this run executed them: every output and plot, and each '
            f'notebook\'s claims ledger at its end.</p><dl class="facts">{dl}</dl>{notes_html}'
            f'<table class="lessons"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody>'
            f'</table></main></body></html>\n')


def _values(runs: list[dict], key: str) -> str:
    return ", ".join(dict.fromkeys(str(r.get(key)) for r in runs)) or "unknown"


def git_commit() -> str:
    """`git rev-parse --short HEAD` of the checkout (noting uncommitted changes), or unknown."""
    root = repo_root()
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, timeout=20,
                              capture_output=True, text=True) if root else None
        if not head or head.returncode:
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, timeout=20, capture_output=True, text=True).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head.stdout.strip() + (" (with uncommitted changes)" if dirty.strip() else "")


def run_facts(profile: str, lessons: list[Lesson], copies: list[Path]) -> dict[str, str]:
    """Profile, backend, device, the run's date, the commit and the build's date."""
    def when(ts: float) -> str:
        return datetime.datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M %Z")

    runs = [lesson.run for lesson in lessons if lesson.run]
    return {"profile": profile, "backend": _values(runs, "backend"),
            "device": _values(runs, "device"),
            "run": when(max(p.stat().st_mtime for p in copies)),
            "commit": git_commit(), "built": when(datetime.datetime.now().timestamp())}


# nbconvert's lab template without what it would fetch from a CDN (require.js, MathJax,
# mermaid, widgets); its stylesheet linked once from _static/ instead of inlined per page.
TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{% block notebook_css %}<link rel="icon" href="data:,">
<link rel="stylesheet" href="_static/lab.css">
<link rel="stylesheet" href="_static/book.css">{% endblock notebook_css %}
{%- block html_head_js_mathjax -%}{{ resources.book.math }}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block body_header -%}{{ super() }}{{ resources.book.top }}{%- endblock body_header -%}
{% block body_footer %}{{ resources.book.bottom }}{{ super() }}{% endblock body_footer %}
"""

MATH = """<link rel="stylesheet" href="_static/katex/katex.min.css">
<script defer src="_static/katex/katex.min.js"></script>
<script defer src="_static/katex/auto-render.js"></script>
<script>document.addEventListener("DOMContentLoaded", () => renderMathInElement(document.body,
{delimiters: [{left: "$$", right: "$$", display: true}, {left: "\\\\(", right: "\\\\)",
display: false}], throwOnError: false}));</script>"""


def exporter():
    """nbconvert's HTMLExporter with the book's template, made faster (below); its warnings
    stay out of the terminal."""
    import logging

    from jinja2 import DictLoader
    from nbconvert import HTMLExporter
    from nbconvert.exporters.templateexporter import TemplateExporter
    from nbconvert.filters.highlight import Highlight2HTML
    from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter

    class BookExporter(HTMLExporter):
        """HTMLExporter.from_notebook_node without its BeautifulSoup pass over the page (alt
        text and tabindex; _localise gives images their alt text): 40% of the build's time."""

        def from_notebook_node(self, nb, resources=None, **kw):
            lang = nb.metadata.get("language_info", {})
            self.register_filter("highlight_code", Highlight2HTML(
                pygments_lexer=lang.get("pygments_lexer", lang.get("name")), parent=self))
            resources = self._init_resources(resources)
            self.register_filter("filter_data_type", WidgetsDataTypeFilter(
                notebook_metadata=self._nb_metadata, parent=self, resources=resources))
            return TemplateExporter.from_notebook_node(self, nb, resources, **kw)

    log = logging.getLogger("tlutils.book")
    log.setLevel(logging.ERROR)
    exp = BookExporter(template_name="lab", template_file="book.html.j2", log=log,
                       extra_loaders=[DictLoader({"book.html.j2": TEMPLATE})])
    # the template runs bleach over each code cell's Pygments output, which is escaped
    # already: 30% of the build's time; the course's own notebooks are trusted
    exp.register_filter("clean_html", _trusted)
    return exp


def _trusted(element: str | bytes) -> str:
    """nbconvert's clean_html filter, trusting the course's own notebooks."""
    return element.decode() if isinstance(element, bytes) else str(element)


def _nav(lessons: list[Lesson], i: int) -> str:
    e = html.escape
    prev = (f'<a rel="prev" href="{lessons[i - 1].page}">← {e(lessons[i - 1].title)}</a>'
            if i > 0 else "<span></span>")
    nxt = (f'<a rel="next" href="{lessons[i + 1].page}">{e(lessons[i + 1].title)} →</a>'
           if i + 1 < len(lessons) else "<span></span>")
    return f'<nav class="book-nav">{prev}<a href="index.html">Contents</a>{nxt}</nav>'


def has_math(nb: NotebookNode) -> bool:
    """Whether a markdown cell holds a formula ($$...$$ or \\(...\\))."""
    return any(c.cell_type == "markdown" and ("$$" in c.source or "\\(" in c.source)
               for c in nb.cells)


def _localise(page: str, in_book: set[str]) -> str:
    """Point the Colab badge at the book's copy, links to notebooks of the book at their
    pages, and other relative links (../docs/x.md, a notebook not in this run) at GitHub."""
    page = page.replace(f'src="{COLAB_BADGE}"', 'src="_static/colab-badge.svg"')
    page = re.sub(r"<img (?![^>]*\balt=)", '<img alt="a figure the cell drew" ', page)
    repo = re.search(r"colab\.research\.google\.com/github/([^/\"]+/[^/\"]+/blob/[^/\"]+)/", page)
    github = f"https://github.com/{repo.group(1)}/" if repo else None

    def link(m: re.Match) -> str:
        target, _, fragment = m.group(1).partition("#")
        stem = target.removesuffix(".ipynb")
        if target.endswith(".ipynb") and "/" not in target and stem in in_book:
            return f'href="{stem}.html{"#" * bool(fragment)}{fragment}"'
        if target.startswith("_static/") or target.removesuffix(".html") in in_book | {
                "index"} or not github:
            return m.group(0)
        return f'href="{github}{os.path.normpath("notebooks/" + target)}"'

    return re.sub(r'href="(?![a-zA-Z][a-zA-Z0-9+.-]*:|#)([^"]+)"', link, page)


def notebook_html(lesson: Lesson, lessons: list[Lesson], i: int, katex: bool, exp) -> str:
    """One lesson's page: nbconvert's body between the navigation, the ledger at its end."""
    nav = _nav(lessons, i)
    bottom = (f'<section class="ledger-section" id="claims-ledger"><h2>Claims ledger</h2>'
              f"{ledger_html(lesson.run)}</section>{nav}")
    book = {"top": nav, "bottom": bottom,
            "math": MATH if katex and has_math(lesson.nb) else ""}
    page, _ = exp.from_notebook_node(lesson.nb, resources={
        "metadata": {"name": lesson.title}, "book": book})
    return _localise(page, {x.name for x in lessons})


BOOK_CSS = """body { margin: 0; background: #fff; color: #1f2328;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 1100px; margin: 0 auto; padding: 0 16px 48px; }
.book-nav { display: grid; grid-template-columns: 1fr auto 1fr; gap: 16px; padding: 12px 0;
  border-bottom: 1px solid #d0d7de; margin-bottom: 12px; font-size: 14px; }
.book-nav > :last-child { text-align: right; }
.book-nav a { color: #0969da; text-decoration: none; }
.book-nav a:hover { text-decoration: underline; }
section.ledger-section + .book-nav { border-top: 1px solid #d0d7de; border-bottom: 0; }
/* lab template rules this book's template replaces */
a.anchor-link, .jp-Collapser { display: none; }
/* code wraps instead of widening the page; wide outputs scroll inside their cell */
.jp-InputArea, .jp-InputArea-editor { overflow: hidden; }
.jp-InputArea-editor .highlight pre { white-space: pre-wrap; overflow-wrap: anywhere;
  margin: 0; padding: var(--jp-code-padding) 4px; }
.jp-OutputArea-output { overflow-x: auto; max-width: 100%; }
.jp-OutputArea-output pre { line-height: inherit; font-family: inherit; }
.jp-OutputArea-output img { max-width: 100%; height: auto; }
.jp-RenderedText pre { color: var(--jp-content-font-color1); font-size: var(--jp-code-font-size); }
table.ledger, table.lessons { border-collapse: collapse; width: 100%; font-size: 14px;
  margin: 12px 0; }
table.ledger th, table.ledger td, table.lessons th, table.lessons td { border: 1px solid #d0d7de;
  padding: 6px 8px; vertical-align: top; text-align: left; }
table.ledger th, table.lessons th { background: #f6f8fa; }
td.num { white-space: nowrap; text-align: right; }
.kind, .subtitle, .note { color: #57606a; }
.subtitle { font-size: 13px; margin-top: 2px; }
tr.held-false td:last-child, .failed { color: #cf222e; font-weight: 600; }
tr.held-true td:last-child { color: #1a7f37; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; }
dl.facts dt { font-weight: 600; } dl.facts dd { margin: 0; }
@media print { .book-nav { display: none; } }
"""

# The "Open in Colab" badge, drawn here: the notebooks' badge image lives on colab's site.
BADGE_SVG = """<svg xmlns="http://www.w3.org/2000/svg" width="117" height="20" \
role="img" aria-label="Open in Colab"><rect width="117" height="20" rx="3" fill="#555"/>\
<rect x="68" width="49" height="20" rx="3" fill="#f9ab00"/><rect x="68" width="6" height="20" \
fill="#f9ab00"/><g fill="#fff" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11">\
<text x="8" y="14">Open in</text><text x="73" y="14">Colab</text></g></svg>
"""


def write_static(folder: Path, katex: bool, exp) -> None:
    """_static/: the lab stylesheet, the book's, the badge and, for math, Debian's KaTeX."""
    folder.mkdir(parents=True)
    lab = [Path(p) / "static" / name for p in exp.template_paths
           for name in ("index.css", "theme-light.css") if (Path(p) / "static" / name).is_file()]
    (folder / "lab.css").write_text("\n".join(dict.fromkeys(
        p.read_text(encoding="utf-8") for p in lab[:2])), encoding="utf-8")
    (folder / "book.css").write_text(BOOK_CSS, encoding="utf-8")
    (folder / "colab-badge.svg").write_text(BADGE_SVG, encoding="utf-8")
    if katex:
        (folder / "katex" / "fonts").mkdir(parents=True)
        for name in ("katex.min.css", "katex.min.js", "contrib/auto-render.js"):
            shutil.copyfile(KATEX / name, folder / "katex" / Path(name).name)
        for font in (KATEX / "fonts").glob("*.woff2"):  # what the stylesheet asks for first
            shutil.copyfile(font, folder / "katex" / "fonts" / font.name)


def check_ours(book: Path) -> None:
    """Refuse, in one sentence, a book folder holding files an earlier build did not write."""
    if book.exists() and not book.is_dir():
        raise BookError(f"{shown(book)} is a file: move it away, then build the book again.")
    if not book.is_dir():
        return
    marker = book / MARKER
    written = set(marker.read_text(encoding="utf-8").splitlines()) if marker.is_file() else set()
    others = sorted(p.relative_to(book).as_posix() for p in book.rglob("*")
                    if not p.is_dir() and p != marker and p.relative_to(book).as_posix()
                    not in written)
    if others:
        listed = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3
                                          else "")
        raise BookError(f"{shown(book)} holds files the book did not write ({listed}): move "
                        "them out, then build the book again.")


def install(new: Path, book: Path) -> None:
    """Make the complete folder `new` the book, in place of the last one (check_ours)."""
    written = sorted(p.relative_to(new).as_posix() for p in new.rglob("*") if p.is_file())
    (new / MARKER).write_text("".join(f"{w}\n" for w in written), encoding="utf-8")
    check_ours(book)
    if book.is_dir():
        os.rename(book, new.parent / "old")  # inside the temporary folder, removed with it
    os.rename(new, book)


def build_book(profile: str, if_stale: str = "refuse",
               sources: Path | None = None) -> tuple[Path, list[str]]:
    """Build build/<profile>/book/ from the run's executed notebooks and metrics; return its
    index.html and the executed copies older than their notebooks (see check_run).

    Written into a temporary folder beside it that replaces the last book when complete."""
    sources = sources or source_dir()
    copies, old = check_run(profile, sources, if_stale)
    book = build_dir(profile) / "book"
    check_ours(book)  # before the work, not only after it
    lessons = [read_lesson(p, profile) for p in copies]
    exp, katex = exporter(), KATEX.is_dir() and any(has_math(x.nb) for x in lessons)
    work = Path(tempfile.mkdtemp(dir=book.parent, prefix=".book.", suffix=".partial"))
    try:
        new = work / "book"
        write_static(new / "_static", katex, exp)
        for i, lesson in enumerate(lessons):
            (new / lesson.page).write_text(notebook_html(lesson, lessons, i, katex, exp),
                                           encoding="utf-8")
        facts = run_facts(profile, lessons, copies)
        notes = run_notes(profile, sources, copies, old, if_stale)
        (new / "index.html").write_text(index_html(lessons, facts, notes), encoding="utf-8")
        install(new, book)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # the temporary folder this call made
    return book / "index.html", old


def run_notes(profile: str, sources: Path, copies: list[Path], old: list[str],
              if_stale: str) -> list[str]:
    """The index's sentences on the course's notebooks missing from the run, and stale ones."""
    missing = sorted({p.stem for p in sources.glob("*.ipynb")} - {p.stem for p in copies}
                     - set(old))
    notes = [f"Not in this run: {', '.join(missing)}."] if missing else []
    if gone(profile, sources):
        notes.append(f"Left out: {', '.join(gone(profile, sources))}, executed copies of "
                     "notebooks the course no longer has.")
    if old:
        notes.append(f"{'Left out' if if_stale == 'leave out' else 'Kept, but stale'}: "
                     f"{', '.join(old)}, executed before their notebook last changed; run "
                     f"`{run_command(profile)}` again.")
    return notes


def current_book(profile: str, sources: Path | None = None) -> Path | None:
    """The book's index.html when it is newer than every executed copy of the run, none of
    them older than its notebook; else None (build it again)."""
    index, copies = build_dir(profile) / "book" / "index.html", executed_copies(profile)
    if not index.is_file() or not copies or stale(copies, sources or source_dir()):
        return None
    newest = max(p.stat().st_mtime for p in copies)
    return index if index.stat().st_mtime >= newest else None


def book_line(profile: str) -> str:
    """Build the book at the end of a run; the line naming its index.html, or saying why there
    is none (a failure here must not hide the run's result)."""
    try:
        index, old = build_book(profile, if_stale="leave out")
    except BookError as err:
        return f"No book: {err}"
    except Exception as err:  # the run's result matters more than its book
        return f"No book: {type(err).__name__}: {err}"
    left = f" ({len(old)} stale notebook(s) left out: {', '.join(old)})" if old else ""
    return f"Book: {shown(index)}{left}"
