#include "engine/cpu/fast/thread_pool.h"

#include <algorithm>

namespace yoloc {
namespace fast {

ThreadPool::ThreadPool(int threads) {
    if (threads <= 0) threads = int(std::max(1u, std::thread::hardware_concurrency()));
    for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard<std::mutex> lk(mu_);
        stop_ = true;
    }
    cv_start_.notify_all();
    for (auto& t : workers_) t.join();
}

static void chunk(int64_t count, int parts, int index, int64_t* b, int64_t* e) {
    int64_t base = count / parts, rem = count % parts;
    *b = index * base + std::min<int64_t>(index, rem);
    *e = *b + base + (index < rem ? 1 : 0);
}

void ThreadPool::parallel_for(int64_t count, const std::function<void(int64_t, int64_t)>& fn) {
    if (count <= 0) return;
    if (workers_.empty() || count == 1) {
        fn(0, count);
        return;
    }
    {
        std::lock_guard<std::mutex> lk(mu_);
        fn_ = &fn;
        count_ = count;
        pending_ = int(workers_.size());
        ++generation_;
    }
    cv_start_.notify_all();
    int64_t b, e;
    chunk(count, size(), 0, &b, &e);
    if (b < e) fn(b, e);
    std::unique_lock<std::mutex> lk(mu_);
    cv_done_.wait(lk, [this] { return pending_ == 0; });
    fn_ = nullptr;
}

void ThreadPool::worker(int index) {
    uint64_t seen = 0;
    for (;;) {
        const std::function<void(int64_t, int64_t)>* fn;
        int64_t count;
        {
            std::unique_lock<std::mutex> lk(mu_);
            cv_start_.wait(lk, [&] { return stop_ || generation_ != seen; });
            if (stop_) return;
            seen = generation_;
            fn = fn_;
            count = count_;
        }
        int64_t b, e;
        chunk(count, size(), index, &b, &e);
        if (b < e) (*fn)(b, e);
        {
            std::lock_guard<std::mutex> lk(mu_);
            if (--pending_ == 0) cv_done_.notify_one();
        }
    }
}

}  // namespace fast
}  // namespace yoloc
