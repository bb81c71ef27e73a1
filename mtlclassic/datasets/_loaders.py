"""Loaders of the data files described in the project's shared/data/SOURCES.md."""

import os
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch


def data_home(data_home=None):
    """Where data files are looked for: the argument alone when given (a mistyped folder
    is an error, not a silent fall-back); else ``$MTLCLASSIC_DATA``, then ``shared/data``
    next to the source checkout. Returns the candidate list."""
    if data_home is not None:
        return [Path(data_home)]
    cands = []
    if os.environ.get("MTLCLASSIC_DATA"):
        cands.append(Path(os.environ["MTLCLASSIC_DATA"]))
    repo = Path(__file__).resolve().parents[2]
    cands.append(repo.parent / "shared" / "data")
    cands.append(repo / "shared" / "data")
    return cands


def _find(rel, data_home_):
    cands = data_home(data_home_)
    for d in cands:
        if (d / rel).is_file():
            return d / rel
    raise FileNotFoundError(f"{rel} not found; looked in: " + ", ".join(str(d) for d in cands)
                            + " (pass data_home= or set MTLCLASSIC_DATA)")


def load_mfeat_digits(data_home=None):
    """UCI "Multiple Features" digit pixels: 2000 images of 16 x 15 (values 0..6), 200 per
    digit. Returns a Bunch with ``data`` (2000, 240), ``images`` (2000, 16, 15), ``target``
    (digit) and ``targets`` (2000, 10) one-vs-rest 0/1 columns (one task per digit)."""
    path = _find(Path("mfeat") / "mfeat-pix.txt", data_home)
    X = np.loadtxt(path)
    digit = np.repeat(np.arange(10), 200)
    return Bunch(data=X, images=X.reshape(-1, 16, 15), target=digit,
                 targets=(digit[:, None] == np.arange(10)).astype(int),
                 target_names=[f"is_{d}" for d in range(10)], path=str(path))


def load_school(data_home=None):
    """The ILEA "School" benchmark (139 schools, 15 362 students, exam score as target).

    Returns a Bunch with ``data`` (15362, 27) float (the bias column dropped), ``target``
    (15362,) exam scores, ``task`` (15362,) school index, and ``X_wide, Y_wide`` from
    :func:`mtlclassic.multitask.long_to_wide` (one column per school)."""
    import scipy.io

    from ..multitask import long_to_wide

    path = _find(Path("malsar") / "school.mat", data_home)
    d = scipy.io.loadmat(path)
    Xs, Ys = d["X"][0], d["Y"][0]
    X = np.vstack([np.asarray(x, dtype=np.float64)[:, :27] for x in Xs])
    y = np.concatenate([np.asarray(v, dtype=np.float64).ravel() for v in Ys])
    task = np.concatenate([np.full(len(v), t) for t, v in enumerate(Ys)])
    Xw, Yw, _ = long_to_wide(X, y, task)
    return Bunch(data=X, target=y, task=task, X_wide=Xw, Y_wide=Yw, n_tasks=len(Ys),
                 path=str(path))


def load_digits_multitask():
    """scikit-learn's bundled 8 x 8 digits with three tasks: ``digit`` (10 classes),
    ``parity`` ("even"/"odd") and ``ge5`` (digit >= 5)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    t = d.target
    targets = np.empty((len(t), 3), dtype=object)
    targets[:, 0] = t
    targets[:, 1] = np.where(t % 2 == 0, "even", "odd")
    targets[:, 2] = t >= 5
    return Bunch(data=d.data, images=d.images, targets=targets,
                 target_names=["digit", "parity", "ge5"])


NEWSGROUP_PAIRS = {"comp.vs.sci": ("task1.mat", "task2.mat"),
                   "rec.vs.talk": ("Task1.mat", "Task2.mat")}


def load_newsgroup(pair="comp.vs.sci", data_home=None):
    """Two 20-Newsgroups tasks sharing a 2,000-term vocabulary, as MALSAR redistributes
    them (``malsar/Newsgroup/<pair>/``; see DATA.md): sparse term counts, labels 1/2.

    The tasks hold different documents, so in the wide layout each row is labelled in one
    task: ``data`` is a CSR matrix (n1 + n2, 2000) float64 (never densified), ``targets``
    (n1 + n2, 2) float with NaN where a document belongs to the other task, ``task`` the
    task of each row."""
    import scipy.io
    import scipy.sparse

    if pair not in NEWSGROUP_PAIRS:
        raise ValueError(f"pair must be one of {sorted(NEWSGROUP_PAIRS)}, got {pair!r}")
    mats = [scipy.io.loadmat(_find(Path("malsar") / "Newsgroup" / pair / f, data_home))
            for f in NEWSGROUP_PAIRS[pair]]
    X = scipy.sparse.vstack([scipy.sparse.csr_matrix(m["fea"], dtype=np.float64)
                             for m in mats], format="csr")
    labels = [np.asarray(m["gnd"], dtype=np.float64).ravel() for m in mats]
    Y = np.full((X.shape[0], 2), np.nan)
    Y[:len(labels[0]), 0] = labels[0]
    Y[len(labels[0]):, 1] = labels[1]
    task = np.repeat([0, 1], [len(v) for v in labels])
    return Bunch(data=X, targets=Y, task=task, pair=pair,
                 target_names=[f"{pair}:task1", f"{pair}:task2"])
