// Patches resampled around sub-pixel points on the GPU (math in mtlclassic/patch.h, the
// CPU kernel's arithmetic): one thread per output sample, grid-stride. Images come as one
// (n, H, W) batch.
#include <cuda_runtime.h>

#include "device_common.cuh"
#include "launchers.h"
#include "mtlclassic/patch.h"

namespace mtl {
namespace cuda {
namespace {

constexpr int kThreads = 256;

template <typename InT>
__global__ void patches_kernel(const InT* images, const double* points, const double* sides,
                               double* out, index_t n, index_t H, index_t W, index_t m, int P) {
    const index_t total = n * m * P * P;
    for (index_t i = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; i < total;
         i += static_cast<index_t>(gridDim.x) * blockDim.x) {
        const index_t k = i / (static_cast<index_t>(P) * P);  // (image, point)
        const int rc = static_cast<int>(i % (static_cast<index_t>(P) * P));
        double x, y;
        patch_sample_xy(points[2 * k], points[2 * k + 1], sides[k], P, rc / P, rc % P, &x, &y);
        out[i] = bilinear_sample(images + (k / m) * H * W, H, W, x, y);
    }
}

}  // namespace

int patches(std::uintptr_t images, int in_dtype, std::uintptr_t points, std::uintptr_t sides,
            std::uintptr_t out, std::int64_t n, std::int64_t H, std::int64_t W, std::int64_t m,
            int P, std::uintptr_t stream) {
    const index_t total = n * m * P * P;
    if (total == 0) return 0;
    cudaStream_t s = reinterpret_cast<cudaStream_t>(stream);
    const unsigned blocks = grid_for(total, kThreads);
    return dispatch_input(in_dtype, [&](auto in_tag) {
        using InT = decltype(in_tag);
        patches_kernel<InT><<<blocks, kThreads, 0, s>>>(
            reinterpret_cast<const InT*>(images), reinterpret_cast<const double*>(points),
            reinterpret_cast<const double*>(sides), reinterpret_cast<double*>(out), n, H, W, m,
            P);
        return last_error();
    });
}

}  // namespace cuda
}  // namespace mtl
