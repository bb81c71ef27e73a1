// Batched Gabor filter-bank features on the GPU, with the padding, per-pixel response and
// cell geometry of mtlclassic/gabor.h.
//
// Per chunk of n images:
//  1. gabor_pad: one thread per padded pixel writes the float64 reflect-padded images
//     (n, PH, PW) -- the CPU's padded buffer;
//  2. per filter, gabor_mag: one thread per output pixel runs gabor_pixel_response (a direct
//     correlation in row-major kernel order from 0.0, float64, no FMA: the CPU's bits) and
//     stores hypot(real, imag) into mag (n, H, W);
//  3. per filter, gabor_stats: one thread block per (image, cell) sums the cell's magnitudes
//     (a fixed-order block reduction), then the squared deviations from the mean -- the
//     CPU's two-pass variance, summed in another (fixed) order, so the features agree with
//     the CPU to rounding (~1e-15 relative) -- and writes (mean, variance) to out.
// A direct convolution rather than cuFFT: it keeps the CPU's arithmetic term for term, so the
// GPU's responses are the CPU's; the kernels are small (a few dozen taps a side).
#include <cuda_runtime.h>

#include "device_common.cuh"
#include "launchers.h"
#include "mtlclassic/gabor.h"

namespace mtl {
namespace cuda {
namespace {

constexpr int kThreads = 256;

template <typename InT>
__global__ void gabor_pad(const InT* images, double* padded, index_t n, index_t H, index_t W,
                          index_t pad_r, index_t pad_c) {
    const index_t PH = H + 2 * pad_r, PW = W + 2 * pad_c, total = n * PH * PW;
    for (index_t t = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; t < total;
         t += static_cast<index_t>(gridDim.x) * blockDim.x) {
        const index_t image = t / (PH * PW), rem = t % (PH * PW);
        padded[t] = static_cast<double>(
            images[image * H * W + gabor_pad_source(rem / PW, rem % PW, pad_r, pad_c, H, W)]);
    }
}

__global__ void gabor_mag(const double* padded, double* mag, index_t n, index_t H, index_t W,
                          index_t pad_r, index_t pad_c, const double* kre, const double* kim,
                          index_t kh, index_t kw) {
    const index_t PH = H + 2 * pad_r, PW = W + 2 * pad_c, total = n * H * W;
    const index_t hr = kh / 2, hc = kw / 2;
    for (index_t t = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; t < total;
         t += static_cast<index_t>(gridDim.x) * blockDim.x) {
        const index_t image = t / (H * W), rem = t % (H * W), r = rem / W, c = rem % W;
        const double* win = padded + image * PH * PW + (r + pad_r - hr) * PW + (c + pad_c - hc);
        double re, im;
        gabor_pixel_response(win, PW, kre, kim, kh, kw, &re, &im);
        mag[t] = gabor_magnitude(re, im);
    }
}

template <typename OutT>
__global__ void gabor_stats(const double* mag, OutT* out, index_t H, index_t W, int grid_r,
                            int grid_c, int filter, index_t n_features) {
    const int n_cells = grid_r * grid_c;
    const index_t image = blockIdx.x / n_cells;
    const int cell = blockIdx.x % n_cells, gi = cell / grid_c, gj = cell % grid_c;
    const index_t r0 = gabor_cell_edge(gi, H, grid_r), r1 = gabor_cell_edge(gi + 1, H, grid_r);
    const index_t c0 = gabor_cell_edge(gj, W, grid_c), c1 = gabor_cell_edge(gj + 1, W, grid_c);
    const index_t width = c1 - c0, count = (r1 - r0) * width;
    const double* m = mag + image * H * W;
    double s = 0.0;
    for (index_t q = threadIdx.x; q < count; q += blockDim.x)
        s += m[(r0 + q / width) * W + c0 + q % width];
    const double area = static_cast<double>(count);
    const double mean = block_sum(s) / area;
    double ss = 0.0;
    for (index_t q = threadIdx.x; q < count; q += blockDim.x) {
        const double d = m[(r0 + q / width) * W + c0 + q % width] - mean;
        ss += d * d;
    }
    const double var = block_sum(ss) / area;
    if (threadIdx.x == 0) {
        OutT* o = out + image * n_features + (static_cast<index_t>(filter) * n_cells + cell) * 2;
        o[0] = static_cast<OutT>(mean);
        o[1] = static_cast<OutT>(var);
    }
}

}  // namespace

int gabor_features(std::uintptr_t images, int in_dtype, std::uintptr_t out, bool out_double,
                   std::uintptr_t weights, std::int64_t n_weights, const std::int64_t* kh,
                   const std::int64_t* kw, const std::int64_t* offset, int n_kernels,
                   std::uintptr_t padded,
                   std::uintptr_t mag, std::int64_t n, std::int64_t H, std::int64_t W,
                   std::int64_t pad_r, std::int64_t pad_c, int grid_r, int grid_c,
                   std::uintptr_t stream) {
    if (n == 0) return 0;
    if (n < 0 || H < 1 || W < 1 || n_kernels < 1 || grid_r < 1 || grid_c < 1 || grid_r > H ||
        grid_c > W || pad_r < 0 || pad_c < 0)
        return static_cast<int>(cudaErrorInvalidValue);
    for (int k = 0; k < n_kernels; ++k)
        if (kh[k] < 1 || kw[k] < 1 || kh[k] % 2 == 0 || kw[k] % 2 == 0 || kh[k] / 2 > pad_r ||
            kw[k] / 2 > pad_c || offset[k] < 0 || offset[k] + 2 * kh[k] * kw[k] > n_weights)
            return static_cast<int>(cudaErrorInvalidValue);
    const index_t blocks = n * grid_r * grid_c;
    if (blocks > 0x7fffffffLL) return static_cast<int>(cudaErrorInvalidConfiguration);
    const index_t PH = H + 2 * pad_r, PW = W + 2 * pad_c;
    const index_t nf = static_cast<index_t>(n_kernels) * grid_r * grid_c * 2;
    const double* w = reinterpret_cast<const double*>(weights);
    double* pad = reinterpret_cast<double*>(padded);
    double* m = reinterpret_cast<double*>(mag);
    cudaStream_t s = reinterpret_cast<cudaStream_t>(stream);
    return dispatch_in_out(in_dtype, out_double, [&](auto in_tag, auto out_tag) {
        using InT = decltype(in_tag);
        using OutT = decltype(out_tag);
        gabor_pad<InT><<<grid_for(n * PH * PW, kThreads), kThreads, 0, s>>>(
            reinterpret_cast<const InT*>(images), pad, n, H, W, pad_r, pad_c);
        int err = last_error();
        if (err) return err;
        for (int k = 0; k < n_kernels; ++k) {
            const double* kre = w + offset[k];
            gabor_mag<<<grid_for(n * H * W, kThreads), kThreads, 0, s>>>(
                pad, m, n, H, W, pad_r, pad_c, kre, kre + kh[k] * kw[k], kh[k], kw[k]);
            err = last_error();
            if (err) return err;
            gabor_stats<OutT><<<static_cast<unsigned>(blocks), kThreads, 0, s>>>(
                m, reinterpret_cast<OutT*>(out), H, W, grid_r, grid_c, k, nf);
            err = last_error();
            if (err) return err;
        }
        return 0;
    });
}

}  // namespace cuda
}  // namespace mtl
