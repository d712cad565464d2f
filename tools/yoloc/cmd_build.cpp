// `yoloc build MODEL -o OUT.engine`: plans the model for this GPU and writes an
// engine file (see src/engine/engine_file.h).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "core/error.h"
#include "core/stats.h"
#include "engine/memory_plan.h"
#include "engine/plan.h"
#include "onnx/onnx_io.h"
#ifdef YOLOC_HAVE_CUDA
#include "engine/cuda/runtime.h"
#endif

namespace yoloc_cli {
namespace {

Registrar reg("build", "build a GPU engine file from an ONNX model (needs a CUDA build and a GPU)", [](CLI::App& app) {
    auto model = std::make_shared<std::string>();
    auto out = std::make_shared<std::string>();
    auto precision = std::make_shared<std::string>("fp16");
    auto batch = std::make_shared<int64_t>(0);
    auto imgsz = std::make_shared<int64_t>(0);
    auto budget = std::make_shared<std::string>();
    auto verbose = std::make_shared<bool>(false);
    app.add_option("model", *model, "ONNX model")->required();
    app.add_option("-o,--output", *out, "engine file to write")->required();
    app.add_option("--precision", *precision, "fp32 or fp16")
        ->check(CLI::IsMember({"fp32", "fp16"}))->capture_default_str();
    app.add_option("--batch", *batch, "batch size (0: the model's, 1 when dynamic)")->check(CLI::Range(0, 4096))
        ->capture_default_str();
    app.add_option("--imgsz", *imgsz, "input size for symbolic H/W dims");
    app.add_option("--memory-budget", *budget, "refuse when weights + activations + workspace exceed this (e.g. 2GiB)");
    app.add_flag("--verbose", *verbose, "print the plan, one op per line");
    return [=]() {
#ifndef YOLOC_HAVE_CUDA
        yoloc::fail("this yoloc was built without CUDA support, so it cannot build GPU engines: "
                    "rebuild yoloc on a machine with the CUDA toolkit (nvcc) and -DYOLOC_WITH_CUDA=ON");
        return 1;
#else
        namespace ye = yoloc::engine;
        yoloc::gpu::BuildOptions o;
        o.plan.precision = ye::parse_precision(*precision);
        o.plan.batch = *batch;
        o.plan.imgsz = *imgsz;
        o.memory_budget = budget->empty() ? 0 : ye::parse_bytes(*budget);
        o.source = *model;
        yoloc::Model m = yoloc::load_onnx(*model);
        yoloc::gpu::BuildResult r = yoloc::gpu::build_engine(m, o);
        ye::write_engine(*out, r.file);
        const ye::Plan& p = r.file.plan;
        const ye::PlanStats& s = p.stats;
        if (*verbose) std::fputs(ye::describe_plan(p).c_str(), stdout);
        std::printf("engine     %s (%s, batch %lld, input %s)\n", out->c_str(), ye::precision_name(p.precision),
                    static_cast<long long>(p.batch), yoloc::shape_str(p.input_shape).c_str());
        std::printf("device     %s, compute capability %d.%d, CUDA runtime %d\n",
                    r.file.info.device.gpu_name.c_str(), r.file.info.device.cc_major, r.file.info.device.cc_minor,
                    r.file.info.device.cuda_runtime);
        std::printf("ops        %zu: %d convs (%d with SiLU, %d with residual add), %d maxpool, %d resize, "
                    "%d detect, %d copies; %d split views, %d/%d concat inputs written in place\n",
                    p.ops.size(), s.convs, s.convs_silu, s.convs_residual, s.maxpools, s.resizes, s.detects, s.copies,
                    s.split_views, s.concat_in_place, s.concat_inputs);
        std::printf("memory     weights %s + activations %s + workspace %s = %s (unshared activations %s)\n",
                    ye::format_bytes(r.memory.weight_bytes).c_str(), ye::format_bytes(r.memory.arena_bytes).c_str(),
                    ye::format_bytes(r.memory.workspace_bytes).c_str(), ye::format_bytes(r.memory.total_bytes()).c_str(),
                    ye::format_bytes(r.memory.unshared_bytes).c_str());
        return 0;
#endif
    };
});

}  // namespace

// `yoloc bench ENGINE` (called from cmd_bench.cpp for *.engine paths): GPU compute
// time from CUDA events around the captured graph, and end-to-end time with the
// pinned host copies.
int bench_engine(const std::string& path, int iters, int warmup, bool json) {
#ifndef YOLOC_HAVE_CUDA
    yoloc::fail("this yoloc was built without CUDA support, so it cannot run ", path,
                ": rebuild yoloc with the CUDA toolkit (nvcc) and -DYOLOC_WITH_CUDA=ON");
    return 1;
#else
    auto eng = yoloc::gpu::Engine::load(path);
    const auto& s = eng->summary();
    yoloc::gpu::ContextOptions co;
    // Kernel choice for experiments: 0 gemm (default), 1 direct, 2 tensor cores (fp16).
    if (const char* k = std::getenv("YOLOC_CONV_KERNEL")) co.conv_kernel = std::atoi(k);
    yoloc::gpu::Context ctx(eng, co);
    int64_t n = 1;
    for (int64_t d : s.input_shape) n *= d;
    std::vector<float> x(size_t(n), 0.5f);
    std::vector<std::vector<float>> out;
    for (int i = 0; i < warmup; ++i) ctx.infer(x.data(), out);
    std::vector<double> gpu_ms, e2e_ms;
    for (int i = 0; i < iters; ++i) gpu_ms.push_back(ctx.run_device_only());
    for (int i = 0; i < iters; ++i) {
        auto t0 = std::chrono::steady_clock::now();
        ctx.infer(x.data(), out);
        e2e_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    yoloc::LatencyStats g = yoloc::latency_stats(gpu_ms), e = yoloc::latency_stats(e2e_ms);
    double ips = 1000.0 / g.median * double(s.batch);
    if (json) {
        nlohmann::json j = {{"engine", path}, {"gpu", s.gpu_name}, {"precision", s.precision}, {"batch", s.batch},
                            {"iters", iters}, {"warmup", warmup}, {"min_ms", g.min}, {"mean_ms", g.mean},
                            {"median_ms", g.median}, {"p90_ms", g.p90}, {"p95_ms", g.p95}, {"p99_ms", g.p99},
                            {"e2e_median_ms", e.median}, {"throughput_img_per_s", ips},
                            {"weight_bytes", s.weight_bytes}, {"arena_bytes", s.arena_bytes},
                            {"method", "GPU compute: CUDA events around one CUDA-graph launch; e2e: wall clock around "
                                       "H2D + graph + D2H with pinned buffers"}};
        std::cout << j.dump() << "\n";
        return 0;
    }
    std::printf("engine     %s (%s, batch %lld) on %s\n", path.c_str(), s.precision.c_str(),
                static_cast<long long>(s.batch), s.gpu_name.c_str());
    std::printf("GPU        min %.3f ms  mean %.3f ms  median %.3f ms  p90 %.3f ms  p99 %.3f ms (%d runs, CUDA events)\n",
                g.min, g.mean, g.median, g.p90, g.p99, g.n);
    std::printf("end-to-end median %.3f ms (H2D + compute + D2H)\n", e.median);
    std::printf("throughput %.1f images/s (GPU median)\n", ips);
    std::printf("memory     weights %.2f MB, activations %.2f MB\n", s.weight_bytes / 1e6, s.arena_bytes / 1e6);
    return 0;
#endif
}

}  // namespace yoloc_cli
