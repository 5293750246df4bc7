"""The claims ledger (#39): each notebook records its claims as data, each positive claim
against a baseline without the transfer or the method, each "because" against a control."""

import json
import os
from pathlib import Path

import pytest

from tlutils.course import claims

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_the_verdict_uses_students_t_for_the_number_of_pairs():
    # 4 standard errors: clear with many pairs (1.96), not with 3 (4.30)
    assert claims.claim("a", "x", "A", 0.9, {"B": (0.8, "no_method")}, 0.04, 0.01,
                        n=3)["verdict"] == "not clearly different"
    assert claims.claim("a", "x", "A", 0.9, {"B": (0.8, "no_method")}, 0.04, 0.01,
                        n=100)["verdict"] == "better"
    assert claims.claim("a", "x", "A", 0.7, {"B": (0.8, "no_method")}, -0.05, 0.01,
                        n=3)["verdict"] == "worse"


def test_a_claim_that_fails_its_expectation_stops_the_check():
    ledger = [claims.claim("gain", "augmentation helps", "aug", 0.7, {"none": (0.6, "no_method")},
                           0.02, 0.01, n=3, expect="better")]
    assert ledger[0]["held"] is False
    with pytest.raises(AssertionError, match="augmentation helps: expected better, the run says "
                                             "not clearly different"):
        claims.check(ledger)
    reported = claims.claim("gain", "augmentation against none", "aug", 0.7,
                            {"none": (0.6, "no_method")}, 0.02, 0.01, n=3)
    assert reported["held"] is None
    claims.check([reported])


def test_a_reduced_run_lists_the_verdicts_it_does_not_assert(capsys):
    ledger = [claims.claim("gain", "augmentation helps", "aug", 0.7, {"none": (0.6, "no_method")},
                           0.02, 0.01, n=2, expect="better"),
              claims.claim("size", "bigger is better", "big", 0.9, {"small": (0.5, "no_method")},
                           0.4, 0.01, n=2, expect="better")]
    claims.check(ledger, expected=False)
    said = capsys.readouterr().out
    assert "1 of 2 claims" in said and "gain (not clearly different)" in said
    assert "size" not in said
    with pytest.raises(AssertionError, match="augmentation helps"):
        claims.check(ledger)


def test_a_cause_needs_a_control_and_kinds_are_checked():
    with pytest.raises(ValueError, match="names a cause"):
        claims.claim("c", "it drops because of the shift", "A", 0.5, {"B": (0.7, "no_method")},
                     -0.2, 0.01, n=5)
    claims.claim("c", "it drops because of the shift", "A", 0.5,
                 {"same preprocessing": (0.6, "control")}, -0.1, 0.01, n=5)
    with pytest.raises(ValueError, match="kind 'baseline'"):
        claims.claim("c", "x", "A", 0.5, {"B": (0.7, "baseline")}, -0.2, 0.01, n=5)
    with pytest.raises(ValueError, match="expects 'clearly better'"):
        claims.claim("c", "x", "A", 0.5, {"B": (0.7, "trivial")}, -0.2, 0.01, n=5,
                     expect="clearly better")


def test_the_summary_prints_every_number_behind_the_verdict():
    line = claims.summary([claims.claim("ft", "fine-tuning beats pixels", "fine-tuned", 0.919,
                                        {"pixels": (0.823, "no_transfer")}, 0.096, 0.01, n=3,
                                        expect="better")])
    assert line == ("- fine-tuning beats pixels: fine-tuned 0.919 against pixels 0.823; gap "
                    "+0.096 ± 0.010 over 3 pairs: better.")


def ledger_problems(ledger: list[dict]) -> list[str]:
    """What a recorded ledger lacks: a positive claim with no baseline without the transfer or
    the method, a cause with no control, an expectation that failed."""
    problems = []
    for c in ledger:
        kinds = {b["kind"] for b in c["against"].values()}
        if c["verdict"] == "better" and not kinds & {"no_transfer", "no_method"}:
            problems.append(f"{c['id']}: a positive claim against no baseline without it")
        if "because" in c["text"].lower() and "control" not in kinds:
            problems.append(f"{c['id']}: a cause without a control")
        if c["held"] is False:
            problems.append(f"{c['id']}: expected {c['expect']}, got {c['verdict']}")
        if c["verdict"] not in claims.VERDICTS or c["n"] < 2:
            problems.append(f"{c['id']}: verdict {c['verdict']!r} from {c['n']} pairs")
    return problems


def test_the_rule_catches_a_positive_claim_against_a_trivial_baseline_only():
    ledger = [claims.claim("x", "the model learned", "model", 0.9,
                           {"largest class": (0.5, "trivial")}, 0.4, 0.01, n=50)]
    assert ledger_problems(ledger) == ["x: a positive claim against no baseline without it"]


@pytest.mark.after_notebooks
@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_every_notebook_records_its_claims(notebook):
    """Runs after nbval has executed the notebooks (conftest orders it last)."""
    path = ROOT / "build" / "smoke" / "metrics" / f"{notebook}.json"
    if not path.exists() or path.stat().st_mtime < float(os.environ["TLU_TEST_START"]):
        pytest.skip(f"{notebook} did not run in this test session")
    ledger = json.loads(path.read_text())["metrics"].get("claims")
    assert ledger, f"{notebook} records no claims ledger"
    assert len({c["id"] for c in ledger}) == len(ledger), "claim ids should be unique"
    assert ledger_problems(ledger) == []
