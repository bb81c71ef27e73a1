"""Face boxes of the evaluation protocol and the landmark error metrics."""

import numbers

import numpy as np
from sklearn.utils import check_random_state


def check_landmarks(landmarks, n=None, name="landmarks", allow_nan=True):
    """(n, m, 2) float64 pixel coordinates (x, y); NaN marks an unknown point when
    ``allow_nan``."""
    L = np.asarray(landmarks, dtype=np.float64)
    if L.ndim != 3 or L.shape[2] != 2 or L.shape[1] < 1:
        raise ValueError(f"{name} must have shape (n_faces, n_points, 2) with (x, y) pixel "
                         f"coordinates, got {np.shape(landmarks)}")
    if n is not None and L.shape[0] != n:
        raise ValueError(f"{name} has {L.shape[0]} faces but there are {n} images")
    if np.isinf(L).any() or (not allow_nan and np.isnan(L).any()):
        raise ValueError(f"{name} contain infinity" if np.isinf(L).any() else
                         f"{name} contain NaN")
    return L


def check_boxes(boxes, n, images=None):
    """(n, 4) boxes (x, y, width, height) in pixels: finite, width and height > 0, and
    overlapping their image when the images are given."""
    B = np.asarray(boxes, dtype=np.float64)
    if B.shape != (n, 4):
        raise ValueError(f"boxes must have shape (n_faces, 4) = ({n}, 4) as (x, y, width, "
                         f"height) in pixels, got {np.shape(boxes)}")
    if not np.all(np.isfinite(B)):
        raise ValueError("boxes contain NaN or infinity")
    bad = np.flatnonzero((B[:, 2] <= 0) | (B[:, 3] <= 0))
    if bad.size:
        raise ValueError(f"boxes[{bad[0]}] = {B[bad[0]].tolist()}: width and height must be "
                         "> 0")
    if images is not None:
        for i, im in enumerate(images):
            if np.ndim(im) not in (2, 3):
                raise ValueError(f"images[{i}] must be a 2-D grey or (H, W, 3) RGB image, got "
                                 f"shape {np.shape(im)}")
            H, W = np.shape(im)[:2]
            x, y, w, h = B[i]
            if x >= W or y >= H or x + w <= 0 or y + h <= 0:
                raise ValueError(f"boxes[{i}] = {B[i].tolist()} lies outside its image of "
                                 f"{W} x {H} pixels")
    return B


def face_boxes(landmarks, enlarge=2.0, jitter=0.1, random_state=0):
    """Square face boxes from landmarks: the protocol of ``benchmarks/mtfl.py``.

    The square centred on the bounding box of the points, of side ``enlarge`` times the
    larger side of that bounding box, then shifted by up to ``jitter`` times its side in x
    and y and scaled by a factor within [1 - jitter, 1 + jitter] (uniform, seeded): a
    detector-like box that does not give the points away.

    Parameters
    ----------
    landmarks : (n, m, 2) pixel coordinates (x, y); NaN points are ignored (a face needs
        two known points)
    enlarge : float > 0
    jitter : float in [0, 0.5)
    random_state : int, RandomState or None

    Returns
    -------
    (n, 4) float64 boxes (x, y, side, side)
    """
    L = check_landmarks(landmarks)
    if isinstance(enlarge, bool) or not isinstance(enlarge, numbers.Real) or not enlarge > 0:
        raise ValueError(f"enlarge must be a number > 0, got {enlarge!r}")
    if isinstance(jitter, bool) or not isinstance(jitter, numbers.Real) or not (
            0 <= jitter < 0.5):
        raise ValueError(f"jitter must be a number in [0, 0.5), got {jitter!r}")
    known = np.isfinite(L).all(axis=2).sum(axis=1)
    if np.any(known < 2):
        raise ValueError(f"face {int(np.flatnonzero(known < 2)[0])} has fewer than two known "
                         "landmarks: no box can be placed")
    lo, hi = np.nanmin(L, axis=1), np.nanmax(L, axis=1)
    centre = (lo + hi) / 2
    side = enlarge * np.max(hi - lo, axis=1)
    if np.any(side == 0):
        raise ValueError(f"face {int(np.flatnonzero(side == 0)[0])}: its known landmarks are "
                         "all one point: no box can be placed")
    rng = check_random_state(random_state)
    n = len(L)
    shift = rng.uniform(-jitter, jitter, (n, 2)) * side[:, None]
    side = side * rng.uniform(1 - jitter, 1 + jitter, n)
    centre = centre + shift
    return np.column_stack([centre - side[:, None] / 2, side, side])


def landmark_errors(predicted, true, left_eye=0, right_eye=1):
    """Point-to-point errors normalised by the inter-ocular distance.

    Parameters
    ----------
    predicted, true : (n, m, 2) pixel coordinates; NaN true points are left out
    left_eye, right_eye : the indices of the eye centres (MTFL: 0 and 1)

    Returns
    -------
    (n, m) distances ||p - t|| / ||t_left_eye - t_right_eye|| (NaN where the truth is
    unknown). The mean over points is the per-face error of the MTFL protocol (Zhang et
    al., ECCV 2014), usually reported in %; a face fails when it exceeds 10 %.
    """
    P, L = check_landmarks(predicted, name="predicted"), check_landmarks(true, name="true")
    if P.shape != L.shape:
        raise ValueError(f"predicted {P.shape} and true {L.shape} landmarks differ in shape")
    m = L.shape[1]
    for name, i in (("left_eye", left_eye), ("right_eye", right_eye)):
        if isinstance(i, bool) or not isinstance(i, numbers.Integral) or not -m <= i < m:
            raise ValueError(f"{name} must be a point index in [-{m}, {m}), got {i!r}")
    iod = np.linalg.norm(L[:, left_eye] - L[:, right_eye], axis=1)
    if np.any(~(iod > 0)):
        raise ValueError("a face's inter-ocular distance is zero or unknown")
    return np.linalg.norm(P - L, axis=2) / iod[:, None]
