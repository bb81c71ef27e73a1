// Batched LBP on the CPU: code images and per-grid-cell code histograms.
#include <algorithm>
#include <cmath>
#include <vector>

#include "common.h"
#include "images.h"
#include "mtlclassic/lbp.h"
#include "parallel.h"

namespace mtl {
namespace {

struct LbpArgs {
    int P, method;
    std::vector<double> dr, dc;
    std::vector<int> corners;  // floor/ceil of dr and dc per neighbour
    int reach_lo_r, reach_hi_r, reach_lo_c, reach_hi_c;

    // code of pixel (r, c), taking the bounds-free path away from the border
    double code(const double* img, index_t H, index_t W, index_t r, index_t c) const {
        if (r + reach_lo_r >= 0 && r + reach_hi_r < H && c + reach_lo_c >= 0 &&
            c + reach_hi_c < W)
            return lbp_code_inside(img, W, r, c, P, dr.data(), dc.data(), corners.data(), method);
        return lbp_code(img, H, W, r, c, P, dr.data(), dc.data(), method);
    }
};

LbpArgs lbp_args(int P, int method, const carray<double>& dr, const carray<double>& dc) {
    require(P >= 1 && P <= 31, "P must be in [1, 31]");
    require(method >= 0 && method <= 4, "unknown LBP method");
    require(dr.ndim() == 1 && dc.ndim() == 1 && dr.shape(0) == P && dc.shape(0) == P,
            "offsets must hold P values");
    LbpArgs a{P, method, std::vector<double>(dr.data(), dr.data() + P),
              std::vector<double>(dc.data(), dc.data() + P), {}, 0, 0, 0, 0};
    for (int i = 0; i < P; ++i) {
        const int fr = static_cast<int>(std::floor(a.dr[i])), cr = static_cast<int>(std::ceil(a.dr[i]));
        const int fc = static_cast<int>(std::floor(a.dc[i])), cc = static_cast<int>(std::ceil(a.dc[i]));
        a.corners.insert(a.corners.end(), {fr, cr, fc, cc});
        a.reach_lo_r = std::min(a.reach_lo_r, fr);
        a.reach_hi_r = std::max(a.reach_hi_r, cr);
        a.reach_lo_c = std::min(a.reach_lo_c, fc);
        a.reach_hi_c = std::max(a.reach_hi_c, cc);
    }
    return a;
}

template <typename InT>
void to_double(const InT* src, index_t n, std::vector<double>& dst) {
    dst.resize(static_cast<size_t>(n));
    for (index_t i = 0; i < n; ++i) dst[static_cast<size_t>(i)] = static_cast<double>(src[i]);
}

// Codes of a (n, H, W, 1) batch, float64 out (n, H, W).
void lbp_codes(py::array images, py::array out, int P, int method, carray<double> dr,
               carray<double> dc, int n_threads) {
    const ImageBatch s = batch_shape(images);
    require(s.C == 1, "LBP needs grey images (C == 1)");
    const LbpArgs a = lbp_args(P, method, dr, dc);
    require(out.ndim() == 3 && out.shape(0) == s.n && out.shape(1) == s.H && out.shape(2) == s.W,
            "out must have shape (n, H, W)");
    require(py::isinstance<py::array_t<double>>(out), "out must be float64");
    dispatch_in_out(images, out, [&](auto in_tag, auto) {
        using InT = decltype(in_tag);
        const InT* src = static_cast<const InT*>(images.data());
        double* dst = static_cast<double*>(out.mutable_data());
        py::gil_scoped_release nogil;
        parallel_for(s.n, n_threads, [&](index_t b, index_t e) {
            std::vector<double> img;
            for (index_t i = b; i < e; ++i) {
                to_double(src + i * s.H * s.W, s.H * s.W, img);
                double* o = dst + i * s.H * s.W;
                for (index_t r = 0; r < s.H; ++r)
                    for (index_t c = 0; c < s.W; ++c)
                        o[r * s.W + c] = a.code(img.data(), s.H, s.W, r, c);
            }
        });
    });
}

// Normalised histograms of the codes in a grid of cells: out (n, gr * gc * n_bins).
// Discrete methods: bin = code.  var: bin = index of the last edge <= var among
// var_edges (NaN, i.e. zero variance, goes to bin 0; values past the last edge to the last bin).
void lbp_histograms(py::array images, py::array out, int P, int method, carray<double> dr,
                    carray<double> dc, int grid_r, int grid_c, int n_bins, carray<double> var_edges,
                    int n_threads) {
    const ImageBatch s = batch_shape(images);
    require(s.C == 1, "LBP needs grey images (C == 1)");
    const LbpArgs a = lbp_args(P, method, dr, dc);
    require(grid_r >= 1 && grid_c >= 1 && grid_r <= s.H && grid_c <= s.W, "bad grid");
    require(n_bins >= 1, "n_bins must be >= 1");
    require(out.ndim() == 2 && out.shape(0) == s.n && out.shape(1) == grid_r * grid_c * n_bins,
            "out must have shape (n, grid_r * grid_c * n_bins)");
    require(method != LBP_VAR || var_edges.shape(0) == n_bins, "var_edges must hold n_bins edges");
    const std::vector<double> edges(var_edges.data(), var_edges.data() + var_edges.shape(0));
    dispatch_in_out(images, out, [&](auto in_tag, auto out_tag) {
        using InT = decltype(in_tag);
        using OutT = decltype(out_tag);
        const InT* src = static_cast<const InT*>(images.data());
        OutT* dst = static_cast<OutT*>(out.mutable_data());
        const index_t nf = static_cast<index_t>(grid_r) * grid_c * n_bins;
        py::gil_scoped_release nogil;
        parallel_for(s.n, n_threads, [&](index_t b, index_t e) {
            std::vector<double> img;
            std::vector<double> counts(static_cast<size_t>(nf));
            for (index_t i = b; i < e; ++i) {
                to_double(src + i * s.H * s.W, s.H * s.W, img);
                std::fill(counts.begin(), counts.end(), 0.0);
                for (int gi = 0; gi < grid_r; ++gi) {
                    const index_t r0 = gi * s.H / grid_r, r1 = (gi + 1) * s.H / grid_r;
                    for (int gj = 0; gj < grid_c; ++gj) {
                        const index_t c0 = gj * s.W / grid_c, c1 = (gj + 1) * s.W / grid_c;
                        double* h = counts.data() + (gi * grid_c + gj) * n_bins;
                        for (index_t r = r0; r < r1; ++r)
                            for (index_t c = c0; c < c1; ++c) {
                                const double v = a.code(img.data(), s.H, s.W, r, c);
                                int bin;
                                if (a.method == LBP_VAR) {
                                    bin = 0;
                                    if (v == v)
                                        while (bin + 1 < n_bins && v >= edges[bin + 1]) ++bin;
                                } else {
                                    bin = static_cast<int>(v);
                                    if (bin >= n_bins) bin = n_bins - 1;
                                }
                                h[bin] += 1.0;
                            }
                        const double area = static_cast<double>((r1 - r0) * (c1 - c0));
                        for (int k = 0; k < n_bins; ++k)
                            dst[i * nf + (gi * grid_c + gj) * n_bins + k] =
                                static_cast<OutT>(h[k] / area);
                    }
                }
            }
        });
    });
}

}  // namespace

void register_lbp(py::module_& m) {
    m.def("lbp_codes", &lbp_codes, py::arg("images"), py::arg("out"), py::arg("P"),
          py::arg("method"), py::arg("dr"), py::arg("dc"), py::arg("n_threads") = 1);
    m.def("lbp_histograms", &lbp_histograms, py::arg("images"), py::arg("out"), py::arg("P"),
          py::arg("method"), py::arg("dr"), py::arg("dc"), py::arg("grid_r"), py::arg("grid_c"),
          py::arg("n_bins"), py::arg("var_edges"), py::arg("n_threads") = 1);
}

}  // namespace mtl
