#include "engine/cuda/runtime.h"

#include <cuda_runtime_api.h>

#include <cstring>
#include <ctime>

#include "core/error.h"
#include "core/half.h"
#include "engine/cuda/kernels.h"
#include "engine/cuda/launch_args.h"

namespace yoloc {
namespace gpu {

namespace {

void ck(cudaError_t e, const char* what) {
    if (e != cudaSuccess) fail("CUDA error in ", what, ": ", cudaGetErrorString(e));
}
#define YOLOC_CUDA(call) ck((call), #call)

std::string today() {
    std::time_t t = std::time(nullptr);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
    return buf;
}

int64_t align256(int64_t x) { return (x + 255) / 256 * 256; }

}  // namespace

engine::DeviceIdentity current_device() {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0)
        fail("no CUDA GPU is available (", e == cudaSuccess ? "no devices" : cudaGetErrorString(e), ")");
    int dev = 0;
    YOLOC_CUDA(cudaGetDevice(&dev));
    cudaDeviceProp prop;
    YOLOC_CUDA(cudaGetDeviceProperties(&prop, dev));
    engine::DeviceIdentity id;
    id.gpu_name = prop.name;
    id.cc_major = prop.major;
    id.cc_minor = prop.minor;
    YOLOC_CUDA(cudaRuntimeGetVersion(&id.cuda_runtime));
    id.cudnn = 0;  // own kernels only so far
    return id;
}

BuildResult build_engine(const Model& model, const BuildOptions& opts) {
    BuildResult r;
    r.file.plan = engine::build_plan(model, opts.plan);
    r.memory = engine::plan_memory(r.file.plan, opts.memory_budget);
    r.file.info.yoloc_version = engine::yoloc_version();
    r.file.info.device = current_device();
    r.file.info.source_model = opts.source;
    r.file.info.created = today();
    return r;
}

// ---------------------------------------------------------------- Engine

struct Engine::Impl {
    engine::EngineFile file;
    engine::MemoryPlan memory;
    EngineSummary summary;
    int device = 0;
    void* weights = nullptr;             // one allocation for all ops
    std::vector<const void*> w_dev;      // per op (null unless Conv)
    std::vector<const float*> b_dev;
    ~Impl() {
        if (weights) cudaFree(weights);
    }
};

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Engine::~Engine() = default;
const EngineSummary& Engine::summary() const { return impl_->summary; }

std::shared_ptr<Engine> make_engine(engine::EngineFile file, const std::string& origin) {
    engine::check_engine_device(file.info, current_device(), origin);
    file.plan.validate();
    auto impl = std::make_unique<Engine::Impl>();
    YOLOC_CUDA(cudaGetDevice(&impl->device));
    impl->memory = engine::plan_memory(file.plan, 0);
    const engine::Plan& p = file.plan;
    const bool fp16 = p.precision == engine::Precision::FP16;

    // Weights: converted on the host (fp16 when asked), each op's block 256-byte aligned.
    std::vector<int64_t> woff(p.ops.size(), -1), boff(p.ops.size(), -1);
    int64_t total = 0;
    for (size_t i = 0; i < p.ops.size(); ++i) {
        const auto& op = p.ops[i];
        if (op.kind != engine::OpKind::Conv) continue;
        woff[i] = total;
        total = align256(total + op.w_count * (fp16 ? 2 : 4));
        boff[i] = total;
        total = align256(total + op.b_count * 4);
    }
    std::vector<uint8_t> host(size_t(total ? total : 1), 0);
    for (size_t i = 0; i < p.ops.size(); ++i) {
        const auto& op = p.ops[i];
        if (op.kind != engine::OpKind::Conv) continue;
        const float* w = p.weights.data() + op.w_off;
        if (fp16) {
            auto* d = reinterpret_cast<uint16_t*>(host.data() + woff[i]);
            for (int64_t k = 0; k < op.w_count; ++k) d[k] = float_to_half(w[k]);
        } else {
            std::memcpy(host.data() + woff[i], w, size_t(op.w_count) * 4);
        }
        std::memcpy(host.data() + boff[i], p.weights.data() + op.b_off, size_t(op.b_count) * 4);
    }
    YOLOC_CUDA(cudaMalloc(&impl->weights, host.size()));
    YOLOC_CUDA(cudaMemcpy(impl->weights, host.data(), host.size(), cudaMemcpyHostToDevice));
    impl->w_dev.assign(p.ops.size(), nullptr);
    impl->b_dev.assign(p.ops.size(), nullptr);
    for (size_t i = 0; i < p.ops.size(); ++i) {
        if (woff[i] < 0) continue;
        impl->w_dev[i] = static_cast<uint8_t*>(impl->weights) + woff[i];
        impl->b_dev[i] = reinterpret_cast<const float*>(static_cast<uint8_t*>(impl->weights) + boff[i]);
    }

    EngineSummary& s = impl->summary;
    s.gpu_name = file.info.device.gpu_name;
    s.cc_major = file.info.device.cc_major;
    s.cc_minor = file.info.device.cc_minor;
    s.precision = engine::precision_name(p.precision);
    s.batch = p.batch;
    s.input_name = p.input_name;
    s.input_shape = p.input_shape;
    s.output_names = p.output_names;
    for (const auto& sh : p.output_shapes) s.output_shapes.push_back(sh);
    s.weight_bytes = total;
    s.arena_bytes = impl->memory.arena_bytes;
    s.workspace_bytes = impl->memory.workspace_bytes;
    s.ops = int(p.ops.size());
    impl->file = std::move(file);
    return std::make_shared<Engine>(std::move(impl));
}

std::shared_ptr<Engine> Engine::load(const std::string& path) {
    return make_engine(engine::read_engine(path), path);
}

// ---------------------------------------------------------------- Context

struct Context::Impl {
    std::shared_ptr<const Engine> engine;
    ContextOptions opts;
    cudaStream_t stream = nullptr;
    void* arena = nullptr;
    float* host_in = nullptr;                 // pinned
    std::vector<float*> host_out;             // pinned
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    cudaEvent_t ev0 = nullptr, ev1 = nullptr;
    float last_ms = 0;

