"""The MTFL faces (Zhang, Luo, Loy & Tang, ECCV 2014): 5 landmarks and 4 attributes."""

import io
import os
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from ._loaders import data_home as _data_home

LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "left_mouth", "right_mouth")
ATTRIBUTE_NAMES = ("gender", "smile", "glasses", "pose")
ATTRIBUTE_CLASSES = {
    "gender": {1: "male", 2: "female"},
    "smile": {1: "smiling", 2: "not smiling"},
    "glasses": {1: "glasses", 2: "no glasses"},
    "pose": {1: "left profile", 2: "left", 3: "frontal", 4: "right", 5: "right profile"},
}
_SUBSETS = {"train": "training.txt", "test": "testing.txt"}

DESCR = """MTFL: Multi-Task Facial Landmark dataset v1.0 (CUHK MMLab), 12,995 faces.

Zhanpeng Zhang, Ping Luo, Chen Change Loy, Xiaoou Tang. Facial Landmark Detection by Deep
Multi-task Learning. ECCV 2014. Training: 10,000 faces (LFW and web faces, training.txt);
test: 2,995 AFLW faces (testing.txt). Each face has 5 landmarks in image pixels (left eye,
right eye, nose, left and right mouth corners) and gender, smile, glasses and head pose
(left profile, left, frontal, right, right profile). For research use; cite the paper.
Protocol: mean distance to the true points over the inter-ocular distance (in %), and the
failure rate (error > 10 %)."""


def _locate(data_home):
    """MTFL.zip, or an extracted MTFL/ folder, under the data homes."""
    cands = _data_home(data_home)
    for d in cands:
        for rel in (Path("mtfl") / "MTFL.zip", Path("MTFL.zip")):
            if (d / rel).is_file():
                return d / rel
        for rel in (Path("mtfl") / "MTFL", Path("MTFL")):
            if (d / rel / "training.txt").is_file():
                return d / rel
    raise FileNotFoundError("MTFL not found (mtfl/MTFL.zip or an extracted mtfl/MTFL/ "
                            "folder); looked in: " + ", ".join(str(d) for d in cands)
                            + " (pass data_home= or set MTLCLASSIC_DATA; DATA.md says where "
                            "the data come from)")


class _Source:
    """Reads members of MTFL.zip (no extraction) or files of an extracted folder."""

    def __init__(self, path):
        self.path = Path(path)
        self.zip = zipfile.ZipFile(self.path) if self.path.suffix == ".zip" else None
        if self.zip is not None:
            names = self.zip.namelist()
            tops = {n.split("/", 1)[0] for n in names if "/" in n}
            self.prefix = "MTFL/" if "MTFL" in tops else ""
            self.members = {n.lower(): n for n in names}

    def read(self, rel):
        if self.zip is None:
            return (self.path / rel).read_bytes()
        key = (self.prefix + rel).lower()
        if key not in self.members:
            raise FileNotFoundError(f"{rel} is not in {self.path}")
        return self.zip.read(self.members[key])

    def close(self):
        if self.zip is not None:
            self.zip.close()


def _parse(text, name):
    """The annotation lines: path, x1..x5, y1..y5, gender, smile, glasses, pose."""
    paths, points, attrs, lines = [], [], [], []
    for k, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 15:
            raise ValueError(f"{name}, line {k}: {len(fields)} fields, expected 15 (path, "
                             "10 coordinates, 4 attributes)")
        try:
            xy = np.array(fields[1:11], dtype=np.float64)
            a = np.array(fields[11:15], dtype=np.int64)
        except ValueError:
            raise ValueError(f"{name}, line {k}: a coordinate or attribute is not a number: "
                             f"{line.strip()[:80]!r}") from None
        for v, att in zip(a, ATTRIBUTE_NAMES):
            if int(v) not in ATTRIBUTE_CLASSES[att]:
                raise ValueError(f"{name}, line {k}: {att} = {v} is not one of "
                                 f"{sorted(ATTRIBUTE_CLASSES[att])}")
        paths.append(fields[0].replace("\\", "/"))
        points.append(np.stack([xy[:5], xy[5:]], axis=1))  # (5, 2): (x, y) per point
        attrs.append(a)
        lines.append(k)
    return paths, np.array(points).reshape(-1, 5, 2), np.array(attrs).reshape(-1, 4), lines


