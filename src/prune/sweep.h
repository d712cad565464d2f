// `yoloc prune --sweep`: prune one model at several ratios, with and without
// reconstruction, and measure each result (parameters, FLOPs, CPU latency as
// `yoloc bench` measures it, mAP with the library's eval), so a user can pick a point.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "prune/prune.h"

namespace yoloc {

struct SweepOptions {
    PruneOptions prune;          // scope, criterion, round-to, calibration, reconstruction options (ratio unused)
    std::vector<double> ratios;  // each in (0, 1)
    std::string data;            // data.yaml for mAP
    std::string split = "val";
    int eval_workers = 0;        // single-threaded detectors side by side (0 = all cores)
    int bench_threads = 0;       // executor threads for the latency (0 = all cores, like `yoloc bench`)
    int bench_iters = 20;
    int bench_warmup = 3;
    std::function<void(const std::string&)> stage;  // progress messages
};

struct SweepRow {
    double ratio = 0;            // 0: the unpruned model
    bool reconstructed = false;
    int64_t params = 0;
    double flops = 0;
    double latency_ms = 0;       // median
    double latency_min_ms = 0;
    double map50 = 0, map50_95 = 0;
    double seconds = 0;          // time to prune (and reconstruct)
};

struct SweepResult {
    std::vector<SweepRow> rows;  // baseline first, then per ratio: without, with reconstruction
    std::string model, data, scope, criterion;
    int64_t round_to = 8;
    int bench_threads = 0, bench_iters = 0, eval_images = 0;
};

// Parses "0.1,0.2,0.3"; throws on a value outside (0, 1) or an empty list.
std::vector<double> parse_ratio_list(const std::string& s);

// Needs calibration images (reconstruction) and a dataset; validates before any work.
SweepResult prune_sweep(const Model& model, const SweepOptions& opt);

std::string sweep_markdown(const SweepResult& r);
std::string sweep_csv(const SweepResult& r);
std::string sweep_json(const SweepResult& r);
// mAP50-95 against median latency, one line per variant, hand-written SVG.
std::string sweep_svg(const SweepResult& r);

}  // namespace yoloc