    ~Impl() {
        if (exec) cudaGraphExecDestroy(exec);
        if (graph) cudaGraphDestroy(graph);
        if (ev0) cudaEventDestroy(ev0);
        if (ev1) cudaEventDestroy(ev1);
        if (stream) cudaStreamDestroy(stream);
        if (arena) cudaFree(arena);
        if (host_in) cudaFreeHost(host_in);
        for (float* p : host_out)
            if (p) cudaFreeHost(p);
    }

    const engine::Plan& plan() const { return engine->impl().file.plan; }
    uint8_t* base(int32_t buf) const {
        return static_cast<uint8_t*>(arena) + engine->impl().memory.offsets[size_t(buf)];
    }

    // Launches every op on the stream (captured into the CUDA graph once).
    void enqueue() {
        const engine::Plan& p = plan();
        const bool fp16 = p.precision == engine::Precision::FP16;
        const auto& E = engine->impl();
        uint8_t* a0 = static_cast<uint8_t*>(arena);
        for (size_t i = 0; i < p.ops.size(); ++i) {
            cuda::OpArgs a = cuda::make_op_args(p, i, a0, E.memory.offsets, E.w_dev[i], E.b_dev[i]);
            a.conv.kernel = opts.conv_kernel;
            switch (a.kind) {
                case engine::OpKind::InputPack: cuda::input_pack(a.pack, fp16, stream); break;
                case engine::OpKind::Conv: cuda::conv(a.conv, fp16, stream); break;
                case engine::OpKind::MaxPool: cuda::maxpool(a.pool, fp16, stream); break;
                case engine::OpKind::Resize: cuda::resize_nearest(a.resize, fp16, stream); break;
                case engine::OpKind::Copy: cuda::copy_channels(a.copy, fp16, stream); break;
                case engine::OpKind::Detect: cuda::detect(a.detect, fp16, stream); break;
                case engine::OpKind::OutputUnpack: cuda::output_unpack(a.unpack, fp16, stream); break;
            }
        }
        YOLOC_CUDA(cudaGetLastError());
    }

