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
    // `threads` <= 0: all hardware threads.
    explicit ThreadPool(int threads);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const { return int(workers_.size()) + 1; }
    // Calls fn(begin, end) on disjoint chunks covering [0, count); the calling
    // thread takes one chunk. Blocks until all chunks are done.
    void parallel_for(int64_t count, const std::function<void(int64_t, int64_t)>& fn);

private:
    void worker(int index);
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
