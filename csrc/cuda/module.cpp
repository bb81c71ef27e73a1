// Module mtlclassic._cuda: pybind11 bindings for the CUDA kernels.  This file is
// compiled by the host compiler; the kernels live in *.cu behind launchers.h.
// Arrays arrive as raw device pointers (CuPy's data.ptr) after Python has validated
// shape, dtype, contiguity and device; the stream is CuPy's current stream.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "launchers.h"

namespace py = pybind11;
namespace mc = mtl::cuda;

namespace {

class CudaError : public std::runtime_error {
    using std::runtime_error::runtime_error;
};

void check(int code, const char* what) {
    if (code != 0)
        throw CudaError(std::string(what) + " failed: " + mc::error_string(code) + " (CUDA error " +
                        std::to_string(code) + ")");
}

void check_ptr(std::uintptr_t ptr, const char* name) {
    int code = mc::check_device_pointer(ptr);
    if (code != 0)
        throw std::invalid_argument(std::string(name) +
                                    ": not a device pointer on the current device (" +
                                    mc::error_string(code) + ")");
}

int device_count() {
    int n = 0;
    mc::device_count(&n);  // errors (no driver, no device) mean zero usable devices
    return n;
}

std::string device_count_error() {
    int n = 0;
    int code = mc::device_count(&n);
    return code == 0 ? std::string() : std::string(mc::error_string(code));
}

py::dict device_properties(int device) {
    char name[256] = {0};
    std::size_t mem = 0;
    int major = 0, minor = 0, sms = 0;
    check(mc::device_properties(device, name, &mem, &major, &minor, &sms), "cudaGetDeviceProperties");
    py::dict d;
    d["name"] = std::string(name);
    d["total_memory"] = mem;
    d["compute_capability"] = py::make_tuple(major, minor);
    d["multiprocessors"] = sms;
    return d;
}

void prox_l21(std::uintptr_t in, std::uintptr_t out, std::int64_t rows, std::int64_t cols,
              double tau, bool is_double, std::uintptr_t stream) {
    if (rows < 0 || cols < 0) throw std::invalid_argument("rows and cols must be >= 0");
    if (!(tau >= 0.0)) throw std::invalid_argument("tau must be >= 0");
    if (rows == 0 || cols == 0) return;
    check_ptr(in, "W");
    check_ptr(out, "out");
    int code;
    {
        py::gil_scoped_release nogil;
        code = mc::prox_l21(in, out, rows, cols, tau, is_double, stream);
    }
    check(code, "prox_l21 kernel launch");
}

void hog_batch(std::uintptr_t images, int in_dtype, std::uintptr_t cells, std::uintptr_t out,
               bool out_double, std::int64_t n, std::int64_t H, std::int64_t W, std::int64_t C,
               int orientations, int cell_r, int cell_c, int block_r, int block_c, int norm,
               bool transform_sqrt, std::uintptr_t stream) {
    if (n < 0 || H < 1 || W < 1 || C < 1) throw std::invalid_argument("bad image batch shape");
    if (orientations < 1 || cell_r < 1 || cell_c < 1 || block_r < 1 || block_c < 1)
        throw std::invalid_argument("HOG sizes must be positive");
    if (norm < 0 || norm > 3) throw std::invalid_argument("unknown block norm");
    if (n == 0) return;
    check_ptr(images, "images");
    check_ptr(cells, "cells");
    check_ptr(out, "out");
    int code;
    {
        py::gil_scoped_release nogil;
        code = mc::hog_batch(images, in_dtype, cells, out, out_double, n, H, W, C, orientations,
                             cell_r, cell_c, block_r, block_c, norm, transform_sqrt, stream);
    }
    check(code, "hog kernel launch");
}

void lbp_histograms(std::uintptr_t images, int in_dtype, std::uintptr_t out, bool out_double,
                    std::uintptr_t scratch, std::int64_t n, std::int64_t H, std::int64_t W, int P,
                    int method, const std::vector<double>& dr, const std::vector<double>& dc,
                    int grid_r, int grid_c, int n_bins, const std::vector<double>& var_edges,
                    std::uintptr_t stream) {
    if (P < 1 || P > 31) throw std::invalid_argument("P must be in [1, 31]");
    if (method < 0 || method > 4) throw std::invalid_argument("unknown LBP method");
    if (static_cast<int>(dr.size()) != P || static_cast<int>(dc.size()) != P)
        throw std::invalid_argument("dr and dc must hold P offsets");
    if (method == 4 && static_cast<int>(var_edges.size()) != n_bins)
        throw std::invalid_argument("var_edges must hold n_bins edges");
    if (var_edges.size() > 256)
        throw std::invalid_argument("the CUDA LBP kernel takes at most 256 var bins");
    if (n < 0 || H < 1 || W < 1) throw std::invalid_argument("bad image batch shape");
    if (n == 0) return;
    check_ptr(images, "images");
    check_ptr(out, "out");
    if (n_bins > mc::lbp_max_shared_bins()) check_ptr(scratch, "scratch");
    int code;
    {
        py::gil_scoped_release nogil;
        code = mc::lbp_histograms(images, in_dtype, out, out_double, scratch, n, H, W, P, method,
                                  dr.data(), dc.data(), grid_r, grid_c, n_bins,
                                  var_edges.data(), static_cast<int>(var_edges.size()), stream);
    }
    check(code, "lbp kernel launch");
}

void color_histograms(std::uintptr_t images, int in_dtype, std::uintptr_t out, bool out_double,
                      std::uintptr_t scratch, std::int64_t n, std::int64_t H, std::int64_t W,
                      std::int64_t C, int space, int b0, int b1, int b2, bool joint, int grid_r,
                      int grid_c, std::uintptr_t stream) {
    if (n < 0 || H < 1 || W < 1 || C < 1) throw std::invalid_argument("bad image batch shape");
    if (n == 0) return;
    check_ptr(images, "images");
    check_ptr(out, "out");
    const long long n_bins = space == 2 ? b0 : (joint ? 1LL * b0 * b1 * b2 : 1LL * b0 + b1 + b2);
    if (n_bins > mc::color_max_shared_bins()) check_ptr(scratch, "scratch");
    int code;
    {
        py::gil_scoped_release nogil;
        code = mc::color_histograms(images, in_dtype, out, out_double, scratch, n, H, W, C, space,
                                    b0, b1, b2, joint, grid_r, grid_c, stream);
    }
    check(code, "colour histogram kernel launch");
}

void patches(std::uintptr_t images, int in_dtype, std::uintptr_t points, std::uintptr_t sides,
             std::uintptr_t out, std::int64_t n, std::int64_t H, std::int64_t W, std::int64_t m,
             int P, std::uintptr_t stream) {
    if (n < 0 || H < 1 || W < 1 || m < 0 || P < 1)
        throw std::invalid_argument("patches: n, m >= 0 and H, W, patch_size >= 1 needed");
    if (n == 0 || m == 0) return;
    check_ptr(images, "images");
    check_ptr(points, "points");
    check_ptr(sides, "sides");
    check_ptr(out, "out");
    int code;
    {
        py::gil_scoped_release nogil;
        code = mc::patches(images, in_dtype, points, sides, out, n, H, W, m, P, stream);
    }
    check(code, "patches kernel launch");
}

void glcm_features(std::uintptr_t images, int in_dtype, std::uintptr_t out, bool out_double,
                   std::uintptr_t counts, std::int64_t n, std::int64_t H, std::int64_t W,
                   int mode, double lo, double hi, const std::vector<std::int64_t>& dr,
                   const std::vector<std::int64_t>& dc, int levels, bool symmetric,
                   const std::vector<int>& which, std::uintptr_t stream) {
    if (n < 0 || H < 1 || W < 1) throw std::invalid_argument("bad image batch shape");
    if (in_dtype < 0 || in_dtype > 3) throw std::invalid_argument("unknown image dtype code");
    if (levels < 2 || levels > 256) throw std::invalid_argument("levels must be in [2, 256]");
    if (mode < 0 || mode > 3) throw std::invalid_argument("unknown quantisation mode");
    if ((mode == 0 && in_dtype != 0) || (mode == 1 && in_dtype != 1))
        throw std::invalid_argument(
            "the uint8 / uint16 quantisation modes need uint8 / uint16 images");
    if (mode == 2 && !(hi > lo)) throw std::invalid_argument("value range needs hi > lo");
    if (dr.empty() || dr.size() != dc.size())
        throw std::invalid_argument("dr and dc must hold the same number (>= 1) of offsets");
    if (dr.size() > 0x7fffffffULL) throw std::invalid_argument("too many offsets");
    if (which.empty() || static_cast<int>(which.size()) > mc::glcm_max_props())
        throw std::invalid_argument("the CUDA GLCM kernel takes 1 to " +
                                    std::to_string(mc::glcm_max_props()) + " properties");
    for (int w : which)
        if (w < 0 || w > 9) throw std::invalid_argument("unknown GLCM property code");
    // every count must fit its 32-bit counter: at most H * W pairs, doubled on the diagonal
    // by symmetric (glcm_counts_fit_u32 in mtlclassic/glcm.h)
    const long long limit = symmetric ? 0x7fffffffLL : 0xffffffffLL;
    if (H > limit / W)
        throw std::invalid_argument("images of " + std::to_string(H) + " x " + std::to_string(W) +
                                    " pixels could overflow the 32-bit GLCM counts (at most " +
                                    std::to_string(limit) + " pixels" +
                                    (symmetric ? " with symmetric=True)" : ")"));
    if (n > 0x7fffffffLL) throw std::invalid_argument("too many images in one launch");
    if (n == 0) return;
    check_ptr(images, "images");
    check_ptr(out, "out");
    check_ptr(counts, "counts");
    int code;
    {
        py::gil_scoped_release nogil;
        code = mc::glcm_features(images, in_dtype, out, out_double, counts, n, H, W, mode, lo, hi,
                                 dr.data(), dc.data(), static_cast<int>(dr.size()), levels,
                                 symmetric, which.data(), static_cast<int>(which.size()), stream);
    }
    check(code, "glcm kernel launch");
}

void gabor_features(std::uintptr_t images, int in_dtype, std::uintptr_t out, bool out_double,
                    std::uintptr_t weights, std::int64_t n_weights,
                    const std::vector<std::int64_t>& kh, const std::vector<std::int64_t>& kw,
                    const std::vector<std::int64_t>& offset, std::uintptr_t padded,
                    std::uintptr_t mag, std::int64_t n, std::int64_t H, std::int64_t W,
                    std::int64_t pad_r, std::int64_t pad_c, int grid_r, int grid_c,
                    std::uintptr_t stream) {
    if (n < 0 || H < 1 || W < 1) throw std::invalid_argument("bad image batch shape");
    if (in_dtype < 0 || in_dtype > 3) throw std::invalid_argument("unknown image dtype code");
    if (grid_r < 1 || grid_c < 1 || grid_r > H || grid_c > W)
        throw std::invalid_argument("grid must hold 1 to H x 1 to W cells");
    if (kh.empty() || kh.size() != kw.size() || kh.size() != offset.size() ||
        kh.size() > 0x7fffffffULL)
        throw std::invalid_argument("kh, kw and offset must describe the same kernels (>= 1)");
    if (pad_r < 0 || pad_c < 0) throw std::invalid_argument("pad_r and pad_c must be >= 0");
    for (size_t k = 0; k < kh.size(); ++k) {
        if (kh[k] < 1 || kw[k] < 1 || kh[k] % 2 == 0 || kw[k] % 2 == 0)
            throw std::invalid_argument("Gabor kernels must have odd sizes");
        if (kh[k] / 2 > pad_r || kw[k] / 2 > pad_c)
            throw std::invalid_argument("pad_r / pad_c must cover every kernel's half-size");
        if (offset[k] < 0 || offset[k] > n_weights - 2 * kh[k] * kw[k])
            throw std::invalid_argument("kernel " + std::to_string(k) +
                                        " lies outside the weights buffer");
    }
    if (n * static_cast<long long>(grid_r) * grid_c > 0x7fffffffLL)
        throw std::invalid_argument("too many images x cells in one launch");
    if (n == 0) return;
    check_ptr(images, "images");
    check_ptr(out, "out");
    check_ptr(weights, "weights");
    check_ptr(padded, "padded");
    check_ptr(mag, "mag");
    int code;
    {
        py::gil_scoped_release nogil;
        code = mc::gabor_features(images, in_dtype, out, out_double, weights, n_weights, kh.data(),
                                  kw.data(), offset.data(), static_cast<int>(kh.size()), padded,
                                  mag, n, H, W, pad_r, pad_c, grid_r, grid_c, stream);
    }
    check(code, "gabor kernel launch");
}

void loss_grad(std::uintptr_t Z, std::uintptr_t Y, std::uintptr_t A, std::uintptr_t G,
               std::uintptr_t partial, std::int64_t size, int kind, bool is_double,
               std::uintptr_t stream) {
    if (size < 0) throw std::invalid_argument("size must be >= 0");
    if (kind != 0 && kind != 1) throw std::invalid_argument("kind must be 0 (squared) or 1 (logistic)");
    if (size == 0) return;
    check_ptr(Z, "Z");
    check_ptr(Y, "Y");
    check_ptr(A, "A");
    check_ptr(G, "G");
    check_ptr(partial, "partial");
    int code;
    {
        py::gil_scoped_release nogil;
        code = mc::loss_grad(Z, Y, A, G, partial, size, kind, is_double, stream);
    }
    check(code, "loss_grad kernel launch");
}

void loss_grad_grouped(std::uintptr_t Z, std::uintptr_t Y, std::uintptr_t A, std::uintptr_t G,
                       std::uintptr_t group, std::uintptr_t partial, std::int64_t n,
                       std::int64_t n_cols, int kind, bool is_double, std::uintptr_t stream) {
    if (n < 0 || n_cols < 0) throw std::invalid_argument("n and n_cols must be >= 0");
    if (kind != 0 && kind != 1) throw std::invalid_argument("kind must be 0 (squared) or 1 (logistic)");
    if (n == 0 || n_cols == 0) return;
    check_ptr(Z, "Z");
    check_ptr(Y, "Y");
    check_ptr(A, "A");
    check_ptr(G, "G");
    check_ptr(group, "group");
    check_ptr(partial, "partial");
    int code;
    {
        py::gil_scoped_release nogil;
        code = mc::loss_grad_grouped(Z, Y, A, G, group, partial, n, n_cols, kind, is_double,
                                     stream);
    }
    check(code, "loss_grad_grouped kernel launch");
}

}  // namespace

