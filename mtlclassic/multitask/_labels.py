"""Target encoding: wide (n, T) targets with missing entries -> sub-task matrices.

Regression: each column is a sub-task. Classification: a column with K classes becomes
one sub-task (K = 2, y in {-1, +1} for classes_[1]) or K one-vs-rest sub-tasks.
"""

import decimal
import numbers

import numpy as np
from sklearn.utils.multiclass import type_of_target


def is_missing_value(v):
    """Whether one label is "unlabelled": None, a NaN of any float width (Python, NumPy,
    ``decimal``), ``pd.NA``, ``pd.NaT`` or NumPy's ``NaT``."""
    if v is None:
        return True
    if type(v).__name__ in ("NAType", "NaTType"):  # pandas' missing markers
        return True
    if isinstance(v, decimal.Decimal):
        return v.is_nan()  # quiet and signalling NaNs (sNaN != sNaN raises)
    try:
        return bool(v != v)  # NaN (any width), NaT: the only values unequal to themselves
    except (TypeError, ValueError):  # an object whose != is not a truth value
        return False


def missing_mask(Y, missing_label=None):
    """True where an entry is unlabelled: NaN/NaT/``pd.NA``/None (see is_missing_value) or
    equal to ``missing_label``."""
    Y = np.asarray(Y)
    if Y.dtype.kind == "f":
        miss = np.isnan(Y)
    elif Y.dtype.kind in "mM":
        miss = np.isnat(Y)
    elif Y.dtype.kind == "O":
        miss = np.fromiter((is_missing_value(v) for v in Y.ravel()), dtype=bool,
                           count=Y.size).reshape(Y.shape)
    else:
        miss = np.zeros(Y.shape, dtype=bool)
    if missing_label is not None and not is_missing_value(missing_label):
        if Y.dtype.kind == "O":
            hit = np.fromiter((_equal(v, missing_label) for v in Y.ravel()), dtype=bool,
                              count=Y.size).reshape(Y.shape)
        else:
            with np.errstate(invalid="ignore"):
                hit = np.asarray(Y == missing_label, dtype=bool)
        miss |= hit
    return miss


def _equal(v, label):
    try:
        return bool(v == label)
    except (TypeError, ValueError):
        return False


def check_real_targets(Y, name="y"):
    """Refuse complex targets (as scikit-learn refuses complex X): a complex y would be
    fitted on its real part only."""
    Y = np.asarray(Y)
    if Y.dtype.kind == "c" or (Y.dtype.kind == "O" and any(
            isinstance(v, (complex, np.complexfloating)) for v in Y.ravel())):
        raise ValueError(f"{name} holds complex values; labels and regression targets must "
                         "be real (or class labels)")


def as_2d_targets(Y):
    if hasattr(Y, "tocsr") or type(Y).__module__.startswith("scipy.sparse"):
        raise ValueError("y is a sparse matrix: targets must be dense (an unlabelled entry "
                         "is NaN or None, not an implicit zero); use y.toarray()")
    if not hasattr(Y, "dtype") and not hasattr(Y, "__array__"):
        # a list mixing strings with NaN or None: NumPy would make it strings ('nan' and
        # 'None' would become classes); keep the Python objects instead
        if np.asarray(Y).dtype.kind in "US":
            Y = np.array(Y, dtype=object)
    Y = np.asarray(Y)
    check_real_targets(Y)
    if Y.ndim == 1:
        return Y[:, None], True
    if Y.ndim != 2:
        raise ValueError(f"Y must be 1-D (one task) or 2-D (n_samples, n_tasks), got shape "
                         f"{Y.shape}")
    if Y.shape[1] == 0:
        raise ValueError(f"Y of shape {Y.shape} has no task: at least one column is needed")
    return Y, False


def check_labelled(miss, task_names=None):
    for t in range(miss.shape[1]):
        if miss[:, t].all():
            raise ValueError(f"task {t} has no labelled sample (every entry of column {t} of "
                             "Y is missing)")


