// Batched GLCM on the CPU: co-occurrence counts per (distance, angle) offset and their
// properties (math in csrc/include/mtlclassic/glcm.h).
#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "common.h"
#include "images.h"
#include "mtlclassic/glcm.h"
#include "parallel.h"

namespace mtl {
namespace {

// Counts are exact while no entry reaches 2**32: an entry counts at most H * W pairs, a
// symmetric diagonal entry twice that. 32-bit counts (scikit-image's) are used while
// H * W * (1 + symmetric) <= 2**32 - 1, i.e. up to 4.29e9 pixels (2.15e9 symmetric);
// larger images count in 64 bits (wide_counts, decided by mtlclassic.features.glcm).
constexpr std::uint64_t kMaxPairs32 = 0xffffffffULL;

// counts (levels x levels) of one quantised image for offset (dr, dc). Neighbouring
// pixels often hit the same cell, so four interleaved copies of the counts (one per
// column modulo 4) break the increment-after-increment dependency; they are summed after.
// The offsets are 64-bit: an offset as large as the image (or larger) pairs nothing.
template <typename CountT>
void count_pairs(const std::uint8_t* q, index_t H, index_t W, index_t dr, index_t dc,
                 int levels, bool symmetric, CountT* counts, std::vector<CountT>& scratch) {
    const index_t L2 = static_cast<index_t>(levels) * levels;
    scratch.assign(static_cast<size_t>(4 * L2), CountT{0});
    CountT* h0 = scratch.data();
    CountT* h1 = h0 + L2;
    CountT* h2 = h1 + L2;
    CountT* h3 = h2 + L2;
    if (dr >= H || -dr >= H || dc >= W || -dc >= W) {  // no pair inside the image
        for (index_t k = 0; k < L2; ++k) counts[k] = 0;
        return;
    }
    const index_t r0 = dr < 0 ? -dr : 0, r1 = dr > 0 ? H - dr : H;
    const index_t c0 = dc < 0 ? -dc : 0, c1 = dc > 0 ? W - dc : W;
    for (index_t r = r0; r < r1; ++r) {
        const std::uint8_t* a = q + r * W;
        const std::uint8_t* b = q + (r + dr) * W + (c0 + dc);  // partner of a[c0]
        index_t c = c0;
        for (; c + 3 < c1; c += 4) {
            const std::uint8_t* bc = b + (c - c0);
            ++h0[a[c] * levels + bc[0]];
            ++h1[a[c + 1] * levels + bc[1]];
            ++h2[a[c + 2] * levels + bc[2]];
            ++h3[a[c + 3] * levels + bc[3]];
        }
        for (; c < c1; ++c) ++h0[a[c] * levels + b[c - c0]];
    }
    for (index_t k = 0; k < L2; ++k) counts[k] = h0[k] + h1[k] + h2[k] + h3[k];
    if (symmetric)
        for (int i = 0; i < levels; ++i)
            for (int j = i; j < levels; ++j) {
                const CountT s = counts[i * levels + j] + counts[j * levels + i];
                counts[i * levels + j] = s;
                counts[j * levels + i] = s;
            }
}

struct GlcmArgs {
    std::vector<index_t> dr, dc;
    int levels;
    bool symmetric;
};

GlcmArgs glcm_args(const carray<std::int64_t>& offsets, int levels, bool symmetric) {
    require(levels >= 2 && levels <= 256, "levels must be in [2, 256]");
    require(offsets.ndim() == 2 && offsets.shape(1) == 2, "offsets must be (n_offsets, 2)");
    GlcmArgs a{{}, {}, levels, symmetric};
    for (index_t k = 0; k < offsets.shape(0); ++k) {
        const std::int64_t r = offsets.at(k, 0), c = offsets.at(k, 1);
        // |offset| < 2**62 keeps H - dr and r + dr free of overflow
        require(r > -(INT64_C(1) << 62) && r < (INT64_C(1) << 62) && c > -(INT64_C(1) << 62) &&
                    c < (INT64_C(1) << 62), "offsets must lie within +-2**62");
        a.dr.push_back(r);
        a.dc.push_back(c);
    }
    return a;
}

void check_levels(const std::uint8_t* q, index_t n, int levels) {
    for (index_t i = 0; i < n; ++i)
        if (q[i] >= levels) throw std::invalid_argument("quantised image has a value >= levels");
}

// Quantise one image to levels (mtlclassic.features.glcm.quantize, the reference; the
// per-pixel formulas are glcm_level_shift / glcm_level_affine of mtlclassic/glcm.h).
template <typename InT>
void quantize_image(const InT* img, index_t n, int mode, double lo, double hi, int levels,
                    std::uint8_t* q) {
    if constexpr (std::is_integral_v<InT>) {
        if (mode == QUANT_U8 || mode == QUANT_U16) {
            const int shift = mode == QUANT_U8 ? 8 : 16;
            for (index_t k = 0; k < n; ++k)
                q[k] = static_cast<std::uint8_t>(
                    glcm_level_shift(static_cast<std::uint64_t>(img[k]), levels, shift));
            return;
        }
    }
    if (mode == QUANT_PER_IMAGE) {
        lo = hi = static_cast<double>(img[0]);
        for (index_t k = 1; k < n; ++k) {
            const double v = static_cast<double>(img[k]);
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
    }
    const double span = glcm_span(lo, hi);
    for (index_t k = 0; k < n; ++k)
        q[k] = static_cast<std::uint8_t>(
            glcm_level_affine(static_cast<double>(img[k]), lo, span, levels));
}

// images: (n, H, W, 1) of any supported dtype, quantised on the fly; out (n, n_props *
// n_offsets), property-major.
void glcm_features(py::array images, py::array out, int mode, double lo, double hi,
                   carray<std::int64_t> offsets, int levels, bool symmetric,
                   carray<std::int64_t> props, int n_threads, bool wide_counts) {
    const ImageBatch s = batch_shape(images);
    require(s.C == 1, "GLCM needs grey images (C == 1)");
    require(mode >= 0 && mode <= 3, "unknown quantisation mode");
    require(mode == QUANT_PER_IMAGE || mode < 2 || hi > lo, "value range needs hi > lo");
    const GlcmArgs a = glcm_args(offsets, levels, symmetric);
    const index_t n = s.n, H = s.H, W = s.W;
    const index_t n_off = static_cast<index_t>(a.dr.size()), n_props = props.shape(0);
    std::vector<int> which(static_cast<size_t>(n_props));
    bool want_entropy = false, want_second = false;
    for (index_t k = 0; k < n_props; ++k) {
        const int w = static_cast<int>(props.at(k));
        require(w >= 0 && w <= 9, "unknown property");
        which[static_cast<size_t>(k)] = w;
        want_entropy |= w == GLCM_ENTROPY;
        want_second |= w == GLCM_CORRELATION || w == GLCM_VARIANCE || w == GLCM_STD;
    }
    require(out.ndim() == 2 && out.shape(0) == n && out.shape(1) == n_props * n_off,
            "out must be (n, n_props * n_offsets)");
    require(wide_counts || static_cast<std::uint64_t>(H) * static_cast<std::uint64_t>(W) *
                                   (symmetric ? 2u : 1u) <= kMaxPairs32,
            "images this large need wide_counts=True (64-bit counts)");
    dispatch_in_out(images, out, [&](auto in_tag, auto out_tag) {
        using InT = decltype(in_tag);
        using OutT = decltype(out_tag);
        if constexpr (!std::is_integral_v<InT>)
            require(mode >= 2, "float images need an affine or per-image quantisation");
        else if constexpr (std::is_same_v<InT, std::uint8_t>)
            require(mode != QUANT_U16, "uint16 quantisation given uint8 images");
        else
            require(mode != QUANT_U8, "uint8 quantisation given uint16 images");
        const InT* src = static_cast<const InT*>(images.data());
        OutT* dst = static_cast<OutT*>(out.mutable_data());
        py::gil_scoped_release nogil;
        auto run = [&](auto count_tag) {
        using CountT = decltype(count_tag);
        parallel_for(n, n_threads, [&](index_t b, index_t e) {
            std::vector<std::uint8_t> q(static_cast<size_t>(H * W));
            std::vector<CountT> counts(static_cast<size_t>(levels * levels)), scratch;
            double pr[10];
            for (index_t i = b; i < e; ++i) {
                quantize_image(src + i * H * W, H * W, mode, lo, hi, levels, q.data());
                for (index_t k = 0; k < n_off; ++k) {
                    count_pairs(q.data(), H, W, a.dr[k], a.dc[k], levels, symmetric,
                                counts.data(), scratch);
                    glcm_properties(counts.data(), levels, pr, want_entropy, want_second);
                    for (index_t p = 0; p < n_props; ++p)
                        dst[i * n_props * n_off + p * n_off + k] =
                            static_cast<OutT>(pr[which[static_cast<size_t>(p)]]);
                }
            }
        });
        };
        if (wide_counts)
            run(std::uint64_t{});
        else
            run(std::uint32_t{});
    });
}

// Raw counts of one image: out (levels, levels, n_offsets) uint32 (for tests).
void glcm_counts(carray<std::uint8_t> q, carray<std::uint32_t> out, carray<std::int64_t> offsets,
                 int levels, bool symmetric) {
    require(q.ndim() == 2, "q must be (H, W)");
    const GlcmArgs a = glcm_args(offsets, levels, symmetric);
    const index_t n_off = static_cast<index_t>(a.dr.size());
    require(out.ndim() == 3 && out.shape(0) == levels && out.shape(1) == levels &&
                out.shape(2) == n_off, "out must be (levels, levels, n_offsets)");
    check_levels(q.data(), q.shape(0) * q.shape(1), levels);
    require(static_cast<std::uint64_t>(q.shape(0) * q.shape(1)) * (symmetric ? 2u : 1u) <=
                kMaxPairs32, "glcm_counts counts in 32 bits: the image is too large");
    std::vector<std::uint32_t> counts(static_cast<size_t>(levels * levels)), scratch;
    std::uint32_t* o = out.mutable_data();
    for (index_t k = 0; k < n_off; ++k) {
        count_pairs(q.data(), q.shape(0), q.shape(1), a.dr[k], a.dc[k], levels, symmetric,
                    counts.data(), scratch);
        for (int ij = 0; ij < levels * levels; ++ij) o[ij * n_off + k] = counts[ij];
    }
}

// Counts of one quantised image (H, W) the way the CUDA kernel makes them (for tests of the
// shared pair and symmetrisation math): per offset, pair q of the glcm_pair_range block at
// (r0 + q / cols, c0 + q % cols), one increment each, then glcm_symmetrize_entry on every
// i <= j entry; out (levels, levels, n_offsets) uint32, as glcm_counts.
void glcm_counts_device_form(carray<std::uint8_t> q, carray<std::uint32_t> out,
                             carray<std::int64_t> offsets, int levels, bool symmetric) {
    require(q.ndim() == 2, "q must be (H, W)");
    require(levels >= 2 && levels <= 256, "levels must be in [2, 256]");
    require(offsets.ndim() == 2 && offsets.shape(1) == 2, "offsets must be (n_offsets, 2)");
    const index_t H = q.shape(0), W = q.shape(1), n_off = offsets.shape(0);
    const index_t L2 = static_cast<index_t>(levels) * levels;
    require(out.ndim() == 3 && out.shape(0) == levels && out.shape(1) == levels &&
                out.shape(2) == n_off, "out must be (levels, levels, n_offsets)");
    require(glcm_counts_fit_u32(H, W, symmetric), "the image is too large for 32-bit counts");
    check_levels(q.data(), H * W, levels);
    std::vector<std::uint32_t> hist(static_cast<size_t>(L2));
    for (index_t k = 0; k < n_off; ++k) {
        // the launcher's clamp: |offset| >= the side pairs nothing
        const index_t dr = std::max(-H, std::min(H, static_cast<index_t>(offsets.at(k, 0))));
        const index_t dc = std::max(-W, std::min(W, static_cast<index_t>(offsets.at(k, 1))));
        std::fill(hist.begin(), hist.end(), 0u);
        const GlcmPairRange g = glcm_pair_range(H, W, dr, dc);
        const index_t width = g.cols(), total = g.rows() * width;
        for (index_t t = 0; t < total; ++t) {
            const index_t r = g.r0 + t / width, c = g.c0 + t % width;
            ++hist[static_cast<size_t>(q.at(r, c) * levels + q.at(r + dr, c + dc))];
        }
        if (symmetric)
            for (index_t t = 0; t < L2; ++t) {
                const int i = static_cast<int>(t / levels), j = static_cast<int>(t % levels);
                if (i <= j) glcm_symmetrize_entry(hist.data(), levels, i, j);
            }
        for (index_t ij = 0; ij < L2; ++ij) out.mutable_at(ij / levels, ij % levels, k) = hist[ij];
    }
}

// Levels of a batch (n, H, W, 1) as the features kernel quantises it: out (n, H, W) uint8
// (for tests of the shared quantisation against mtlclassic.features.glcm.quantize).
void glcm_quantize(py::array images, carray<std::uint8_t> out, int mode, double lo, double hi,
                   int levels) {
    const ImageBatch s = batch_shape(images);
    require(s.C == 1, "GLCM needs grey images (C == 1)");
    require(levels >= 2 && levels <= 256, "levels must be in [2, 256]");
    require(mode >= 0 && mode <= 3, "unknown quantisation mode");
    require(mode == QUANT_PER_IMAGE || mode < 2 || hi > lo, "value range needs hi > lo");
    require(out.ndim() == 3 && out.shape(0) == s.n && out.shape(1) == s.H && out.shape(2) == s.W,
            "out must be (n, H, W)");
    require((images.flags() & py::array::c_style) != 0, "images must be C-contiguous");
    const index_t hw = s.H * s.W;
    auto run = [&](auto tag) {
        using InT = decltype(tag);
        if constexpr (std::is_integral_v<InT>)
            require(mode >= 2 || mode == (std::is_same_v<InT, std::uint8_t> ? QUANT_U8 : QUANT_U16),
                    "the quantisation mode does not match the integer dtype");
        else
            require(mode >= 2, "float images need an affine or per-image quantisation");
        const InT* src = static_cast<const InT*>(images.data());
        for (index_t i = 0; i < s.n; ++i)
            quantize_image(src + i * hw, hw, mode, lo, hi, levels, out.mutable_data() + i * hw);
    };
    dispatch_input(images, run);
}

}  // namespace

void register_glcm(py::module_& m) {
    m.def("glcm_features", &glcm_features, py::arg("images"), py::arg("out"), py::arg("mode"),
          py::arg("lo"), py::arg("hi"), py::arg("offsets"), py::arg("levels"),
          py::arg("symmetric"), py::arg("props"), py::arg("n_threads") = 1,
          py::arg("wide_counts") = false);
    m.def("glcm_counts", &glcm_counts, py::arg("q"), py::arg("out"), py::arg("offsets"),
          py::arg("levels"), py::arg("symmetric"));
    m.def("glcm_counts_device_form", &glcm_counts_device_form, py::arg("q"), py::arg("out"),
          py::arg("offsets"), py::arg("levels"), py::arg("symmetric"));
    m.def("glcm_quantize", &glcm_quantize, py::arg("images"), py::arg("out"), py::arg("mode"),
          py::arg("lo"), py::arg("hi"), py::arg("levels"));
}

}  // namespace mtl
