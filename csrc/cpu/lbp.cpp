// Batched LBP on the CPU: code images and per-grid-cell code histograms.
#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

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

    // code of pixel (r, c), taking the bounds-free path away from the border; NP > 0 is
    // P known at compile time (the loops over neighbours unroll), 0 means "use P"
    template <int NP>
    double code(const double* img, index_t H, index_t W, index_t r, index_t c) const {
        const int p = NP > 0 ? NP : P;
        if (r + reach_lo_r >= 0 && r + reach_hi_r < H && c + reach_lo_c >= 0 &&
            c + reach_hi_c < W)
            return lbp_code_inside(img, W, r, c, p, dr.data(), dc.data(), corners.data(), method);
        return lbp_code(img, H, W, r, c, p, dr.data(), dc.data(), method);
    }
};

// Discrete codes of the pixels of row r whose neighbourhood lies inside the image,
// columns [c_lo, c_hi): the same arithmetic as lbp_code_inside, arranged as one pass per
// neighbour over the row so that the compiler can vectorise it.
// base points at a copy of the image padded by `pad` zeros on every side (row stride PW),
// which is what scikit-image's constant-0 sampling reads outside the image; the weights
// still use the unpadded coordinates (r, c), so every value is bit-identical.
// Per-row neighbour setup: row pointers, column offsets and this row's weight.
struct RowSetup {
    const double* top[32];
    const double* bottom[32];
    int step[32];
    double wr[32], dci[32], fci[32];
    bool direct[32];
};

#if defined(__x86_64__) && defined(__GNUC__)
#define MTL_LBP_AVX2 1
// Four pixels at a time with AVX2 and BMI2 (no FMA: the products and sums are rounded one
// by one, as in the scalar code), for P <= 16. Returns how many of the n pixels it coded
// (a multiple of 4).
template <int NP>
__attribute__((target("avx2,bmi2"))) index_t codes_avx2(const RowSetup& rs, int P, int method,
                                                   const double* centre, index_t c_lo,
                                                   index_t n, int* codes) {
    const __m256d one = _mm256_set1_pd(1.0), zero = _mm256_setzero_pd();
    index_t k = 0;
    for (; k + 3 < n; k += 4) {
        const __m256d cen = _mm256_loadu_pd(centre + k);
        const double c0 = static_cast<double>(c_lo + k);
        const __m256d cd = _mm256_set_pd(c0 + 3, c0 + 2, c0 + 1, c0);
        // lane j's compare bit for neighbour i goes to bit 4 i + j of M; pext then gathers
        // each lane's bits (P <= 16, so M fits 64 bits)
        std::uint64_t M = 0;
        for (int i = 0; i < (NP > 0 ? NP : P); ++i) {
            __m256d v;
            if (rs.direct[i]) {
                v = _mm256_loadu_pd(rs.top[i] + k);
            } else {
                const __m256d w_c = _mm256_sub_pd(_mm256_add_pd(cd, _mm256_set1_pd(rs.dci[i])),
                                                  _mm256_add_pd(cd, _mm256_set1_pd(rs.fci[i])));
                const __m256d w_r = _mm256_set1_pd(rs.wr[i]);
                const __m256d one_c = _mm256_sub_pd(one, w_c);
                const double* t = rs.top[i] + k;
                const double* bt = rs.bottom[i] + k;
                const int st = rs.step[i];
                const __m256d top = _mm256_add_pd(_mm256_mul_pd(one_c, _mm256_loadu_pd(t)),
                                                  _mm256_mul_pd(w_c, _mm256_loadu_pd(t + st)));
                const __m256d bot = _mm256_add_pd(_mm256_mul_pd(one_c, _mm256_loadu_pd(bt)),
                                                  _mm256_mul_pd(w_c, _mm256_loadu_pd(bt + st)));
                v = _mm256_add_pd(_mm256_mul_pd(_mm256_sub_pd(one, w_r), top),
                                  _mm256_mul_pd(w_r, bot));
            }
            const int m = _mm256_movemask_pd(
                _mm256_cmp_pd(_mm256_sub_pd(v, cen), zero, _CMP_GE_OQ));
            M |= static_cast<std::uint64_t>(m) << (4 * i);
        }
        for (int j = 0; j < 4; ++j)
            codes[k + j] = lbp_code_from_bits(
                static_cast<unsigned>(_pext_u64(M, 0x1111111111111111ULL << j)), P, method);
    }
    return k;
}

bool cpu_has_avx2() {
    static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi2");
    return has;
}
#endif

