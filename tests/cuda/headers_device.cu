// Compile-only check: every shared math header builds as device code under nvcc, so the
// CUDA kernels can reuse exactly the arithmetic the CPU tests exercise.
#include "mtlclassic/color.h"
#include "mtlclassic/gabor.h"
#include "mtlclassic/glcm.h"
#include "mtlclassic/hog.h"
#include "mtlclassic/lbp.h"
#include "mtlclassic/loss.h"
#include "mtlclassic/prox.h"

__global__ void use_every_header(const double* in, double* out, const unsigned* counts) {
    const int i = threadIdx.x;
    double v[9];
    for (int k = 0; k < 9; ++k) v[k] = in[k];
    float block[9];
    mtl::hog_normalize_block(v, block, 9, mtl::HOG_L2_HYS);
    out[0] = block[i % 9] + mtl::hog_bin(mtl::hog_orientation(in[0], in[1]), 9);
    const double dr[8] = {0, -0.70711, -1, -0.70711, 0, 0.70711, 1, 0.70711};
    const double dc[8] = {1, 0.70711, 0, -0.70711, -1, -0.70711, 0, 0.70711};
    out[1] = mtl::lbp_code(in, 3, 3, 1, 1, 8, dr, dc, mtl::LBP_NRI_UNIFORM);
    double props[10];
    mtl::glcm_properties(counts, 2, props);
    out[2] = props[mtl::GLCM_CORRELATION];
    float h, s, val;
    mtl::rgb_to_hsv<float>(0.1f, 0.5f, 0.9f, &h, &s, &val);
    out[3] = h + mtl::unit_bin(s, 8) + static_cast<double>(mtl::reflect_index(-5, 3));
    double g;
    out[4] = mtl::masked_loss_grad(mtl::LOSS_LOGISTIC, in[2], 1.0, 0.5, &g) + g;
    mtl::prox_l21_row(in, out + 5, 3, 0.5);
}
