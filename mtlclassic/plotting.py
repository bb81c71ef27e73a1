"""Figures (matplotlib is optional: ``pip install 'mtlclassic[plot]'``)."""

import numpy as np


def plot_task_relation(model_or_matrix, task_names=None, title="task relation", ax=None,
                       annotate=None):
    """Annotated heatmap of a task relation / correlation matrix, diverging colours centred
    at 0 (blue negative, red positive, fixed range [-1, 1] for correlations).

    Parameters
    ----------
    model_or_matrix : fitted multi-task estimator (its ``task_relation_``) or (T, T) array
    task_names : labels of the rows/columns
    annotate : write the values in the cells (default: when T <= 20)

    Returns the matplotlib Axes.
    """
    import matplotlib.pyplot as plt

    R = getattr(model_or_matrix, "task_relation_", model_or_matrix)
    if R is None:
        raise ValueError("this model has no task_relation_ (its penalty uses none)")
    R = np.asarray(R, dtype=np.float64)
    if R.ndim != 2 or R.shape[0] != R.shape[1]:
        raise ValueError(f"a task relation must be a square matrix, got shape {R.shape}")
    T = R.shape[0]
    if task_names is None:
        task_names = [str(t) for t in range(T)]
    if len(task_names) != T:
        raise ValueError(f"task_names has {len(task_names)} names for {T} tasks")
    if ax is None:
        _, ax = plt.subplots(figsize=(1.0 + 0.45 * T, 0.6 + 0.45 * T))
    lim = max(1.0, float(np.nanmax(np.abs(R)))) if R.size else 1.0
    im = ax.imshow(R, cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax.set_xticks(range(T), labels=task_names, rotation=60, ha="right")
    ax.set_yticks(range(T), labels=task_names)
    if annotate is None:
        annotate = T <= 20
    if annotate:
        for i in range(T):
            for j in range(T):
                ax.text(j, i, f"{R[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if abs(R[i, j]) > 0.6 * lim else "black")
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    if title:
        ax.set_title(title)
    return ax


def plot_regularization_path(cv_model, ax=None):
    """Mean cross-validated score against alpha (log axis) with a +/- one standard deviation
    band, one line per (l2, intercept_scaling) pair, and the chosen alpha marked. Returns
    the Axes."""
    import matplotlib.pyplot as plt

    res = getattr(cv_model, "cv_results_", None)
    if res is None:
        raise ValueError("plot_regularization_path needs a fitted CV estimator (cv_results_)")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    alphas = res["alphas"]
    scalings = res.get("intercept_scalings", [None] * len(res["l2s"]))
    for i, (l2, s) in enumerate(zip(res["l2s"], scalings)):
        mean, std = res["mean_score"][i], res["std_score"][i]
        label = (f"l2 = {l2}" if isinstance(l2, str) else f"l2 = {l2:g}") + (
            "" if s is None else f", intercept_scaling = {s:g}")
        ax.plot(alphas, mean, marker="o", label=label)
        ax.fill_between(alphas, mean - std, mean + std, alpha=0.2)
    ax.axvline(cv_model.alpha_, color="k", linestyle="--", linewidth=1,
               label=f"alpha_ = {cv_model.alpha_:.3g}")
    ax.set_xscale("log")
    ax.set_xlabel("alpha")
    ax.set_ylabel("mean CV score")
    ax.legend(fontsize=8)
    return ax
