"""Plots the notebooks share: curves, image grids, confusion matrices, embedding maps.

First used in 00_start_here (embedding map), 01_feature_extraction (the rest) and
05_data_augmentation (image_grid, rows of images side by side).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np


def plot_history(histories: dict, metric: str = "accuracy", ax=None):
    """Validation (solid) and training (dashed) curves of several keras History objects."""
    ax = ax or plt.subplots(figsize=(6, 3.5))[1]
    for i, (label, hist) in enumerate(histories.items()):
        h = getattr(hist, "history", hist)
        color = f"C{i}"
        if f"val_{metric}" in h:
            ax.plot(h[f"val_{metric}"], color=color, label=f"{label} (val)")
        ax.plot(h[metric], color=color, ls="--", alpha=0.6, label=f"{label} (train)")
    ax.set(xlabel="epoch", ylabel=metric)
    ax.legend(fontsize=8)
    return ax


def show_images(x: np.ndarray, y_true, class_names, y_pred=None, n: int = 12, cols: int = 6,
                title: str | None = None):
    """A grid of images labelled true (and predicted; red when wrong)."""
    n = min(n, len(x))
    if n == 0:
        print("(no images to show)")
        return None
    rows = int(np.ceil(n / cols))
    lines = max(str(class_names[y_true[i]]).count("\n") for i in range(n)) + (y_pred is not None)
    # constrained layout keeps the figure title and multi-line image titles off the images
    fig, axes = plt.subplots(rows, cols, figsize=(1.8 * cols, (1.9 + 0.15 * lines) * rows + 0.3),
                             squeeze=False, layout="constrained")
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(np.asarray(x[i]).astype("uint8"))
        label = class_names[y_true[i]]
        wrong = y_pred is not None and y_pred[i] != y_true[i]
        if y_pred is not None:
            label = f"true: {label}\npred: {class_names[y_pred[i]]}"
        ax.set_title(label, fontsize=8, color="red" if wrong else "black")
    if title:
        fig.suptitle(title)
    return fig


def image_grid(rows: dict, col_titles=None, titles: dict | None = None, size: float = 1.5,
               cmap: str | None = None, suptitle: str = ""):
    """One labelled row of images per entry of `rows` (name -> images, 0..255, clipped).

    col_titles label the columns; titles[name] gives one small title per image of that row.
    Grey images (h x w x 1) are drawn with `cmap`. Returns the figure.
    """
    n_cols = max(len(images) for images in rows.values())
    fig, axes = plt.subplots(len(rows), n_cols, figsize=(size * n_cols, size * len(rows)),
                             squeeze=False, layout="constrained")  # room for the titles
    for r, (name, images) in enumerate(rows.items()):
        for c, ax in enumerate(axes[r]):
            ax.set(xticks=[], yticks=[])
            if c >= len(images):
                ax.axis("off")
                continue
            image = np.clip(np.asarray(images[c]), 0, 255).astype("uint8")
            ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap=cmap)
            if titles and name in titles:
                ax.set_title(titles[name][c], fontsize=7)
        axes[r, 0].set_ylabel(name, fontsize=8)
    for c, title in enumerate(col_titles or []):
        axes[0, c].set_title(title, fontsize=9)
    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    return fig


def plot_confusion(y_true, y_pred, class_names, ax=None):
    """Confusion matrix with counts (rows: true class, columns: predicted)."""
    from sklearn.metrics import confusion_matrix

    cm = confusion_matrix(y_true, y_pred, labels=range(len(class_names)))
    ax = ax or plt.subplots(figsize=(1 + 0.6 * len(class_names),) * 2)[1]
    ax.imshow(cm, cmap="Blues")
    ticks = range(len(class_names))
    ax.set(xticks=ticks, yticks=ticks, xlabel="predicted", ylabel="true")
    ax.set_xticklabels(class_names, rotation=45, ha="right")
    ax.set_yticklabels(class_names)
    for i, j in np.ndindex(cm.shape):
        color = "white" if cm[i, j] > cm.max() / 2 else "black"
        ax.text(j, i, cm[i, j], ha="center", va="center", color=color)
    return ax


def embed_2d(features: np.ndarray, method: str = "pca", seed: int = 0) -> np.ndarray:
    """Project embeddings to 2-D with PCA (fast, linear) or t-SNE (keeps neighbours)."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    if method == "pca":
        return PCA(n_components=2, random_state=seed).fit_transform(features)
    perplexity = min(30.0, (len(features) - 1) / 3)
    return TSNE(n_components=2, perplexity=perplexity, random_state=seed).fit_transform(features)


def plot_embedding(points: np.ndarray, y, class_names, ax=None, title: str = "",
                   marker: str = "o"):
    """Scatter 2-D points coloured by class."""
    ax = ax or plt.subplots(figsize=(5, 4))[1]
    y = np.asarray(y)
    for c, name in enumerate(class_names):
        sel = y == c
        ax.scatter(points[sel, 0], points[sel, 1], s=12, marker=marker, color=f"C{c}",
                   label=name, alpha=0.7)
    ax.set(title=title, xticks=[], yticks=[])
    ax.legend(fontsize=8, markerscale=1.5)
    return ax
