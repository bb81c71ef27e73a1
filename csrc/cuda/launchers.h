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

// Image kernels: images (n, H, W, C) C order of type in_dtype (0 uint8, 1 uint16,
// 2 float32, 3 float64); out (n, n_features) float32 or float64.
// hog: cells is float32 scratch of n * (H / cell_r) * (W / cell_c) * orientations.
int hog_batch(std::uintptr_t images, int in_dtype, std::uintptr_t cells, std::uintptr_t out,
              bool out_double, std::int64_t n, std::int64_t H, std::int64_t W, std::int64_t C,
              int orientations, int cell_r, int cell_c, int block_r, int block_c, int norm,
              bool transform_sqrt, std::uintptr_t stream);
// Histogram kernels: scratch (uint32, n * grid_r * grid_c * n_bins) is needed only when
// n_bins exceeds *_max_shared_bins(); pass 0 otherwise.
int lbp_max_shared_bins();
int lbp_histograms(std::uintptr_t images, int in_dtype, std::uintptr_t out, bool out_double,
                   std::uintptr_t scratch, std::int64_t n, std::int64_t H, std::int64_t W, int P,
                   int method, const double* dr, const double* dc, int grid_r, int grid_c,
                   int n_bins, const double* var_edges, int n_edges, std::uintptr_t stream);
int color_max_shared_bins();
int color_histograms(std::uintptr_t images, int in_dtype, std::uintptr_t out, bool out_double,
                     std::uintptr_t scratch, std::int64_t n, std::int64_t H, std::int64_t W,
                     std::int64_t C, int space, int b0, int b1, int b2, bool joint, int grid_r,
                     int grid_c, std::uintptr_t stream);
// GLCM: counts is uint32 scratch of n * n_offsets * levels^2 (the count matrices, kept for
// the properties pass); dr / dc hold the n_offsets offsets; which holds n_props property
// codes (mtl::GlcmProp, at most glcm_max_props()); mode / lo / hi: the quantisation
// (mtl::QuantMode); images need (symmetric ? 2 : 1) * H * W < 2^32 (exact 32-bit counts).
int glcm_max_shared_bins();
int glcm_max_props();
int glcm_features(std::uintptr_t images, int in_dtype, std::uintptr_t out, bool out_double,
                  std::uintptr_t counts, std::int64_t n, std::int64_t H, std::int64_t W, int mode,
                  double lo, double hi, const std::int64_t* dr, const std::int64_t* dc, int n_off,
                  int levels, bool symmetric, const int* which, int n_props,
                  std::uintptr_t stream);
// Gabor: weights (float64, n_weights) holds kernel k's real part at offset[k] and its
// imaginary part right after it (kh[k] x kw[k] each, row-major, flipped); padded is float64
// scratch of n * (H + 2 pad_r) * (W + 2 pad_c), mag float64 scratch of n * H * W;
// out (n, n_kernels * grid_r * grid_c * 2).
int gabor_features(std::uintptr_t images, int in_dtype, std::uintptr_t out, bool out_double,
                   std::uintptr_t weights, std::int64_t n_weights, const std::int64_t* kh,
                   const std::int64_t* kw, const std::int64_t* offset, int n_kernels,
                   std::uintptr_t padded, std::uintptr_t mag, std::int64_t n, std::int64_t H,
                   std::int64_t W, std::int64_t pad_r, std::int64_t pad_c, int grid_r,
                   int grid_c, std::uintptr_t stream);

// Patches: out (n, m, P, P) float64 resampled from the (n, H, W) images around points
// (n, m, 2) (x, y) float64 with sides (n, m) float64 (mtlclassic/patch.h).
int patches(std::uintptr_t images, int in_dtype, std::uintptr_t points, std::uintptr_t sides,
            std::uintptr_t out, std::int64_t n, std::int64_t H, std::int64_t W, std::int64_t m,
            int P, std::uintptr_t stream);

// Solver: G = A * l'(Y, Z) element-wise over size entries (float32 or float64), and one
// float64 partial loss sum per block into partial (loss_grad_blocks(size) values).
int loss_grad_blocks(std::int64_t size);
int loss_grad(std::uintptr_t Z, std::uintptr_t Y, std::uintptr_t A, std::uintptr_t G,
              std::uintptr_t partial, std::int64_t size, int kind, bool is_double,
              std::uintptr_t stream);
// The same with softmax groups over the n_cols columns of each of n rows (group: n_cols
// int32 on the device, see grouped_row_loss_grad); loss_grad_blocks(n) partial sums.
int loss_grad_grouped(std::uintptr_t Z, std::uintptr_t Y, std::uintptr_t A, std::uintptr_t G,
                      std::uintptr_t group, std::uintptr_t partial, std::int64_t n,
                      std::int64_t n_cols, int kind, bool is_double, std::uintptr_t stream);

}  // namespace cuda
}  // namespace mtl
