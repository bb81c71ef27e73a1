// Dispatch helpers for batched image kernels: input dtype (uint8, uint16, float32,
// float64) x output dtype (float32, float64).
#pragma once

#include <string>

#include "common.h"
#include "mtlclassic/config.h"

namespace mtl {

enum class DType { U8, U16, F32, F64, OTHER };

inline DType dtype_of(const py::array& a) {
    if (py::isinstance<py::array_t<std::uint8_t>>(a)) return DType::U8;
    if (py::isinstance<py::array_t<std::uint16_t>>(a)) return DType::U16;
    if (py::isinstance<py::array_t<float>>(a)) return DType::F32;
    if (py::isinstance<py::array_t<double>>(a)) return DType::F64;
    return DType::OTHER;
}

// Calls f(InT{}) with the element type d (uint8, uint16, float32 or float64).
template <typename F>
void dispatch_dtype(DType d, F&& f) {
    switch (d) {
        case DType::U8: f(std::uint8_t{}); break;
        case DType::U16: f(std::uint16_t{}); break;
        case DType::F32: f(float{}); break;
        case DType::F64: f(double{}); break;
        default: throw std::invalid_argument("images must be uint8, uint16, float32 or float64");
    }
}

// Calls f(InT{}) with the element type of images.
template <typename F>
void dispatch_input(const py::array& images, F&& f) {
    dispatch_dtype(dtype_of(images), f);
}

// Calls f(InT{}, OutT{}) with the element types of images and out.
template <typename F>
void dispatch_in_out(const py::array& images, const py::array& out, F&& f) {
    require((images.flags() & py::array::c_style) != 0, "images must be C-contiguous");
    require((out.flags() & py::array::c_style) != 0, "out must be C-contiguous");
    require(out.writeable(), "out must be writeable");
    const DType o = dtype_of(out);
    require(o == DType::F32 || o == DType::F64, "out must be float32 or float64");
    auto with_out = [&](auto in_tag) {
        if (o == DType::F32)
            f(in_tag, float{});
        else
            f(in_tag, double{});
    };
    dispatch_input(images, with_out);
}

// Images are passed as (n, H, W, C) C-contiguous arrays.
struct ImageBatch {
    index_t n, H, W, C;
};

inline ImageBatch batch_shape(const py::array& images) {
    require(images.ndim() == 4, "images must be a 4-D (n, H, W, C) array");
    return {images.shape(0), images.shape(1), images.shape(2), images.shape(3)};
}

}  // namespace mtl