def encode_regression(Y, miss):
    """The targets in float64 with unlabelled entries 0. Float64, C-ordered targets with
    every label present are not copied: a read-only view of them (the solvers only read
    Y; a copy was one more (n, T) array through the fit -- half of X's size on a tall
    100,000 x 20 X with ten targets)."""
    if isinstance(Y, np.ndarray) and Y.dtype == np.float64 and Y.flags.c_contiguous \
            and not miss.any():
        Yf = Y.view()
        Yf.flags.writeable = False
    else:
        try:
            Yf = np.asarray(Y, dtype=np.float64).copy() if Y.dtype.kind != "O" else \
                np.where(miss, 0.0, Y).astype(np.float64)
        except (TypeError, ValueError) as e:  # e.g. a class label in a regression target
            raise ValueError(f"Y: regression targets must be real numbers ({e})") from None
        Yf[miss] = 0.0
    check_finite_targets(Yf)
    if Yf.size and not np.isfinite(squares_sum(Yf)):  # the squared loss would overflow
        raise_targets_overflow(np.abs(Yf).max())
    return Yf


def check_finite_targets(v):
    """A ValueError for infinite labelled targets, or NaN ones: a NaN among the labelled
    entries came from a value such as the string 'nan' (NaN itself marks a missing one)."""
    if not np.all(np.isfinite(v)):
        if np.any(np.isnan(v)):
            raise ValueError("Y contains NaN among its labelled entries (a value such as the "
                             "string 'nan' is not a missing label: give NaN or None, or set "
                             "missing_label)")
        raise ValueError("Y contains infinity")


