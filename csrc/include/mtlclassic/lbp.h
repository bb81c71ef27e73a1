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

// Img: the stored pixel type; every value is taken as float64 (exact for uint8, uint16,
// float32 and float64), so the GPU can read the images as they are.
template <typename Img>
MTL_HD double lbp_pixel(const Img* img, index_t rows, index_t cols, index_t r, index_t c) {
    if (r < 0 || r >= rows || c < 0 || c >= cols) return 0.0;
    return static_cast<double>(img[r * cols + c]);
}

// (1 - wr) * ((1 - wc) TL + wc TR) + wr * ((1 - wc) BL + wc BR), in this order.
MTL_HD double lbp_bilerp(double tl, double tr, double bl, double br, double wr, double wc) {
    const double top = (1 - wc) * tl + wc * tr;
    const double bottom = (1 - wc) * bl + wc * br;
    return (1 - wr) * top + wr * bottom;
}

template <typename Img>
MTL_HD double lbp_bilinear(const Img* img, index_t rows, index_t cols, double r, double c) {
    const double fr = floor(r), fc = floor(c);
    const index_t minr = static_cast<index_t>(fr), minc = static_cast<index_t>(fc);
    const index_t maxr = static_cast<index_t>(ceil(r)), maxc = static_cast<index_t>(ceil(c));
    const double dr = r - static_cast<double>(minr), dc = c - static_cast<double>(minc);
    return lbp_bilerp(lbp_pixel(img, rows, cols, minr, minc), lbp_pixel(img, rows, cols, minr, maxc),
                      lbp_pixel(img, rows, cols, maxr, minc), lbp_pixel(img, rows, cols, maxr, maxc),
                      dr, dc);
}

MTL_HD int lbp_rotate_right(int value, int length) {
    return (value >> 1) | ((value & 1) << (length - 1));
}

// Bilinear sample at (r + dr, c + dc) for a pixel whose four corners are all inside
// the image: the corner offsets fr = floor(dr), cr = ceil(dr) (likewise for columns) are
// precomputed, which is exact because dr carries at most 5 decimals (so r + dr is never
// an integer unless dr is); the weights are still computed per pixel as in lbp_bilinear.
template <typename Img>
MTL_HD double lbp_bilinear_inside(const Img* img, index_t cols, index_t r, index_t c,
                                  double dr, double dc, int fr, int cr, int fc, int cc) {
    const index_t minr = r + fr, minc = c + fc, maxr = r + cr, maxc = c + cc;
    // integer offset: both weights are 0, and the bilinear formula returns the pixel
    // itself exactly (1 * x + 0 * y == x for finite values), so read it directly
    if (fr == cr && fc == cc) return static_cast<double>(img[minr * cols + minc]);
    const double wr = (static_cast<double>(r) + dr) - static_cast<double>(minr);
    const double wc = (static_cast<double>(c) + dc) - static_cast<double>(minc);
    return lbp_bilerp(static_cast<double>(img[minr * cols + minc]),
                      static_cast<double>(img[minr * cols + maxc]),
                      static_cast<double>(img[maxr * cols + minc]),
                      static_cast<double>(img[maxr * cols + maxc]), wr, wc);
}

MTL_HD double lbp_from_samples(const double* tex, double centre, int P, int method);
MTL_HD int lbp_code_from_bits(unsigned bits, int P, int method);

// LBP code (or local variance for LBP_VAR) of pixel (r, c); P <= 32 samples.
template <typename Img>
MTL_HD double lbp_code(const Img* img, index_t rows, index_t cols, index_t r, index_t c, int P,
                       const double* dr, const double* dc, int method) {
    double tex[32];
    for (int i = 0; i < P; ++i)
        tex[i] = lbp_bilinear(img, rows, cols, static_cast<double>(r) + dr[i],
                              static_cast<double>(c) + dc[i]);
    return lbp_from_samples(tex, static_cast<double>(img[r * cols + c]), P, method);
}

// Same code for a pixel whose neighbourhood lies inside the image (see lbp_bilinear_inside).
template <typename Img>
MTL_HD double lbp_code_inside(const Img* img, index_t cols, index_t r, index_t c, int P,
                              const double* dr, const double* dc, const int* corners,
                              int method) {
    double tex[32];
    for (int i = 0; i < P; ++i)
        tex[i] = lbp_bilinear_inside(img, cols, r, c, dr[i], dc[i], corners[4 * i],
                                     corners[4 * i + 1], corners[4 * i + 2], corners[4 * i + 3]);
    return lbp_from_samples(tex, static_cast<double>(img[r * cols + c]), P, method);
}

MTL_HD int lbp_popcount(unsigned x) {
#if defined(__CUDA_ARCH__)
    return __popc(x);
#else
    // SWAR count, inline (the builtin is a library call without -mpopcnt)
    x = x - ((x >> 1) & 0x55555555u);
    x = (x & 0x33333333u) + ((x >> 2) & 0x33333333u);
    x = (x + (x >> 4)) & 0x0F0F0F0Fu;
    return static_cast<int>((x * 0x01010101u) >> 24);
#endif
}

MTL_HD int lbp_lowest_bit(unsigned x) {  // x != 0
#if defined(__CUDA_ARCH__)
    return __ffs(x) - 1;
#else
    return __builtin_ctz(x);
#endif
}

// Code from the P samples and the centre value.  The thresholded pattern is held as a
// bit mask (bit i = s_i): transitions, ones and the first one/zero become bit counts.
MTL_HD double lbp_from_samples(const double* tex, double centre, int P, int method) {
    if (method == LBP_VAR) {
        double sum = 0.0, sum2 = 0.0;
        for (int i = 0; i < P; ++i) {
            sum += tex[i];
            sum2 += tex[i] * tex[i];
        }
        const double var = (sum2 - (sum * sum) / P) / P;
        return var != 0.0 ? var : NAN;
    }
    unsigned bits = 0;
    for (int i = 0; i < P; ++i) bits |= static_cast<unsigned>(tex[i] - centre >= 0) << i;
    return static_cast<double>(lbp_code_from_bits(bits, P, method));
}

// Code of a thresholded pattern (bit i = s_i) for the discrete methods.
MTL_HD int lbp_code_from_bits(unsigned bits, int P, int method) {
    if (method == LBP_DEFAULT) return static_cast<int>(bits);
    if (method == LBP_ROR) {
        int best = static_cast<int>(bits), cur = best;
        for (int i = 1; i < P; ++i) {
            cur = lbp_rotate_right(cur, P);
            if (cur < best) best = cur;
        }
        return best;
    }
    // 0/1 changes between neighbours i and i+1, i = 0..P-2 (not circular)
    const int changes = lbp_popcount((bits ^ (bits >> 1)) & ((1u << (P - 1)) - 1u));
    const int ones = lbp_popcount(bits);
    if (method == LBP_UNIFORM) return changes > 2 ? P + 1 : ones;
    // nri_uniform
    if (changes > 2) return P * (P - 1) + 2;
    if (ones == 0) return 0;
    if (ones == P) return P * (P - 1) + 1;
    const int first_one = lbp_lowest_bit(bits), first_zero = lbp_lowest_bit(~bits);
    const int rot = (first_one == 0) ? ones - first_zero : P - first_one;
    return 1 + (ones - 1) * P + rot;
}

}  // namespace mtl
