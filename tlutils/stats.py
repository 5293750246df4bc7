"""Small measurements the notebooks share: cosine similarity (explained in 00_start_here)
and paired comparisons, is a difference bigger than its noise? (02_partial_fine_tuning).
"""

from __future__ import annotations

import numpy as np


def mean_se(values) -> tuple[float, float]:
    """Mean of values (one per seed, say) and its standard error: std (ddof=1) / sqrt(n);
    0 for a single value. The ± of 13_probe_or_fine_tune's and 15_tune_a_sliver's tables."""
    v = np.asarray(values, dtype=float)
    se = float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0
    return float(v.mean()), se


def paired_gap(a, b, floor: float = 0.0) -> tuple[float, float]:
    """Mean of a[i] - b[i] over paired runs (same seed, subset or head), and its standard
    error: std of the differences (ddof=1) / sqrt(n), never below `floor` (say one image)."""
    gap, se = mean_se(np.asarray(a, dtype=float) - np.asarray(b, dtype=float))
    return gap, max(se, floor)


def verdict(gap: float, se: float, k: float = 3.0, n: int | None = None) -> str:
    """"better than", "not clearly different from" or "worse than": the gap against k
    standard errors, for a sentence like f"A is {verdict(gap, se)} B". Given n, the number of
    independent pairs behind se, k is Student's t critical value instead (critical_t)."""
    if n is not None:
        k = critical_t(n)
    if gap > k * se:
        return "better than"
    if gap < -k * se:
        return "worse than"
    return "not clearly different from"


def critical_t(n: int, level: float = 0.95) -> float:
    """How many standard errors a mean of n paired differences must clear to be called
    different at `level` (two-sided Student's t, n - 1 degrees of freedom): 4.30 for 3 pairs,
    2.78 for 5, 1.96 for very many. Explained in 04_when_fine_tuning_pays."""
    from scipy.stats import t

    if n < 2:
        raise ValueError(f"A spread needs at least 2 pairs, not {n}.")
    return float(t.ppf(0.5 + level / 2, n - 1))


def cosine(a, b) -> np.ndarray:
    """Cosine similarity of a and b along the last axis, with broadcasting: row by row for
    two (n, d) arrays, every pair for a[:, None] and b[None] (00_start_here)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    a = a / (np.linalg.norm(a, axis=-1, keepdims=True) + 1e-12)
    b = b / (np.linalg.norm(b, axis=-1, keepdims=True) + 1e-12)
    return np.sum(a * b, axis=-1)


def nearest_cosine(a, b, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """For each row of a, the highest cosine similarity with any row of b and that row's
    index, computed chunk by chunk, so memory stays at chunk x len(b). Near-duplicates
    in 10_your_own_data."""
    unit_b = np.asarray(b, dtype=np.float32)
    unit_b = unit_b / (np.linalg.norm(unit_b, axis=1, keepdims=True) + 1e-12)
    best, where = np.empty(len(a), np.float32), np.empty(len(a), np.int64)
    for start in range(0, len(a), chunk):
        part = np.asarray(a[start:start + chunk], dtype=np.float32)
        sims = (part / (np.linalg.norm(part, axis=1, keepdims=True) + 1e-12)) @ unit_b.T
        where[start:start + chunk] = sims.argmax(axis=1)
        best[start:start + chunk] = sims.max(axis=1)
    return best, where
