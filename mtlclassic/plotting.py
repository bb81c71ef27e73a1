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
    owner = getattr(model_or_matrix, "subtask_task_", None)
    n_tasks = getattr(model_or_matrix, "n_tasks_", None)
    if task_names is None:
        task_names = [str(t) for t in range(n_tasks if owner is not None else T)]
    if owner is not None and len(owner) == T and len(task_names) == n_tasks != T:
        task_names = _subtask_names(model_or_matrix, list(task_names))
    if len(task_names) != T:
        raise ValueError(f"task_names has {len(task_names)} names for {T} tasks"
                         + (f" (give one per task, {n_tasks}, or per sub-task, {T})"
                            if n_tasks not in (None, T) else ""))
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


def _subtask_names(model, task_names):
    """'task:class' for each one-vs-rest sub-task of a multi-class task, 'task' else."""
    classes = model.classes_ if isinstance(model.classes_, list) else [model.classes_]
    names = []
    for t, name in enumerate(task_names):
        cols = np.flatnonzero(model.subtask_task_ == t)
        names += [name] if len(cols) == 1 else [f"{name}:{c}" for c in classes[t]]
    return names


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
    chosen = f"alpha_ = {cv_model.alpha_:.3g}"
    if len(res["l2s"]) > 1:
        chosen += f", l2_ = {cv_model.l2_:g}"
    if getattr(cv_model, "intercept_scaling_", None) is not None and len(scalings) > 1:
        chosen += f", intercept_scaling_ = {cv_model.intercept_scaling_:g}"
    ax.axvline(cv_model.alpha_, color="k", linestyle="--", linewidth=1, label=chosen)
    best = [i for i, (l2, sc) in enumerate(zip(res["l2s"], scalings))
            if l2 == cv_model.l2_ and sc == getattr(cv_model, "intercept_scaling_", sc)]
    if best:
        j = int(np.argmin(np.abs(np.asarray(alphas) - cv_model.alpha_)))
        ax.plot([alphas[j]], [res["mean_score"][best[0]][j]], marker="*", markersize=14,
                color="k", linestyle="none", label="chosen")
    ax.set_xscale("log")
    ax.set_xlabel("alpha")
    ax.set_ylabel("mean CV score")
    ax.legend(fontsize=8)
    return ax


def plot_landmarks(images, predicted, true=None, landmark_names=None, n_faces=12,
                   n_cols=6, title=None, fig=None):
    """Faces with predicted (red +) and true (green o) landmarks, and, with ``true``, the
    mean error of each landmark over all faces given (inter-ocular normalised, in %).

    Parameters
    ----------
    images : list of (H, W) or (H, W, 3) images
    predicted, true : (n, m, 2) pixel coordinates (x, y)
    landmark_names : m names for the error bars
    n_faces : faces drawn (the first ones)

    Returns the matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    from .landmarks import landmark_errors

    k = min(int(n_faces), len(images))
    n_rows = -(-k // n_cols)
    extra = 1 if true is not None else 0
    if fig is None:
        fig = plt.figure(figsize=(2.2 * n_cols, 2.3 * (n_rows + extra)))
    for i in range(k):
        ax = fig.add_subplot(n_rows + extra, n_cols, i + 1)
        im = np.asarray(images[i])
        ax.imshow(im, cmap="gray" if im.ndim == 2 else None)
        if true is not None:
            ax.plot(true[i, :, 0], true[i, :, 1], "o", mfc="none", mec="lime", ms=5)
        ax.plot(predicted[i, :, 0], predicted[i, :, 1], "+", color="red", ms=7, mew=1.5)
        ax.set_axis_off()
    if true is not None:
        err = 100 * np.nanmean(landmark_errors(predicted, true), axis=0)
        ax = fig.add_subplot(n_rows + extra, 1, n_rows + extra)
        names = landmark_names or [f"point {j}" for j in range(len(err))]
        ax.bar(names, err, color="tab:red")
        for x, v in enumerate(err):
            ax.text(x, v, f"{v:.1f}", ha="center", va="bottom", fontsize=8)
        ax.set_ylabel("mean error (% inter-ocular)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
