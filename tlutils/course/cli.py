"""Command line: `python3 -m tlutils COMMAND` from the repository root.

    run [NOTEBOOK ...] [--profile P] [-p NAME=VALUE ...]   execute notebooks, write build/<P>/
    test [PYTEST ARGS ...]                                  the test suite (what CI runs)
    fetch [--profile P | --all]                             download data and weights (offline use)
    offline-cache SHARED_DATA                               fill the cache from a shared/data copy
    report [--profile P]                                    rebuild build/<P>/report.md
    book [--profile P]                                      the run as a static site, offline:
                                                            build/<P>/book/index.html
    workshop-kit DIR [--profile P ...] [--platform TAG ...] an offline kit for a workshop room
    lab                                                     JupyterLab on notebooks/, quiet kernels

Without the pinned packages installed, the command first creates `.venv/` in the
repository, installs them there (a few minutes, once), and re-runs itself inside it.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NEEDED = ("keras", "tensorflow", "nbclient", "nbval", "pytest", "sklearn", "matplotlib", "PIL")


def _venv_python() -> Path:
    return ROOT / ".venv" / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ensure_environment() -> None:
    """Re-run inside ROOT/.venv (created and installed when missing) unless deps are here."""
    if all(importlib.util.find_spec(m) for m in NEEDED):
        return
    py = _venv_python()
    if Path(sys.prefix).resolve() == (ROOT / ".venv").resolve():
        if os.environ.get("TLU_BOOTSTRAPPED"):
            sys.exit(f"Installing into {ROOT / '.venv'} did not provide {', '.join(NEEDED)}.")
        print(f"Installing the pinned packages into {ROOT / '.venv'} (once; a few minutes)...",
              flush=True)
        subprocess.check_call([str(py), "-m", "pip", "install", "-q", "--upgrade", "pip"])
        for lock in ["requirements.lock", "requirements-torch.lock"]:  # the exact tested set
            subprocess.check_call([str(py), "-m", "pip", "install", "-q", "-r", str(ROOT / lock)])
        subprocess.check_call([str(py), "-m", "pip", "install", "-q", "--no-deps", "-e", str(ROOT)])
        os.environ["TLU_BOOTSTRAPPED"] = "1"
    elif not py.exists():
        print(f"Creating a virtual environment in {ROOT / '.venv'}...", flush=True)
        subprocess.check_call([sys.executable, "-m", "venv", str(ROOT / ".venv")])
    os.execv(str(py), [str(py), "-m", "tlutils", *sys.argv[1:]])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m tlutils", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute notebooks and write the report")
    run.add_argument("notebooks", nargs="*", type=Path, help="default: every notebook")
    run.add_argument("--profile", choices=["smoke", "cpu", "gpu"],
                     help="default: gpu when a GPU is visible, else cpu")
    run.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE")
    sub.add_parser("test", help="run the test suite (unit tests and every notebook); "
                   "extra arguments go to pytest")
    fetch = sub.add_parser("fetch", help="download datasets and weights into the cache")
    fetch.add_argument("--profile", choices=["smoke", "cpu", "gpu"])
    fetch.add_argument("--all", action="store_true", help="every profile")
    cache = sub.add_parser("offline-cache", help="fill the cache from a shared/data folder")
    cache.add_argument("shared_data", type=Path)
    sub.add_parser("lab", help="open the notebooks in JupyterLab; TensorFlow's C++ start-up "
                   "messages go to this terminal instead of the notebooks")
    kit = sub.add_parser("workshop-kit", help="write an offline kit: wheels, a filled cache, "
                         "a mirror, the notebooks and a README for the room")
    kit.add_argument("dir", type=Path)
    kit.add_argument("--profile", action="append", choices=["smoke", "cpu", "gpu"],
                     help="repeat for several (default: cpu)")
    kit.add_argument("--platform", action="append", default=[], metavar="TAG",
                     help="a pip platform tag, e.g. manylinux2014_x86_64, macosx_11_0_arm64 or "
                     "win_amd64; repeat for several (default: this machine)")
    report = sub.add_parser("report", help="rebuild the report from recorded metrics")
    report.add_argument("--profile", choices=["smoke", "cpu", "gpu"])
    book = sub.add_parser("book", help="build the last run's executed notebooks into a static "
                          "site (build/<P>/book/index.html) that needs no network")
    book.add_argument("--profile", choices=["smoke", "cpu", "gpu"],
                      help="default: $TLU_PROFILE, else the profile run last")
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "test":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")

    if args.command == "test":
        os.chdir(ROOT)
        cmd = [sys.executable, "-m", "pytest", "--nbval-lax", "--durations=12", "tests",
               "notebooks", *extra]
        return subprocess.call(cmd)

    if args.command == "lab":
        from tlutils.course.run import kernel_environment

        os.chdir(ROOT)
        env = {**os.environ, **kernel_environment()}
        cmd = [sys.executable, "-m", "jupyterlab", "notebooks/"]
        return subprocess.call(cmd, env=env)

    if args.command == "book":
        return _book(args.profile)

    from tlutils.course.run import quiet_start

    quiet_start()  # TensorFlow's start-up lines go to a log file, not the terminal
    from tlutils.course import assets, offline, profiles, report

    try:
        if args.command == "run":
            from tlutils.course.run import all_notebooks, parse_params, run_all

            profile = profiles.current(args.profile)
            notebooks = args.notebooks or all_notebooks()
            print(f"Profile {profile}: {len(notebooks)} notebook(s); outputs in "
                  f"{report.build_dir(profile)}", flush=True)
            return 1 if run_all(notebooks, profile, parse_params(args.param)) else 0
        if args.command == "fetch":
            return _fetch(["smoke", "cpu", "gpu"] if args.all else [profiles.current(args.profile)])
        if args.command == "offline-cache":
            root, repaired, skipped = offline.build_offline_cache(args.shared_data)
            for path in repaired:
                print(f"Repaired {path}: it differed from the shared copy.")
            for sentence in skipped:
                print(f"Skipped {sentence}")
            print(f"Cache ready: {root}")
            return 0
        if args.command == "workshop-kit":
            from tlutils.course.kit import build_kit, kit_size

            names = args.profile or ["cpu"]
            print(f"Building a workshop kit for {', '.join(names)} in {args.dir} (wheels are "
                  "downloaded; a few minutes)...", flush=True)
            kit, missing = build_kit(args.dir, names, args.platform)
            print(f"Kit ready: {kit} ({kit_size(kit) / 1e6:,.0f} MB); see its README.md.")
            for m in missing:
                print(f"Missing: {m}")
            return 0
        if args.command == "report":
            from tlutils.course.run import all_notebooks

            course = all_notebooks()  # the course's notebooks/, where there is one
            md, _ = report.aggregate(profiles.current(args.profile),
                                     sources=course[0].parent if course else None)
            print(md.read_text(encoding="utf-8"))
            return 0
    except (assets.DataError, FileNotFoundError, ValueError) as err:
        print(f"Error: {err}", file=sys.stderr)
        return 2
    return 0


def _book(profile: str | None) -> int:
    """Build the book of the last run; a run that is missing or stale is one sentence."""
    from tlutils.course import book

    try:
        index, _ = book.build_book(profile or book.default_profile())
    except ValueError as err:  # BookError, or an unknown $TLU_PROFILE
        print(f"Error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a full disk, say: the last book is left as it was
        print(f"Error: could not write the book ({err}); the last one is as it was.",
              file=sys.stderr)
        return 2
    print(f"Book: {book.shown(index)} (open it in a browser; it needs no network)")
    return 0


def _fetch(profile_names: list[str]) -> int:
    """Download every dataset, weights file and model the profiles use (for an offline workshop);
    everything missing is listed in one pass."""
    from tlutils.course import assets
    from tlutils.course.kit import profile_assets

    wanted = profile_assets(profile_names)
    everything = [wanted["datasets"], wanted["files"], wanted["weights"], wanted["models"]]
    assets.require(*everything)
    print(f"Done: {', '.join(sum(everything, []))}. Copy "
          f"{assets.cache_root()} to the workshop machines and set KERAS_HOME to it.")
    return 0
