// Plain C++ interface between the nvcc-compiled kernels (*.cu) and the pybind11
// bindings (module.cpp, compiled by the host compiler).  Every launcher returns a
// cudaError_t value as int (0 = success); mtl_cuda_error_string turns it into text.
#pragma once

#include <cstdint>

namespace mtl {
namespace cuda {

const char* error_string(int code);
int runtime_version(int* version);
int driver_version(int* version);
int device_count(int* count);
// name must hold 256 bytes.
int device_properties(int device, char* name, std::size_t* total_mem, int* major, int* minor,
                      int* multiprocessors);
// 0 when ptr is device (or managed) memory of the current device, else an error code.
int check_device_pointer(std::uintptr_t ptr);

int prox_l21(std::uintptr_t in, std::uintptr_t out, std::int64_t rows, std::int64_t cols,
             double tau, bool is_double, std::uintptr_t stream);

}  // namespace cuda
}  // namespace mtl
