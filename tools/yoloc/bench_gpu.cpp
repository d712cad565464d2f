// `yoloc bench ENGINE` (or `yoloc bench MODEL.onnx --backend gpu`): a trtexec-style
// report of the GPU engine. What each figure is:
//  - GPU compute: CUDA events around one CUDA-graph launch of the engine (no copies);
//  - enqueue: host wall time of the graph launch call alone;
//  - H2D / D2H: CUDA events around the input upload and the outputs' download,
//    from/to pinned host buffers;
//  - end-to-end: wall clock from a decoded image on the host to its detections on the
//    host (upload, GPU letterbox, engine, GPU decode + NMS, download);
//  - memory: the planned weights + activation arena + workspace, and the drop in
//    cudaMemGetInfo's free memory from before loading to after every measurement
//    (CUDA context excluded, since it was created before the first reading).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench_gpu.h"
#include "core/error.h"
#include "core/stats.h"
#include "yolo/image.h"
#ifdef YOLOC_HAVE_CUDA
#include <cuda_runtime_api.h>

#include "engine/cuda/runtime.h"
#include "onnx/onnx_io.h"
#include "yoloc/engine.h"
#endif

namespace yoloc_cli {

#ifndef YOLOC_HAVE_CUDA
int bench_gpu(const BenchGpuArgs& a) {
    yoloc::fail("this yoloc was built without CUDA support, so it cannot run ", a.model,
                " on a GPU: rebuild yoloc with the CUDA toolkit (nvcc) and -DYOLOC_WITH_CUDA=ON, or bench the ONNX "
                "model on the CPU (--backend cpu)");
    return 1;
}
#else
namespace {

void ck(cudaError_t e, const char* what) {
    if (e != cudaSuccess) yoloc::fail("CUDA error in ", what, ": ", cudaGetErrorString(e));
}
#define BENCH_CUDA(call) ck((call), #call)

nlohmann::json stats_json(const yoloc::LatencyStats& s) {
    return {{"min_ms", s.min},   {"mean_ms", s.mean}, {"median_ms", s.median}, {"p90_ms", s.p90},
            {"p95_ms", s.p95},   {"p99_ms", s.p99},   {"max_ms", s.max}};
}

void print_stats(const char* what, const yoloc::LatencyStats& s, const char* how) {
    std::printf("%-12s min %.3f  mean %.3f  median %.3f  p90 %.3f  p95 %.3f  p99 %.3f  max %.3f ms  (%s)\n", what,
                s.min, s.mean, s.median, s.p90, s.p95, s.p99, s.max, how);
}

// A test picture when the user gives none: 810x1080 (a phone photo's aspect), a
// smooth gradient so nothing is detected by chance; the letterbox does the same work.
yoloc::Image synthetic_picture() {
    yoloc::Image img(810, 1080);
    for (int y = 0; y < img.height; ++y)
        for (int x = 0; x < img.width; ++x) {
            uint8_t* p = img.row(y) + 3 * x;
            p[0] = uint8_t(x * 255 / img.width);
            p[1] = uint8_t(y * 255 / img.height);
            p[2] = 128;
        }
    return img;
}

}  // namespace

int bench_gpu(const BenchGpuArgs& a) {
    namespace gpu = yoloc::gpu;
    gpu::current_device();  // a clear error when there is no GPU
    size_t free0 = 0, total = 0;
    BENCH_CUDA(cudaFree(nullptr));  // create the CUDA context before the first reading
    BENCH_CUDA(cudaMemGetInfo(&free0, &total));

    std::shared_ptr<gpu::Engine> eng;
    std::string source;
    if (a.model.size() > 5 && a.model.compare(a.model.size() - 5, 5, ".onnx") == 0) {
        // An ONNX model is built in memory first, as `yoloc build` would.
        gpu::BuildOptions bo;
        bo.plan.precision = yoloc::engine::parse_precision(a.precision);
        bo.plan.batch = a.batch;
        bo.plan.imgsz = a.imgsz;
        bo.source = a.model;
        auto t0 = std::chrono::steady_clock::now();
        gpu::BuildResult r = gpu::build_engine(yoloc::load_onnx(a.model), bo);
        eng = gpu::make_engine(r.file, a.model);
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        source = yoloc::cat("built in memory from ", a.model, " in ", s, " s");
    } else {
        eng = gpu::Engine::load(a.model);
        source = "engine file " + a.model;
    }
    // Where the device memory goes: cudaMemGetInfo after each step, so the total delta can be
    // read as engine (weights), context (arena, graph), first runs and the detect buffers.
    std::vector<std::pair<std::string, int64_t>> mem_steps;
    auto mem_step = [&](const char* what) {
        size_t f = 0, t = 0;
        BENCH_CUDA(cudaMemGetInfo(&f, &t));
        mem_steps.emplace_back(what, int64_t(free0) - int64_t(f));
    };
    mem_step("engine loaded");
    const gpu::EngineSummary& s = eng->summary();
    gpu::Context ctx(eng);
    mem_step("context created");
    cudaStream_t stream = static_cast<cudaStream_t>(ctx.stream_handle());

    // Pinned host buffers for the copies.
    int64_t in_n = 1;
    for (int64_t d : s.input_shape) in_n *= d;
    std::vector<int64_t> out_n;
    for (const auto& sh : s.output_shapes) {
        int64_t n = 1;
        for (int64_t d : sh) n *= d;
        out_n.push_back(n);
    }
    float* h_in = nullptr;
    BENCH_CUDA(cudaHostAlloc(reinterpret_cast<void**>(&h_in), size_t(in_n) * 4, cudaHostAllocDefault));
    std::fill(h_in, h_in + in_n, 0.5f);
    std::vector<float*> h_out(out_n.size(), nullptr);
    for (size_t i = 0; i < out_n.size(); ++i)
        BENCH_CUDA(cudaHostAlloc(reinterpret_cast<void**>(&h_out[i]), size_t(out_n[i]) * 4, cudaHostAllocDefault));
    cudaEvent_t e0, e1;
    BENCH_CUDA(cudaEventCreate(&e0));
    BENCH_CUDA(cudaEventCreate(&e1));
    auto event_ms = [&]() {
        float ms = 0;
        BENCH_CUDA(cudaEventSynchronize(e1));
        BENCH_CUDA(cudaEventElapsedTime(&ms, e0, e1));
        return double(ms);
    };

    BENCH_CUDA(cudaMemcpyAsync(ctx.device_input(), h_in, size_t(in_n) * 4, cudaMemcpyHostToDevice, stream));
    for (int i = 0; i < a.warmup; ++i) ctx.run_device_only();
    mem_step("inference runs");

    std::vector<double> compute, enqueue, h2d, d2h, e2e;
    for (int i = 0; i < a.iters; ++i) compute.push_back(ctx.run_device_only());
    for (int i = 0; i < a.iters; ++i) {
        BENCH_CUDA(cudaStreamSynchronize(stream));
        auto t0 = std::chrono::steady_clock::now();
        ctx.enqueue_async();
        enqueue.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        BENCH_CUDA(cudaStreamSynchronize(stream));
    }
    for (int i = 0; i < a.iters; ++i) {
        BENCH_CUDA(cudaEventRecord(e0, stream));
        BENCH_CUDA(cudaMemcpyAsync(ctx.device_input(), h_in, size_t(in_n) * 4, cudaMemcpyHostToDevice, stream));
        BENCH_CUDA(cudaEventRecord(e1, stream));
        h2d.push_back(event_ms());
        BENCH_CUDA(cudaEventRecord(e0, stream));
        for (size_t o = 0; o < out_n.size(); ++o)
            BENCH_CUDA(cudaMemcpyAsync(h_out[o], ctx.device_output(int(o)), size_t(out_n[o]) * 4,
                                       cudaMemcpyDeviceToHost, stream));
        BENCH_CUDA(cudaEventRecord(e1, stream));
        d2h.push_back(event_ms());
    }
    std::string picture = "synthetic 810x1080 gradient";
    yoloc::Image img = synthetic_picture();
    if (!a.image.empty()) {
        img = yoloc::load_image(a.image);
        picture = a.image;
    }
    gpu::GpuImage gi;
    gi.bgr = img.pixels.data();
    gi.width = img.width;
    gi.height = img.height;
    size_t last_dets = 0;
    for (int i = 0; i < a.warmup; ++i) ctx.detect({gi});
    mem_step("detect runs");
    for (int i = 0; i < a.iters; ++i) {
        auto t0 = std::chrono::steady_clock::now();
        last_dets = ctx.detect({gi})[0].size();
        e2e.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    size_t free1 = 0;
    BENCH_CUDA(cudaMemGetInfo(&free1, &total));
    const int64_t delta = int64_t(free0) - int64_t(free1);
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    cudaFreeHost(h_in);
    for (float* p : h_out) cudaFreeHost(p);

    const yoloc::LatencyStats gc = yoloc::latency_stats(compute), eq = yoloc::latency_stats(enqueue),
                              up = yoloc::latency_stats(h2d), down = yoloc::latency_stats(d2h),
                              ee = yoloc::latency_stats(e2e);
    const double ips = 1000.0 / gc.median * double(s.batch);
    const int64_t planned = s.weight_bytes + s.arena_bytes + s.workspace_bytes;
    if (a.json) {
        nlohmann::json j = stats_json(gc);  // top-level *_ms keys: GPU compute
        j["model"] = a.model;
        j["source"] = source;
        j["gpu"] = s.gpu_name;
        j["compute_capability"] = std::to_string(s.cc_major) + "." + std::to_string(s.cc_minor);
        j["precision"] = s.precision;
        j["batch"] = s.batch;
        j["input_shape"] = s.input_shape;
        j["iters"] = a.iters;
        j["warmup"] = a.warmup;
        j["gpu_compute"] = stats_json(gc);
        j["enqueue"] = stats_json(eq);
        j["h2d"] = stats_json(up);
        j["d2h"] = stats_json(down);
        j["end_to_end"] = stats_json(ee);
        j["end_to_end_image"] = picture;
        j["end_to_end_detections"] = last_dets;
        j["throughput_img_per_s"] = ips;
        j["weight_bytes"] = s.weight_bytes;
        j["arena_bytes"] = s.arena_bytes;
        j["workspace_bytes"] = s.workspace_bytes;
        j["planned_device_bytes"] = planned;
        j["mem_get_info_delta_bytes"] = delta;
        for (const auto& m : mem_steps) j["mem_get_info_steps"].push_back({{"after", m.first}, {"delta_bytes", m.second}});
        j["method"] =
            "gpu_compute: CUDA events around one CUDA-graph launch; enqueue: wall clock of the launch call; h2d/d2h: "
            "CUDA events around the copies (pinned host memory); end_to_end: wall clock from a decoded image to its "
            "detections (GPU letterbox, engine, GPU decode+NMS); memory: planned weights+arena+workspace, and the "
            "cudaMemGetInfo drop from before loading to after the runs";
        std::cout << j.dump() << "\n";
        return 0;
    }
    std::printf("engine       %s: %s, batch %lld, input [%lld,%lld,%lld,%lld], on %s (sm_%d%d)\n", source.c_str(),
                s.precision.c_str(), static_cast<long long>(s.batch), static_cast<long long>(s.input_shape[0]),
                static_cast<long long>(s.input_shape[1]), static_cast<long long>(s.input_shape[2]),
                static_cast<long long>(s.input_shape[3]), s.gpu_name.c_str(), s.cc_major, s.cc_minor);
    print_stats("GPU compute", gc, "CUDA events around the CUDA-graph launch");
    print_stats("enqueue", eq, "host time of the launch call");
    print_stats("H2D", up, "input upload, pinned");
    print_stats("D2H", down, "raw outputs download, pinned");
    print_stats("end-to-end", ee, ("decoded image -> detections, " + picture).c_str());
    std::printf("throughput   %.1f images/s (batch %lld / GPU compute median)\n", ips, static_cast<long long>(s.batch));
    std::printf("memory       planned %.2f MB (weights %.2f + activations %.2f + workspace %.2f); cudaMemGetInfo "
                "delta %.2f MB (adds allocator rounding, pinned/staging and detect buffers)\n",
                planned / 1e6, s.weight_bytes / 1e6, s.arena_bytes / 1e6, s.workspace_bytes / 1e6, delta / 1e6);
    std::string steps;
    for (const auto& m : mem_steps) steps += yoloc::cat(steps.empty() ? "" : ", ", m.first, " ", m.second / 1e6, " MB");
    std::printf("memory steps cudaMemGetInfo drop after: %s\n", steps.c_str());
    return 0;
}
#endif

}  // namespace yoloc_cli
