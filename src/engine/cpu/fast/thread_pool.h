// A tiny fork-join pool for the fast CPU kernels. The library is built without
// OpenMP (oneDNN brings its own), so our own kernels split work with this.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace yoloc {
namespace fast {

class ThreadPool {
public:
    // `threads` <= 0: all hardware threads. `share_openmp`: when an OpenMP runtime
    // (libgomp, loaded with oneDNN) is in the process, run on its thread team
    // instead of our own threads, so that our kernels and oneDNN's do not compete
    // for the cores (OpenMP workers spin for a while after each region).
    explicit ThreadPool(int threads, bool share_openmp = false);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const { return threads_; }
    // Calls fn(begin, end) on disjoint chunks covering [0, count); the calling
    // thread takes one chunk. Blocks until all chunks are done.
    void parallel_for(int64_t count, const std::function<void(int64_t, int64_t)>& fn);

private:
    void worker(int index);
    int threads_ = 1;
    bool gomp_ = false;
    std::vector<std::thread> workers_;
    std::mutex mu_;
    std::condition_variable cv_start_, cv_done_;
    const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
    int64_t count_ = 0;
    uint64_t generation_ = 0;
    int pending_ = 0;
    bool stop_ = false;
};

}  // namespace fast
}  // namespace yoloc
