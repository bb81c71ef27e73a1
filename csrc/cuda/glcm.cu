// Batched GLCM on the GPU, with the quantisation, pair ranges, symmetrisation and property
// formulas of mtlclassic/glcm.h.
//
// Per chunk of n images and each (distance, angle) offset, one launch of glcm_count with one
// thread block per image: the threads quantise their pixels on the fly (per-image ranges
// found first by a block min / max reduction), count level pairs with 32-bit integer
// atomics -- in shared memory when levels^2 counters fit there, else directly in the image's
// slice of the global counts buffer -- so the counts are the CPU's exactly whatever the
// order of the atomics, symmetrise them, and store them in counts (n, n_offsets, levels,
// levels).  Then glcm_props, one thread per (image, offset), runs glcm_properties on its
// count matrix -- the CPU's function, in the CPU's order, so the properties are the CPU's
// bits -- and writes the requested properties into out (n, n_props * n_offsets),
// property-major as on the CPU.
//
// Counts stay exact while (symmetric ? 2 : 1) * H * W < 2^32 (glcm_counts_fit_u32);
// larger images are refused with cudaErrorInvalidValue (the bindings and Python say why).
#include <cuda_runtime.h>

#include <type_traits>

#include "device_common.cuh"
#include "launchers.h"
#include "mtlclassic/glcm.h"

