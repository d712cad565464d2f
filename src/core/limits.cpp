#include "core/limits.h"

#include <cmath>
#include <cstdio>
#include <limits>
#include <thread>

#include "core/error.h"

namespace yoloc::limits {

int hardware_threads() {
    unsigned n = std::thread::hardware_concurrency();
    return n > 0 ? int(n) : 1;
}

int max_threads() { return kThreadsPerHardwareThread * hardware_threads(); }

std::string threads_problem(int64_t threads) {
    if (threads < 0) return cat(threads, " is not a thread count: expected 0 (all cores) or 1 to ", max_threads());
    if (threads > max_threads())
        return cat(threads, " threads is more than ", max_threads(), " (", kThreadsPerHardwareThread,
                   " per hardware thread; this machine has ", hardware_threads(), "); 0 uses all cores");
    return "";
}

std::string batch_problem(int64_t batch) {
    if (batch < 1 || batch > kMaxBatch) return cat(batch, " is not a batch size: expected 1 to ", kMaxBatch);
    return "";
}

std::string imgsz_problem(int64_t imgsz) {
    if (imgsz < kImgszStep || imgsz % kImgszStep != 0)
        return cat(imgsz, " is not an input size: expected a multiple of ", kImgszStep, " from ", kImgszStep, " to ",
                   kMaxImgsz);
    if (imgsz > kMaxImgsz)
        return cat(imgsz, " is larger than ", kMaxImgsz, ", the largest input size yoloc runs");
    return "";
}

std::string probability_problem(double v) {
    if (!(v >= 0.0 && v <= 1.0)) return cat(v, " is outside [0, 1]");
    return "";
}

std::string ratio_problem(double v) {
    if (!(v >= 0.0 && v < 1.0)) return cat(v, " is outside [0, 1)");
    return "";
}

std::string percent_problem(double v) {
    if (!(v > 0.0 && v <= 100.0)) return cat(v, " is outside (0, 100]");
    return "";
}

std::string at_least_problem(int64_t v, int64_t min) {
    if (v < min) return cat(v, " is less than ", min);
    return "";
}

int64_t float32_bytes(const std::vector<int64_t>& dims) {
    const int64_t max = std::numeric_limits<int64_t>::max();
    int64_t bytes = 4;
    bool zero = false;
    for (int64_t d : dims) {
        if (d < 0) return -1;
        if (d == 0) zero = true;
        else if (bytes > max / d) bytes = max;  // saturate: the product only grows
        else bytes *= d;
    }
    return zero ? 0 : bytes;
}

std::string input_problem(const std::vector<int64_t>& dims) {
    const int64_t bytes = float32_bytes(dims);
    if (bytes > kMaxInputBytes)
        return cat("a float32 input of ", dims_text(dims), " takes ", byte_text(bytes), ", more than the input budget of ",
                   byte_text(kMaxInputBytes), ": use a smaller batch or input size");
    return "";
}

std::string byte_text(int64_t b) {
    char buf[64];
    if (b >= (int64_t(1) << 30)) std::snprintf(buf, sizeof buf, "%.2f GiB", double(b) / double(int64_t(1) << 30));
    else if (b >= (int64_t(1) << 20)) std::snprintf(buf, sizeof buf, "%.2f MiB", double(b) / double(1 << 20));
    else std::snprintf(buf, sizeof buf, "%lld bytes", static_cast<long long>(b));
    return buf;
}

std::string dims_text(const std::vector<int64_t>& dims) {
    std::string s = "[";
    for (size_t i = 0; i < dims.size(); ++i) s += (i ? "," : "") + std::to_string(dims[i]);
    return s + "]";
}

void check(const std::string& what, const std::string& problem) {
    if (!problem.empty()) fail(what, ": ", problem);
}

}  // namespace yoloc::limits
