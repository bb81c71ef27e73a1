"""Feature extraction speed on the CPU: mtlclassic native (1 thread and all threads) vs
scikit-image (its functions in a Python loop, the reference) vs OpenCV's HOGDescriptor,
all in one run, on real crops from skimage.data.

    python benchmarks/features_cpu.py [--repeat R] [--quick]

Prints a table of images/s with ratios and writes benchmarks/results/features_cpu.json.
"""

import argparse
import os
import sys
import warnings

import numpy as np
import skimage.data as sd
from skimage.feature import graycomatrix, graycoprops, hog, local_binary_pattern

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine, median_time, table, write_json  # noqa: E402

from mtlclassic.backend import effective_n_threads  # noqa: E402
from mtlclassic.features import GLCM, HOG, LBP, ColorHistogram, GaborBank  # noqa: E402
from mtlclassic.features.glcm import quantize  # noqa: E402


def crops(kind, H, W, n, seed=0):
    """n real crops of H x W: grey from camera/coins/moon/brick/text, RGB from
    astronaut/coffee/chelsea, at random positions (sources smaller than the crop are tiled)."""
    rng = np.random.default_rng(seed)
    sources = [sd.astronaut(), sd.coffee(), sd.chelsea()] if kind == "rgb" else \
        [sd.camera(), sd.coins(), sd.moon(), sd.brick(), sd.text()]
    out = []
    for i in range(n):
        src = sources[i % len(sources)]
        reps = (-(-H // src.shape[0]) + 1, -(-W // src.shape[1]) + 1) + (1,) * (src.ndim - 2)
        big = np.tile(src, reps)
        r = rng.integers(0, big.shape[0] - H + 1)
        c = rng.integers(0, big.shape[1] - W + 1)
        out.append(big[r:r + H, c:c + W])
    return np.ascontiguousarray(np.stack(out))


def opencv_hog(H, W):
    try:
        import cv2
    except ImportError:
        return None, None
    desc = cv2.HOGDescriptor((W, H), (24, 24), (8, 8), (8, 8), 9)  # 3x3-cell blocks as skimage
    return desc, cv2.__version__


def run(repeat, quick):
    sizes = [("grey", 128, 64, 400), ("grey", 128, 128, 200), ("grey", 512, 512, 12),
             ("rgb", 256, 256, 24)]
    if quick:
        sizes = [(k, H, W, max(2, n // 8)) for k, H, W, n in sizes]
    n_all = effective_n_threads(-1)
    rows, results = [], []
    for kind, H, W, n in sizes:
        X = crops(kind, H, W, n)
        n_ref = max(2, n // 8)  # scikit-image is slow: time it on fewer images
        n_ref_all = n_ref
        grey = X if kind == "grey" else None
        descs = [("HOG", HOG(), lambda img: hog(img, channel_axis=-1 if img.ndim == 3 else None))]
        if grey is not None:
            descs.append(("LBP", LBP(P=8, R=1, method="uniform"),
                          lambda img: local_binary_pattern(img, 8, 1, "uniform")))
            descs.append(("GLCM", GLCM(),
                          lambda img: [graycoprops(graycomatrix(
                              quantize(img, 32), [1], [0, np.pi / 4, np.pi / 2, 3 * np.pi / 4],
                              levels=32), p) for p in ("contrast", "dissimilarity", "homogeneity",
                                                       "energy", "correlation", "ASM")]))
        if kind == "grey" and H == W == 128:
            ref_gabor = GaborBank(backend="skimage").fit(X[:1])  # reference: filters.gabor
            descs.append(("GaborBank", GaborBank(), lambda img: ref_gabor.transform(img[None])))
        if kind == "rgb":
            ref_hist = ColorHistogram(backend="skimage").fit(X[:1])
            descs.append(("ColorHistogram", ColorHistogram(),  # reference: rgb2hsv + NumPy
                          lambda img: ref_hist.transform(img[None])))
        for name, est, ref_fn in descs:
            if name == "GaborBank":  # ~100x costlier per image than the others
                X, X_all = X[:max(2, n // 10)], X
            est.fit(X)
            t1 = median_time(lambda: est.set_params(n_jobs=1).transform(X), repeat) / len(X)
            ta = median_time(lambda: est.set_params(n_jobs=-1).transform(X), repeat) / len(X)
            n_ref = min(n_ref_all, len(X))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tref = median_time(lambda: [ref_fn(img) for img in X[:n_ref]],
                                   max(1, repeat // 2)) / n_ref
            tcv, cv_version = None, None
            if name == "HOG" and kind == "grey":
                desc, cv_version = opencv_hog(H, W)
                if desc is not None:
                    tcv = median_time(lambda: [desc.compute(img) for img in X], repeat) / len(X)
            r = {"descriptor": name, "images": kind, "H": H, "W": W, "n": len(X),
                 "native_1t_img_s": 1 / t1, "native_all_img_s": 1 / ta, "threads_all": n_all,
                 "skimage_img_s": 1 / tref, "opencv_img_s": None if tcv is None else 1 / tcv,
                 "opencv_version": cv_version,
                 "speedup_1t_vs_skimage": tref / t1, "speedup_all_vs_1t": t1 / ta,
                 "speedup_1t_vs_opencv": None if tcv is None else tcv / t1}
            results.append(r)
            rows.append([name, f"{kind} {W}x{H}", f"{1 / t1:,.0f}", f"{1 / ta:,.0f}",
                         f"{1 / tref:,.0f}", "-" if tcv is None else f"{1 / tcv:,.0f}",
                         f"{tref / t1:.1f}x", "-" if tcv is None else f"{tcv / t1:.2f}x",
                         f"{t1 / ta:.2f}x"])
            print(rows[-1], flush=True)
            if name == "GaborBank":
                X = X_all
    return rows, results


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="fewer images (smoke run)")
    a = p.parse_args(argv)
    info = machine()
    # None of the kernels here use BLAS; OpenBLAS's idle worker threads otherwise spin on
    # the second core for a while after any NumPy BLAS call and skew the 2-thread figures.
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        rows, results = run(a.repeat, a.quick)
    print(f"\nFeatures, images/s, median of {a.repeat} ({info['cpu']}, {info['cpu_count']} CPUs)")
    print(table(rows, ["descriptor", "images (WxH)", "native 1t", f"native {rows and results[0]['threads_all']}t",
                       "scikit-image", "OpenCV", "1t vs skimage", "1t vs OpenCV", "all vs 1t"]))
    if not a.quick:
        print("wrote", write_json("features_cpu.json", {"machine": info, "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