def load_mtfl(subset="train", data_home=None, *, n_samples=None, shuffle=False,
              random_state=None, grey=False, n_jobs=None, verbose=True):
    """The MTFL face landmark and attribute dataset.

    Reads ``mtfl/MTFL.zip`` directly (no extraction) or an extracted ``mtfl/MTFL/`` folder
    from the data home (``data_home``, ``$MTLCLASSIC_DATA``, ``shared/data`` beside the
    checkout); the error lists where it looked. Windows paths and lines starting with a
    space are read as the files have them; JPEGs are decoded by Pillow in threads
    (:func:`read_image`: greyscale files as three equal channels).

    Parameters
    ----------
    subset : {"train", "test"}
        ``training.txt`` (10,000 faces) or ``testing.txt`` (2,995 AFLW faces).
    n_samples : int or None
        The first ``n_samples`` faces only (quick experiments, tests). The files are not in
        random order (the first 100 training faces are 82 % one gender): pass
        ``shuffle=True`` for a representative subset.
    shuffle : bool, default=False
        Draw the faces in a random order (seeded by ``random_state``) before taking
        ``n_samples``; ``filenames`` tells which were drawn.
    random_state : int, RandomState or None
    grey : bool, default=False
        Luminance (H, W) uint8 instead of RGB (H, W, 3) (a third of the memory: the whole
        training set is about 1.9 GB in RGB).
    n_jobs : int or None
        Decoding threads (None: all cores).
    verbose : bool
        A progress bar (tqdm) on stderr for more than 1,000 images.

    Returns
    -------
    Bunch with ``images`` (list of uint8 arrays at native size), ``landmarks`` (n, 5, 2)
    float64 pixel coordinates (x, y) in the order of ``landmark_names``, ``attributes`` (n, 4)
    int codes (``attribute_classes`` names them), ``attribute_labels`` (n, 4) object array of
    readable class names, ``attribute_names``, ``landmark_names``, ``filenames``, ``DESCR``.

    Raises
    ------
    FileNotFoundError
        naming the folders searched; ValueError naming the line of a malformed annotation
        or the file of an unreadable image.
    """
    from ._io import read_image

    if subset not in _SUBSETS:
        raise ValueError(f"subset must be 'train' or 'test', got {subset!r}")
    if n_samples is not None and (isinstance(n_samples, bool) or int(n_samples) != n_samples
                                  or n_samples < 1):
        raise ValueError(f"n_samples must be None or an integer >= 1, got {n_samples!r}")
    src = _Source(_locate(data_home))
    try:
        ann = _SUBSETS[subset]
        paths, points, attrs, _ = _parse(src.read(ann).decode("utf-8-sig"), ann)
        if shuffle:
            from sklearn.utils import check_random_state

            order = check_random_state(random_state).permutation(len(paths))
            paths, points, attrs = [paths[i] for i in order], points[order], attrs[order]
        if n_samples is not None:
            paths, points, attrs = paths[:n_samples], points[:n_samples], attrs[:n_samples]

        def load(rel):
            img = read_image(io.BytesIO(src.read(rel)))
            if grey:
                img = np.rint(img @ np.array([0.2125, 0.7154, 0.0721])).astype(np.uint8)
            return img

        def load_named(rel):
            try:
                return load(rel)
            except (ValueError, FileNotFoundError) as exc:
                raise ValueError(f"MTFL image {rel} ({src.path}): {exc}") from None

        workers = n_jobs if n_jobs and n_jobs > 0 else (os.cpu_count() or 1)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            it = pool.map(load_named, paths)
            if verbose and len(paths) > 1000:
                from tqdm.auto import tqdm

                it = tqdm(it, total=len(paths), desc=f"MTFL {subset}", unit="img")
            images = list(it)
    finally:
        src.close()
    labels = np.empty(attrs.shape, dtype=object)
    for j, att in enumerate(ATTRIBUTE_NAMES):
        labels[:, j] = [ATTRIBUTE_CLASSES[att][int(v)] for v in attrs[:, j]]
    return Bunch(images=images, landmarks=points, attributes=attrs, attribute_labels=labels,
                 attribute_names=list(ATTRIBUTE_NAMES), landmark_names=list(LANDMARK_NAMES),
                 attribute_classes={k: dict(v) for k, v in ATTRIBUTE_CLASSES.items()},
                 filenames=paths, DESCR=DESCR)
