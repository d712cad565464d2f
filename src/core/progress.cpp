#include "core/progress.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "core/env.h"

namespace yoloc {

bool Progress::enabled() {
    static const bool on = ::isatty(2) && !env_get("YOLOC_NO_PROGRESS");
    return on;
}

Progress::Progress(std::string label, int64_t total)
    : label_(std::move(label)), total_(total), active_(enabled()), start_(std::chrono::steady_clock::now()), last_(start_) {}

Progress::~Progress() { finish(); }

void Progress::step(int64_t n) { set(done_ + n); }

void Progress::set(int64_t done) {
    done_ = done;
    draw(false);
}

void Progress::finish() {
    if (finished_) return;
    finished_ = true;
    if (!active_) return;
    draw(true);
    std::fputc('\n', stderr);
}

void Progress::draw(bool force) {
    if (!active_) return;
    auto now = std::chrono::steady_clock::now();
    if (!force && now - last_ < std::chrono::milliseconds(100) && done_ < total_) return;
    last_ = now;
    double secs = std::chrono::duration<double>(now - start_).count();
    const int width = 30;
    int fill = total_ > 0 ? int(double(width) * double(done_) / double(total_)) : 0;
    if (fill > width) fill = width;
    std::string bar(size_t(fill), '#');
    bar.resize(width, '.');
    double eta = done_ > 0 && total_ > done_ ? secs / double(done_) * double(total_ - done_) : 0;
    std::fprintf(stderr, "\r%s [%s] %lld/%lld  %.1fs elapsed  %.1fs left ", label_.c_str(), bar.c_str(),
                 (long long)done_, (long long)total_, secs, eta);
    std::fflush(stderr);
}

}  // namespace yoloc
