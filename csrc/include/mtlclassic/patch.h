// Square patches resampled around sub-pixel points, shared by CPU and GPU.
//
// Coordinates are (x, y) = (column, row) with pixel centres at integers. A patch of P x P
// samples covers the square of side s (pixels) centred on (cx, cy); sample (r, c) lies at
//   x = cx + s ((c + 0.5) / P - 0.5),   y = cy + s ((r + 0.5) / P - 0.5),
// and takes the bilinear interpolation of the four pixels around it, with coordinates
// clamped to [0, W - 1] x [0, H - 1] (the edge pixels repeat outside the image):
//   top = v00 + fx (v01 - v00),  bottom = v10 + fx (v11 - v10),  value = top + fy (bottom - top)
// in float64, in that order (no fused multiply-add), so the NumPy reference
// (mtlclassic.backend.reference.patches) gives the same bits.
#pragma once

#include <cmath>

#include "config.h"

namespace mtl {

MTL_HD void patch_sample_xy(double cx, double cy, double side, int P, int r, int c, double* x,
                            double* y) {
    *x = cx + side * ((c + 0.5) / P - 0.5);
    *y = cy + side * ((r + 0.5) / P - 0.5);
}

template <typename T>
MTL_HD double bilinear_sample(const T* img, index_t H, index_t W, double x, double y) {
    x = fmin(fmax(x, 0.0), static_cast<double>(W - 1));
    y = fmin(fmax(y, 0.0), static_cast<double>(H - 1));
    const index_t c0 = static_cast<index_t>(floor(x)), r0 = static_cast<index_t>(floor(y));
    const index_t c1 = c0 + 1 < W ? c0 + 1 : W - 1, r1 = r0 + 1 < H ? r0 + 1 : H - 1;
    const double fx = x - static_cast<double>(c0), fy = y - static_cast<double>(r0);
    const double v00 = static_cast<double>(img[r0 * W + c0]);
    const double v01 = static_cast<double>(img[r0 * W + c1]);
    const double v10 = static_cast<double>(img[r1 * W + c0]);
    const double v11 = static_cast<double>(img[r1 * W + c1]);
    const double top = v00 + fx * (v01 - v00);
    const double bottom = v10 + fx * (v11 - v10);
    return top + fy * (bottom - top);
}

}  // namespace mtl
