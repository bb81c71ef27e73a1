"""A deterministic multi-task image set built from scikit-image's bundled photographs."""

import numpy as np
from sklearn.utils import Bunch

SOURCES = ("astronaut", "coffee", "chelsea", "rocket", "camera", "coins", "brick", "grass")
TASKS = ("source", "rotation", "gamma", "noise", "flip", "blur")
TASK_TYPES = ("classification",) * 5 + ("regression",)


def _source_images():
    import skimage.data as sd
    from skimage.color import gray2rgb

    out = []
    for name in SOURCES:
        img = getattr(sd, name)()
        out.append(img if img.ndim == 3 else gray2rgb(img))
    return out


def make_multiattribute_images(n_samples=2000, size=64, seed=0):
    """Crops of real photographs and textures with known, random transformations.

    Each image is a ``size`` x ``size`` RGB crop (uint8) of one of eight images bundled
    with scikit-image, taken at a random position and scale, then transformed. Tasks:

    ============ ============== ============================================================
    ``source``   8 classes      which photograph/texture (astronaut, coffee, chelsea, rocket,
                                camera, coins, brick, grass)
    ``rotation`` 4 classes      0, 90, 180 or 270 degrees
    ``gamma``    2 classes      "dark" (gamma 1.8) or "bright" (gamma 0.55)
    ``noise``    2 classes      "clean" or "noisy" (Gaussian noise, sigma 18 grey levels)
    ``flip``     2 classes      mirrored left-right or not
    ``blur``     regression     Gaussian blur sigma in [0, 2] pixels
    ============ ============== ============================================================

    The same ``seed`` gives the same images and targets.

    Returns
    -------
    Bunch with ``images`` (n, size, size, 3) uint8, ``targets`` (n, 6) object array (class
    labels; blur as float), ``target_names``, ``task_types``, ``source_names``.
    """
    from skimage.filters import gaussian
    from skimage.transform import resize

    if n_samples < 1 or size < 8:
        raise ValueError(f"n_samples must be >= 1 and size >= 8, got {n_samples}, {size}")
    rng = np.random.default_rng(seed)
    srcs = _source_images()
    images = np.empty((n_samples, size, size, 3), np.uint8)
    targets = np.empty((n_samples, len(TASKS)), dtype=object)
    for i in range(n_samples):
        k = int(rng.integers(len(srcs)))
        src = srcs[k]
        side = int(rng.integers(size, min(src.shape[:2]) // 2 + size))
        r = int(rng.integers(0, src.shape[0] - side + 1))
        c = int(rng.integers(0, src.shape[1] - side + 1))
        img = resize(src[r:r + side, c:c + side], (size, size), anti_aliasing=True)
        rot, flip = int(rng.integers(4)), bool(rng.integers(2))
        img = np.rot90(img, rot)
        if flip:
            img = img[:, ::-1]
        bright = bool(rng.integers(2))
        img = np.clip(img, 0, 1) ** (0.55 if bright else 1.8)
        sigma = float(rng.uniform(0, 2))
        if sigma > 0.05:
            img = gaussian(img, sigma=sigma, channel_axis=-1)
        noisy = bool(rng.integers(2))
        img = img * 255
        if noisy:
            img = img + rng.normal(0, 18, img.shape)
        images[i] = np.clip(np.rint(img), 0, 255).astype(np.uint8)
        targets[i] = [SOURCES[k], 90 * rot, "bright" if bright else "dark",
                      "noisy" if noisy else "clean", "flipped" if flip else "upright", sigma]
    return Bunch(images=images, targets=targets, target_names=list(TASKS),
                 task_types=list(TASK_TYPES), source_names=list(SOURCES))