    void launch() {
        if (!opts.cuda_graph) {
            enqueue();
            return;
        }
        if (!exec) {
            // Captured once per context: its arena addresses are baked into the graph.
            YOLOC_CUDA(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
            try {
                enqueue();
            } catch (...) {
                cudaGraph_t g = nullptr;
                cudaStreamEndCapture(stream, &g);
                if (g) cudaGraphDestroy(g);
                throw;
            }
            YOLOC_CUDA(cudaStreamEndCapture(stream, &graph));
#if CUDART_VERSION >= 12000
            YOLOC_CUDA(cudaGraphInstantiate(&exec, graph, 0));
#else
            YOLOC_CUDA(cudaGraphInstantiate(&exec, graph, nullptr, nullptr, 0));
#endif
        }
        YOLOC_CUDA(cudaGraphLaunch(exec, stream));
    }
};

Context::Context(std::shared_ptr<const Engine> engine, const ContextOptions& opts) : impl_(new Impl) {
    YOLOC_CHECK(engine != nullptr, "Context needs an engine");
    impl_->engine = std::move(engine);
    impl_->opts = opts;
    const auto& E = impl_->engine->impl();
    YOLOC_CUDA(cudaSetDevice(E.device));
    cuda::tensor_cores_available();  // cache the answer before any graph capture
    YOLOC_CUDA(cudaStreamCreateWithFlags(&impl_->stream, cudaStreamNonBlocking));
    YOLOC_CUDA(cudaEventCreate(&impl_->ev0));
    YOLOC_CUDA(cudaEventCreate(&impl_->ev1));
    YOLOC_CUDA(cudaMalloc(&impl_->arena, size_t(std::max<int64_t>(E.memory.arena_bytes, 256))));
    const engine::Plan& p = E.file.plan;
    YOLOC_CUDA(cudaHostAlloc(reinterpret_cast<void**>(&impl_->host_in),
                             size_t(p.buffers[size_t(p.input_buf)].bytes()), cudaHostAllocDefault));
    for (int32_t o : p.output_bufs) {
        float* h = nullptr;
        YOLOC_CUDA(cudaHostAlloc(reinterpret_cast<void**>(&h), size_t(p.buffers[size_t(o)].bytes()),
                                 cudaHostAllocDefault));
        impl_->host_out.push_back(h);
    }
}

Context::~Context() = default;

void Context::infer(const float* input, std::vector<std::vector<float>>& outputs) {
    Impl& c = *impl_;
    const engine::Plan& p = c.plan();
    const size_t in_bytes = size_t(p.buffers[size_t(p.input_buf)].bytes());
    std::memcpy(c.host_in, input, in_bytes);
    YOLOC_CUDA(cudaMemcpyAsync(c.base(p.input_buf), c.host_in, in_bytes, cudaMemcpyHostToDevice, c.stream));
    YOLOC_CUDA(cudaEventRecord(c.ev0, c.stream));
    c.launch();
    YOLOC_CUDA(cudaEventRecord(c.ev1, c.stream));
    for (size_t i = 0; i < p.output_bufs.size(); ++i) {
        const size_t b = size_t(p.buffers[size_t(p.output_bufs[i])].bytes());
        YOLOC_CUDA(cudaMemcpyAsync(c.host_out[i], c.base(p.output_bufs[i]), b, cudaMemcpyDeviceToHost, c.stream));
    }
    YOLOC_CUDA(cudaStreamSynchronize(c.stream));
    YOLOC_CUDA(cudaEventElapsedTime(&c.last_ms, c.ev0, c.ev1));
    outputs.resize(p.output_bufs.size());
    for (size_t i = 0; i < p.output_bufs.size(); ++i) {
        const size_t n = size_t(p.buffers[size_t(p.output_bufs[i])].bytes()) / 4;
        outputs[i].assign(c.host_out[i], c.host_out[i] + n);
    }
}

float Context::run_device_only() {
    Impl& c = *impl_;
    YOLOC_CUDA(cudaEventRecord(c.ev0, c.stream));
    c.launch();
    YOLOC_CUDA(cudaEventRecord(c.ev1, c.stream));
    YOLOC_CUDA(cudaEventSynchronize(c.ev1));
    YOLOC_CUDA(cudaEventElapsedTime(&c.last_ms, c.ev0, c.ev1));
    return c.last_ms;
}

float Context::last_gpu_ms() const { return impl_->last_ms; }

}  // namespace gpu
}  // namespace yoloc
