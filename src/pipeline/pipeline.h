// `yoloc pipeline`: inspect -> prune -> quantize -> build -> eval -> bench in one command,
// and one report (Markdown, JSON, HTML with SVG charts) in which every figure says how it
// was measured.
//
// Each stage runs as a child process of the yoloc binary itself (`yoloc prune ... --json`,
// `yoloc bench ... --json`, ...): the report's figures are then exactly what a user gets
// by re-running the logged command, a crashing or out-of-memory stage cannot take the
// pipeline down with it, and each stage's stdout/stderr are kept in OUT/logs/.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace yoloc::pipeline {

struct Options {
    std::string exe;  // the yoloc binary that runs the stages
    std::string model, calib, data, target = "host", out_dir;
    double prune = 0;                                        // 0: no prune stage
    std::vector<std::string> precisions{"fp32", "fp16", "int8"};  // engines to build (GPU)
    int calib_count = 64;
    int threads = 0;         // CPU threads for eval/bench/prune/quantize (0 = all cores)
    int cpu_iters = 20;      // timed runs of the CPU bench
    int gpu_iters = 300;     // timed runs of the GPU bench
    bool no_gpu = false;     // skip the GPU stages even when a GPU is present
};

// One measured variant: a row of the report table. Negative numbers: not measured.
struct Variant {
    std::string name;     // "FP32", "pruned", "INT8 Q/DQ", "FP16 engine", ...
    std::string backend;  // "cpu" or "gpu"
    std::string precision;
    std::string model;    // the ONNX file it comes from
    std::string engine;   // GPU: the engine file
    int64_t params = -1, model_bytes = -1, engine_bytes = -1;
    double latency_median_ms = -1, latency_p99_ms = -1, fps = -1;
    int64_t peak_device_bytes = -1, planned_device_bytes = -1;
    double map50 = -1, map50_95 = -1;
    std::string latency_how, memory_how, map_how;
    std::vector<std::string> notes;
};

struct StageRecord {
    std::string name, command, log;
    int exit_code = 0;
    double seconds = 0;
    bool ok = false;
};

struct Report {
    Options options;
    std::string started, yoloc_version, host, gpu;  // gpu: name or why there is none
    nlohmann::json profile;                      // the target profile's facts
    bool gpu_ran = false;
    std::vector<std::string> skipped;            // GPU stages not run, and why
    std::vector<StageRecord> stages;
    std::vector<Variant> variants;
    nlohmann::json layer_profile;                // `bench --profile --json` of the chosen engine
    std::string layer_profile_engine;
    std::string failed;                          // the stage that stopped the pipeline
};

// Runs the stages, rewriting OUT/report.{md,json,html} and OUT/charts/*.svg after each
// one, so a failing stage leaves the report of the stages before it. Throws yoloc::Error
// naming the failed stage and its log. `progress` gets one line per stage.
Report run(const Options& o, const std::function<void(const std::string&)>& progress);

// Whether this build of yoloc can run GPU stages here; `why` says why not.
bool gpu_available(std::string* why, std::string* name);

// The Report that report_json() wrote (for `pipeline --render DIR`: the same figures,
// rendered again by this version). Throws on a file that is not one.
Report report_from_json(const nlohmann::json& j);
// Writes OUT/report.{md,json,html} and OUT/charts/*.svg of `r` (r.options.out_dir).
void write_reports(const Report& r);

std::string report_markdown(const Report& r);
std::string report_html(const Report& r);
nlohmann::json report_json(const Report& r);

// Charts of the report (hand-written SVG, no dependency).
std::string chart_map_vs_latency(const Report& r);   // mAP50-95 against median latency (log x)
std::string chart_layer_times(const Report& r);      // per-op time of the chosen engine
std::string chart_device_memory(const Report& r);    // peak device memory per GPU variant

}  // namespace yoloc::pipeline
