// Minimal static-partition parallel loop over [0, n) with std::thread, and a reduction
// whose result does not depend on the number of threads.
//
// parallel_for: work items must be independent; the callable receives [begin, end). At
// most min(n_threads, n) threads run. When the system refuses to start a thread (process
// or memory limits, e.g. a container's pids limit or `ulimit -v`), the threads already
// started finish their share, are joined, and a std::runtime_error (a RuntimeError in
// Python) asks for a smaller n_jobs -- the process is never terminated.
//
// parallel_block_sum: sums f(b, e) over fixed blocks [k B, (k + 1) B) of [0, n) and adds
// the block sums in block order (compensated), so the result is bit-identical for every
// thread count (threads only decide who computes which block).
#pragma once

#include <algorithm>
#include <cstdint>
#include <exception>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "mtlclassic/sum.h"

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
    const std::int64_t chunk = (n + nt - 1) / nt;
    nt = (n + chunk - 1) / chunk;  // threads that get a non-empty range
    std::vector<std::thread> pool;
    std::vector<std::exception_ptr> errors(static_cast<size_t>(nt));
    pool.reserve(static_cast<size_t>(nt));
    std::string start_error;
    for (std::int64_t t = 0; t < nt; ++t) {
        const std::int64_t b = t * chunk, e = std::min(n, b + chunk);
        try {
            pool.emplace_back([&, t, b, e] {
                try {
                    body(b, e);
                } catch (...) {
                    errors[static_cast<size_t>(t)] = std::current_exception();
                }
            });
        } catch (const std::exception& exc) {  // std::system_error, std::bad_alloc
            start_error = "could not start worker thread " + std::to_string(t + 1) + " of " +
                          std::to_string(nt) + " (" + exc.what() +
                          "); the system limits the number of threads or the memory of this "
                          "process: use a smaller n_jobs";
            break;
        }
    }
    for (auto& th : pool) th.join();
    if (!start_error.empty()) throw std::runtime_error(start_error);
    for (auto& err : errors)
        if (err) std::rethrow_exception(err);
}

// Sum of f(b, e) (a double) over the blocks [k * block, min(n, (k + 1) * block)) of
// [0, n), block sums added in block order: independent of n_threads.
template <typename F>
double parallel_block_sum(std::int64_t n, std::int64_t block, int n_threads, F&& f) {
    if (n <= 0) return 0.0;
    const std::int64_t n_blocks = (n + block - 1) / block;
    std::vector<double> partial(static_cast<size_t>(n_blocks), 0.0);
    parallel_for(n_blocks, n_threads, [&](std::int64_t kb, std::int64_t ke) {
        for (std::int64_t k = kb; k < ke; ++k)
            partial[static_cast<size_t>(k)] = f(k * block, std::min(n, (k + 1) * block));
    });
    CompensatedSum total;  // (sum.h)
    for (double p : partial) total.add(p);
    return total.value();
}

}  // namespace mtl