def regression_columns(Y, miss):
    """:func:`encode_regression`'s values and checks per task, no (n, T) array: for each
    column t, its labelled rows and their targets in float64 (the same errors: targets
    that are not real numbers, infinity, squares overflowing float64)."""
    rows, values = [], []
    total = 0.0
    if Y.dtype.kind not in "biufO":  # strings: converted whole, as encode_regression does
        try:  # (a missing-label string is then an error on every path: review)
            np.asarray(Y, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise ValueError(f"Y: regression targets must be real numbers ({e})") from None
    for t in range(Y.shape[1]):
        r = np.flatnonzero(~miss[:, t])
        try:
            v = np.asarray(Y[r, t], dtype=np.float64)
        except (TypeError, ValueError) as e:  # e.g. a class label in a regression target
            raise ValueError(f"Y: regression targets must be real numbers ({e})") from None
        check_finite_targets(v)
        total += squares_sum(v)
        rows.append(r)
        values.append(v)
    if not np.isfinite(total):  # the squared loss would overflow
        raise_targets_overflow(max(float(np.abs(v).max()) for v in values if v.size))
    return rows, values


def squares_sum(a):
    """sum(a^2), inf where it overflows (without an overflow warning or error)."""
    with np.errstate(over="ignore"):
        return float(np.sum(np.square(a)))


def raise_targets_overflow(top):
    raise ValueError(f"Y: the squared loss of these targets overflows float64 (largest |y| = "
                     f"{top:.3g}); rescale Y (e.g. divide it by its standard deviation)")


def check_weight_sum(total, top, name):
    """A ValueError naming ``name`` when its weights' sum ``total`` overflowed."""
    if not np.isfinite(total):
        raise ValueError(f"{name} sums to infinity in float64 (largest weight {top:.3g}): "
                         "rescale it")


def weight_sum(w):
    """sum(w), inf where it overflows (without an overflow warning or error)."""
    with np.errstate(over="ignore"):
        return float(np.sum(w))


def task_classes(values, t):
    """The sorted classes of task ``t`` from its labelled ``values`` (or their unique
    values): a ValueError for continuous targets, a single class or unorderable types."""
    try:
        cls = np.unique(values)
        kind = type_of_target(values)
    except TypeError:
        types = sorted({type(v).__name__ for v in values})
        raise ValueError(f"task {t}: labels of mixed types ({', '.join(types)}) cannot be "
                         "ordered; give each task's labels one type (e.g. all str)") \
            from None
    except ValueError as e:  # scikit-learn's "Input contains infinity": name the task
        raise ValueError(f"task {t} of Y: {e}") from None
    if kind == "unknown" and all(isinstance(v, (numbers.Real, decimal.Decimal))
                                 and not isinstance(v, bool) for v in values):
        kind = type_of_target(np.asarray(values, dtype=np.float64))  # object-held numbers
    if kind in ("continuous", "continuous-multioutput"):
        raise ValueError(f"task {t}: the targets are continuous; MultiTaskClassifier needs "
                         "class labels (use MultiTaskRegressor for continuous targets)")
    if len(cls) < 2:
        raise ValueError(f"task {t} has only one class ({cls[0]!r}) among its labelled "
                         "samples; a classifier needs at least two")
    return cls


def encode_classification(Y, miss, classes=None, task_ids=None, compact=False):
    """Returns (Yenc (n, T') in {-1, +1}, mask (n, T'), classes_ list, subtask_task (T',)).
    ``classes`` (one sorted array per task, e.g. found over all blocks of a dask array)
    skips their search and checks: a row block is then encoded with every task's classes.
    ``task_ids``: the task number of each column of Y in the error messages (Y a subset
    of a model's tasks). ``compact``: Yenc in int8 (exactly the same values in an eighth
    of float64's bytes: the in-memory solvers and the native loss read it as it is) and,
    where no label is missing, the mask a read-only broadcast of True (no (n, T') array);
    each (n, T') float64 array is half of X's size on 100,000 x 20 with T' = 10, and the
    size of X on 8,000 x 256 with T' = 276, so these arrays, not X, set a fit's peak."""
    n, T = Y.shape
    found = [task_classes(Y[~miss[:, t], t], t if task_ids is None else task_ids[t])
             if classes is None else classes[t] for t in range(T)]
    owner = np.array([t for t, cls in enumerate(found)
                      for _ in range(1 if len(cls) == 2 else len(cls))], dtype=int)
    # the columns written into one (n, T') array: a list of T' columns stacked at the end
    # held the encoded targets twice at the set-up's peak (a classifier with 276 sub-tasks
    # on 8,000 x 256: two (n, T') arrays, each the size of X)
    Yenc = np.zeros((n, len(owner)), dtype=np.int8 if compact else np.float64)
    every = compact and not miss.any()
    mask = np.broadcast_to(np.True_, Yenc.shape) if every else \
        np.empty((n, len(owner)), dtype=bool)
    j = 0
    for t, cls in enumerate(found):
        lab = slice(None) if every else ~miss[:, t]
        idx = np.searchsorted(cls, Y[lab, t])
        for k in ([1] if len(cls) == 2 else range(len(cls))):
            Yenc[lab, j] = np.where(idx == k, 1, -1)
            if not every:
                mask[:, j] = lab
            j += 1
    return Yenc, mask, found, owner


def check_weights(w, n, name):
    if w is None:
        return np.ones(n)
    w = np.asarray(w, dtype=np.float64)
    if isinstance(w, numbers.Number) or w.ndim == 0:
        w = np.full(n, float(w))
    if w.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError(f"{name} must be finite and non-negative")
    check_weight_sum(weight_sum(w), w.max(), name)
    return w


def check_sample_weight(w, n, T):
    """``sample_weight`` of shape (n,) (one weight per sample, shared by every task) or
    (n, T) (one per entry). Returns (SW (n, T), sw (n,) or None when tasks differ). For
    one weight per sample SW is a read-only broadcast view of sw: an (n, T) array of
    copies would be one more (n, T) array alive through the fit's set-up (2.2x X's size
    on School's wide Y)."""
    if w is None:
        w = np.ones(n)
        return np.broadcast_to(w[:, None], (n, T)), w
    if hasattr(w, "tocsr"):
        raise ValueError("sample_weight is a sparse matrix: give a dense (n,) or (n, T) "
                         "array (sample_weight.toarray())")
    w = np.asarray(w)
    if w.dtype.kind not in "biuf":
        raise ValueError(f"sample_weight must hold real numbers, got dtype {w.dtype}")
    w = w.astype(np.float64)
    if w.ndim == 0:
        w = np.full(n, float(w))
    if w.shape not in ((n,), (n, T)):
        raise ValueError(f"sample_weight must have shape ({n},) or ({n}, {T}) (one weight "
                         f"per sample, or per sample and task), got {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("sample_weight must be finite and non-negative")
    check_weight_sum(weight_sum(w), w.max(), "sample_weight")
    if w.ndim == 1:
        return np.broadcast_to(w[:, None], (n, T)), w
    same = bool(np.all(w == w[:, :1]))
    return w, (w[:, 0].copy() if same else None)


def check_class_weight(class_weight, n_tasks):
    """``class_weight`` as a list of per-task specs (None, "balanced" or a dict)."""
    def one(cw, where):
        if cw is None or (isinstance(cw, str) and cw == "balanced"):
            return cw
        if isinstance(cw, dict):
            for k, v in cw.items():
                if isinstance(v, bool) or not isinstance(v, numbers.Real) or not (
                        np.isfinite(v) and v >= 0):
                    raise ValueError(f"class_weight{where}: the weight of class {k!r} must "
                                     f"be a finite number >= 0, got {v!r}")
            return cw
        raise ValueError(f"class_weight{where} must be None, 'balanced' or a dict "
                         f"{{class: weight}}, got {cw!r}")

    if isinstance(class_weight, (list, tuple)):
        if len(class_weight) != n_tasks:
            raise ValueError(f"class_weight: a list needs one entry per task ({n_tasks}), got "
                             f"{len(class_weight)}")
        return [one(cw, f"[{t}]") for t, cw in enumerate(class_weight)]
    if isinstance(class_weight, dict) and n_tasks > 1:
        raise ValueError(f"class_weight: a single dict is ambiguous for {n_tasks} tasks; give "
                         "a list of dicts, one per task (or 'balanced')")
    return [one(class_weight, "")] * n_tasks


def class_weight_matrix(specs, Y2, miss, SW, classes, owner, softmax_tasks=(), counts=None):
    """Loss multipliers (n, T') from per-task class weights, scikit-learn's meanings:

    * a dict {class: weight}: every entry of that class weighs ``weight`` (1 for classes
      not in the dict) in each of its task's sub-tasks;
    * "balanced": each sub-task's positives and negatives weigh n / (2 n_pos) and
      n / (2 n_neg) (weighted counts of its labelled entries): for a binary task this is
      ``LogisticRegression(class_weight="balanced")``; for the one-vs-rest sub-tasks of a
      K-class task it is what ``OneVsRestClassifier`` gives each binary problem; for a
      task with the softmax loss (``softmax_tasks``) each entry of class c weighs
      n / (K n_c) in all K columns, as ``LogisticRegression(class_weight="balanced")``.

    ``counts`` (one array per task: the weighted count of each class over all the data)
    replaces the counts over these rows, so that a row block of a larger array gets the
    weights of the whole.
    """
    n, T = Y2.shape
    CW = np.ones((n, len(owner)))
    for t in range(T):
        spec = specs[t]
        if spec is None:
            continue
        lab = ~miss[:, t]
        cls = classes[t]
        idx = np.searchsorted(cls, Y2[lab, t])
        cols = np.flatnonzero(owner == t)
        if isinstance(spec, dict):
            known = {c: k for k, c in enumerate(cls.tolist())}
            unknown = [c for c in spec if c not in known]
            if unknown:
                raise ValueError(f"class_weight for task {t}: {unknown!r} not among its "
                                 f"classes {cls.tolist()!r}")
            per_class = np.ones(len(cls))
            for c, v in spec.items():
                per_class[known[c]] = float(v)
            CW[np.ix_(lab, cols)] = per_class[idx][:, None]
            continue
        w = SW[lab, t]
        n_c = (np.bincount(idx, weights=w, minlength=len(cls)) if counts is None
               else np.asarray(counts[t], dtype=np.float64))
        if t in set(softmax_tasks):  # one weight per entry, by its class
            per_class = n_c.sum() / (len(cls) * np.maximum(n_c, 1e-300))
            CW[np.ix_(lab, cols)] = per_class[idx][:, None]
            continue
        for j, col in enumerate(cols):
            pos = idx == (1 if len(cols) == 1 else j)
            n_pos, n_all = n_c[1 if len(cols) == 1 else j], n_c.sum()
            n_neg = n_all - n_pos
            CW[lab, col] = np.where(pos, n_all / (2 * max(n_pos, 1e-300)),
                                    n_all / (2 * max(n_neg, 1e-300)))
    return CW


def encode_tasks(Y, miss, types, scale=None, classes=None, scale_targets=False):
    """Targets of mixed task types -> (Yenc (n, T'), mask (n, T'), subtask_task (T',),
    classes (per task; None for a regression task), scale (T,)). ``types``: "regression"
    or "classification" per column. A regression task is one column y_t / scale_t (scale
    None: the standard deviation of its labelled values when ``scale_targets``, else 1; a
    zero or non-finite one is 1); a classification task its sub-tasks of
    :func:`encode_classification` (``classes`` given, e.g. found over all blocks of a dask
    array: one sorted array per task, None for the regression ones)."""
    n, T = Y.shape
    reg = [t for t in range(T) if types[t] == "regression"]
    cls_tasks = [t for t in range(T) if types[t] == "classification"]
    out_scale = np.ones(T) if scale is None else np.asarray(scale, dtype=np.float64)
    columns = {}  # task -> (columns of Yenc, of mask)
    if reg:
        try:
            Yr = encode_regression(Y[:, reg], miss[:, reg])
        except (TypeError, ValueError) as e:
            raise ValueError(f"the regression tasks {reg}: {e}") from None
        for k, t in enumerate(reg):
            if scale is None:
                s = float(np.std(Yr[~miss[:, t], k])) if scale_targets else 1.0
                out_scale[t] = s if np.isfinite(s) and s > 0 else 1.0
            columns[t] = (Yr[:, k:k + 1] / out_scale[t], ~miss[:, t:t + 1])
    found = [None] * T
    if cls_tasks:
        Yc, mc, cls, own = encode_classification(
            Y[:, cls_tasks], miss[:, cls_tasks],
            None if classes is None else [classes[t] for t in cls_tasks], task_ids=cls_tasks)
        for k, t in enumerate(cls_tasks):
            sel = own == k
            found[t] = cls[k]
            columns[t] = (Yc[:, sel], mc[:, sel])
    Yenc = np.concatenate([columns[t][0] for t in range(T)], axis=1)
    mask = np.concatenate([columns[t][1] for t in range(T)], axis=1)
    owner = np.concatenate([np.full(columns[t][0].shape[1], t) for t in range(T)])
    return Yenc, mask, owner, found, out_scale


def type_counts(values):
    """Per-value counts that decide scikit-learn's ``type_of_target`` on labelled values
    and add up over row blocks: {"notreal": values that are not real numbers for it (any
    value of an integer, bool, string, ... dtype; non-real objects), "nonint": real values
    that are not integers, "nonfinite": infinite ones, "notnumber": values that are not
    ``numbers.Number``}. See :func:`continuous_from_counts`."""
    v = np.asarray(values)
    out = {"notreal": 0, "nonint": 0, "nonfinite": 0, "notnumber": 0}
    if v.size == 0:
        return out
    if v.dtype.kind == "O":
        real = np.fromiter((isinstance(x, numbers.Real) and not isinstance(x, bool)
                            for x in v), dtype=bool, count=v.size)
        out["notnumber"] = int(sum(not isinstance(x, numbers.Number) for x in v))
        out["notreal"] = int((~real).sum())
        f = v[real].astype(np.float64)
    elif v.dtype.kind == "f":
        f = v
    else:
        out["notreal"] = int(v.size)
        out["notnumber"] = 0 if isinstance(v.flat[0], numbers.Number) else int(v.size)
        return out
    with np.errstate(invalid="ignore", over="ignore"):
        out["nonint"] = int(np.sum(f != f.astype(int)))
    out["nonfinite"] = int(np.sum(~np.isfinite(f)))
    return out


def continuous_from_counts(c):
    """Whether ``type_of_target`` calls the values of :func:`type_counts` ``c`` (summed
    over blocks) continuous, as ``infer_task_type`` reads it: real numbers (a float dtype,
    or objects all real and not bool), some not integers, all finite (scikit-learn raises
    on infinity: not continuous)."""
    return c["notreal"] == 0 and c["nonint"] > 0 and c["nonfinite"] == 0
