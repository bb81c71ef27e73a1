// Minimal static-partition parallel loop over [0, n) with std::thread.
// Work items must be independent; the callable receives [begin, end).
#pragma once

#include <algorithm>
#include <cstdint>
#include <exception>
#include <thread>
#include <vector>

namespace mtl {

template <typename F>
void parallel_for(std::int64_t n, int n_threads, F&& body) {
    if (n <= 0) return;
    std::int64_t nt = std::max(1, n_threads);
    nt = std::min<std::int64_t>(nt, n);
    if (nt == 1) {
        body(std::int64_t{0}, n);
        return;
    }
    std::vector<std::thread> pool;
    std::vector<std::exception_ptr> errors(static_cast<size_t>(nt));
    pool.reserve(static_cast<size_t>(nt));
    const std::int64_t chunk = (n + nt - 1) / nt;
    for (std::int64_t t = 0; t < nt; ++t) {
        const std::int64_t b = t * chunk, e = std::min(n, b + chunk);
        if (b >= e) break;
        pool.emplace_back([&, t, b, e] {
            try {
                body(b, e);
            } catch (...) {
                errors[static_cast<size_t>(t)] = std::current_exception();
            }
        });
    }
    for (auto& th : pool) th.join();
    for (auto& err : errors)
        if (err) std::rethrow_exception(err);
}

}  // namespace mtl
