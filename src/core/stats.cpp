#include "core/stats.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace yoloc {

LatencyStats latency_stats(std::vector<double> v) {
    LatencyStats s;
    if (v.empty()) return s;
    std::sort(v.begin(), v.end());
    s.n = int(v.size());
    s.min = v.front();
    s.max = v.back();
    s.mean = std::accumulate(v.begin(), v.end(), 0.0) / double(v.size());
    // Median: middle sample, or the mean of the two middle ones.
    size_t m = v.size() / 2;
    s.median = v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
    auto pct = [&](double p) {
        size_t rank = size_t(std::ceil(p / 100.0 * double(v.size())));
        return v[std::min(v.size() - 1, rank == 0 ? 0 : rank - 1)];
    };
    s.p90 = pct(90);
    s.p95 = pct(95);
    s.p99 = pct(99);
    return s;
}

}  // namespace yoloc
