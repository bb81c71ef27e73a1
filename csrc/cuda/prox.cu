// L2,1 proximal operator on the GPU: one warp per row, the squared norm reduced with
// warp shuffles in double, the scale from the shared header (mtlclassic/prox.h).
#include <cuda_runtime.h>

#include "launchers.h"
#include "mtlclassic/prox.h"

namespace mtl {
namespace cuda {
namespace {

constexpr int kWarpsPerBlock = 8;

template <typename T>
__global__ void prox_l21_kernel(const T* in, T* out, index_t rows,
                                index_t cols, double tau) {
    const int lane = threadIdx.x & 31;
    const index_t warp = (static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
    const index_t n_warps = (static_cast<index_t>(gridDim.x) * blockDim.x) >> 5;
    for (index_t j = warp; j < rows; j += n_warps) {
        const T* row = in + j * cols;
        double sumsq = 0.0;
        for (index_t k = lane; k < cols; k += 32) {
            const double v = static_cast<double>(row[k]);
            sumsq += v * v;
        }
        for (int off = 16; off > 0; off >>= 1) sumsq += __shfl_xor_sync(0xffffffffu, sumsq, off);
        const double s = l21_row_scale(sumsq, tau);
        T* orow = out + j * cols;
        for (index_t k = lane; k < cols; k += 32)
            orow[k] = static_cast<T>(s * static_cast<double>(row[k]));
    }
}

template <typename T>
int launch(std::uintptr_t in, std::uintptr_t out, index_t rows, index_t cols, double tau,
           cudaStream_t stream) {
    if (rows == 0 || cols == 0) return 0;
    const int threads = 32 * kWarpsPerBlock;
    index_t blocks = (rows + kWarpsPerBlock - 1) / kWarpsPerBlock;
    if (blocks > 65535 * 16) blocks = 65535 * 16;  // grid-stride loop covers the rest
    // in and out may alias (in-place prox): each element is read and then written by
    // the same thread, hence no __restrict__ on the kernel's pointers.
    prox_l21_kernel<T><<<static_cast<unsigned>(blocks), threads, 0, stream>>>(
        reinterpret_cast<const T*>(in), reinterpret_cast<T*>(out), rows, cols, tau);
    return static_cast<int>(cudaGetLastError());
}

}  // namespace

int prox_l21(std::uintptr_t in, std::uintptr_t out, std::int64_t rows, std::int64_t cols,
             double tau, bool is_double, std::uintptr_t stream) {
    cudaStream_t s = reinterpret_cast<cudaStream_t>(stream);
    return is_double ? launch<double>(in, out, rows, cols, tau, s)
                     : launch<float>(in, out, rows, cols, tau, s);
}

}  // namespace cuda
}  // namespace mtl
