// Gabor filter bank responses, shared math.
//
// A Gabor filter (Daugman, "Uncertainty relation for resolution in space, spatial
// frequency, and orientation optimized by two-dimensional visual cortical filters",
// JOSA A 2(7), 1985) is a Gaussian envelope times a complex sinusoid; the kernels come
// from skimage.filters.gabor_kernel.  A response is the convolution of the image with the
// real and imaginary kernels under scipy.ndimage's 'reflect' boundary (d c b a | a b c d |
// d c b a); the feature is the magnitude hypot(real, imag).
//
// Layout shared by the CPU and GPU kernels: the image (as float64) is padded by (pad_r,
// pad_c) -- the largest kernel half-sizes -- into a PH x PW buffer, PH = H + 2 pad_r,
// PW = W + 2 pad_c, with the reflect rule; a kernel of kh x kw (odd, already flipped, so the
// response is a correlation) at output pixel (r, c) reads the window whose top-left is
// padded[r + pad_r - kh/2, c + pad_c - kw/2].  Each response is the sum of w[a, b] * x over
// the window in row-major kernel order starting from 0.0, in float64 without FMA
// contraction, so the CPU's row-at-a-time loop and the GPU's pixel-at-a-time threads give
// the same bits.  Cells of a grid_r x grid_c grid span rows [i H / grid_r, (i + 1) H /
// grid_r) (likewise columns); each contributes mean = sum(m) / area and the two-pass
// variance sum((m - mean)^2) / area of the magnitudes m.
#pragma once

#include <cmath>

#include "config.h"

namespace mtl {

// scipy.ndimage 'reflect' (half-sample symmetric) index map into [0, n), any i.
MTL_HD index_t reflect_index(index_t i, index_t n) {
    if (n == 1) return 0;
    const index_t period = 2 * n;
    i %= period;
    if (i < 0) i += period;
    return i < n ? i : period - 1 - i;
}

// Index into the H x W image of padded pixel (pr, pc), padding (pad_r, pad_c).
MTL_HD index_t gabor_pad_source(index_t pr, index_t pc, index_t pad_r, index_t pad_c, index_t H,
                                index_t W) {
    return reflect_index(pr - pad_r, H) * W + reflect_index(pc - pad_c, W);
}

// Real and imaginary response at one output pixel; win = the window's top-left in the
// padded image (row stride PW); kre / kim the kh x kw kernel, row-major.
MTL_HD void gabor_pixel_response(const double* win, index_t PW, const double* kre,
                                 const double* kim, index_t kh, index_t kw, double* re,
                                 double* im) {
    double ar = 0.0, ai = 0.0;
    for (index_t a = 0; a < kh; ++a) {
        const double* x = win + a * PW;
        const double* wr = kre + a * kw;
        const double* wi = kim + a * kw;
        for (index_t b = 0; b < kw; ++b) {
            ar += wr[b] * x[b];
            ai += wi[b] * x[b];
        }
    }
    *re = ar;
    *im = ai;
}

// The same sums for the W pixels of one output row at once (the CPU's loop: the innermost
// loop runs over columns, so it vectorises); win = the window of the row's first pixel.
MTL_HD void gabor_row_response(const double* win, index_t PW, const double* kre,
                               const double* kim, index_t kh, index_t kw, index_t W,
                               double* __restrict__ acc_re, double* __restrict__ acc_im) {
    for (index_t c = 0; c < W; ++c) {
        acc_re[c] = 0.0;
        acc_im[c] = 0.0;
    }
    for (index_t a = 0; a < kh; ++a)
        for (index_t b = 0; b < kw; ++b) {
            const double wr = kre[a * kw + b], wi = kim[a * kw + b];
            const double* x = win + a * PW + b;
            for (index_t c = 0; c < W; ++c) {
                acc_re[c] += wr * x[c];
                acc_im[c] += wi * x[c];
            }
        }
}

MTL_HD double gabor_magnitude(double re, double im) { return hypot(re, im); }

// First edge of cell i of g along an axis of n pixels (cell i spans [edge(i), edge(i + 1))).
MTL_HD index_t gabor_cell_edge(index_t i, index_t n, index_t g) { return i * n / g; }

// Mean and two-pass variance of the magnitudes in rows [r0, r1) x columns [c0, c1) of an
// image of row stride W, summed in row-major order (the CPU's order; the GPU sums the same
// terms in a fixed tree order, which agrees to rounding).
MTL_HD void gabor_cell_mean_var(const double* mag, index_t W, index_t r0, index_t r1, index_t c0,
                                index_t c1, double* mean, double* var) {
    const double area = static_cast<double>((r1 - r0) * (c1 - c0));
    double sum = 0.0;
    for (index_t r = r0; r < r1; ++r)
        for (index_t c = c0; c < c1; ++c) sum += mag[r * W + c];
    const double m = sum / area;
    double ss = 0.0;
    for (index_t r = r0; r < r1; ++r)
        for (index_t c = c0; c < c1; ++c) {
            const double d = mag[r * W + c] - m;
            ss += d * d;
        }
    *mean = m;
    *var = ss / area;
}

}  // namespace mtl
