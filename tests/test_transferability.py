"""tlutils.transferability: LogME against ports of thuml/LogME's code, leave-one-out k-NN,
Kendall's tau (16_choose_what_to_transfer)."""

import numpy as np
import pytest
from scipy.stats import kendalltau

from tlutils.transferability import kendall_tau, knn_loo_accuracy, logme


def _reference_fixed_point(f, y, pad_to_d=False):
    """thuml/LogME's LogME._fit_fixed_point (LogME.fit), ported line by line; pad_to_d is the
    fix of its issue #23 (PR #24): log|A| over all D directions."""
    n, d = f.shape
    if n > d:  # its truncated_svd
        _, s, vh = np.linalg.svd(f.T @ f)
        s = np.sqrt(s)
        k = int(np.sum(s > 1e-10))
        s, u = s[:k].reshape(-1, 1), (f @ vh.T)[:, :k] / s[:k].reshape(1, -1)
    else:
        u, s, _ = np.linalg.svd(f, full_matrices=False)
        s = s.reshape(-1, 1)
    sigma = s**2
    full = np.vstack([sigma, np.zeros((d - len(sigma), 1))]) if pad_to_d else sigma
    evidences = []
    for i in range(int(y.max() + 1)):
        y_ = (y == i).astype(np.float64).reshape(-1, 1)
        x = u.T @ y_
        x2 = x**2
        res_x2 = (y_**2).sum() - x2.sum()
        alpha, beta = 1.0, 1.0
        for _ in range(11):
            t = alpha / beta
            gamma = (sigma / (sigma + t)).sum()
            m2 = (sigma * x2 / ((t + sigma) ** 2)).sum()
            res2 = (x2 / ((1 + sigma / t) ** 2)).sum() + res_x2
            alpha = gamma / (m2 + 1e-5)
            beta = (n - gamma) / (res2 + 1e-5)
            t_ = alpha / beta
            if abs(t_ - t) / t <= 1e-3:
                break
        evidence = (
            d / 2.0 * np.log(alpha)
            + n / 2.0 * np.log(beta)
            - 0.5 * np.sum(np.log(alpha + beta * full))
            - beta / 2.0 * res2
            - alpha / 2.0 * m2
            - n / 2.0 * np.log(2 * np.pi)
        )
        evidences.append(evidence / n)
    return np.mean(evidences)


def _reference_icml(f, y):
    """thuml/LogME's each_evidence loop (the ICML 2021 algorithm, a D x D SVD), ported."""
    n, d = f.shape
    v, s, vh = np.linalg.svd(f.T @ f, full_matrices=True)
    evidences = []
    for i in range(int(y.max() + 1)):
        y_ = (y == i).astype(np.float64)
        alpha, beta, eps = 1.0, 1.0, 1e-5
        lam, tmp = alpha / beta, vh @ (f.T @ y_)
        for _ in range(11):
            gamma = (s / (s + lam)).sum()
            m = v @ (tmp * beta / (alpha + beta * s))
            alpha_de = (m * m).sum()
            alpha = gamma / (alpha_de + eps)
            beta_de = ((y_ - f @ m) ** 2).sum()
            beta = (n - gamma) / (beta_de + eps)
            new_lam = alpha / beta
            if np.abs(new_lam - lam) / lam < 0.01:
                break
            lam = new_lam
        evidence = (
            d / 2.0 * np.log(alpha)
            + n / 2.0 * np.log(beta)
            - 0.5 * np.sum(np.log(alpha + beta * s))
            - beta / 2.0 * (beta_de + eps)
            - alpha / 2.0 * (alpha_de + eps)
            - n / 2.0 * np.log(2 * np.pi)
        )
        evidences.append(evidence / n)
    return np.mean(evidences)


def _task(n, d, signal, seed=0, classes=3):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    centres = rng.normal(size=(classes, d))
    return rng.normal(size=(n, d)) + signal * centres[y], y