PYBIND11_MODULE(_cuda, m) {
    m.doc() = "mtlclassic CUDA kernels (launched on the caller's stream)";
    py::register_exception<CudaError>(m, "CudaError", PyExc_RuntimeError);
    m.def("device_count", &device_count,
          "Number of usable CUDA devices; 0 when the driver or a device is missing.");
    m.def("device_count_error", &device_count_error,
          "Why device_count() is 0 (empty string when the query succeeded).");
    m.def("device_properties", &device_properties, py::arg("device"));
    m.def("runtime_version", [] {
        int v = 0;
        check(mc::runtime_version(&v), "cudaRuntimeGetVersion");
        return v;
    });
    m.def("driver_version", [] {
        int v = 0;
        mc::driver_version(&v);  // 0 when no driver is installed
        return v;
    });
#ifdef MTL_CUDA_ARCHS
    m.attr("compiled_archs") = MTL_CUDA_ARCHS;
#else
    m.attr("compiled_archs") = "";
#endif
    m.def("prox_l21", &prox_l21, py::arg("W_ptr"), py::arg("out_ptr"), py::arg("rows"),
          py::arg("cols"), py::arg("tau"), py::arg("is_double"), py::arg("stream") = 0,
          "Row-wise group soft-threshold on device arrays (rows x cols, C order).");
    m.def("hog_batch", &hog_batch, py::arg("images"), py::arg("in_dtype"), py::arg("cells"),
          py::arg("out"), py::arg("out_double"), py::arg("n"), py::arg("H"), py::arg("W"),
          py::arg("C"), py::arg("orientations"), py::arg("cell_r"), py::arg("cell_c"),
          py::arg("block_r"), py::arg("block_c"), py::arg("norm"), py::arg("transform_sqrt"),
          py::arg("stream") = 0, "HOG of a (n, H, W, C) device batch into out (n, n_features).");
    m.attr("lbp_max_shared_bins") = mc::lbp_max_shared_bins();
    m.def("lbp_histograms", &lbp_histograms, py::arg("images"), py::arg("in_dtype"),
          py::arg("out"), py::arg("out_double"), py::arg("scratch"), py::arg("n"), py::arg("H"),
          py::arg("W"), py::arg("P"), py::arg("method"), py::arg("dr"), py::arg("dc"),
          py::arg("grid_r"), py::arg("grid_c"), py::arg("n_bins"), py::arg("var_edges"),
          py::arg("stream") = 0, "LBP code histograms of a (n, H, W, 1) device batch.");
    m.attr("color_max_shared_bins") = mc::color_max_shared_bins();
    m.def("color_histograms", &color_histograms, py::arg("images"), py::arg("in_dtype"),
          py::arg("out"), py::arg("out_double"), py::arg("scratch"), py::arg("n"), py::arg("H"),
          py::arg("W"), py::arg("C"), py::arg("space"), py::arg("b0"), py::arg("b1"),
          py::arg("b2"), py::arg("joint"), py::arg("grid_r"), py::arg("grid_c"),
          py::arg("stream") = 0, "Colour histograms of a (n, H, W, C) device batch.");
    m.def("patches", &patches, py::arg("images"), py::arg("in_dtype"), py::arg("points"),
          py::arg("sides"), py::arg("out"), py::arg("n"), py::arg("H"), py::arg("W"),
          py::arg("m"), py::arg("patch_size"), py::arg("stream") = 0,
          "Bilinear patches around points of an (n, H, W) batch on the device (patch.h).");
    m.def("loss_grad_grouped", &loss_grad_grouped, py::arg("Z"), py::arg("Y"), py::arg("A"),
          py::arg("G"), py::arg("group"), py::arg("partial"), py::arg("n"), py::arg("n_cols"),
          py::arg("kind"), py::arg("is_double"), py::arg("stream") = 0,
          "Masked loss with softmax groups on device arrays (group: int32 per column; the "
          "caller checks its layout); loss_grad_blocks(n) partial sums.");
    m.def("loss_grad_blocks", &mc::loss_grad_blocks, py::arg("size"),
          "Length of the partial-sum buffer loss_grad needs for size entries.");
    m.def("loss_grad", &loss_grad, py::arg("Z"), py::arg("Y"), py::arg("A"), py::arg("G"),
          py::arg("partial"), py::arg("size"), py::arg("kind"), py::arg("is_double"),
          py::arg("stream") = 0, "Fused masked loss and gradient on device arrays.");
    m.attr("glcm_max_shared_bins") = mc::glcm_max_shared_bins();
    m.attr("glcm_max_props") = mc::glcm_max_props();
    m.def("glcm_features", &glcm_features, py::arg("images"), py::arg("in_dtype"),
          py::arg("out"), py::arg("out_double"), py::arg("counts"), py::arg("n"), py::arg("H"),
          py::arg("W"), py::arg("mode"), py::arg("lo"), py::arg("hi"), py::arg("dr"),
          py::arg("dc"), py::arg("levels"), py::arg("symmetric"), py::arg("which"),
          py::arg("stream") = 0,
          "GLCM properties of a (n, H, W, 1) device batch into out (n, n_props * n_offsets); "
          "counts: uint32 scratch of n * n_offsets * levels^2.");
    m.def("gabor_features", &gabor_features, py::arg("images"), py::arg("in_dtype"),
          py::arg("out"), py::arg("out_double"), py::arg("weights"), py::arg("n_weights"),
          py::arg("kh"), py::arg("kw"), py::arg("offset"), py::arg("padded"), py::arg("mag"),
          py::arg("n"), py::arg("H"), py::arg("W"), py::arg("pad_r"), py::arg("pad_c"),
          py::arg("grid_r"), py::arg("grid_c"), py::arg("stream") = 0,
          "Gabor cell statistics of a (n, H, W, 1) device batch into out "
          "(n, n_kernels * grid_r * grid_c * 2).");
}
