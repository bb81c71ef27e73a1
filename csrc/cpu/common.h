// Helpers for the pybind11 bindings of module _cpu.  Python validates shapes, dtypes
// and contiguity first; these checks are a second line of defence so that a bad
// array can never reach a raw pointer loop.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>

namespace py = pybind11;

namespace mtl {

template <typename T>
using carray = py::array_t<T, py::array::c_style>;

inline void require(bool ok, const std::string& msg) {
    if (!ok) throw std::invalid_argument(msg);
}

template <typename T>
void require_c_contiguous(const py::array& a, const char* name) {
    require(py::isinstance<py::array_t<T>>(a), std::string(name) + ": wrong dtype");
    require((a.flags() & py::array::c_style) != 0, std::string(name) + ": must be C-contiguous");
}

void register_prox(py::module_& m);
void register_hog(py::module_& m);
void register_lbp(py::module_& m);
void register_glcm(py::module_& m);
void register_color(py::module_& m);
void register_gabor(py::module_& m);
void register_loss(py::module_& m);
void register_patches(py::module_& m);
void register_bcd(py::module_& m);
void register_moments(py::module_& m);


}  // namespace mtl
