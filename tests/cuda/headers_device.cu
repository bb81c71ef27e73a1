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
    // GLCM quantisation, pair ranges and symmetrisation
    unsigned c4[4] = {counts[0], counts[1], counts[2], counts[3]};
    mtl::glcm_symmetrize_entry(c4, 2, 0, 1);
    const mtl::GlcmPairRange pairs = mtl::glcm_pair_range(5, 7, -1, 2);
    out[8] = mtl::glcm_level_shift(200u, 32, 8) +
             mtl::glcm_level_affine(in[0], 0.0, mtl::glcm_span(0.0, 1.0), 16) + c4[1] +
             static_cast<double>(pairs.rows() * pairs.cols()) +
             mtl::glcm_counts_fit_u32(3, 4, true);
    // Gabor padding, responses and cell statistics
    double re, im, acc_re[3], acc_im[3], mean, var;
    mtl::gabor_pixel_response(in, 3, in + 3, in + 6, 1, 3, &re, &im);
    mtl::gabor_row_response(in, 3, in + 3, in + 6, 1, 1, 3, acc_re, acc_im);
    mtl::gabor_cell_mean_var(in, 3, 0, 3, 0, 3, &mean, &var);
    out[9] = mtl::gabor_magnitude(re, im) + acc_re[i % 3] + acc_im[0] + mean + var +
             static_cast<double>(mtl::gabor_pad_source(-2, 4, 1, 1, 3, 3) +
                                 mtl::gabor_cell_edge(1, 9, 2));
}