// Discrete codes of row r, columns [c_lo, c_hi): the arithmetic of lbp_code_inside, two
// (SSE2) or four (AVX2, when the CPU has it) pixels at a time, then a scalar tail.
// base points at a copy of the image padded by `pad` zeros on every side (row stride PW),
// which is what scikit-image's constant-0 sampling reads outside the image; the weights
// still use the unpadded coordinates (r, c), so every value is bit-identical.
template <int NP>
void interior_row_codes(const LbpArgs& a, const double* base, index_t PW, index_t pad, index_t r,
                        index_t c_lo, index_t c_hi, int* codes) {
    const int P = NP > 0 ? NP : a.P;
    const index_t n = c_hi - c_lo;
    const double* centre = base + (r + pad) * PW + pad + c_lo;
    RowSetup rs;
    for (int i = 0; i < P; ++i) {
        const int fr = a.corners[4 * i], cr = a.corners[4 * i + 1];
        const int fc = a.corners[4 * i + 2], cc = a.corners[4 * i + 3];
        rs.top[i] = base + (r + fr + pad) * PW + pad + c_lo + fc;
        rs.bottom[i] = base + (r + cr + pad) * PW + pad + c_lo + fc;
        rs.step[i] = cc - fc;
        rs.direct[i] = (fr == cr && fc == cc);
        rs.wr[i] = (static_cast<double>(r) + a.dr[i]) - static_cast<double>(r + fr);
        rs.dci[i] = a.dc[i];
        rs.fci[i] = static_cast<double>(fc);
    }
    index_t k = 0;
#if defined(MTL_LBP_AVX2)
    if (P <= 16 && cpu_has_avx2()) k = codes_avx2<NP>(rs, P, a.method, centre, c_lo, n, codes);
#endif
#if defined(__SSE2__)
    const __m128d one = _mm_set1_pd(1.0), zero = _mm_setzero_pd();
    for (; k + 1 < n; k += 2) {
        const __m128d cen = _mm_loadu_pd(centre + k);
        const __m128d cd = _mm_set_pd(static_cast<double>(c_lo + k + 1),
                                      static_cast<double>(c_lo + k));
        unsigned b0 = 0, b1 = 0;
        for (int i = 0; i < P; ++i) {
            __m128d v;
            if (rs.direct[i]) {
                v = _mm_loadu_pd(rs.top[i] + k);
            } else {
                const __m128d w_c = _mm_sub_pd(_mm_add_pd(cd, _mm_set1_pd(rs.dci[i])),
                                               _mm_add_pd(cd, _mm_set1_pd(rs.fci[i])));
                const __m128d w_r = _mm_set1_pd(rs.wr[i]);
                const __m128d one_c = _mm_sub_pd(one, w_c);
                const double* t = rs.top[i] + k;
                const double* bt = rs.bottom[i] + k;
                const int st = rs.step[i];
                const __m128d top = _mm_add_pd(_mm_mul_pd(one_c, _mm_loadu_pd(t)),
                                               _mm_mul_pd(w_c, _mm_loadu_pd(t + st)));
                const __m128d bot = _mm_add_pd(_mm_mul_pd(one_c, _mm_loadu_pd(bt)),
                                               _mm_mul_pd(w_c, _mm_loadu_pd(bt + st)));
                v = _mm_add_pd(_mm_mul_pd(_mm_sub_pd(one, w_r), top), _mm_mul_pd(w_r, bot));
            }
            const int m = _mm_movemask_pd(_mm_cmpge_pd(_mm_sub_pd(v, cen), zero));
            b0 |= static_cast<unsigned>(m & 1) << i;
            b1 |= static_cast<unsigned>((m >> 1) & 1) << i;
        }
        codes[k] = lbp_code_from_bits(b0, P, a.method);
        codes[k + 1] = lbp_code_from_bits(b1, P, a.method);
    }
#endif
    for (; k < n; ++k) {
        unsigned bk = 0;
        const index_t c = c_lo + k;
        for (int i = 0; i < P; ++i) {
            double v;
            if (rs.direct[i]) {
                v = rs.top[i][k];
            } else {
                const double wc = (static_cast<double>(c) + rs.dci[i]) -
                                  (static_cast<double>(c) + rs.fci[i]);
                v = lbp_bilerp(rs.top[i][k], rs.top[i][k + rs.step[i]], rs.bottom[i][k],
                               rs.bottom[i][k + rs.step[i]], rs.wr[i], wc);
            }
            bk |= static_cast<unsigned>(v - centre[k] >= 0) << i;
        }
        codes[k] = lbp_code_from_bits(bk, P, a.method);
    }
}

// Calls f(std::integral_constant<int, NP>) with NP = P for the common P, else 0.
template <typename F>
void with_P(int P, F&& f) {
    switch (P) {
        case 8: f(std::integral_constant<int, 8>{}); break;
        case 16: f(std::integral_constant<int, 16>{}); break;
        case 24: f(std::integral_constant<int, 24>{}); break;
        default: f(std::integral_constant<int, 0>{});
    }
}


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
                        o[r * s.W + c] = a.code<0>(img.data(), s.H, s.W, r, c);
            }
        });
    });
}

