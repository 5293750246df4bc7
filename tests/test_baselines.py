"""The skeptic's baselines (tlutils.baselines) and the t critical value of stats.verdict."""

import numpy as np
import pytest

from tlutils import baselines, stats


def test_pixels_greys_equal_channels_and_scales_to_unit_range():
    grey = np.arange(2 * 4 * 4, dtype=np.uint8).reshape(2, 4, 4) * 7
    colour = np.repeat(grey[..., None], 3, axis=-1)
    f = baselines.pixels(colour)
    assert f.shape == (2, 16)
    np.testing.assert_allclose(f, grey.reshape(2, -1) / 255.0, rtol=1e-6)
    mixed = colour.copy()
    mixed[..., 0] = 0
    assert baselines.pixels(mixed).shape == (2, 48)  # real colour stays colour
    assert baselines.pixels(colour, size=2).shape == (2, 4)


def test_fit_logreg_chooses_c_on_training_rows_and_learns():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 30)
    f = rng.normal(size=(90, 5)) + 2.0 * np.eye(3, 5)[y]
    model = baselines.fit_logreg(f, y)
    assert model.chosen_c in baselines.CS
    y_test = np.repeat(np.arange(3), 50)
    f_test = rng.normal(size=(150, 5)) + 2.0 * np.eye(3, 5)[y_test]
    assert model.score(f_test, y_test) > 0.7
    # the C it picks is the one with the best cross-validated accuracy on the training rows
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    noisy = rng.normal(size=(90, 40)) + 0.4 * np.eye(3, 40)[y]  # many noise features
    split = StratifiedKFold(3, shuffle=True, random_state=0)
    scores = [cross_val_score(LogisticRegression(C=c, max_iter=5000), noisy, y, cv=split).mean()
              for c in baselines.CS]
    best = baselines.CS[int(np.argmax(scores))]
    assert best != 1.0, "the test needs data where the default C is not the best"
    assert baselines.fit_logreg(noisy, y).chosen_c == best
    # one row of some class: no cross-validation is possible, C = 1
    assert baselines.fit_logreg(f[:61], y[:61]).chosen_c == 1.0


def test_critical_t_matches_tables_and_verdict_uses_it():
    assert stats.critical_t(3) == pytest.approx(4.303, abs=1e-3)
    assert stats.critical_t(5) == pytest.approx(2.776, abs=1e-3)
    assert stats.critical_t(10_000) == pytest.approx(1.960, abs=1e-3)
    assert stats.verdict(0.05, 0.013) == "better than"  # 3.8 SE clears the fixed 3
    assert stats.verdict(0.05, 0.013, n=3) == "not clearly different from"  # needs 4.3
    assert stats.verdict(-0.05, 0.01, n=3) == "worse than"
    with pytest.raises(ValueError, match="at least 2 pairs"):
        stats.critical_t(1)
