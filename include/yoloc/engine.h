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
    int conv_kernel = 0;     // 0: the engine's stored per-layer choice (tactics timed at build); N > 0 forces
                             // one conv kernel everywhere (a ConvTactic, engine/cuda/conv_mma.h: 1 direct,
                             // 2 WMMA, 3 SIMT GEMM, 16+i tensor-core tile i); env YOLOC_CONV_KERNEL does the same
};

// One decoded image for Context::detect: 8-bit BGR, rows packed (yoloc::Image's layout).
struct GpuImage {
    const uint8_t* bgr = nullptr;
    int width = 0, height = 0;
};

// Post-processing options of Context::detect (the CPU's PostprocessOptions).
struct GpuDetectOptions {
    float conf_threshold = 0.25f;  // keep scores strictly above this
    float iou_threshold = 0.45f;   // same-class boxes with IoU strictly above this are suppressed
    int max_det = 300;             // detections per image (at most 2048 on the GPU)
    int max_nms = 30000;           // best candidates kept before NMS (0: no cap)
    bool multi_label = false;      // true: every class above the threshold (mAP evaluation)
};

// A detection in original-image pixels.
struct GpuDetection {
    int class_id = 0;
    float conf = 0.f;
    float x1 = 0.f, y1 = 0.f, x2 = 0.f, y2 = 0.f;
};

struct DetectState;  // the context's pre/post-processing buffers (engine/cuda/gpu_detect.cpp)

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

    // The whole detector on the GPU: uploads each decoded image, letterboxes it into
    // the engine's input (bit-identical to the CPU letterbox), runs the engine, then
    // decodes, sorts and runs class-wise NMS on the device; only the detections come
    // back. Up to batch() images per call; result i belongs to images[i].
    std::vector<std::vector<GpuDetection>> detect(const std::vector<GpuImage>& images,
                                                  const GpuDetectOptions& opts = {});

    // Low-level access for the pre/post-processing and the benchmarks.
    void* device_input();                    // [N,3,H,W] float32, on the device
    const float* device_output(int i) const; // output i, ONNX layout, float32, on the device
    void* stream_handle() const;             // the context's cudaStream_t
    void enqueue_async();                    // the engine on the stream (graph launch), no copies, no sync
    const EngineSummary& summary() const;    // of the engine this context runs

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
    std::shared_ptr<DetectState> detect_;  // made on the first detect()
};

}  // namespace gpu
}  // namespace yoloc