// Normalised histograms of the codes in a grid of cells: out (n, gr * gc * n_bins).
// Discrete methods: bin = code.  var: bin = index of the last edge <= var among
// var_edges (NaN, i.e. zero variance, goes to bin 0; values past the last edge to the last bin).
void lbp_histograms(py::array images, py::array out, int P, int method, carray<double> dr,
                    carray<double> dc, int grid_r, int grid_c, index_t n_bins,
                    carray<double> var_edges, int n_threads) {
    const ImageBatch s = batch_shape(images);
    require(s.C == 1, "LBP needs grey images (C == 1)");
    const LbpArgs a = lbp_args(P, method, dr, dc);
    require(grid_r >= 1 && grid_c >= 1 && grid_r <= s.H && grid_c <= s.W, "bad grid");
    require(n_bins >= 1, "n_bins must be >= 1");
    const index_t nf = static_cast<index_t>(grid_r) * grid_c * n_bins;  // 64-bit: 16*8*2**24
    require(out.ndim() == 2 && out.shape(0) == s.n && out.shape(1) == nf,
            "out must have shape (n, grid_r * grid_c * n_bins)");
    require(method != LBP_VAR || var_edges.shape(0) == n_bins, "var_edges must hold n_bins edges");
    const std::vector<double> edges(var_edges.data(), var_edges.data() + var_edges.shape(0));
    dispatch_in_out(images, out, [&](auto in_tag, auto out_tag) {
        using InT = decltype(in_tag);
        using OutT = decltype(out_tag);
        const InT* src = static_cast<const InT*>(images.data());
        OutT* dst = static_cast<OutT*>(out.mutable_data());
        py::gil_scoped_release nogil;
        with_P(a.P, [&](auto np_tag) {
        constexpr int NP = decltype(np_tag)::value;
        parallel_for(s.n, n_threads, [&](index_t b, index_t e) {
            std::vector<double> img;
            std::vector<double> counts(static_cast<size_t>(nf));
            std::vector<int> codes(static_cast<size_t>(s.W));
            const index_t pad = std::max({index_t{0}, index_t{-a.reach_lo_r}, index_t{a.reach_hi_r},
                                          index_t{-a.reach_lo_c}, index_t{a.reach_hi_c}});
            const index_t PW = s.W + 2 * pad;
            std::vector<double> padded(static_cast<size_t>((s.H + 2 * pad) * PW), 0.0);
            std::vector<int> col_cell(static_cast<size_t>(s.W));
            for (int gj = 0; gj < grid_c; ++gj)
                for (index_t c = gj * s.W / grid_c; c < (gj + 1) * s.W / grid_c; ++c)
                    col_cell[static_cast<size_t>(c)] = gj;
            for (index_t i = b; i < e; ++i) {
                const InT* im = src + i * s.H * s.W;
                if (a.method == LBP_VAR) {
                    to_double(im, s.H * s.W, img);
                } else {
                    for (index_t r = 0; r < s.H; ++r) {
                        double* row = padded.data() + (r + pad) * PW + pad;
                        for (index_t c = 0; c < s.W; ++c) row[c] = static_cast<double>(im[r * s.W + c]);
                    }
                }
                std::fill(counts.begin(), counts.end(), 0.0);
                int gi = 0;
                for (index_t r = 0; r < s.H; ++r) {
                    while ((gi + 1) * s.H / grid_r <= r) ++gi;
                    double* hrow = counts.data() + gi * grid_c * n_bins;
                    if (a.method == LBP_VAR) {
                        for (index_t c = 0; c < s.W; ++c) {
                            const double v = a.template code<NP>(img.data(), s.H, s.W, r, c);
                            index_t bin = 0;
                            if (v == v)
                                while (bin + 1 < n_bins && v >= edges[static_cast<size_t>(bin + 1)])
                                    ++bin;
                            hrow[col_cell[static_cast<size_t>(c)] * n_bins + bin] += 1.0;
                        }
                        continue;
                    }
                    interior_row_codes<NP>(a, padded.data(), PW, pad, r, 0, s.W, codes.data());
                    for (index_t c = 0; c < s.W; ++c) {
                        index_t bin = codes[static_cast<size_t>(c)];
                        if (bin >= n_bins) bin = n_bins - 1;
                        hrow[col_cell[static_cast<size_t>(c)] * n_bins + bin] += 1.0;
                    }
                }
                for (int ci = 0; ci < grid_r; ++ci)
                    for (int cj = 0; cj < grid_c; ++cj) {
                        const index_t rows = (ci + 1) * s.H / grid_r - ci * s.H / grid_r;
                        const index_t cols = (cj + 1) * s.W / grid_c - cj * s.W / grid_c;
                        const double area = static_cast<double>(rows * cols);
                        const double* h = counts.data() + (ci * grid_c + cj) * n_bins;
                        OutT* o = dst + i * nf + (ci * grid_c + cj) * n_bins;
                        for (index_t k = 0; k < n_bins; ++k) o[k] = static_cast<OutT>(h[k] / area);
                    }
            }
        });
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
