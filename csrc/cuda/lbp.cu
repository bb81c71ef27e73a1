// Batched LBP histograms on the GPU, with the per-pixel math of mtlclassic/lbp.h.
//
// One thread block per (image, grid cell): its threads code the cell's pixels (bounds-free
// sampling where the whole circle lies inside the image, zero padding otherwise), count the
// bins with integer atomics -- in shared memory when the histogram fits there, else in the
// cell's own slice of a global scratch buffer -- and write count / area, so the result
// is the CPU's exactly whatever the order of the atomics.
#include <cuda_runtime.h>

#include "device_common.cuh"
#include "launchers.h"
#include "mtlclassic/lbp.h"

namespace mtl {
namespace cuda {
namespace {

constexpr int kThreads = 256;

struct LbpParams {
    double dr[32], dc[32];
    int corners[128];
    double var_edges[256];
    int P, method, n_bins, grid_r, grid_c;
    int reach_lo_r, reach_hi_r, reach_lo_c, reach_hi_c;
};

template <typename InT>
__device__ __forceinline__ int lbp_bin(const InT* img, index_t H, index_t W, index_t r, index_t c,
                                       const LbpParams& p) {
    double v;
    if (r + p.reach_lo_r >= 0 && r + p.reach_hi_r < H && c + p.reach_lo_c >= 0 &&
        c + p.reach_hi_c < W)
        v = lbp_code_inside(img, W, r, c, p.P, p.dr, p.dc, p.corners, p.method);
    else
        v = lbp_code(img, H, W, r, c, p.P, p.dr, p.dc, p.method);
    if (p.method == LBP_VAR) {
        int bin = 0;
        if (v == v)
            while (bin + 1 < p.n_bins && v >= p.var_edges[bin + 1]) ++bin;
        return bin;
    }
    const int bin = static_cast<int>(v);
    return bin >= p.n_bins ? p.n_bins - 1 : bin;
}

template <typename InT, typename OutT>
__global__ void lbp_hist(const InT* images, OutT* out, unsigned* scratch, index_t H, index_t W,
                         const LbpParams p, bool shared_hist) {
    extern __shared__ unsigned sh[];
    const GridCell g(H, W, p.grid_r, p.grid_c, p.n_bins, sh, scratch, shared_hist);
    const InT* img = images + g.image * H * W;
    for (index_t q = threadIdx.x; q < g.count; q += blockDim.x)
        atomicAdd(g.hist + lbp_bin(img, H, W, g.row(q), g.col(q), p), 1u);
    g.write(out, p.n_bins);
}

}  // namespace

int lbp_max_shared_bins() { return kMaxSharedBins; }

int lbp_histograms(std::uintptr_t images, int in_dtype, std::uintptr_t out, bool out_double,
                   std::uintptr_t scratch, std::int64_t n, std::int64_t H, std::int64_t W, int P,
                   int method, const double* dr, const double* dc, int grid_r, int grid_c,
                   int n_bins, const double* var_edges, int n_edges, std::uintptr_t stream) {
    if (n == 0) return 0;
    if (P < 1 || P > 31 || n_bins < 1 || grid_r < 1 || grid_c < 1 || grid_r > H || grid_c > W ||
        n_edges > 256)
        return static_cast<int>(cudaErrorInvalidValue);
    LbpParams p{};
    p.P = P;
    p.method = method;
    p.n_bins = n_bins;
    p.grid_r = grid_r;
    p.grid_c = grid_c;
    for (int i = 0; i < P; ++i) {
        p.dr[i] = dr[i];
        p.dc[i] = dc[i];
        const int fr = static_cast<int>(floor(dr[i])), cr = static_cast<int>(ceil(dr[i]));
        const int fc = static_cast<int>(floor(dc[i])), cc = static_cast<int>(ceil(dc[i]));
        p.corners[4 * i] = fr;
        p.corners[4 * i + 1] = cr;
        p.corners[4 * i + 2] = fc;
        p.corners[4 * i + 3] = cc;
        p.reach_lo_r = fr < p.reach_lo_r ? fr : p.reach_lo_r;
        p.reach_hi_r = cr > p.reach_hi_r ? cr : p.reach_hi_r;
        p.reach_lo_c = fc < p.reach_lo_c ? fc : p.reach_lo_c;
        p.reach_hi_c = cc > p.reach_hi_c ? cc : p.reach_hi_c;
    }
    for (int i = 0; i < n_edges; ++i) p.var_edges[i] = var_edges[i];
    cudaStream_t s = reinterpret_cast<cudaStream_t>(stream);
    return launch_cell_hist(n, grid_r, grid_c, n_bins, scratch, in_dtype, out_double,
                            [&](auto in_tag, auto out_tag, unsigned blocks, size_t shmem,
                                bool shared_hist) {
        using InT = decltype(in_tag);
        using OutT = decltype(out_tag);
        // the offsets and the var edges travel in the kernel's parameter block
        lbp_hist<InT, OutT><<<blocks, kThreads, shmem, s>>>(
            reinterpret_cast<const InT*>(images), reinterpret_cast<OutT*>(out),
            reinterpret_cast<unsigned*>(scratch), H, W, p, shared_hist);
    });
}

}  // namespace cuda
}  // namespace mtl
