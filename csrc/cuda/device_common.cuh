// Helpers shared by the *.cu kernels: dtype codes, dispatch over the input / output element
// types, grid sizing.  Arrays arrive as raw device pointers whose shape, dtype, contiguity
// and device the Python layer has checked.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "mtlclassic/config.h"

namespace mtl {
namespace cuda {

// Element type codes passed from Python (mtlclassic.backend.kernels.DTYPE_CODES).
enum DTypeCode : int { DT_U8 = 0, DT_U16 = 1, DT_F32 = 2, DT_F64 = 3 };

// Calls f(InT{}) for the input type code; returns cudaErrorInvalidValue for an unknown code.
template <typename F>
int dispatch_input(int code, F&& f) {
    switch (code) {
        case DT_U8: return f(std::uint8_t{});
        case DT_U16: return f(std::uint16_t{});
        case DT_F32: return f(float{});
        case DT_F64: return f(double{});
        default: return static_cast<int>(cudaErrorInvalidValue);
    }
}

template <typename F>
int dispatch_in_out(int in_code, bool out_double, F&& f) {
    return dispatch_input(in_code, [&](auto in_tag) {
        return out_double ? f(in_tag, double{}) : f(in_tag, float{});
    });
}

inline unsigned grid_for(index_t work, int threads, index_t max_blocks = 65535LL * 32) {
    index_t b = (work + threads - 1) / threads;
    if (b < 1) b = 1;
    if (b > max_blocks) b = max_blocks;  // kernels use grid-stride loops
    return static_cast<unsigned>(b);
}

inline int last_error() { return static_cast<int>(cudaGetLastError()); }

// Block-wide reductions for blockDim.x a multiple of 32 (at most 1024), called by every
// thread of the block; every thread gets the result.  The order is fixed -- a shuffle tree
// within each warp, then thread 0 adds the warps' results in warp order -- so the same
// inputs and block size give the same bits on every run.
__device__ __forceinline__ double block_sum(double v) {
    __shared__ double part[32];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) part[warp] = v;
    __syncthreads();
    if (threadIdx.x == 0) {
        double s = part[0];
        for (int w = 1; w < static_cast<int>(blockDim.x >> 5); ++w) s += part[w];
        part[0] = s;
    }
    __syncthreads();
    const double r = part[0];
    __syncthreads();  // part may be reused by the next call
    return r;
}

// Minimum and maximum over the block (exact in any order).
__device__ __forceinline__ void block_min_max(double* lo, double* hi) {
    __shared__ double part_lo[32], part_hi[32];
    double a = *lo, b = *hi;
    for (int o = 16; o > 0; o >>= 1) {
        a = fmin(a, __shfl_down_sync(0xffffffffu, a, o));
        b = fmax(b, __shfl_down_sync(0xffffffffu, b, o));
    }
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) {
        part_lo[warp] = a;
        part_hi[warp] = b;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int w = 1; w < static_cast<int>(blockDim.x >> 5); ++w) {
            a = fmin(a, part_lo[w]);
            b = fmax(b, part_hi[w]);
        }
        part_lo[0] = a;
        part_hi[0] = b;
    }
    __syncthreads();
    *lo = part_lo[0];
    *hi = part_hi[0];
    __syncthreads();
}

// Histogram kernels with one thread block per (image, grid cell): the cell's pixel range
// (rows [i H / g_r, (i+1) H / g_r), likewise for columns), a zeroed count array -- in
// dynamic shared memory, or the block's slice of a global scratch buffer when n_bins is too
// large -- and the final count / area, the CPU kernels' arithmetic.
constexpr int kMaxSharedBins = 48 * 1024 / static_cast<int>(sizeof(unsigned));

struct GridCell {
    index_t image, r0, c0, width, count;
    int cell;
    unsigned* hist;

    __device__ GridCell(index_t H, index_t W, int grid_r, int grid_c, int n_bins,
                        unsigned* shared, unsigned* scratch, bool use_shared) {
        const int n_cells = grid_r * grid_c;
        image = blockIdx.x / n_cells;
        cell = blockIdx.x % n_cells;
        const int ci = cell / grid_c, cj = cell % grid_c;
        r0 = ci * H / grid_r;
        c0 = cj * W / grid_c;
        width = (cj + 1) * W / grid_c - c0;
        count = ((ci + 1) * H / grid_r - r0) * width;
        hist = use_shared ? shared : scratch + static_cast<index_t>(blockIdx.x) * n_bins;
        for (int k = threadIdx.x; k < n_bins; k += blockDim.x) hist[k] = 0u;
        __syncthreads();
    }
    // the q-th pixel of the cell, row-major
    __device__ index_t row(index_t q) const { return r0 + q / width; }
    __device__ index_t col(index_t q) const { return c0 + q % width; }

    template <typename OutT>
    __device__ void write(OutT* out, int n_bins) const {
        __syncthreads();
        // block b = image * n_cells + cell: its bins are row b of the (n * n_cells, n_bins) out
        OutT* o = out + static_cast<index_t>(blockIdx.x) * n_bins;
        const double area = static_cast<double>(count);
        for (int k = threadIdx.x; k < n_bins; k += blockDim.x)
            o[k] = static_cast<OutT>(static_cast<double>(hist[k]) / area);
    }
};

// Launches a block-per-cell histogram kernel: one block per (image, cell), the histogram
// in dynamic shared memory when n_bins fits (else a global scratch buffer must be given),
// then launch(in_tag, out_tag, blocks, shmem, use_shared) for the element types.
template <typename Launch>
int launch_cell_hist(index_t n, int grid_r, int grid_c, int n_bins, std::uintptr_t scratch,
                     int in_dtype, bool out_double, Launch&& launch) {
    const index_t b = n * grid_r * grid_c;
    if (b > 0x7fffffffLL) return static_cast<int>(cudaErrorInvalidConfiguration);
    const bool use_shared = n_bins <= kMaxSharedBins;
    if (!use_shared && scratch == 0) return static_cast<int>(cudaErrorInvalidValue);
    const size_t shmem = use_shared ? static_cast<size_t>(n_bins) * sizeof(unsigned) : 0;
    return dispatch_in_out(in_dtype, out_double, [&](auto in_tag, auto out_tag) {
        launch(in_tag, out_tag, static_cast<unsigned>(b), shmem, use_shared);
        return last_error();
    });
}

}  // namespace cuda
}  // namespace mtl
