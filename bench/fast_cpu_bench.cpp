// Latency of the fast CPU executor on an ONNX model, the same way the ONNX Runtime
// peer (shared/tools/peers/ort_cpu_bench.py) measures: batch 1, input filled with
// 0.5, 3 warm-up runs, then `iters` timed runs; prints one JSON line.
// usage: fast_cpu_bench MODEL [threads=2] [iters=20] [--dnnl|--own] [--profile]
//   default: the executor's automatic choice (see ConvKernels::Auto)
// Built by bench/cpu_vs_ort.sh against the yoloc library (kept until `yoloc bench` exists).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "engine/cpu/fast/conv.h"
#include "engine/cpu/fast_executor.h"
#include "onnx/onnx_io.h"

int main(int argc, char** argv) {
    using namespace yoloc;
    std::vector<std::string> pos;
    ConvKernels conv = ConvKernels::Auto;
    bool profile = false;
    for (int i = 1; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--no-dnnl") || !std::strcmp(argv[i], "--own")) conv = ConvKernels::Own;
        else if (!std::strcmp(argv[i], "--dnnl")) conv = ConvKernels::Dnnl;
        else if (!std::strcmp(argv[i], "--profile")) profile = true;
        else pos.push_back(argv[i]);
    }
    if (pos.empty()) {
        std::fprintf(stderr, "usage: %s MODEL [threads=2] [iters=20] [--dnnl|--own] [--profile]\n", argv[0]);
        return 2;
    }
    try {
        int threads = pos.size() > 1 ? std::stoi(pos[1]) : 2;
        int iters = pos.size() > 2 ? std::stoi(pos[2]) : 20;
        Model m = load_onnx(pos[0]);
        Shape s;
        for (size_t d = 0; d < m.graph.inputs.at(0).shape.size(); ++d) {
            const Dim& dim = m.graph.inputs[0].shape[d];
            s.push_back(dim.known() ? dim.value : (d == 0 ? 1 : 640));
        }
        Tensor x(DType::Float32, s);
        for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = 0.5f;
        FastExecutorOptions fo;
        fo.conv = conv;
        fo.profile = profile;
        auto t0 = std::chrono::steady_clock::now();
        FastExecutor ex(m, ExecutorOptions{threads}, fo);
        double build_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        TensorMap in{{m.graph.inputs[0].name, x}};
        for (int i = 0; i < 3; ++i) ex.run(in);
        std::vector<double> ts;
        for (int i = 0; i < iters; ++i) {
            auto a = std::chrono::steady_clock::now();
            ex.run(in);
            ts.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count());
        }
        std::sort(ts.begin(), ts.end());
        FastPlanStats st = ex.stats();
        std::printf("{\"runner\": \"yoloc fast\", \"dnnl\": %s, \"threads\": %d, \"iters\": %d, \"median_ms\": %.2f, "
                    "\"min_ms\": %.2f, \"max_ms\": %.2f, \"build_ms\": %.1f, \"convs\": %d, \"dnnl_convs\": %d, "
                    "\"ref_steps\": %d, \"arena_mb\": %.1f}\n",
                    st.dnnl_convs > 0 ? "true" : "false", threads, iters, ts[ts.size() / 2], ts[0],
                    ts.back(), build_ms, st.convs, st.dnnl_convs, st.ref_steps, double(st.arena_bytes) / 1048576.0);
        if (profile) {
            auto prof = ex.profile();
            double total = 0;
            for (auto& p : prof) total += p.total_ms;
            std::sort(prof.begin(), prof.end(), [](const StepProfile& a, const StepProfile& b) { return a.total_ms > b.total_ms; });
            for (auto& p : prof)
                std::fprintf(stderr, "%8.3f ms %5.1f%%  %s\n", p.total_ms / double(p.calls ? p.calls : 1),
                             100.0 * p.total_ms / total, p.label.c_str());
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    return 0;
}
