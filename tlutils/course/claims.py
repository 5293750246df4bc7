"""The claims ledger: each notebook's claims as data, so that its Check, its Summary, the run
report, the tests and the book read one source (explained in 00_start_here).

A claim names an arm and its number, the baselines and controls it is measured against (each
with its kind), the paired gap to the one that decides it, the gap's standard error and the
number of independent pairs behind it; its verdict comes from Student's t for those pairs.
"""

from __future__ import annotations

from tlutils import stats

KINDS = ("no_transfer", "no_method", "control", "budget_matched", "trivial")
VERDICTS = ("better", "worse", "not clearly different")


def claim(id: str, text: str, arm: str, value: float, against: dict[str, tuple[float, str]],
          gap: float, se: float, n: int, expect: str | tuple[str, ...] | None = None) -> dict:
    """One ledger entry. `against` maps each baseline or control to (value, kind), kind one of
    KINDS; `gap` ± `se` over `n` independent pairs (seeds, subsets, or test images for two fixed
    models) decides the verdict: beyond critical_t(n) standard errors, "better" or "worse".
    `expect` is the verdict (or verdicts) the notebook asserts; None reports without asserting.
    A claim whose text gives a cause ("because") must list a control."""
    for name, (_, kind) in against.items():
        if kind not in KINDS:
            raise ValueError(f"Baseline {name!r} has kind {kind!r}; use one of {', '.join(KINDS)}.")
    if "because" in text.lower() and not any(k == "control" for _, k in against.values()):
        raise ValueError(f"Claim {id!r} names a cause but lists no control that would show "
                         "another one.")
    expected = (expect,) if isinstance(expect, str) else expect
    if expected and not set(expected) <= set(VERDICTS):
        raise ValueError(f"Claim {id!r} expects {expect!r}; verdicts are {', '.join(VERDICTS)}.")
    said = stats.verdict(gap, se, n=n).removesuffix(" than").removesuffix(" from")
    return {"id": id, "text": text, "arm": arm, "value": float(value),
            "against": {k: {"value": float(v), "kind": kind} for k, (v, kind) in against.items()},
            "gap": float(gap), "se": float(se), "n": int(n), "verdict": said,
            "expect": list(expected) if expected else None,
            "held": None if not expected else said in expected}


def check(ledger: list[dict], expected: bool = True) -> None:
    """Assert every claim's verdict is the one its notebook expects, naming the first that is
    not (the Check cell of each notebook). With `expected=False` (a run with fewer seeds or
    steps than the expectations were sized for) nothing is asserted: the claims whose verdict
    differs are listed instead."""
    missed = [c for c in ledger if c["held"] is False]
    for c in missed if expected else []:
        raise AssertionError(
            f"{c['text']}: expected {' or '.join(c['expect'])}, the run says {c['verdict']} "
            f"(gap {c['gap']:+.3f} ± {c['se']:.3f}, {c['n']} pairs)")
    if missed:
        print(f"Not asserted at this budget: {len(missed)} of {len(ledger)} claims' verdicts "
              "differ from those the notebook's own budget gives: "
              + "; ".join(f"{c['id']} ({c['verdict']})" for c in missed) + ".")


def summary(ledger: list[dict]) -> str:
    """One line per claim: the sentence, the numbers behind it and the verdict, for a
    notebook's Summary."""
    lines = []
    for c in ledger:
        others = ", ".join(f"{name} {b['value']:.3f}" for name, b in c["against"].items())
        lines.append(f"- {c['text']}: {c['arm']} {c['value']:.3f} against {others}; gap "
                     f"{c['gap']:+.3f} ± {c['se']:.3f} over {c['n']} pairs: {c['verdict']}.")
    return "\n".join(lines)
