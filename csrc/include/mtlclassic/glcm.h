// Grey-level co-occurrence matrices and Haralick-style properties, shared math.
//
// Haralick, Shanmugam & Dinstein, "Textural features for image classification",
// IEEE SMC 3(6), 1973; conventions of skimage.feature.graycomatrix / graycoprops:
// P[i, j] counts level i at (r, c) with level j at (r + dr, c + dc) inside the image;
// symmetric adds the transpose; properties use P / sum(P) (a zero sum counts as 1):
//   contrast sum P (i-j)^2, dissimilarity sum P |i-j|, homogeneity sum P / (1 + (i-j)^2),
//   ASM sum P^2, energy sqrt(ASM), mean sum i P, variance sum P (i - mean)^2, std,
//   entropy -sum P ln P, correlation cov / (std_i std_j) (1 when either std < 1e-15).
#pragma once

#include <cmath>
#include <cstdint>

#include "config.h"

namespace mtl {

// ---------------------------------------------------------------- quantisation
// mtlclassic.features.glcm.quantize, one pixel at a time (CPU and GPU):
//   QUANT_U8 / QUANT_U16 (integer images, the dtype's range): v * levels >> 8 (>> 16);
//   QUANT_AFFINE / QUANT_PER_IMAGE: min(floor((v - lo) / span * levels), levels - 1) in
//   float64 with span = glcm_span(lo, hi); per image, (lo, hi) = the image's (min, max).
enum QuantMode : int { QUANT_U8 = 0, QUANT_U16 = 1, QUANT_AFFINE = 2, QUANT_PER_IMAGE = 3 };

// hi - lo, or 1 when the range is empty (a constant image goes to level 0).
MTL_HD double glcm_span(double lo, double hi) { return hi - lo > 0 ? hi - lo : 1.0; }

// Level of an integer value under QUANT_U8 (shift 8) or QUANT_U16 (shift 16).
MTL_HD int glcm_level_shift(std::uint64_t v, int levels, int shift) {
    return static_cast<int>((v * static_cast<std::uint64_t>(levels)) >> shift);
}

// Level of a value under QUANT_AFFINE / QUANT_PER_IMAGE. Values below lo (which the
// Python layer refuses) clamp to 0 instead of wrapping.
MTL_HD int glcm_level_affine(double v, double lo, double span, int levels) {
    const double x = floor((v - lo) / span * levels);
    const double top = static_cast<double>(levels - 1);
    return x > 0.0 ? static_cast<int>(x < top ? x : top) : 0;
}

// ---------------------------------------------------------------- pairs
// Pixels (r, c) whose partner (r + dr, c + dc) lies inside an H x W image: rows
// [r0, r1), columns [c0, c1) (empty when |dr| >= H or |dc| >= W).
struct GlcmPairRange {
    index_t r0, r1, c0, c1;
    MTL_HD index_t rows() const { return r1 > r0 ? r1 - r0 : 0; }
    MTL_HD index_t cols() const { return c1 > c0 ? c1 - c0 : 0; }
};

MTL_HD GlcmPairRange glcm_pair_range(index_t H, index_t W, index_t dr, index_t dc) {
    return {dr < 0 ? -dr : 0, dr > 0 ? H - dr : H, dc < 0 ? -dc : 0, dc > 0 ? W - dc : W};
}

// Each count of one (image, offset) is at most the number of pairs, <= H * W, and
// symmetric=True doubles the diagonal: with (symmetric ? 2 : 1) * H * W < 2^32 every count
// fits the 32-bit counters the kernels (and scikit-image's graycomatrix) use, so it stays
// exact -- up to 65535 x 65537 pixels (2^32 - 1), or 2^31 - 1 pixels when symmetric.
MTL_HD bool glcm_counts_fit_u32(index_t H, index_t W, bool symmetric) {
    const index_t limit = (symmetric ? (index_t(1) << 31) : (index_t(1) << 32)) - 1;
    return H >= 0 && W >= 0 && (W == 0 || H <= limit / W);
}

// symmetric=True adds the transpose: entry k = i * levels + j of a count matrix with
// i <= j becomes (and, for i < j, so does its mirror) counts[i, j] + counts[j, i]. Each
// unordered pair is touched by one call only, so the calls can run in parallel.
template <typename CountT>
MTL_HD void glcm_symmetrize_entry(CountT* counts, int levels, int i, int j) {
    const CountT s = counts[i * levels + j] + counts[j * levels + i];
    counts[i * levels + j] = s;
    counts[j * levels + i] = s;
}

// ---------------------------------------------------------------- properties
enum GlcmProp : int {
    GLCM_CONTRAST = 0, GLCM_DISSIMILARITY, GLCM_HOMOGENEITY, GLCM_ENERGY, GLCM_CORRELATION,
    GLCM_ASM, GLCM_MEAN, GLCM_VARIANCE, GLCM_STD, GLCM_ENTROPY
};

// Properties of one count matrix (levels x levels, row-major) into props[10]. The
// logarithms (entropy) and the second pass (correlation, variance, std) are only done
// when want_entropy / want_second_pass say so; the entries they fill are 0 otherwise.
// CountT: std::uint32_t (as scikit-image) or std::uint64_t for images whose counts can
// reach 2**32 (see csrc/cpu/glcm.cpp).
template <typename CountT>
MTL_HD void glcm_properties(const CountT* counts, int levels, double* props,
                            bool want_entropy = true, bool want_second_pass = true) {
    double total = 0.0;
    for (int k = 0; k < levels * levels; ++k) total += counts[k];
    if (total == 0.0) total = 1.0;
    double contrast = 0, dissim = 0, homog = 0, asm_ = 0, mean_i = 0, mean_j = 0, entropy = 0;
    for (int i = 0; i < levels; ++i)
        for (int j = 0; j < levels; ++j) {
            const double p = counts[i * levels + j] / total;
            if (p == 0.0) continue;
            const double d = static_cast<double>(i - j);
            contrast += p * d * d;
            dissim += p * fabs(d);
            homog += p / (1.0 + d * d);
            asm_ += p * p;
            mean_i += p * i;
            mean_j += p * j;
            if (want_entropy) entropy -= p * log(p);
        }
    double var_i = 0, var_j = 0, cov = 0;
    for (int i = 0; i < levels && want_second_pass; ++i)
        for (int j = 0; j < levels; ++j) {
            const double p = counts[i * levels + j] / total;
            if (p == 0.0) continue;
            const double di = i - mean_i, dj = j - mean_j;
            var_i += p * di * di;
            var_j += p * dj * dj;
            cov += p * di * dj;
        }
    const double std_i = sqrt(var_i), std_j = sqrt(var_j);
    props[GLCM_CONTRAST] = contrast;
    props[GLCM_DISSIMILARITY] = dissim;
    props[GLCM_HOMOGENEITY] = homog;
    props[GLCM_ENERGY] = sqrt(asm_);
    props[GLCM_CORRELATION] = (std_i < 1e-15 || std_j < 1e-15) ? 1.0 : cov / (std_i * std_j);
    props[GLCM_ASM] = asm_;
    props[GLCM_MEAN] = mean_i;
    props[GLCM_VARIANCE] = var_i;
    props[GLCM_STD] = std_i;
    props[GLCM_ENTROPY] = entropy;
}

}  // namespace mtl
