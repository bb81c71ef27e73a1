// Colour conversion and histogram binning shared by CPU and GPU.
//
// HSV as skimage.color.rgb2hsv (Smith, "Color gamut transform pairs", SIGGRAPH 1978):
// values in [0, 1] (uint8 x * (1/255), uint16 x * (1/65535), floats as they are),
// arithmetic in T (float for float32 images, double otherwise), V = max, S = (max - min)/V,
// H = (r==V: (g-b)/d; g==V: 2 + (b-r)/d; b==V: 4 + (r-g)/d, the later case winning ties)
// / 6 mod 1; H = S = 0 where max == min.
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "config.h"

namespace mtl {

enum ColorSpace : int { SPACE_RGB = 0, SPACE_HSV = 1, SPACE_GREY = 2 };

// Histogram length of one cell: grey b0; joint b0*b1*b2; per channel b0+b1+b2 (64-bit:
// three bin counts of 4096 make 2**36).
MTL_HD index_t color_n_bins(int space, bool joint, int b0, int b1, int b2) {
    const index_t a = b0, b = b1, c = b2;
    return space == SPACE_GREY ? a : (joint ? a * b * c : a + b + c);
}

// A pixel value in [0, 1], in T: uint8 x * (1/255), uint16 x * (1/65535), floats as they are.
template <typename InT, typename T>
MTL_HD T to_unit(InT x) {
    if constexpr (std::is_same_v<InT, std::uint8_t>)
        return static_cast<T>(x) * static_cast<T>(1.0 / 255);
    else if constexpr (std::is_same_v<InT, std::uint16_t>)
        return static_cast<T>(x) * static_cast<T>(1.0 / 65535);
    else
        return static_cast<T>(x);
}

template <typename T>
MTL_HD T npy_remainder_t(T a, T b) {
    T mod = fmod(a, b);
    if (mod != T(0)) {
        if ((b < 0) != (mod < 0)) mod += b;
    } else {
        mod = copysign(T(0), b);
    }
    return mod;
}

template <typename T>
MTL_HD void rgb_to_hsv(T r, T g, T b, T* h, T* s, T* v) {
    const T mx = r > g ? (r > b ? r : b) : (g > b ? g : b);
    const T mn = r < g ? (r < b ? r : b) : (g < b ? g : b);
    const T delta = mx - mn;
    *v = mx;
    if (delta == T(0)) {
        *h = T(0);
        *s = T(0);
        return;
    }
    *s = delta / mx;
    T hh = T(0);
    if (r == mx) hh = (g - b) / delta;
    if (g == mx) hh = T(2.0) + (b - r) / delta;
    if (b == mx) hh = T(4.0) + (r - g) / delta;
    *h = npy_remainder_t<T>(hh / T(6.0), T(1.0));
}

// Bin of a value in [0, 1]: min(floor(x * n), n - 1), computed in T.
template <typename T>
MTL_HD int unit_bin(T x, int n) {
    const int k = static_cast<int>(floor(x * static_cast<T>(n)));
    return k < 0 ? 0 : (k >= n ? n - 1 : k);
}

}  // namespace mtl
