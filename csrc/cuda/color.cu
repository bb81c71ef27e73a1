// Batched colour histograms on the GPU, with the conversion and binning of
// mtlclassic/color.h.  One thread block per (image, grid cell) counts its pixels' bins with
// integer atomics (shared memory when the histogram fits, else the cell's slice of a
// global scratch buffer) and writes count / area: the CPU's numbers exactly.
#include <cuda_runtime.h>

#include "device_common.cuh"
#include "launchers.h"
#include "mtlclassic/color.h"

namespace mtl {
namespace cuda {
namespace {

constexpr int kThreads = 256;

struct ColorParams {
    int space, b0, b1, b2, n_bins, grid_r, grid_c;
    bool joint;
};

template <typename InT, typename OutT>
__global__ void color_hist(const InT* images, OutT* out, unsigned* scratch, index_t H, index_t W,
                           index_t C, const ColorParams p, bool shared_hist) {
    using T = std::conditional_t<std::is_same_v<InT, float>, float, double>;
    extern __shared__ unsigned sh[];
    const GridCell g(H, W, p.grid_r, p.grid_c, p.n_bins, sh, scratch, shared_hist);
    unsigned* hist = g.hist;
    const InT* img = images + g.image * H * W * C;
    for (index_t q = threadIdx.x; q < g.count; q += blockDim.x) {
        const InT* px = img + (g.row(q) * W + g.col(q)) * C;
        if (p.space == SPACE_GREY) {
            atomicAdd(hist + unit_bin(to_unit<InT, T>(px[0]), p.b0), 1u);
            continue;
        }
        T x = to_unit<InT, T>(px[0]), y = to_unit<InT, T>(px[1]), z = to_unit<InT, T>(px[2]);
        if (p.space == SPACE_HSV) rgb_to_hsv<T>(x, y, z, &x, &y, &z);
        const int k0 = unit_bin(x, p.b0), k1 = unit_bin(y, p.b1), k2 = unit_bin(z, p.b2);
        if (p.joint) {
            atomicAdd(hist + (k0 * p.b1 + k1) * p.b2 + k2, 1u);
        } else {
            atomicAdd(hist + k0, 1u);
            atomicAdd(hist + p.b0 + k1, 1u);
            atomicAdd(hist + p.b0 + p.b1 + k2, 1u);
        }
    }
    g.write(out, p.n_bins);
}

}  // namespace

int color_max_shared_bins() { return kMaxSharedBins; }

int color_histograms(std::uintptr_t images, int in_dtype, std::uintptr_t out, bool out_double,
                     std::uintptr_t scratch, std::int64_t n, std::int64_t H, std::int64_t W,
                     std::int64_t C, int space, int b0, int b1, int b2, bool joint, int grid_r,
                     int grid_c, std::uintptr_t stream) {
    if (n == 0) return 0;
    if (space < 0 || space > 2 || (space == SPACE_GREY ? C != 1 : C != 3) || b0 < 1 || b1 < 1 ||
        b2 < 1 || grid_r < 1 || grid_c < 1 || grid_r > H || grid_c > W)
        return static_cast<int>(cudaErrorInvalidValue);
    const index_t n_bins = color_n_bins(space, joint, b0, b1, b2);
    if (n_bins > 0x7fffffffLL) return static_cast<int>(cudaErrorInvalidValue);  // int bins
    ColorParams p{space, b0, b1, b2, static_cast<int>(n_bins), grid_r, grid_c, joint};
    cudaStream_t s = reinterpret_cast<cudaStream_t>(stream);
    return launch_cell_hist(n, grid_r, grid_c, p.n_bins, scratch, in_dtype, out_double,
                            [&](auto in_tag, auto out_tag, unsigned blocks, size_t shmem,
                                bool shared_hist) {
        using InT = decltype(in_tag);
        using OutT = decltype(out_tag);
        color_hist<InT, OutT><<<blocks, kThreads, shmem, s>>>(
            reinterpret_cast<const InT*>(images), reinterpret_cast<OutT*>(out),
            reinterpret_cast<unsigned*>(scratch), H, W, C, p, shared_hist);
    });
}

}  // namespace cuda
}  // namespace mtl
