"""tlutils.calibration: the ECE, temperature scaling and its cross-fitting (07, 06)."""

import numpy as np
import pytest
from sklearn.calibration import calibration_curve

from tlutils import calibration


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def overconfident(n=4000, t=2.0, seed=0):
    """Probabilities softmax(z) for labels drawn from softmax(z / t): over-confident by t."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 3, (n, 5))
    p_true = softmax(z / t)
    y = np.array([rng.choice(5, p=p) for p in p_true])
    return softmax(z), y


def test_ece_is_zero_when_confidence_matches_accuracy():
    probs = np.tile([[0.8, 0.2]], (10, 1))
    y = np.array([0] * 8 + [1] * 2)  # 80 % right at confidence 0.8
    assert calibration.ece(probs, y) == pytest.approx(0.0)
    assert calibration.ece(probs, np.ones(10, int)) == pytest.approx(0.8)  # always wrong at 0.8


def test_ece_matches_the_formula_on_calibration_curve():
    probs, y = overconfident(1000)
    conf, correct = probs.max(1), probs.argmax(1) == y
    right, mean_conf = calibration_curve(correct, conf, n_bins=10)
    counts = np.bincount(np.minimum((conf * 10).astype(int), 9), minlength=10)
    expected = np.sum(counts[counts > 0] / len(y) * np.abs(right - mean_conf))
    assert calibration.ece(probs, y, 10) == pytest.approx(expected)


def test_temperature_is_recovered_and_changes_no_prediction():
    probs, y = overconfident(t=2.0)
    t = calibration.fit_temperature(probs, y)
    assert 1.7 < t < 2.3, t
    scaled = calibration.scale(probs, t)
    assert np.array_equal(scaled.argmax(1), probs.argmax(1))
    assert np.allclose(scaled.sum(1), 1.0)
    assert calibration.ece(scaled, y) < calibration.ece(probs, y) / 2
    assert np.allclose(calibration.scale(probs, 1.0), probs, atol=1e-9)


def test_cross_fitted_never_scores_an_image_with_its_own_fit():
    probs, y = overconfident(600)
    scaled, temps = calibration.cross_fitted(probs, y, folds=2, seed=0)
    assert len(temps) == 2 and all(t > 1 for t in temps)
    order = np.random.default_rng(0).permutation(len(y))
    first = np.array_split(order, 2)[0]
    y_changed = y.copy()
    y_changed[first] = (y[first] + 1) % 5  # labels of the first part only
    scaled_changed, temps_changed = calibration.cross_fitted(probs, y_changed, folds=2, seed=0)
    assert np.allclose(scaled_changed[first], scaled[first])  # fitted on the other part
    assert temps_changed[1] != temps[1]


def test_bootstrap_errors():
    probs, y = overconfident(2000)
    small, large = calibration.ece_se(probs[:200], y[:200]), calibration.ece_se(probs, y)
    assert 0 < large < small
    scaled = calibration.scale(probs, 2.0)
    gap, se = calibration.ece_gap(probs, scaled, y)
    assert gap == pytest.approx(calibration.ece(probs, y) - calibration.ece(scaled, y))
    assert gap > 3 * se > 0
