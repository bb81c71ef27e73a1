// Batched HOG on the GPU, with the per-pixel and per-block math of mtlclassic/hog.h.
//
// Two launches per chunk of images:
//  1. hog_cells: one thread per (image, cell) computes the gradients of the cell's pixels
//     (in the image's float type, after the optional square root), picks the dominant
//     channel, and sums the float64 magnitudes into float32 bins in row-major pixel order
//     -- the CPU's order, so the sums are the same -- then divides by the cell area;
//  2. hog_blocks: one thread per (image, block) gathers its cells into the output row and
//     normalises them in place (the cell values are float32, exact in either output type).
#include <cuda_runtime.h>

#include <type_traits>

#include "device_common.cuh"
#include "launchers.h"
#include "mtlclassic/hog.h"

namespace mtl {
namespace cuda {
namespace {

constexpr int kLocalBins = 32;  // more orientations accumulate in the global cell buffer

template <typename InT, typename G>
__device__ __forceinline__ G hog_value(const InT* img, index_t i, bool sqrt_first) {
    const G v = static_cast<G>(img[i]);
    return sqrt_first ? sqrt(v) : v;
}

template <typename InT, typename G>
__global__ void hog_cells(const InT* images, float* cells, index_t n, index_t H, index_t W,
                          index_t C, int nb, int cell_r, int cell_c, index_t ncr, index_t ncc,
                          bool transform_sqrt) {
    const index_t total = n * ncr * ncc;
    for (index_t k = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; k < total;
         k += static_cast<index_t>(gridDim.x) * blockDim.x) {
        const index_t img_i = k / (ncr * ncc);
        const index_t cr = (k / ncc) % ncr, cc = k % ncc;
        const InT* img = images + img_i * H * W * C;
        float local[kLocalBins];
        float* acc = nb <= kLocalBins ? local : cells + k * nb;
        for (int o = 0; o < nb; ++o) acc[o] = 0.0f;
        for (index_t r = cr * cell_r; r < (cr + 1) * cell_r; ++r) {
            const bool r_edge = (r == 0 || r == H - 1);
            for (index_t c = cc * cell_c; c < (cc + 1) * cell_c; ++c) {
                const bool c_edge = (c == 0 || c == W - 1);
                G gr = 0, gc = 0, best = -1;
                for (index_t ch = 0; ch < C; ++ch) {
                    const index_t p = (r * W + c) * C + ch;
                    const G a = r_edge ? G(0)
                                       : static_cast<G>(hog_value<InT, G>(img, p + W * C, transform_sqrt) -
                                                        hog_value<InT, G>(img, p - W * C, transform_sqrt));
                    const G b = c_edge ? G(0)
                                       : static_cast<G>(hog_value<InT, G>(img, p + C, transform_sqrt) -
                                                        hog_value<InT, G>(img, p - C, transform_sqrt));
                    if (C == 1) {
                        gr = a;
                        gc = b;
                    } else {
                        const G m = hypot(a, b);
                        if (m > best) {  // strict: the lowest channel wins ties (argmax)
                            best = m;
                            gr = a;
                            gc = b;
                        }
                    }
                }
                const double dgr = static_cast<double>(gr), dgc = static_cast<double>(gc);
                const int bin = hog_bin(hog_orientation(dgr, dgc), nb);
                if (bin < 0) continue;
                acc[bin] = static_cast<float>(static_cast<double>(acc[bin]) + hypot(dgc, dgr));
            }
        }
        const float area = static_cast<float>(cell_r * cell_c);
        float* dst = cells + k * nb;
        for (int o = 0; o < nb; ++o) dst[o] = acc[o] / area;
    }
}

// f32_values: the image is float32, so the values are rounded to float32 (hog.h).
template <typename OutT>
__global__ void hog_blocks(const float* cells, OutT* out, index_t n, index_t ncr, index_t ncc,
                           int nb, int block_r, int block_c, int norm, index_t n_features,
                           bool f32_values) {
    const index_t nbr = ncr - block_r + 1, nbc = ncc - block_c + 1;
    const index_t total = n * nbr * nbc;
    const int len = block_r * block_c * nb;
    for (index_t k = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; k < total;
         k += static_cast<index_t>(gridDim.x) * blockDim.x) {
        const index_t img_i = k / (nbr * nbc);
        const index_t br = (k / nbc) % nbr, bc = k % nbc;
        const float* c0 = cells + img_i * ncr * ncc * nb;
        OutT* o = out + img_i * n_features + (br * nbc + bc) * len;
        int q = 0;
        for (int i = 0; i < block_r; ++i)
            for (int j = 0; j < block_c; ++j)
                for (int b = 0; b < nb; ++b)
                    o[q++] = static_cast<OutT>(c0[((br + i) * ncc + (bc + j)) * nb + b]);
        hog_normalize_block(o, o, len, norm);
        if (f32_values) hog_round_to_float(o, len);
    }
}

}  // namespace

int hog_batch(std::uintptr_t images, int in_dtype, std::uintptr_t cells, std::uintptr_t out,
              bool out_double, std::int64_t n, std::int64_t H, std::int64_t W, std::int64_t C,
              int orientations, int cell_r, int cell_c, int block_r, int block_c, int norm,
              bool transform_sqrt, std::uintptr_t stream) {
    if (n == 0) return 0;
    const index_t ncr = H / cell_r, ncc = W / cell_c;
    const index_t nbr = ncr - block_r + 1, nbc = ncc - block_c + 1;
    if (ncr <= 0 || ncc <= 0 || nbr <= 0 || nbc <= 0 || orientations <= 0)
        return static_cast<int>(cudaErrorInvalidValue);
    const index_t nf = nbr * nbc * block_r * block_c * orientations;
    cudaStream_t s = reinterpret_cast<cudaStream_t>(stream);
    const int threads = 128;
    return dispatch_in_out(in_dtype, out_double, [&](auto in_tag, auto out_tag) {
        using InT = decltype(in_tag);
        using OutT = decltype(out_tag);
        using G = std::conditional_t<std::is_same_v<InT, float>, float, double>;
        hog_cells<InT, G><<<grid_for(n * ncr * ncc, threads), threads, 0, s>>>(
            reinterpret_cast<const InT*>(images), reinterpret_cast<float*>(cells), n, H, W, C,
            orientations, cell_r, cell_c, ncr, ncc, transform_sqrt);
        int err = last_error();
        if (err) return err;
        hog_blocks<OutT><<<grid_for(n * nbr * nbc, threads), threads, 0, s>>>(
            reinterpret_cast<const float*>(cells), reinterpret_cast<OutT*>(out), n, ncr, ncc,
            orientations, block_r, block_c, norm, nf, std::is_same_v<InT, float>);
        return last_error();
    });
}

}  // namespace cuda
}  // namespace mtl
