// Fused masked loss + gradient for the multi-task solver on the GPU (math in
// mtlclassic/loss.h): G_it = A_it l'(y_it, z_it) and one float64 partial sum of
// A_it l(y_it, z_it) per thread block, which the caller adds up (a fixed-order reduction:
// the same inputs give the same loss, run after run).
#include <cuda_runtime.h>

#include "device_common.cuh"
#include "launchers.h"
#include "mtlclassic/loss.h"

namespace mtl {
namespace cuda {
namespace {

constexpr int kThreads = 256;

// The block's sum of acc into partial[blockIdx.x]: warp shuffles, then warp 0 adds the warp
// sums, the same order every run.
__device__ __forceinline__ void store_block_sum(double acc, double* partial) {
    __shared__ double warp_sums[kThreads / 32];
    for (int off = 16; off > 0; off >>= 1) acc += __shfl_down_sync(0xffffffffu, acc, off);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) warp_sums[warp] = acc;
    __syncthreads();
    if (warp == 0) {
        acc = lane < kThreads / 32 ? warp_sums[lane] : 0.0;
        for (int off = 16; off > 0; off >>= 1) acc += __shfl_down_sync(0xffffffffu, acc, off);
        if (lane == 0) partial[blockIdx.x] = acc;
    }
}

template <typename T>
__global__ void loss_grad_kernel(const T* Z, const T* Y, const T* A, T* G, double* partial,
                                 index_t size, int kind) {
    double acc = 0.0;
    for (index_t i = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; i < size;
         i += static_cast<index_t>(gridDim.x) * blockDim.x) {
        double g;
        acc += masked_loss_grad(kind, static_cast<double>(Z[i]), static_cast<double>(Y[i]),
                                static_cast<double>(A[i]), &g);
        G[i] = static_cast<T>(g);
    }
    store_block_sum(acc, partial);
}

// One thread per row; the same block reduction of the per-row sums.
template <typename T>
__global__ void loss_grad_grouped_kernel(const T* Z, const T* Y, const T* A, T* G,
                                         const int* group, double* partial, index_t n,
                                         index_t n_cols, int kind) {
    double acc = 0.0;
    for (index_t i = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; i < n;
         i += static_cast<index_t>(gridDim.x) * blockDim.x)
        acc += grouped_row_loss_grad(kind, Z + i * n_cols, Y + i * n_cols, A + i * n_cols,
                                     G + i * n_cols, group, n_cols);
    store_block_sum(acc, partial);
}

}  // namespace

int loss_grad_grouped(std::uintptr_t Z, std::uintptr_t Y, std::uintptr_t A, std::uintptr_t G,
                      std::uintptr_t group, std::uintptr_t partial, std::int64_t n,
                      std::int64_t n_cols, int kind, bool is_double, std::uintptr_t stream) {
    if (n == 0 || n_cols == 0) return 0;
    if (kind != LOSS_SQUARED && kind != LOSS_LOGISTIC) return static_cast<int>(cudaErrorInvalidValue);
    const unsigned blocks = static_cast<unsigned>(loss_grad_blocks(n));
    cudaStream_t s = reinterpret_cast<cudaStream_t>(stream);
    const int* gr = reinterpret_cast<const int*>(group);
    if (is_double)
        loss_grad_grouped_kernel<double><<<blocks, kThreads, 0, s>>>(
            reinterpret_cast<const double*>(Z), reinterpret_cast<const double*>(Y),
            reinterpret_cast<const double*>(A), reinterpret_cast<double*>(G), gr,
            reinterpret_cast<double*>(partial), n, n_cols, kind);
    else
        loss_grad_grouped_kernel<float><<<blocks, kThreads, 0, s>>>(
            reinterpret_cast<const float*>(Z), reinterpret_cast<const float*>(Y),
            reinterpret_cast<const float*>(A), reinterpret_cast<float*>(G), gr,
            reinterpret_cast<double*>(partial), n, n_cols, kind);
    return last_error();
}

int loss_grad_blocks(std::int64_t size) {
    return static_cast<int>(grid_for(size, kThreads, 4096));
}

int loss_grad(std::uintptr_t Z, std::uintptr_t Y, std::uintptr_t A, std::uintptr_t G,
              std::uintptr_t partial, std::int64_t size, int kind, bool is_double,
              std::uintptr_t stream) {
    if (size == 0) return 0;
    if (kind != LOSS_SQUARED && kind != LOSS_LOGISTIC) return static_cast<int>(cudaErrorInvalidValue);
    const unsigned blocks = static_cast<unsigned>(loss_grad_blocks(size));
    cudaStream_t s = reinterpret_cast<cudaStream_t>(stream);
    if (is_double)
        loss_grad_kernel<double><<<blocks, kThreads, 0, s>>>(
            reinterpret_cast<const double*>(Z), reinterpret_cast<const double*>(Y),
            reinterpret_cast<const double*>(A), reinterpret_cast<double*>(G),
            reinterpret_cast<double*>(partial), size, kind);
    else
        loss_grad_kernel<float><<<blocks, kThreads, 0, s>>>(
            reinterpret_cast<const float*>(Z), reinterpret_cast<const float*>(Y),
            reinterpret_cast<const float*>(A), reinterpret_cast<float*>(G),
            reinterpret_cast<double*>(partial), size, kind);
    return last_error();
}

}  // namespace cuda
}  // namespace mtl
