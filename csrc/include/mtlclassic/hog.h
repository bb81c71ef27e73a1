// Histogram of Oriented Gradients, per-pixel / per-block math shared by CPU and GPU.
//
// Dalal & Triggs, "Histograms of oriented gradients for human detection", CVPR 2005,
// with scikit-image's conventions (skimage.feature.hog, 0.26):
//   gradient  g_r = I[r+1,c] - I[r-1,c], g_c = I[r,c+1] - I[r,c-1] (0 on the image border),
//             in the image's float type (float32 for float32 input, else float64);
//   channel   the one with the largest hypot(g_r, g_c), lowest index on ties;
//   magnitude hypot(g_c, g_r) and orientation rad2deg(atan2(g_r, g_c)) % 180 in float64;
//   bin i     (180/n) i <= o < (180/n)(i+1): hard voting, o == 180 votes nowhere;
//   cell      float32 running sum in row-major pixel order, divided by the cell area;
//   block     L1: v/(|v|_1+eps), L1-sqrt: sqrt of that, L2: v/sqrt(|v|^2+eps^2),
//             L2-Hys: L2, clip at 0.2, L2 again; eps = 1e-5, sums as NumPy's;
//   output    float32 values for float32 images (scikit-image stores their blocks in
//             float32), float64 values otherwise, whatever the output dtype.
#pragma once

#include <cmath>

#include "config.h"
#include "numpy_math.h"

namespace mtl {

enum HogNorm : int { HOG_L1 = 0, HOG_L1_SQRT = 1, HOG_L2 = 2, HOG_L2_HYS = 3 };

MTL_HD double hog_orientation(double g_row, double g_col) {
    return npy_remainder(atan2(g_row, g_col) * (180.0 / 3.141592653589793), 180.0);
}

// Bin of orientation o in [0, 180], or -1 when it falls in no bin (o >= 180).
MTL_HD int hog_bin(double o, int n_bins) {
    const double width = 180.0 / n_bins;
    int i = static_cast<int>(o / width);
    if (i >= n_bins) i = n_bins - 1;
    if (i < 0) i = 0;
    while (i > 0 && o < width * i) --i;
    while (i < n_bins - 1 && o >= width * (i + 1)) ++i;
    if (o < width * i || o >= width * (i + 1)) return -1;
    return i;
}

// Normalise one block of len values (contiguous, read as float64), writing len values to
// out. out may be v itself: every v[i] is read before out[i] is written.
template <typename V, typename T>
MTL_HD void hog_normalize_block(const V* v_in, T* out, int len, int norm) {
    auto v = [v_in](int i) { return static_cast<double>(v_in[i]); };
    const double eps = 1e-5;
    const double eps2 = eps * eps;
    if (norm == HOG_L1 || norm == HOG_L1_SQRT) {
        const double s = npy_sum([&v](int i) { return fabs(v(i)); }, len) + eps;
        for (int i = 0; i < len; ++i) {
            const double u = v(i) / s;
            out[i] = static_cast<T>(norm == HOG_L1 ? u : sqrt(u));
        }
        return;
    }
    const double d = sqrt(npy_sum([&v](int i) { return v(i) * v(i); }, len) + eps2);
    if (norm == HOG_L2) {
        for (int i = 0; i < len; ++i) out[i] = static_cast<T>(v(i) / d);
        return;
    }
    // L2-Hys: clip the L2-normalised block at 0.2 and renormalise.
    auto clipped = [&v, d](int i) {
        const double u = v(i) / d;
        return u < 0.2 ? u : 0.2;  // np.minimum(u, 0.2); u is never NaN here
    };
    const double d2 = sqrt(npy_sum([&clipped](int i) {
                               const double u = clipped(i);
                               return u * u;
                           }, len) + eps2);
    for (int i = 0; i < len; ++i) out[i] = static_cast<T>(clipped(i) / d2);
}

// Round a normalised block to float32 precision in place (for float32 images, whose
// features scikit-image returns as float32): a float64 output then holds the same values.
template <typename T>
MTL_HD void hog_round_to_float(T* v, int len) {
    for (int i = 0; i < len; ++i) v[i] = static_cast<T>(static_cast<float>(v[i]));
}

}  // namespace mtl
