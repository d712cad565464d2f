#include "engine/cpu/fast/thread_pool.h"
#include "core/limits.h"

#include <dlfcn.h>

#include <algorithm>

namespace yoloc {
namespace fast {

namespace {

// libgomp's entry points, looked up at run time: the library itself is built
// without -fopenmp. GOMP_parallel is the stable ABI behind `#pragma omp parallel`.
using GompParallel = void (*)(void (*)(void*), void*, unsigned, unsigned);
using OmpThreadNum = int (*)();
GompParallel gomp_parallel() {
    static GompParallel f = reinterpret_cast<GompParallel>(dlsym(RTLD_DEFAULT, "GOMP_parallel"));
    return f;
}
OmpThreadNum omp_thread_num() {
    static OmpThreadNum f = reinterpret_cast<OmpThreadNum>(dlsym(RTLD_DEFAULT, "omp_get_thread_num"));
    return f;
}
OmpThreadNum omp_num_threads() {
    static OmpThreadNum f = reinterpret_cast<OmpThreadNum>(dlsym(RTLD_DEFAULT, "omp_get_num_threads"));
    return f;
}

struct GompTask {
    const std::function<void(int64_t, int64_t)>* fn;
    int64_t count;
    int parts;
};

}  // namespace

static void chunk(int64_t count, int parts, int index, int64_t* b, int64_t* e);

static void gomp_body(void* p) {
    auto* t = static_cast<GompTask*>(p);
    // The team may be smaller than asked for: each thread takes every n-th chunk.
    int n = omp_num_threads()();
    for (int i = omp_thread_num()(); i < t->parts; i += n) {
        int64_t b, e;
        chunk(t->count, t->parts, i, &b, &e);
        if (b < e) (*t->fn)(b, e);
    }
}

ThreadPool::ThreadPool(int threads, bool share_openmp) {
    if (threads <= 0) threads = yoloc::limits::usable_cores();
    threads_ = threads;
    gomp_ = share_openmp && gomp_parallel() && omp_thread_num() && omp_num_threads();
    if (gomp_) return;
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
    if (threads_ == 1 || count == 1) {
        fn(0, count);
        return;
    }
    if (gomp_) {
        GompTask t{&fn, count, threads_};
        gomp_parallel()(gomp_body, &t, unsigned(threads_), 0);
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
