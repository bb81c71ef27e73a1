// Gabor filter bank responses, shared math.
//
// A Gabor filter (Daugman, "Uncertainty relation for resolution in space, spatial
// frequency, and orientation optimized by two-dimensional visual cortical filters",
// JOSA A 2(7), 1985) is a Gaussian envelope times a complex sinusoid; the kernels come
// from skimage.filters.gabor_kernel.  A response is the convolution of the image with the
// real and imaginary kernels under scipy.ndimage's 'reflect' boundary (d c b a | a b c d |
// d c b a); the feature is the magnitude hypot(real, imag).
#pragma once

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

}  // namespace mtl
