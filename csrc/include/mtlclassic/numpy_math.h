// Arithmetic that reproduces NumPy's results bit for bit, shared by CPU and GPU kernels.
#pragma once

#include <cmath>

#include "config.h"

namespace mtl {

// np.remainder for floats (npy_divmod): fmod, then shift into the sign of b; a zero
// result takes b's sign.
MTL_HD double npy_remainder(double a, double b) {
    double mod = fmod(a, b);
    if (mod != 0.0) {
        if ((b < 0) != (mod < 0)) mod += b;
    } else {
        mod = copysign(0.0, b);
    }
    return mod;
}

// np.add.reduce over a contiguous float64 vector of n elements: 0 + pairwise sum with
// NumPy's 8-accumulator unrolled blocks of up to 128 elements (loops_utils.h).
// f(i) yields element i (lets callers sum squares or absolute values without a copy).
template <typename F>
MTL_HD double npy_pairwise_sum(F f, int begin, int n) {
    if (n < 8) {
        double res = 0.0;
        for (int i = 0; i < n; ++i) res += f(begin + i);
        return res;
    }
    if (n <= 128) {
        double r[8];
        for (int j = 0; j < 8; ++j) r[j] = f(begin + j);
        int i = 8;
        for (; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; ++j) r[j] += f(begin + i + j);
        double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; ++i) res += f(begin + i);
        return res;
    }
    int n2 = n / 2;
    n2 -= n2 % 8;
    return npy_pairwise_sum(f, begin, n2) + npy_pairwise_sum(f, begin + n2, n - n2);
}

template <typename F>
MTL_HD double npy_sum(F f, int n) {
    return 0.0 + npy_pairwise_sum(f, 0, n);
}

}  // namespace mtl
