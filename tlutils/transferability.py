"""Transferability scores: how well a frozen backbone's features suit a task, measured
without fine-tuning it, and how well such a score ranks backbones (16_choose_what_to_transfer).
NumPy only."""

from __future__ import annotations

import numpy as np


def logme(features, labels) -> float:
    """LogME (You et al., ICML 2021): the log evidence per sample of a Bayesian linear model
    from the features to one class's one-hot target, its prior and noise precisions (alpha,
    beta) set by fixed-point iteration, averaged over the classes. Higher is better.

    One SVD of the features, then the fixed-point loop of thuml/LogME (LogME.fit), with
    log|A| over all D feature directions, as its ICML algorithm has it: the fixed-point
    code leaves out the D - N null ones when N < D (thuml/LogME issue #23).
    Explained in 16_choose_what_to_transfer.
    """
    f = np.asarray(features, dtype=np.float64)
    classes, y = np.unique(np.asarray(labels).ravel(), return_inverse=True)
    n, d = f.shape
    u, s, _ = np.linalg.svd(f, full_matrices=False)
    keep = s > s.max(initial=0.0) * max(n, d) * np.finfo(np.float64).eps  # the rank
    u, sigma = u[:, keep], s[keep] ** 2
    evidences = []
    for c in range(len(classes)):
        target = (y == c).astype(np.float64)
        x2 = (u.T @ target) ** 2  # the target's energy along each singular direction
        evidences.append(_evidence(sigma, x2, target @ target - x2.sum(), n, d))
    return float(np.mean(evidences))


def _evidence(sigma: np.ndarray, x2: np.ndarray, rest: float, n: int, d: int) -> float:
    """The maximised log evidence per sample for one target: sigma, the squared singular
    values; x2, the target's squared projections on them; rest, its energy outside."""
    alpha = beta = 1.0
    for _ in range(11):  # converges in a few steps; the reference stops at 11
        t = alpha / beta
        gamma = (sigma / (sigma + t)).sum()  # the effective number of parameters
        m2 = (sigma * x2 / (t + sigma) ** 2).sum()  # |m|^2, m the posterior mean
        res2 = (x2 / (1 + sigma / t) ** 2).sum() + rest  # |F m - y|^2
        alpha, beta = gamma / (m2 + 1e-5), (n - gamma) / (res2 + 1e-5)
        if abs(alpha / beta - t) / t <= 1e-3:
            break
    log_det = np.log(alpha + beta * sigma).sum() + (d - len(sigma)) * np.log(alpha)
    evidence = d * np.log(alpha) + n * np.log(beta) - log_det - beta * res2 - alpha * m2
    return float((evidence - n * np.log(2 * np.pi)) / (2 * n))


def knn_loo_accuracy(features, labels, k: int = 5, chunk: int = 1024) -> float:
    """Leave-one-out k-NN accuracy with cosine similarity: each sample gets the majority
    class of its k most similar other samples (never itself); a tie goes to the class with
    the larger summed similarity. Chunk by chunk, memory chunk x n (16_choose_what_to_transfer)."""
    f = np.asarray(features, dtype=np.float32)
    f = f / (np.linalg.norm(f, axis=1, keepdims=True) + 1e-12)
    classes, y = np.unique(np.asarray(labels).ravel(), return_inverse=True)
    if not 1 <= k < len(f):
        raise ValueError(f"k must be between 1 and n - 1 = {len(f) - 1}, not {k}.")
    correct = 0
    for start in range(0, len(f), chunk):
        sims = (f[start : start + chunk] @ f.T).astype(np.float64)
        rows = np.arange(len(sims))
        sims[rows, start + rows] = -np.inf  # leave itself out
        nearest = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        votes = np.zeros((len(sims), len(classes)))
        weight = 1 + 1e-6 * sims[rows[:, None], nearest]  # similarity only breaks ties
        np.add.at(votes, (rows[:, None], y[nearest]), weight)
        correct += int((votes.argmax(axis=1) == y[start : start + chunk]).sum())
    return correct / len(f)


def kendall_tau(a, b) -> float:
    """Kendall's tau-b between two rankings (say, a score and fine-tuned accuracy over
    backbones): (concordant - discordant pairs) / sqrt(pairs untied in a x untied in b),
    from -1 (reversed) to 1 (same order); nan when a or b is constant
    (16_choose_what_to_transfer)."""
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if len(a) != len(b):
        raise ValueError(f"a and b differ in length ({len(a)} and {len(b)}).")
    i, j = np.triu_indices(len(a), k=1)
    da, db = np.sign(a[i] - a[j]), np.sign(b[i] - b[j])
    untied = np.sqrt(float(np.count_nonzero(da)) * float(np.count_nonzero(db)))
    return float((da * db).sum() / untied) if untied else float("nan")
