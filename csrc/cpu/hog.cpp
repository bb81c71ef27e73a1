// Batched HOG on the CPU (math in csrc/include/mtlclassic/hog.h), threaded over images.
#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <type_traits>
#include <vector>

#include "common.h"
#include "images.h"
#include "mtlclassic/hog.h"
#include "parallel.h"

namespace mtl {
namespace {

struct HogConfig {
    int orientations, cell_r, cell_c, block_r, block_c, norm;
    bool transform_sqrt;
};

index_t hog_n_features(index_t H, index_t W, const HogConfig& k) {
    const index_t ncr = H / k.cell_r, ncc = W / k.cell_c;
    const index_t nbr = ncr - k.block_r + 1, nbc = ncc - k.block_c + 1;
    if (nbr <= 0 || nbc <= 0) return 0;
    return nbr * nbc * k.block_r * k.block_c * k.orientations;
}

// uint8 images have integer gradients in [-255, 255]: magnitude and bin of every pair are
// tabulated once per bin count with the same functions (hog.h), so the table is exact.
struct HogLut {
    std::vector<double> mag;
    std::vector<std::int16_t> bin;
};
constexpr int kLutSide = 511;

std::shared_ptr<const HogLut> hog_lut(int n_bins) {
    static std::mutex mutex;
    static std::map<int, std::shared_ptr<const HogLut>> cache;
    std::lock_guard<std::mutex> lock(mutex);
    auto it = cache.find(n_bins);
    if (it != cache.end()) return it->second;
    auto lut = std::make_shared<HogLut>();
    lut->mag.resize(kLutSide * kLutSide);
    lut->bin.resize(kLutSide * kLutSide);
    for (int gr = -255; gr <= 255; ++gr)
        for (int gc = -255; gc <= 255; ++gc) {
            const size_t k = static_cast<size_t>((gr + 255) * kLutSide + (gc + 255));
            lut->mag[k] = std::hypot(static_cast<double>(gc), static_cast<double>(gr));
            lut->bin[k] = static_cast<std::int16_t>(hog_bin(hog_orientation(gr, gc), n_bins));
        }
    if (cache.size() > 16) cache.clear();
    cache[n_bins] = lut;
    return lut;
}

// Cell votes of a uint8 image through the table (no square root).
void hog_votes_u8(const std::uint8_t* img, index_t H, index_t W, index_t C, index_t rows,
                  index_t cols, const HogConfig& k, index_t ncc, const HogLut& lut,
                  std::vector<float>& acc) {
    const int nb = k.orientations;
    for (index_t r = 0; r < rows; ++r) {
        const bool r_edge = (r == 0 || r == H - 1);
        float* acc_row = acc.data() + (r / k.cell_r) * ncc * nb;
        for (index_t c = 0; c < cols; ++c) {
            const bool c_edge = (c == 0 || c == W - 1);
            size_t best_k = static_cast<size_t>(255 * kLutSide + 255);  // zero gradient
            double best = -1;
            for (index_t ch = 0; ch < C; ++ch) {
                const std::uint8_t* p = img + (r * W + c) * C + ch;
                const int a = r_edge ? 0 : int(p[W * C]) - int(p[-W * C]);
                const int b = c_edge ? 0 : int(p[C]) - int(p[-C]);
                const size_t key = static_cast<size_t>((a + 255) * kLutSide + (b + 255));
                if (C == 1) {
                    best_k = key;
                } else if (lut.mag[key] > best) {  // strict: lowest channel wins ties
                    best = lut.mag[key];
                    best_k = key;
                }
            }
            const int bin = lut.bin[best_k];
            if (bin < 0) continue;
            float& t = acc_row[(c / k.cell_c) * nb + bin];
            t = static_cast<float>(static_cast<double>(t) + lut.mag[best_k]);
        }
    }
}

// G: gradient type (float for float32 images, double otherwise), as scikit-image.
template <typename InT, typename G, typename OutT>
void hog_one(const InT* img, index_t H, index_t W, index_t C, const HogConfig& k, OutT* out,
             std::vector<G>& buf, std::vector<float>& acc, std::vector<double>& cells,
             std::vector<double>& block) {
    const index_t ncr = H / k.cell_r, ncc = W / k.cell_c;
    const int nb = k.orientations;
    const index_t rows = ncr * k.cell_r, cols = ncc * k.cell_c;
    acc.assign(static_cast<size_t>(ncr * ncc * nb), 0.0f);
    bool tabulated = false;
    if constexpr (std::is_same_v<InT, std::uint8_t>) {
        if (!k.transform_sqrt) {
            hog_votes_u8(img, H, W, C, rows, cols, k, ncc, *hog_lut(nb), acc);
            tabulated = true;
        }
    }
    if (!tabulated) {
        // 1. the image in its float type (after the optional square root)
        buf.resize(static_cast<size_t>(H * W * C));
        for (index_t i = 0; i < H * W * C; ++i) {
            G v = static_cast<G>(img[i]);
            buf[static_cast<size_t>(i)] = k.transform_sqrt ? std::sqrt(v) : v;
        }
        // 2. per-pixel gradient, dominant channel, vote into float32 cell accumulators
        for (index_t r = 0; r < rows; ++r) {
            const bool r_edge = (r == 0 || r == H - 1);
            float* acc_row = acc.data() + (r / k.cell_r) * ncc * nb;
            for (index_t c = 0; c < cols; ++c) {
                const bool c_edge = (c == 0 || c == W - 1);
                G gr = 0, gc = 0;
                G best = -1;
                for (index_t ch = 0; ch < C; ++ch) {
                    const G* p = buf.data() + (r * W + c) * C + ch;
                    const G a = r_edge ? G(0) : static_cast<G>(p[W * C] - p[-W * C]);
                    const G b = c_edge ? G(0) : static_cast<G>(p[C] - p[-C]);
                    if (C == 1) {
                        gr = a;
                        gc = b;
                    } else {
                        const G m = std::hypot(a, b);
                        if (m > best) {  // strict: the lowest channel wins ties (argmax)
                            best = m;
                            gr = a;
                            gc = b;
                        }
                    }
                }
                const double dgr = static_cast<double>(gr), dgc = static_cast<double>(gc);
                const double mag = std::hypot(dgc, dgr);
                const int bin = hog_bin(hog_orientation(dgr, dgc), nb);
                if (bin < 0) continue;
                float& t = acc_row[(c / k.cell_c) * nb + bin];
                t = static_cast<float>(static_cast<double>(t) + mag);
            }
        }
    }
    const float area = static_cast<float>(k.cell_r * k.cell_c);
    cells.resize(acc.size());
    for (size_t i = 0; i < acc.size(); ++i) cells[i] = static_cast<double>(acc[i] / area);
    // 3. overlapping blocks, each normalised, in (block_row, block_col, r, c, bin) order
    const index_t nbr = ncr - k.block_r + 1, nbc = ncc - k.block_c + 1;
    const int len = k.block_r * k.block_c * nb;
    block.resize(static_cast<size_t>(len));
    for (index_t br = 0; br < nbr; ++br)
        for (index_t bc = 0; bc < nbc; ++bc) {
            int q = 0;
            for (int i = 0; i < k.block_r; ++i)
                for (int j = 0; j < k.block_c; ++j)
                    for (int o = 0; o < nb; ++o)
                        block[static_cast<size_t>(q++)] =
                            cells[static_cast<size_t>(((br + i) * ncc + (bc + j)) * nb + o)];
            if constexpr (std::is_same_v<G, float> && std::is_same_v<OutT, double>) {
                hog_normalize_block(block.data(), block.data(), len, k.norm);
                hog_round_to_float(block.data(), len);
                for (int q = 0; q < len; ++q) out[q] = block[static_cast<size_t>(q)];
            } else {
                hog_normalize_block(block.data(), out, len, k.norm);
            }
            out += len;
        }
}

void hog_batch(py::array images, py::array out, int orientations, int cell_r, int cell_c,
               int block_r, int block_c, int norm, bool transform_sqrt, int n_threads) {
    const ImageBatch s = batch_shape(images);
    const HogConfig k{orientations, cell_r, cell_c, block_r, block_c, norm, transform_sqrt};
    require(orientations > 0 && cell_r > 0 && cell_c > 0 && block_r > 0 && block_c > 0,
            "HOG sizes must be positive");
    require(norm >= 0 && norm <= 3, "unknown block norm");
    const index_t nf = hog_n_features(s.H, s.W, k);
    require(nf > 0, "image too small for the cells and blocks");
    require(out.ndim() == 2 && out.shape(0) == s.n && out.shape(1) == nf,
            "out must have shape (n, n_features)");
    dispatch_in_out(images, out, [&](auto in_tag, auto out_tag) {
        using InT = decltype(in_tag);
        using OutT = decltype(out_tag);
        using G = std::conditional_t<std::is_same_v<InT, float>, float, double>;
        const InT* src = static_cast<const InT*>(images.data());
        OutT* dst = static_cast<OutT*>(out.mutable_data());
        py::gil_scoped_release nogil;
        parallel_for(s.n, n_threads, [&](index_t b, index_t e) {
            std::vector<G> buf;
            std::vector<float> acc;
            std::vector<double> cells, block;
            for (index_t i = b; i < e; ++i)
                hog_one<InT, G, OutT>(src + i * s.H * s.W * s.C, s.H, s.W, s.C, k, dst + i * nf,
                                      buf, acc, cells, block);
        });
    });
}

}  // namespace

void register_hog(py::module_& m) {
    m.def("hog_batch", &hog_batch, py::arg("images"), py::arg("out"), py::arg("orientations"),
          py::arg("cell_r"), py::arg("cell_c"), py::arg("block_r"), py::arg("block_c"),
          py::arg("norm"), py::arg("transform_sqrt"), py::arg("n_threads") = 1,
          "HOG descriptors of a (n, H, W, C) batch into out (n, n_features).");
}

}  // namespace mtl
