// Module mtlclassic._cpu: threaded C++ kernels, GIL released inside each call.
#include <thread>

#include "common.h"

PYBIND11_MODULE(_cpu, m) {
    m.doc() = "mtlclassic native CPU kernels";
    m.def("hardware_threads", [] { return static_cast<int>(std::thread::hardware_concurrency()); },
          "Number of hardware threads reported by the C++ runtime.");
    mtl::register_prox(m);
    mtl::register_hog(m);
    mtl::register_lbp(m);
    mtl::register_glcm(m);
    mtl::register_color(m);
    mtl::register_gabor(m);
    mtl::register_loss(m);
    mtl::register_patches(m);
    mtl::register_bcd(m);
    mtl::register_moments(m);
}
