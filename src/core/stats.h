// Latency statistics as trtexec reports them: min, mean, median, percentiles.
#pragma once

#include <vector>

namespace yoloc {

struct LatencyStats {
    int n = 0;
    double min = 0, max = 0, mean = 0, median = 0, p90 = 0, p95 = 0, p99 = 0;
};

// Percentiles by nearest rank on the sorted samples (milliseconds in, out).
LatencyStats latency_stats(std::vector<double> samples_ms);

}  // namespace yoloc
