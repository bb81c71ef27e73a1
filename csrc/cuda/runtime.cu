// Device queries and pointer checks for module _cuda.
#include <cuda_runtime.h>

#include <cstring>

#include "launchers.h"

namespace mtl {
namespace cuda {

const char* error_string(int code) { return cudaGetErrorString(static_cast<cudaError_t>(code)); }

int runtime_version(int* version) { return static_cast<int>(cudaRuntimeGetVersion(version)); }

int driver_version(int* version) { return static_cast<int>(cudaDriverGetVersion(version)); }

int device_count(int* count) {
    *count = 0;
    cudaError_t err = cudaGetDeviceCount(count);
    if (err != cudaSuccess) {
        *count = 0;
        cudaGetLastError();  // clear the sticky-free error so later calls start clean
    }
    return static_cast<int>(err);
}

int device_properties(int device, char* name, std::size_t* total_mem, int* major, int* minor,
                      int* multiprocessors) {
    cudaDeviceProp prop;
    cudaError_t err = cudaGetDeviceProperties(&prop, device);
    if (err != cudaSuccess) return static_cast<int>(err);
    std::strncpy(name, prop.name, 255);
    name[255] = '\0';
    *total_mem = prop.totalGlobalMem;
    *major = prop.major;
    *minor = prop.minor;
    *multiprocessors = prop.multiProcessorCount;
    return 0;
}

int check_device_pointer(std::uintptr_t ptr) {
    if (ptr == 0) return static_cast<int>(cudaErrorInvalidDevicePointer);
    cudaPointerAttributes attr;
    cudaError_t err = cudaPointerGetAttributes(&attr, reinterpret_cast<const void*>(ptr));
    if (err != cudaSuccess) {
        cudaGetLastError();
        return static_cast<int>(err);
    }
    if (attr.type != cudaMemoryTypeDevice && attr.type != cudaMemoryTypeManaged)
        return static_cast<int>(cudaErrorInvalidDevicePointer);
    int current = -1;
    cudaGetDevice(&current);
    if (attr.device != current) return static_cast<int>(cudaErrorInvalidDevice);
    return 0;
}

}  // namespace cuda
}  // namespace mtl
