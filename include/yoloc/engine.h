// yoloc GPU engine: the small public C++ API.
//
//   auto eng = yoloc::gpu::Engine::load("yolov8n.engine");   // validates file + device
//   yoloc::gpu::Context ctx(eng);                             // one stream, own activations
//   std::vector<std::vector<float>> out;
//   ctx.infer(nchw_floats, out);                              // out[i]: output i, ONNX layout
//
// Several contexts may share one engine (its weights live on the device once), one
// per camera stream or thread; a context is not thread-safe, an engine is.
// Every function throws yoloc::Error (core/error.h) on failure; builds without CUDA
// throw "this yoloc was built without CUDA support".
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace yoloc {
namespace gpu {

struct EngineSummary {
    std::string gpu_name;
    int cc_major = 0, cc_minor = 0;
    std::string precision;                 // "fp32" | "fp16"
    int64_t batch = 0;
    std::string input_name;
    std::vector<int64_t> input_shape;      // NCHW
    std::vector<std::string> output_names;
    std::vector<std::vector<int64_t>> output_shapes;
    int64_t weight_bytes = 0, arena_bytes = 0, workspace_bytes = 0;
    int ops = 0;
};

class Engine {
public:
    // Reads an engine file and uploads its weights. Fails cleanly (rebuild message)
    // when it was built for another device or yoloc version, or is corrupt.
    static std::shared_ptr<Engine> load(const std::string& path);
    ~Engine();
    const EngineSummary& summary() const;

    struct Impl;
    explicit Engine(std::unique_ptr<Impl> impl);
    const Impl& impl() const { return *impl_; }

private:
    std::unique_ptr<Impl> impl_;
};

struct ContextOptions {
    bool cuda_graph = true;  // capture the op sequence once, then replay it
    int conv_kernel = 0;     // 0: tiled implicit GEMM (direct for grouped convs); 1: direct everywhere;
                             // 2: WMMA tensor cores for fp16 engines (new, opt-in; else as 0)
};

class Context {
public:
    explicit Context(std::shared_ptr<const Engine> engine, const ContextOptions& opts = {});
    ~Context();
    Context(const Context&) = delete;
    Context& operator=(const Context&) = delete;

    // input: batch*C*H*W floats (NCHW, already letterboxed and scaled to [0,1]).
    // outputs: resized to the engine's outputs, ONNX layout, float32.
    void infer(const float* input, std::vector<std::vector<float>>& outputs);
    // Runs the ops on the device only (input/output stay where they are) and
    // returns the GPU time in ms measured with CUDA events: what `bench` reports.
    float run_device_only();
    // GPU time (CUDA events) of the last infer() or run_device_only().
    float last_gpu_ms() const;

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace gpu
}  // namespace yoloc
