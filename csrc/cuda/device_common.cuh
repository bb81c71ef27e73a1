// Helpers shared by the *.cu kernels: dtype codes, dispatch over the input / output element
// types, grid sizing.  Arrays arrive as raw device pointers whose shape, dtype, contiguity
// and device the Python layer has checked.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "mtlclassic/config.h"

namespace mtl {
namespace cuda {

// Element type codes passed from Python (mtlclassic.backend.kernels.DTYPE_CODES).
enum DTypeCode : int { DT_U8 = 0, DT_U16 = 1, DT_F32 = 2, DT_F64 = 3 };

// Calls f(InT{}) for the input type code; returns cudaErrorInvalidValue for an unknown code.
template <typename F>
int dispatch_input(int code, F&& f) {
    switch (code) {
        case DT_U8: return f(std::uint8_t{});
        case DT_U16: return f(std::uint16_t{});
        case DT_F32: return f(float{});
        case DT_F64: return f(double{});
        default: return static_cast<int>(cudaErrorInvalidValue);
    }
}

template <typename F>
int dispatch_in_out(int in_code, bool out_double, F&& f) {
    return dispatch_input(in_code, [&](auto in_tag) {
        return out_double ? f(in_tag, double{}) : f(in_tag, float{});
    });
}

inline unsigned grid_for(index_t work, int threads, index_t max_blocks = 65535LL * 32) {
    index_t b = (work + threads - 1) / threads;
    if (b < 1) b = 1;
    if (b > max_blocks) b = max_blocks;  // kernels use grid-stride loops
    return static_cast<unsigned>(b);
}

inline int last_error() { return static_cast<int>(cudaGetLastError()); }

}  // namespace cuda
}  // namespace mtl
