// Module mtlclassic._cuda: pybind11 bindings for the CUDA kernels.  This file is
// compiled by the host compiler; the kernels live in *.cu behind launchers.h.
// Arrays arrive as raw device pointers (CuPy's data.ptr) after Python has validated
// shape, dtype, contiguity and device; the stream is CuPy's current stream.
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>

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
}
