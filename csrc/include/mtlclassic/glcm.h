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
