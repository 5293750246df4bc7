"""The baselines a skeptic runs first: a linear model on raw pixels (or any fixed features)
with its regularisation chosen by cross-validation on the labelled images alone.

Met in 01_feature_extraction, explained in 04_when_fine_tuning_pays (section 2); later notebooks
put the same baseline next to every claim that transfer or fine-tuning pays.
"""

from __future__ import annotations

import numpy as np

CS = (0.001, 0.01, 0.1, 1.0, 10.0)  # the regularisation strengths fit_logreg chooses from


def pixels(x: np.ndarray, size: int | None = None) -> np.ndarray:
    """Images (n, h, w[, c]) 0..255 -> (n, d) float32 in 0..1: the raw pixels as features.

    Colour channels are averaged to grey when they are equal (digits copied into three
    channels); `size` shrinks the images first (bilinear), so a linear model on a 96-pixel
    copy sees the same pixels as on the original."""
    chunks = [slice(start, start + 256) for start in range(0, len(x), 256)]  # memory stays low
    grey = all(np.asarray(x[c]).ndim == 3 or np.asarray(x[c]).shape[-1] == 3 and (
        np.ptp(np.asarray(x[c]), axis=-1) == 0).all() for c in chunks)
    rows = []
    for c in chunks:
        part = np.asarray(x[c], dtype="float32")
        part = part[..., None] if part.ndim == 3 else part[..., :1] if grey else part
        if size is not None and part.shape[1] != size:
            import keras

            part = keras.ops.convert_to_numpy(keras.ops.image.resize(part, (size, size)))
        rows.append((part / 255.0).reshape(len(part), -1))
    return np.concatenate(rows)


def fit_logreg(f_train: np.ndarray, y_train: np.ndarray, cs=CS, folds: int = 3,
               standardise: bool = False):
    """A multinomial logistic regression run to convergence, with C chosen from `cs` by
    stratified `folds`-fold cross-validation on the training rows only (no test image is
    looked at); with one C in `cs`, that one; with fewer than 2 rows in some class, C = 1.
    `standardise` scales each feature first (it hurts raw pixels: rare edge pixels get as
    loud as the strokes). Returns the fitted pipeline; `.score(f, y)` gives accuracy,
    `.chosen_c` the C picked."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    def model(c: float):
        steps = [StandardScaler()] if standardise else []
        return make_pipeline(*steps, LogisticRegression(C=c, max_iter=5000))

    with threadpool_limits(1):  # small fits: BLAS threads only fight over a loaded machine
        return _fit_logreg(model, f_train, np.asarray(y_train), cs, folds)


def _fit_logreg(model, f_train, y_train, cs, folds):
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    k = min(folds, int(np.bincount(y_train).min()) if len(y_train) else 0)
    chosen = float(cs[0]) if len(cs) == 1 else 1.0
    if k >= 2 and len(cs) > 1:
        split = StratifiedKFold(k, shuffle=True, random_state=0)
        scores = [cross_val_score(model(c), f_train, y_train, cv=split).mean() for c in cs]
        chosen = float(cs[int(np.argmax(scores))])
    fitted = model(chosen).fit(f_train, y_train)
    fitted.chosen_c = chosen
    return fitted


def logreg_accuracy(f_train, y_train, f_test, y_test, cs=CS, folds: int = 3,
                    standardise: bool = False) -> float:
    """Test accuracy of fit_logreg on (f_train, y_train): the converged linear baseline on
    any features, raw pixels (`pixels`), word counts or a frozen backbone's embeddings."""
    return float(fit_logreg(f_train, y_train, cs, folds, standardise).score(f_test, y_test))
