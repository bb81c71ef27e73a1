// Batched GLCM on the CPU: co-occurrence counts per (distance, angle) offset and their
// properties (math in csrc/include/mtlclassic/glcm.h).
#include <vector>

#include "common.h"
#include "images.h"
#include "mtlclassic/glcm.h"
#include "parallel.h"

namespace mtl {
namespace {

// counts (levels x levels) of one quantised image for offset (dr, dc)
void count_pairs(const std::uint8_t* q, index_t H, index_t W, int dr, int dc, int levels,
                 bool symmetric, std::uint32_t* counts) {
    std::fill(counts, counts + levels * levels, 0u);
    const index_t r0 = dr < 0 ? -dr : 0, r1 = dr > 0 ? H - dr : H;
    const index_t c0 = dc < 0 ? -dc : 0, c1 = dc > 0 ? W - dc : W;
    for (index_t r = r0; r < r1; ++r) {
        const std::uint8_t* a = q + r * W;
        const std::uint8_t* b = q + (r + dr) * W + dc;
        for (index_t c = c0; c < c1; ++c) ++counts[a[c] * levels + b[c]];
    }
    if (symmetric)
        for (int i = 0; i < levels; ++i)
            for (int j = i; j < levels; ++j) {
                const std::uint32_t s = counts[i * levels + j] + counts[j * levels + i];
                counts[i * levels + j] = s;
                counts[j * levels + i] = s;
            }
}

struct GlcmArgs {
    std::vector<int> dr, dc;
    int levels;
    bool symmetric;
};

GlcmArgs glcm_args(const carray<std::int64_t>& offsets, int levels, bool symmetric) {
    require(levels >= 2 && levels <= 256, "levels must be in [2, 256]");
    require(offsets.ndim() == 2 && offsets.shape(1) == 2, "offsets must be (n_offsets, 2)");
    GlcmArgs a{{}, {}, levels, symmetric};
    for (index_t k = 0; k < offsets.shape(0); ++k) {
        a.dr.push_back(static_cast<int>(offsets.at(k, 0)));
        a.dc.push_back(static_cast<int>(offsets.at(k, 1)));
    }
    return a;
}

void check_levels(const std::uint8_t* q, index_t n, int levels) {
    for (index_t i = 0; i < n; ++i)
        if (q[i] >= levels) throw std::invalid_argument("quantised image has a value >= levels");
}

// q: (n, H, W) uint8 < levels; out (n, n_props * n_offsets), property-major.
void glcm_features(carray<std::uint8_t> q, py::array out, carray<std::int64_t> offsets, int levels,
                   bool symmetric, carray<std::int64_t> props, int n_threads) {
    require(q.ndim() == 3, "q must be (n, H, W)");
    const GlcmArgs a = glcm_args(offsets, levels, symmetric);
    const index_t n = q.shape(0), H = q.shape(1), W = q.shape(2);
    const index_t n_off = static_cast<index_t>(a.dr.size()), n_props = props.shape(0);
    std::vector<int> which(static_cast<size_t>(n_props));
    for (index_t k = 0; k < n_props; ++k) {
        which[static_cast<size_t>(k)] = static_cast<int>(props.at(k));
        require(which[static_cast<size_t>(k)] >= 0 && which[static_cast<size_t>(k)] <= 9,
                "unknown property");
    }
    require(out.ndim() == 2 && out.shape(0) == n && out.shape(1) == n_props * n_off,
            "out must be (n, n_props * n_offsets)");
    check_levels(q.data(), n * H * W, levels);
    dispatch_in_out(py::array(q), out, [&](auto, auto out_tag) {
        using OutT = decltype(out_tag);
        OutT* dst = static_cast<OutT*>(out.mutable_data());
        const std::uint8_t* src = q.data();
        py::gil_scoped_release nogil;
        parallel_for(n, n_threads, [&](index_t b, index_t e) {
            std::vector<std::uint32_t> counts(static_cast<size_t>(levels * levels));
            double pr[10];
            for (index_t i = b; i < e; ++i)
                for (index_t k = 0; k < n_off; ++k) {
                    count_pairs(src + i * H * W, H, W, a.dr[k], a.dc[k], levels, symmetric,
                                counts.data());
                    glcm_properties(counts.data(), levels, pr);
                    for (index_t p = 0; p < n_props; ++p)
                        dst[i * n_props * n_off + p * n_off + k] =
                            static_cast<OutT>(pr[which[static_cast<size_t>(p)]]);
                }
        });
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
    std::vector<std::uint32_t> counts(static_cast<size_t>(levels * levels));
    std::uint32_t* o = out.mutable_data();
    for (index_t k = 0; k < n_off; ++k) {
        count_pairs(q.data(), q.shape(0), q.shape(1), a.dr[k], a.dc[k], levels, symmetric,
                    counts.data());
        for (int ij = 0; ij < levels * levels; ++ij) o[ij * n_off + k] = counts[ij];
    }
}

}  // namespace

void register_glcm(py::module_& m) {
    m.def("glcm_features", &glcm_features, py::arg("q"), py::arg("out"), py::arg("offsets"),
          py::arg("levels"), py::arg("symmetric"), py::arg("props"), py::arg("n_threads") = 1);
    m.def("glcm_counts", &glcm_counts, py::arg("q"), py::arg("out"), py::arg("offsets"),
          py::arg("levels"), py::arg("symmetric"));
}

}  // namespace mtl
