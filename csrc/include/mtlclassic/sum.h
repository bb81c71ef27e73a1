// Compensated summation (Neumaier's variant of Kahan's): the sum of n terms to about
// 2 eps |sum| + n eps^2 sum |x_i|, where a running sum's rounding grows with n (sqrt(n) eps
// typically). FISTA's sufficient-decrease test compares two loss values to a few ulps: the
// plain sums of 4,096-entry blocks put 6-11 ulps of noise into each, which rejected good
// steps near the optimum and drove the step down a hundredfold.
#pragma once

#include <cmath>

#include "config.h"

namespace mtl {

struct CompensatedSum {
    double sum = 0.0, carry = 0.0;

    MTL_HD void add(double x) {
        const double t = sum + x;
        // the low-order bits lost by t, taken from the smaller operand
        carry += fabs(sum) >= fabs(x) ? (sum - t) + x : (x - t) + sum;
        sum = t;
    }

    // (an overflowed sum is returned as it is: its carry, inf - inf, is NaN)
    MTL_HD double value() const { return isfinite(sum) ? sum + carry : sum; }
};

}  // namespace mtl