@pytest.mark.parametrize("n, d", [(120, 16), (40, 64)])
def test_logme_matches_the_reference_code(n, d):
    f, y = _task(n, d, signal=0.7)
    ours = logme(f, y)
    assert ours == pytest.approx(_reference_fixed_point(f, y, pad_to_d=True), abs=1e-9)
    assert ours == pytest.approx(_reference_icml(f, y), abs=2e-3)  # other stopping rule
    if n > d:  # where the released fixed-point code is right as it stands
        assert ours == pytest.approx(_reference_fixed_point(f, y), abs=1e-9)
    else:
        assert _reference_fixed_point(f, y) > ours + 0.5, "issue #23: N < D inflates it"


def test_logme_is_higher_for_features_that_carry_the_labels():
    f, y = _task(150, 32, signal=1.5)
    noise, _ = _task(150, 32, signal=0.0, seed=1)
    weak, _ = _task(150, 32, signal=0.3)
    assert logme(f, y) > logme(weak, y) > logme(noise, y)
    shuffled = np.random.default_rng(0).permutation(y)
    assert logme(f, y) > logme(f, shuffled) + 0.05


def test_logme_invariances():
    f, y = _task(90, 20, signal=0.8)
    score = logme(f, y)
    rotation = np.linalg.qr(np.random.default_rng(2).normal(size=(20, 20)))[0]
    assert logme(f @ rotation, y) == pytest.approx(score, abs=1e-9)  # it sees only the SVD
    order = np.random.default_rng(3).permutation(len(y))
    assert logme(f[order], y[order]) == pytest.approx(score, abs=1e-9)
    assert logme(f, (y + 1) % 3) == pytest.approx(score, abs=1e-9)  # class names do not count
    assert logme(10 * f, y) == pytest.approx(score, abs=0.02)  # alpha absorbs a scale
    assert np.isfinite(logme(np.hstack([f, f]), y)), "rank-deficient features"


def test_knn_loo_separable_clusters_and_self_exclusion():
    rng = np.random.default_rng(0)
    centres = np.eye(4)[:3] * 10
    y = np.repeat([0, 1, 2], 10)
    f = centres[y] + rng.normal(scale=0.1, size=(30, 4))
    assert knn_loo_accuracy(f, y, k=5) == 1.0
    assert knn_loo_accuracy(f, np.array(["a", "b", "c"])[y], k=1, chunk=7) == 1.0
    # unique labels: any sample's only correct neighbour would be itself
    assert knn_loo_accuracy(f, np.arange(30), k=1) == 0.0
    # pairs of identical points with their own label: each finds its twin, not itself
    pairs = np.repeat(rng.normal(size=(6, 4)), 2, axis=0)
    assert knn_loo_accuracy(pairs, np.repeat(np.arange(6), 2), k=1) == 1.0
    with pytest.raises(ValueError, match="k must be"):
        knn_loo_accuracy(f, y, k=30)


def _on_circle(angles):
    """Unit vectors at these angles: cosine similarity falls with the angle between them."""
    angles = np.asarray(angles, dtype=np.float64)
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def test_knn_loo_majority_vote_and_ties():
    # 0.0 is class 0 among class 1 (0.1, 0.2, 0.35): its 3 neighbours outvote it; the
    # others have 2 of 3 neighbours of their own class
    f = _on_circle([0.0, 0.1, 0.2, 0.35, 1.2, 1.3, 1.4])
    assert knn_loo_accuracy(f, [0, 1, 1, 1, 2, 2, 2], k=3) == pytest.approx(6 / 7)
    # k=2 with one neighbour of each class: the more similar one wins. 0.3 (class 0) sees
    # 0.5 (class 1) at 0.2 and 0.0 (class 0) at 0.3: wrong; the other three are right
    f = _on_circle([0.0, 0.3, 0.5, 0.62])
    assert knn_loo_accuracy(f, [0, 0, 1, 1], k=2) == 0.75


def test_kendall_tau_known_cases():
    assert kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    assert kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)  # 1 of 6 pairs swapped
    # ties (tau-b): 4 concordant, 0 discordant, 5 pairs untied in each -> 4 / sqrt(5 x 5)
    assert kendall_tau([1, 2, 2, 3], [1, 2, 3, 3]) == pytest.approx(0.8)
    assert np.isnan(kendall_tau([1, 1, 1], [1, 2, 3]))
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 5, 40), rng.integers(0, 5, 40)
    assert kendall_tau(a, b) == pytest.approx(kendalltau(a, b).statistic, abs=1e-12)
