// Shared definitions for code compiled both by the host C++ compiler (module _cpu)
// and by nvcc (module _cuda).  Everything in csrc/include/mtlclassic is header-only
// math marked MTL_HD so that the CPU tests exercise the exact arithmetic the GPU runs.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define MTL_HD __host__ __device__ __forceinline__
#else
#define MTL_HD inline
#endif

namespace mtl {
using index_t = std::int64_t;
}  // namespace mtl
