// Local binary patterns, per-pixel math shared by CPU and GPU.
//
// Ojala, Pietikainen & Maenpaa, "Multiresolution gray-scale and rotation invariant
// texture classification with local binary patterns", IEEE TPAMI 24(7), 2002, with
// scikit-image's conventions (skimage.feature.local_binary_pattern):
//   neighbour i at (r + dr_i, c + dc_i), offsets rounded to 5 decimals by the caller;
//   bilinear sampling in float64 recomputed per pixel, zeros outside the image;
//   s_i = [sample_i - centre >= 0]; methods default / ror / uniform / nri_uniform / var.
// Everything is float64 and must not be FMA-contracted (parity depends on it).
#pragma once

#include <cmath>

#include "config.h"

namespace mtl {

enum LbpMethod : int { LBP_DEFAULT = 0, LBP_ROR = 1, LBP_UNIFORM = 2, LBP_NRI_UNIFORM = 3, LBP_VAR = 4 };

MTL_HD double lbp_pixel(const double* img, index_t rows, index_t cols, index_t r, index_t c) {
    if (r < 0 || r >= rows || c < 0 || c >= cols) return 0.0;
    return img[r * cols + c];
}

MTL_HD double lbp_bilinear(const double* img, index_t rows, index_t cols, double r, double c) {
    const double fr = floor(r), fc = floor(c);
    const index_t minr = static_cast<index_t>(fr), minc = static_cast<index_t>(fc);
    const index_t maxr = static_cast<index_t>(ceil(r)), maxc = static_cast<index_t>(ceil(c));
    const double dr = r - static_cast<double>(minr), dc = c - static_cast<double>(minc);
    const double top = (1 - dc) * lbp_pixel(img, rows, cols, minr, minc) +
                       dc * lbp_pixel(img, rows, cols, minr, maxc);
    const double bottom = (1 - dc) * lbp_pixel(img, rows, cols, maxr, minc) +
                          dc * lbp_pixel(img, rows, cols, maxr, maxc);
    return (1 - dr) * top + dr * bottom;
}

MTL_HD int lbp_rotate_right(int value, int length) {
    return (value >> 1) | ((value & 1) << (length - 1));
}

// Bilinear sample at (r + dr, c + dc) for a pixel whose four corners are all inside
// the image: the corner offsets fr = floor(dr), cr = ceil(dr) (likewise for columns) are
// precomputed, which is exact because dr carries at most 5 decimals (so r + dr is never
// an integer unless dr is); the weights are still computed per pixel as in lbp_bilinear.
MTL_HD double lbp_bilinear_inside(const double* img, index_t cols, index_t r, index_t c,
                                  double dr, double dc, int fr, int cr, int fc, int cc) {
    const index_t minr = r + fr, minc = c + fc, maxr = r + cr, maxc = c + cc;
    // integer offset: both weights are 0, and the bilinear formula returns the pixel
    // itself exactly (1 * x + 0 * y == x for finite values), so read it directly
    if (fr == cr && fc == cc) return img[minr * cols + minc];
    const double wr = (static_cast<double>(r) + dr) - static_cast<double>(minr);
    const double wc = (static_cast<double>(c) + dc) - static_cast<double>(minc);
    const double top = (1 - wc) * img[minr * cols + minc] + wc * img[minr * cols + maxc];
    const double bottom = (1 - wc) * img[maxr * cols + minc] + wc * img[maxr * cols + maxc];
    return (1 - wr) * top + wr * bottom;
}

MTL_HD double lbp_from_samples(const double* tex, double centre, int P, int method);

// LBP code (or local variance for LBP_VAR) of pixel (r, c); P <= 32 samples.
MTL_HD double lbp_code(const double* img, index_t rows, index_t cols, index_t r, index_t c, int P,
                       const double* dr, const double* dc, int method) {
    double tex[32];
    for (int i = 0; i < P; ++i)
        tex[i] = lbp_bilinear(img, rows, cols, static_cast<double>(r) + dr[i],
                              static_cast<double>(c) + dc[i]);
    return lbp_from_samples(tex, img[r * cols + c], P, method);
}

// Same code for a pixel whose neighbourhood lies inside the image (see lbp_bilinear_inside).
MTL_HD double lbp_code_inside(const double* img, index_t cols, index_t r, index_t c, int P,
                              const double* dr, const double* dc, const int* corners,
                              int method) {
    double tex[32];
    for (int i = 0; i < P; ++i)
        tex[i] = lbp_bilinear_inside(img, cols, r, c, dr[i], dc[i], corners[4 * i],
                                     corners[4 * i + 1], corners[4 * i + 2], corners[4 * i + 3]);
    return lbp_from_samples(tex, img[r * cols + c], P, method);
}

// Code from the P samples and the centre value.
MTL_HD double lbp_from_samples(const double* tex, double centre, int P, int method) {
    int s[32] = {0};
    for (int i = 0; i < P; ++i) s[i] = (tex[i] - centre >= 0) ? 1 : 0;
    if (method == LBP_DEFAULT || method == LBP_ROR) {
        int code = 0;
        for (int i = 0; i < P; ++i) code += s[i] << i;
        if (method == LBP_ROR) {
            int best = code, cur = code;
            for (int i = 1; i < P; ++i) {
                cur = lbp_rotate_right(cur, P);
                if (cur < best) best = cur;
            }
            code = best;
        }
        return static_cast<double>(code);
    }
    if (method == LBP_VAR) {
        double sum = 0.0, sum2 = 0.0;
        for (int i = 0; i < P; ++i) {
            sum += tex[i];
            sum2 += tex[i] * tex[i];
        }
        const double var = (sum2 - (sum * sum) / P) / P;
        return var != 0.0 ? var : NAN;
    }
    int changes = 0;
    for (int i = 0; i < P - 1; ++i) changes += s[i] != s[i + 1];
    if (method == LBP_UNIFORM) {
        if (changes > 2) return static_cast<double>(P + 1);
        int ones = 0;
        for (int i = 0; i < P; ++i) ones += s[i];
        return static_cast<double>(ones);
    }
    // nri_uniform
    if (changes > 2) return static_cast<double>(P * (P - 1) + 2);
    int ones = 0, first_one = -1, first_zero = -1;
    for (int i = 0; i < P; ++i) {
        if (s[i]) {
            ++ones;
            if (first_one < 0) first_one = i;
        } else if (first_zero < 0) {
            first_zero = i;
        }
    }
    if (ones == 0) return 0.0;
    if (ones == P) return static_cast<double>(P * (P - 1) + 1);
    const int rot = (first_one == 0) ? ones - first_zero : P - first_one;
    return static_cast<double>(1 + (ones - 1) * P + rot);
}

}  // namespace mtl
