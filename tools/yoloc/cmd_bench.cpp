#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <thread>

#include <nlohmann/json.hpp>

#include "bench_gpu.h"
#include "commands.h"
#include "option_rules.h"
#include "core/progress.h"
#include "core/stats.h"
#include "yolo/detector.h"

namespace yoloc_cli {
int profile_engine(const std::string& path, int iters, bool json);              // cmd_build.cpp
namespace {

Registrar reg("bench", "measure inference latency (min/median/p90/p99) and throughput", [](CLI::App& app) {
    auto model = std::make_shared<std::string>();
    auto backend = std::make_shared<std::string>("cpu");
    auto iters = std::make_shared<int>(50);
    auto warmup = std::make_shared<int>(5);
    auto json = std::make_shared<bool>(false);
    auto profile = std::make_shared<bool>(false);
    auto gpu = std::make_shared<BenchGpuArgs>();
    auto opts = std::make_shared<yoloc::DetectorOptions>();
    app.add_option("model", *model, "ONNX model, or a GPU engine file (*.engine)")->required();
    app.add_option("--backend", *backend,
                   "cpu (fast executor), reference, or gpu (an ONNX model is built into an engine in memory first)")
        ->check(CLI::IsMember({"cpu", "fast", "reference", "gpu"}))->capture_default_str();
    app.add_option("--precision", gpu->precision, "--backend gpu with an ONNX model: fp32 or fp16")
        ->check(CLI::IsMember({"fp32", "fp16"}))->capture_default_str();
    app.add_option("--image", gpu->image, "GPU: picture for the end-to-end figure (default: a synthetic 810x1080 one)");
    app.add_option("--threads", opts->threads, "CPU threads (0 = all cores)")->check(rules::threads())->capture_default_str();
    app.add_option("--iters", *iters, "timed runs")->check(CLI::Range(1, 1000000))->capture_default_str();
    app.add_option("--warmup", *warmup, "untimed runs first")->check(CLI::Range(0, 1000000))->capture_default_str();
    app.add_option("--batch", opts->batch, "batch size for models with a dynamic batch dim")
        ->check(rules::batch())->capture_default_str();
    app.add_flag("--json", *json, "print one JSON object");
    app.add_flag("--profile", *profile, "GPU engines: time every op alone and print where the time goes");
    return [=]() {
        if (model->size() > 7 && model->compare(model->size() - 7, 7, ".engine") == 0) {
            if (*profile) return profile_engine(*model, *iters, *json);
        }
        if (*backend == "gpu" || yoloc::is_engine_path(*model)) {
            BenchGpuArgs g = *gpu;
            g.model = *model;
            g.batch = std::max(1, opts->batch);
            g.iters = *iters;
            g.warmup = *warmup;
            g.json = *json;
            return bench_gpu(g);
        }
        opts->backend = *backend == "reference" ? "reference" : "fast";
        yoloc::Detector det(*model, *opts);
        // Fixed input (0.5 everywhere), like the ONNX Runtime peer script: latency
        // does not depend on pixel values for these kernels.
        yoloc::Tensor x(yoloc::DType::Float32, {det.batch(), 3, det.imgsz(), det.imgsz()});
        for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = 0.5f;
        yoloc::Progress bar("bench", *warmup + *iters);
        for (int i = 0; i < *warmup; ++i) {
            det.infer(x);
            bar.step();
        }
        std::vector<double> ms;
        for (int i = 0; i < *iters; ++i) {
            auto t0 = std::chrono::steady_clock::now();
            det.infer(x);
            auto t1 = std::chrono::steady_clock::now();
            ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
            bar.step();
        }
        bar.finish();
        yoloc::LatencyStats s = yoloc::latency_stats(ms);
        int threads = opts->threads > 0 ? opts->threads : int(std::thread::hardware_concurrency());
        double ips = 1000.0 / s.median * det.batch();
        if (*json) {
            nlohmann::json j = {{"model", *model}, {"backend", opts->backend}, {"threads", threads},
                                {"batch", det.batch()}, {"imgsz", det.imgsz()}, {"iters", *iters}, {"warmup", *warmup},
                                {"min_ms", s.min}, {"mean_ms", s.mean}, {"median_ms", s.median}, {"p90_ms", s.p90},
                                {"p95_ms", s.p95}, {"p99_ms", s.p99}, {"max_ms", s.max},
                                {"throughput_img_per_s", ips},
                                {"method", "wall clock (steady_clock) around one forward pass on a fixed input; "
                                           "pre/post-processing not included"}};
            std::cout << j.dump() << "\n";  // one line: easy to pipe into scripts
            return 0;
        }
        std::printf("model      %s\nbackend    %s CPU executor, %d threads, batch %d, %dx%d\n", model->c_str(),
                    opts->backend.c_str(), threads, det.batch(), det.imgsz(), det.imgsz());
        std::printf("latency    min %.2f ms  mean %.2f ms  median %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms (%d runs)\n",
                    s.min, s.mean, s.median, s.p90, s.p99, s.max, s.n);
        std::printf("throughput %.1f images/s (from the median)\n", ips);
        return 0;
    };
});

}  // namespace
}  // namespace yoloc_cli