namespace mtl {
namespace cuda {
namespace {

constexpr int kThreads = 256;
// levels^2 counters in dynamic shared memory next to block_min_max's static 512 bytes:
// up to 110 levels (12100 counters).
constexpr int kGlcmMaxSharedBins = (48 * 1024 - 512) / static_cast<int>(sizeof(unsigned));

struct GlcmParams {
    int mode, levels;
    double lo, hi;
    bool symmetric;
};

constexpr int kMaxProps = 64;

struct GlcmSelect {
    int which[kMaxProps];
    int n_props;
    bool want_entropy, want_second;
};

template <typename InT>
__device__ __forceinline__ int glcm_level(InT v, int mode, double lo, double span, int levels) {
    if constexpr (std::is_integral_v<InT>) {
        if (mode == QUANT_U8) return glcm_level_shift(static_cast<std::uint64_t>(v), levels, 8);
        if (mode == QUANT_U16) return glcm_level_shift(static_cast<std::uint64_t>(v), levels, 16);
    }
    return glcm_level_affine(static_cast<double>(v), lo, span, levels);
}

template <typename InT>
__global__ void glcm_count(const InT* images, unsigned* counts, index_t H, index_t W, index_t dr,
                           index_t dc, int k, int n_off, const GlcmParams p, bool shared_hist) {
    extern __shared__ unsigned sh[];
    const int L = p.levels, L2 = L * L;
    const index_t image = blockIdx.x;
    const InT* img = images + image * H * W;
    unsigned* dst = counts + (image * n_off + k) * static_cast<index_t>(L2);
    unsigned* hist = shared_hist ? sh : dst;
    for (int t = threadIdx.x; t < L2; t += blockDim.x) hist[t] = 0u;
    double lo = p.lo, hi = p.hi;
    if (p.mode == QUANT_PER_IMAGE) {
        lo = INFINITY;
        hi = -INFINITY;
        for (index_t q = threadIdx.x; q < H * W; q += blockDim.x) {
            const double v = static_cast<double>(img[q]);
            lo = fmin(lo, v);
            hi = fmax(hi, v);
        }
        block_min_max(&lo, &hi);
    }
    const double span = glcm_span(lo, hi);
    __syncthreads();  // counters zeroed
    const GlcmPairRange g = glcm_pair_range(H, W, dr, dc);
    const index_t width = g.cols(), total = g.rows() * width;
    for (index_t q = threadIdx.x; q < total; q += blockDim.x) {
        const index_t r = g.r0 + q / width, c = g.c0 + q % width;
        const int a = glcm_level(img[r * W + c], p.mode, lo, span, L);
        const int b = glcm_level(img[(r + dr) * W + c + dc], p.mode, lo, span, L);
        atomicAdd(hist + a * L + b, 1u);
    }
    __syncthreads();
    if (p.symmetric) {
        for (int t = threadIdx.x; t < L2; t += blockDim.x) {
            const int i = t / L, j = t % L;
            if (i <= j) glcm_symmetrize_entry(hist, L, i, j);
        }
        __syncthreads();
    }
    if (shared_hist)
        for (int t = threadIdx.x; t < L2; t += blockDim.x) dst[t] = hist[t];
}

template <typename OutT>
__global__ void glcm_props(const unsigned* counts, OutT* out, index_t n, int n_off, int levels,
                           const GlcmSelect sel) {
    const index_t total = n * n_off, L2 = static_cast<index_t>(levels) * levels;
    for (index_t t = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; t < total;
         t += static_cast<index_t>(gridDim.x) * blockDim.x) {
        const index_t image = t / n_off, k = t % n_off;
        double pr[10];
        glcm_properties(counts + t * L2, levels, pr, sel.want_entropy, sel.want_second);
        OutT* o = out + image * static_cast<index_t>(sel.n_props) * n_off + k;
        for (int q = 0; q < sel.n_props; ++q) o[q * n_off] = static_cast<OutT>(pr[sel.which[q]]);
    }
}

}  // namespace

int glcm_max_shared_bins() { return kGlcmMaxSharedBins; }
int glcm_max_props() { return kMaxProps; }

int glcm_features(std::uintptr_t images, int in_dtype, std::uintptr_t out, bool out_double,
                  std::uintptr_t counts, std::int64_t n, std::int64_t H, std::int64_t W, int mode,
                  double lo, double hi, const std::int64_t* dr, const std::int64_t* dc, int n_off,
                  int levels,
                  bool symmetric, const int* which, int n_props, std::uintptr_t stream) {
    if (n == 0) return 0;
    if (n < 0 || H < 1 || W < 1 || n_off < 1 || levels < 2 || levels > 256 || mode < 0 ||
        mode > 3 || n_props < 1 || n_props > kMaxProps || n > 0x7fffffffLL ||
        !glcm_counts_fit_u32(H, W, symmetric) || (mode == QUANT_AFFINE && !(hi > lo)))
        return static_cast<int>(cudaErrorInvalidValue);
    // integer images under the dtype's range must use that dtype's mode; floats an affine one
    if ((mode == QUANT_U8 && in_dtype != DT_U8) || (mode == QUANT_U16 && in_dtype != DT_U16))
        return static_cast<int>(cudaErrorInvalidValue);
    GlcmSelect sel{};
    sel.n_props = n_props;
    for (int q = 0; q < n_props; ++q) {
        if (which[q] < 0 || which[q] > GLCM_ENTROPY) return static_cast<int>(cudaErrorInvalidValue);
        sel.which[q] = which[q];
        sel.want_entropy |= which[q] == GLCM_ENTROPY;
        sel.want_second |= which[q] == GLCM_CORRELATION || which[q] == GLCM_VARIANCE ||
                           which[q] == GLCM_STD;
    }
    const GlcmParams p{mode, levels, lo, hi, symmetric};
    const int L2 = levels * levels;
    const bool use_shared = L2 <= kGlcmMaxSharedBins;
    const size_t shmem = use_shared ? static_cast<size_t>(L2) * sizeof(unsigned) : 0;
    cudaStream_t s = reinterpret_cast<cudaStream_t>(stream);
    return dispatch_in_out(in_dtype, out_double, [&](auto in_tag, auto out_tag) {
        using InT = decltype(in_tag);
        using OutT = decltype(out_tag);
        for (int k = 0; k < n_off; ++k) {
            // an offset of |d| >= the image's side pairs nothing: clamp it there
            const index_t r = dr[k] > H ? H : (dr[k] < -H ? -H : dr[k]);
            const index_t c = dc[k] > W ? W : (dc[k] < -W ? -W : dc[k]);
            glcm_count<InT><<<static_cast<unsigned>(n), kThreads, shmem, s>>>(
                reinterpret_cast<const InT*>(images), reinterpret_cast<unsigned*>(counts), H, W,
                r, c, k, n_off, p, use_shared);
            const int err = last_error();
            if (err) return err;
        }
        glcm_props<OutT><<<grid_for(n * n_off, 128), 128, 0, s>>>(
            reinterpret_cast<const unsigned*>(counts), reinterpret_cast<OutT*>(out), n, n_off,
            levels, sel);
        return last_error();
    });
}

}  // namespace cuda
}  // namespace mtl
