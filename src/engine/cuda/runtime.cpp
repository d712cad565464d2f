#include "engine/cuda/runtime.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <atomic>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include "core/env.h"
#include "core/error.h"
#include "core/file.h"
#include "core/half.h"
#include "engine/cuda/conv_cudnn.h"
#include "engine/cuda/conv_int8.h"
#include "engine/cuda/conv_mma.h"
#include "engine/cuda/generic.h"
#include "engine/cuda/kernels.h"
#include "engine/cuda/launch_args.h"
#include "engine/tactic_select.h"

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

// YOLOC_MEM_TRACE=1: the device's free memory after each step of loading an engine, making
// a context and its first launch, printed to stderr as the drop since the first trace of
// the process (cudaMemGetInfo moves in 2 MiB granules: this tells which step takes one).
bool mem_tracing() {
    static const bool on = [] {
        const char* v = env_get("YOLOC_MEM_TRACE");
        return v && v[0] == '1';
    }();
    return on;
}
void mem_trace(const char* what) {
    if (!mem_tracing()) return;
    static size_t free0 = 0;
    size_t f = 0, t = 0;
    if (cudaMemGetInfo(&f, &t) != cudaSuccess) return;
    if (free0 == 0) free0 = f;
    std::fprintf(stderr, "mem-trace %-28s %8.3f MB\n", what, (double(free0) - double(f)) / 1e6);
}

bool is_cudnn_tactic(int t) { return t >= cuda::kConvCudnnBase && t < cuda::kConvCudnnBase + cuda::kConvCudnnMax; }

// A conv's weights as fp16 in cuDNN's NHWC filter layout [cout][kh][kw][cin], from the
// plan's float [kh][kw][cin][cout].
void cudnn_weights_half(const engine::Plan& p, const engine::PlanOp& op, uint16_t* d) {
    const float* w = p.weights.data() + op.w_off;
    const int64_t M = op.out.c, K = op.w_count / M;
    for (int64_t k = 0; k < K; ++k)
        for (int64_t m = 0; m < M; ++m) d[m * K + k] = float_to_half(w[k * M + m]);
}

// One generic-tier op (float32 / int32 tensors whatever the engine's precision).
void launch_generic(const cuda::GenericArgs& g, cudaStream_t stream) {
    using engine::GenericKind;
    if (g.none) return;
    switch (g.kind) {
        case GenericKind::Unary: cuda::unary(g.unary, stream); break;
        case GenericKind::Binary: cuda::binary(g.binary, g.int32, stream); break;
        case GenericKind::Where: cuda::where(g.where, g.elem_bytes, stream); break;
        case GenericKind::Softmax: cuda::softmax(g.softmax, stream); break;
        case GenericKind::MatMul: cuda::matmul(g.matmul, stream); break;
        case GenericKind::Copy:
        case GenericKind::Const: cuda::strided_copy(g.copy, g.elem_bytes, stream); break;
        case GenericKind::Gather: cuda::gather(g.gather, g.elem_bytes, stream); break;
        case GenericKind::GatherElements: cuda::gather_elements(g.gather_elements, g.elem_bytes, stream); break;
        case GenericKind::TopK: cuda::topk(g.topk, g.int32, stream); break;
        case GenericKind::Reduce: cuda::reduce(g.reduce, g.int32, stream); break;
        case GenericKind::Cast: cuda::cast(g.cast, stream); break;
        case GenericKind::FakeQuant: cuda::fake_quant(g.fake_quant, stream); break;
        case GenericKind::ConvTranspose: cuda::conv_transpose(g.conv_transpose, stream); break;
    }
}

// One plan op on a stream.
void launch_op(cuda::OpArgs& a, bool fp16, cudaStream_t stream) {
    switch (a.kind) {
        case engine::OpKind::InputPack: cuda::input_pack(a.pack, fp16, stream); break;
        case engine::OpKind::Conv: cuda::conv(a.conv, fp16, stream); break;
        case engine::OpKind::MaxPool: cuda::maxpool(a.pool, fp16, stream); break;
        case engine::OpKind::Resize: cuda::resize_nearest(a.resize, fp16, stream); break;
        case engine::OpKind::Copy: cuda::copy_channels(a.copy, fp16, stream); break;
        case engine::OpKind::Detect: cuda::detect(a.detect, fp16, stream); break;
        case engine::OpKind::OutputUnpack: cuda::output_unpack(a.unpack, fp16, stream); break;
        case engine::OpKind::FakeQuant: cuda::copy_channels(a.copy, fp16, stream); break;
        case engine::OpKind::Generic: launch_generic(a.generic, stream); break;
    }
}

// Microseconds per launch of `launch`, measured as TensorRT does for tactics: `per_graph`
// back-to-back launches captured in one CUDA graph (so launch overhead is what the
// engine's graph pays), median of `reps` timed replays after one warm replay.
// Returns +inf when the launches fail.
double time_in_graph(cudaStream_t s, const std::function<void(cudaStream_t)>& launch, int per_graph, int reps) {
    cudaGraph_t g = nullptr;
    cudaGraphExec_t ge = nullptr;
    if (cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal) != cudaSuccess) return INFINITY;
    for (int i = 0; i < per_graph; ++i) launch(s);
    cudaError_t e = cudaStreamEndCapture(s, &g);
    if (e != cudaSuccess || cudaGetLastError() != cudaSuccess) {
        if (g) cudaGraphDestroy(g);
        return INFINITY;
    }
#if CUDART_VERSION >= 12000
    e = cudaGraphInstantiate(&ge, g, 0);
#else
    e = cudaGraphInstantiate(&ge, g, nullptr, nullptr, 0);
#endif
    if (e != cudaSuccess) {
        cudaGraphDestroy(g);
        cudaGetLastError();
        return INFINITY;
    }
    cudaEvent_t e0, e1;
    YOLOC_CUDA(cudaEventCreate(&e0));
    YOLOC_CUDA(cudaEventCreate(&e1));
    YOLOC_CUDA(cudaGraphLaunch(ge, s));
    std::vector<float> ms;
    for (int r = 0; r < reps; ++r) {
        YOLOC_CUDA(cudaEventRecord(e0, s));
        YOLOC_CUDA(cudaGraphLaunch(ge, s));
        YOLOC_CUDA(cudaEventRecord(e1, s));
        YOLOC_CUDA(cudaEventSynchronize(e1));
        float t = 0;
        YOLOC_CUDA(cudaEventElapsedTime(&t, e0, e1));
        ms.push_back(t);
    }
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    cudaGraphExecDestroy(ge);
    cudaGraphDestroy(g);
    std::sort(ms.begin(), ms.end());
    return double(ms[ms.size() / 2]) * 1000.0 / per_graph;
}

std::string conv_shape(const engine::Plan& p, const engine::PlanOp& op) {
    const auto& ob = p.buffers[size_t(op.out.buf)];
    std::ostringstream os;
    os << op.kh << "x" << op.kw << " s" << op.sh << " " << op.in[0].c << "->" << op.out.c << " " << ob.shape[1] << "x"
       << ob.shape[2];
    if (op.group != 1) os << " g" << op.group;
    if (op.int8()) os << " int8";
    if (ob.shape[0] != 1) os << " n" << ob.shape[0];
    if (p.buffers[size_t(op.in[0].buf)].kind == engine::BufferKind::Input) os << " stem(nchw)";
    return os.str();
}

// Timing-cache key: everything the kernels' speed depends on, and the device.
std::string cache_key(const engine::Plan& p, const engine::PlanOp& op, const cuda::ConvArgs& a) {
    std::ostringstream os;
    os << engine::precision_name(p.precision) << " n" << a.n << " " << a.h << "x" << a.w << " c" << a.c << " xs" << a.xs
       << " m" << a.m << " ys" << a.ys << " k" << a.kh << "x" << a.kw << " s" << a.sh << "x" << a.sw << " p" << a.ph
       << "x" << a.pw << " g" << a.group << " silu" << a.silu << " res" << (a.res ? a.rs : 0) << " x16:"
       << ((reinterpret_cast<uintptr_t>(a.x) & 15) == 0) << " o" << op.out.c_off % 8 << (a.qscale ? " int8" : "") << (a.nchw ? " nchw" : "")
       << (a.x_i8 ? " xi8" : "") << (a.ysc ? " yi8" : "") << (a.res_i8 ? " ri8" : "");
    return os.str();
}

}  // namespace

std::string tactic_name(int tactic) {
    char buf[64];
    return cuda::conv_tactic_name(tactic, buf, int(sizeof buf));
}

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
    id.cudnn = 0;  // asked of cuDNN only where an engine uses it (make_engine, build_engine)
    return id;
}

// ---------------------------------------------------------------- Engine

struct Engine::Impl {
    engine::EngineFile file;
    engine::MemoryPlan memory;
    EngineSummary summary;
    int device = 0;
    // One allocation: the weights of all ops, then (at arena_off) an arena for the first
    // context, which is the only one in most programs. Device memory comes in 2 MiB
    // granules, so one allocation of weights + arena takes a granule less than two
    // (yolov8n FP16: 6.0 + 8.6 MiB -> 8 granules instead of 4 + 5).
    void* weights = nullptr;
    size_t arena_off = 0;
    mutable std::atomic<bool> arena_lent{false};  // the built-in arena is some context's
    std::vector<const void*> w_dev;      // per op (null unless Conv)
    std::vector<const float*> b_dev;
    std::vector<const float*> s_dev;     // INT8 convs: s_in * s_w per output channel
    std::vector<const float*> y_dev;     // INT8 convs writing an int8 buffer: output scales
    std::vector<std::shared_ptr<cuda::DnnPlan>> dnn;  // convs with a cuDNN tactic: their plan
    std::vector<int64_t> resident;  // per buffer: its offset in `weights` (Const data), or -1 (cuda::weight_resident_buffers)
    // Op DAG for multi-stream capture, arena sharing included: dag.deps[i] = the earlier
    // ops op i must wait for (transitively reduced).
    engine::OpDag dag;
    ~Impl() {
        if (weights) cudaFree(weights);
    }
};

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Engine::~Engine() = default;
const EngineSummary& Engine::summary() const { return impl_->summary; }

std::shared_ptr<Engine> make_engine(engine::EngineFile file, const std::string& origin) {
    engine::DeviceIdentity here = current_device();
    // cuDNN is not touched for an engine without cuDNN layers (its version is 0).
    if (file.info.device.cudnn != 0) here.cudnn = cuda::cudnn_version();
    engine::check_engine_device(file.info, here, origin);
    file.plan.validate();
    mem_trace("engine: checked");
    auto impl = std::make_unique<Engine::Impl>();
    YOLOC_CUDA(cudaGetDevice(&impl->device));
    impl->memory = engine::plan_memory(file.plan, 0);
    const engine::Plan& p = file.plan;
    const bool fp16 = p.precision != engine::Precision::FP32;

    // Weights: converted on the host (fp16 when asked; INT8 convs: int8 [cout][K padded
    // to 16] plus s_in * s_w per channel) into the layout the memory planner sized.
    const engine::DeviceWeightLayout L = engine::device_weight_layout(p);
    const std::vector<int64_t>&woff = L.w, &boff = L.b, &soff = L.s, &yoff = L.y;
    const int64_t total = L.bytes;
    std::vector<uint8_t> host(size_t(total ? total : 1), 0);
    for (size_t i = 0; i < p.ops.size(); ++i) {
        const auto& op = p.ops[i];
        if (op.kind == engine::OpKind::Generic) cuda::write_generic_weights(p, i, L, host.data());
        if (op.kind != engine::OpKind::Conv) continue;
        const float* w = p.weights.data() + op.w_off;
        if (op.int8()) {
            // Plan order [kh][kw][cin][cout] -> [cout][kh*kw*cin]: each output channel's
            // K weights contiguous (the mma B operand, "col" layout).
            const int64_t M = op.out.c, K = op.w_count / M, wk = engine::int8_weight_stride(op);
            auto* d = reinterpret_cast<int8_t*>(host.data() + woff[i]);
            for (int64_t k = 0; k < K; ++k)
                for (int64_t m = 0; m < M; ++m) d[m * wk + k] = int8_t(w[k * M + m]);
            auto* sd = reinterpret_cast<float*>(host.data() + soff[i]);
            for (int64_t m = 0; m < M; ++m) sd[m] = op.in_scale * p.weights[size_t(op.s_off + m)];
        } else if (fp16 && is_cudnn_tactic(op.tactic)) {
            cudnn_weights_half(p, op, reinterpret_cast<uint16_t*>(host.data() + woff[i]));
        } else if (fp16) {
            auto* d = reinterpret_cast<uint16_t*>(host.data() + woff[i]);
            for (int64_t k = 0; k < op.w_count; ++k) d[k] = float_to_half(w[k]);
        } else {
            std::memcpy(host.data() + woff[i], w, size_t(op.w_count) * 4);
        }
        std::memcpy(host.data() + boff[i], p.weights.data() + op.b_off, size_t(op.b_count) * 4);
        if (yoff[i] >= 0) std::memcpy(host.data() + yoff[i], p.weights.data() + op.ys_off, size_t(op.ys_count) * 4);
    }
    impl->arena_off = (host.size() + 255) / 256 * 256;
    YOLOC_CUDA(cudaMalloc(&impl->weights, impl->arena_off + size_t(std::max<int64_t>(impl->memory.arena_bytes, 256))));
    YOLOC_CUDA(cudaMemcpy(impl->weights, host.data(), host.size(), cudaMemcpyHostToDevice));
    mem_trace("engine: weights+arena");
    impl->w_dev.assign(p.ops.size(), nullptr);
    impl->b_dev.assign(p.ops.size(), nullptr);
    impl->s_dev.assign(p.ops.size(), nullptr);
    impl->y_dev.assign(p.ops.size(), nullptr);
    impl->resident = cuda::weight_resident_buffers(p, L);
    // Generic ops may have data at b without any at w (Const).
    for (size_t i = 0; i < p.ops.size(); ++i) {
        uint8_t* const wb = static_cast<uint8_t*>(impl->weights);
        if (yoff[i] >= 0) impl->y_dev[i] = reinterpret_cast<const float*>(wb + yoff[i]);
        if (soff[i] >= 0) impl->s_dev[i] = reinterpret_cast<const float*>(wb + soff[i]);
        if (woff[i] >= 0) impl->w_dev[i] = wb + woff[i];
        if (boff[i] >= 0) impl->b_dev[i] = reinterpret_cast<const float*>(wb + boff[i]);
    }

    // cuDNN plans, re-created from the heuristic index the build chose (one per layer,
    // shared by every context: plans hold no pointers).
    impl->dnn.assign(p.ops.size(), nullptr);
    for (size_t i = 0; i < p.ops.size(); ++i) {
        if (p.ops[i].kind != engine::OpKind::Conv || !is_cudnn_tactic(p.ops[i].tactic)) continue;
        YOLOC_CHECK(fp16 && !p.ops[i].int8() && file.info.device.cudnn != 0, "layer ", p.ops[i].name,
                    ": a cuDNN tactic in a ", engine::precision_name(p.precision),
                    " engine that records no cuDNN version; the file is corrupt");
        const cuda::OpArgs a = cuda::make_op_args(p, i, static_cast<uint8_t*>(impl->weights) + impl->arena_off,
                                                  impl->memory.offsets, impl->w_dev[i], impl->b_dev[i]);
        impl->dnn[i] = cuda::cudnn_conv_plan(a.conv, p.ops[i].tactic - cuda::kConvCudnnBase, p.ops[i].name);
    }

    impl->dag = engine::op_dag(p, &impl->memory);
    mem_trace("engine: cuDNN plans, DAG");

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

// The shared-memory carveout an engine's kernels ask for (launch.h). Batch 1: the most
// shared memory for every kernel, so that consecutive kernels never wait for an SM to
// change its split (H100, FP16: 0.313 vs 0.326-0.331 ms with the driver's choice; INT8
// 0.299 vs 0.307). Batch 8 and up: the driver's choice per kernel, which leaves the
// kernels with little shared memory more L1 (batch 32: 3.15-3.18 vs 3.26-3.27 ms).
// Batches 2-7 were not measured; they take the batch-1 choice.
int engine_carveout(const engine::Plan& p) { return p.batch >= 8 ? -1 : 100; }

namespace {

// Sets the launch carveout for this thread while it lives (launches and graph capture),
// then restores the one before (scopes nest: profile_ops runs a context's launch()).
struct CarveoutScope {
    explicit CarveoutScope(const engine::Plan& p) : prev(cuda::set_launch_carveout(engine_carveout(p))) {}
    ~CarveoutScope() { cuda::set_launch_carveout(prev); }
    int prev;
    CarveoutScope(const CarveoutScope&) = delete;
    CarveoutScope& operator=(const CarveoutScope&) = delete;
};

// Fewer distinct kernels: a layer whose timed candidates include a tactic that more
// layers use, within YOLOC_TACTIC_SHARE (default 3%) of its fastest, takes that tactic.
// Each distinct kernel is code the driver loads on first use (device memory in 2 MiB
// steps) and a cold instruction cache in the graph, which the per-layer timing (the
// same kernel launched back to back) does not see. Repeats until nothing changes; the
// timing cache then holds the shared choices, so a cached rebuild makes the same engine.
void share_tactics(BuildResult& r, const std::vector<std::string>& keys,
                   std::map<std::string, std::pair<int, double>>& cache) {
    // Both limits are for memory-tight small-batch engines (the batch-1 device memory
    // target); from batch 5 on they are off by default: the kernel code is under 1% of
    // such an engine's memory, and each layer's fastest tactic gave batch 32 3.205 vs
    // 3.26 ms on the H100.
    const bool small = r.file.plan.batch <= 4;
    double tol = small ? 0.03 : 0.0;
    if (const char* v = env_get("YOLOC_TACTIC_SHARE")) tol = std::max(0.0, std::atof(v));
    for (bool changed = tol > 0; changed;) {
        changed = false;
        std::map<int, int> uses;
        for (const auto& tc : r.tactics) ++uses[tc.tactic];
        for (size_t j = 0; j < r.tactics.size(); ++j) {
            TacticChoice& tc = r.tactics[j];
            double fastest = INFINITY;
            for (const auto& t : tc.tried) fastest = std::min(fastest, t.second);
            int pick = tc.tactic;
            double pick_us = tc.best_us;
            for (const auto& t : tc.tried)
                if (t.second <= fastest * (1 + tol) && uses[t.first] > uses[pick]) {
                    pick = t.first;
                    pick_us = t.second;
                }
            if (pick == tc.tactic) continue;
            --uses[tc.tactic];
            ++uses[pick];
            tc.tactic = pick;
            tc.best_us = pick_us;
            r.file.plan.ops[size_t(tc.op)].tactic = pick;
            cache[keys[j]] = {pick, pick_us};
            changed = true;
        }
    }
    // Then at most YOLOC_MAX_CONV_KERNELS distinct conv kernels (default 8 up to batch 4,
    // no cap above; 0: no cap), chosen by engine::cap_kernels. The cap was set when 9 to 12
    // distinct kernels took a YOLOv8n FP16 engine from 18.87 to 20.97 MB on the H100 (the
    // kernels' code loads in 2 MiB steps); in the latest ablation (docs/BENCHMARKS.md) each
    // layer's fastest tactic, 18 kernels, stayed at 18.87 MB and ran the same (0.2993 / 0.3025
    // vs 0.3039 / 0.3058 ms), so the cap now guards the batch-1 memory target rather than
    // buying speed. A layer that repeats an earlier layer's shape (timing-cache hit in this
    // build) has that layer's candidates.
    int cap = small ? 8 : 0;
    if (const char* v = env_get("YOLOC_MAX_CONV_KERNELS")) cap = std::max(0, std::atoi(v));
    if (cap <= 0) return;
    std::vector<engine::LayerTactics> layers(r.tactics.size());
    std::map<std::string, size_t> first;  // key -> the layer that was timed for it
    for (size_t j = 0; j < r.tactics.size(); ++j)
        if (!r.tactics[j].tried.empty() && !first.count(keys[j])) first[keys[j]] = j;
    for (size_t j = 0; j < r.tactics.size(); ++j) {
        layers[j].current = r.tactics[j].tactic;
        auto f = first.find(keys[j]);
        if (f != first.end()) layers[j].tried = r.tactics[f->second].tried;
    }
    const std::vector<int> picks = engine::cap_kernels(layers, cap);
    for (size_t j = 0; j < r.tactics.size(); ++j) {
        TacticChoice& tc = r.tactics[j];
        if (picks[j] == tc.tactic) continue;
        tc.tactic = picks[j];
        for (const auto& t : layers[j].tried)
            if (t.first == picks[j]) tc.best_us = t.second;
        r.file.plan.ops[size_t(tc.op)].tactic = tc.tactic;
        cache[keys[j]] = {tc.tactic, tc.best_us};
    }
}

// Op i's fp16 weights in cuDNN's layout in *dev (a new allocation replacing the last).
void upload_cudnn_weights(const engine::Plan& p, size_t i, void** dev) {
    std::vector<uint16_t> h(size_t(p.ops[i].w_count));
    cudnn_weights_half(p, p.ops[i], h.data());
    if (*dev) cudaFree(*dev);
    *dev = nullptr;
    YOLOC_CUDA(cudaMalloc(dev, h.size() * 2));
    YOLOC_CUDA(cudaMemcpy(*dev, h.data(), h.size() * 2, cudaMemcpyHostToDevice));
}

// Runs one fp16 conv and returns its output view (pixels x channels) as floats.
std::vector<float> run_conv_output(const cuda::ConvArgs& c, cudaStream_t s) {
    const size_t rows = size_t(c.n) * c.oh * c.ow;
    std::vector<uint16_t> h(rows * size_t(c.m));
    cuda::conv(c, true, s);
    YOLOC_CUDA(cudaGetLastError());
    YOLOC_CUDA(cudaMemcpy2DAsync(h.data(), size_t(c.m) * 2, c.y, size_t(c.ys) * 2, size_t(c.m) * 2, rows,
                                 cudaMemcpyDeviceToHost, s));
    YOLOC_CUDA(cudaStreamSynchronize(s));
    std::vector<float> f(h.size());
    for (size_t k = 0; k < h.size(); ++k) f[k] = half_to_float(h[k]);
    return f;
}

// Max |a - b| / (1 + |b|); NaN counts as a mismatch.
double max_rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
    double e = a.size() == b.size() ? 0.0 : INFINITY;
    for (size_t k = 0; k < a.size() && k < b.size(); ++k) {
        const double d = std::fabs(double(a[k]) - double(b[k])) / (1.0 + std::fabs(double(b[k])));
        if (!(d <= e)) e = std::isnan(d) ? INFINITY : d;
    }
    return e;
}

// Chooses every conv's tactic by timing the candidates on the real layer shapes here,
// on an arena laid out as the engine's (TensorRT-style tactic selection).
void tune_tactics(BuildResult& r, const BuildOptions& opts) {
    engine::Plan& p = r.file.plan;
    const CarveoutScope carveout(p);  // time the layers as the engine will run them
    const bool fp16 = p.precision != engine::Precision::FP32;
    // Timing cache: "key<TAB>tactic<TAB>us" lines for this device.
    std::map<std::string, std::pair<int, double>> cache;
    const std::string dev = r.file.info.device.gpu_name + " cc" + std::to_string(r.file.info.device.cc_major) + "." +
                            std::to_string(r.file.info.device.cc_minor);
    if (!opts.timing_cache.empty()) {
        std::ifstream in(opts.timing_cache);
        std::string line;
        bool same_device = false;
        while (std::getline(in, line)) {
            if (line.rfind("# device ", 0) == 0) {
                same_device = line.substr(9) == dev;
                continue;
            }
            if (!same_device || line.empty() || line[0] == '#') continue;
            const size_t t1 = line.find('\t'), t2 = line.rfind('\t');
            if (t1 == std::string::npos || t2 == t1) continue;
            cache[line.substr(0, t1)] = {std::atoi(line.substr(t1 + 1, t2 - t1 - 1).c_str()),
                                         std::atof(line.substr(t2 + 1).c_str())};
        }
    }
    std::vector<std::string> keys;  // per r.tactics entry: its timing-cache key
    auto eng = make_engine(r.file, "engine being tuned");
    const Engine::Impl& E = eng->impl();
    void* arena = nullptr;
    YOLOC_CUDA(cudaMalloc(&arena, size_t(std::max<int64_t>(E.memory.arena_bytes, 256))));
    if (fp16) {
        // Random activations in [-1, 1], not zeros: cuDNN candidates are checked against
        // our kernels on this data (below), and a zero input would hide a wrong residual.
        std::vector<uint16_t> h(size_t(std::max<int64_t>(E.memory.arena_bytes, 256) / 2));
        uint32_t st = 12345u;
        for (auto& v : h) {
            st = st * 1664525u + 1013904223u;
            v = float_to_half(float(st >> 8) * (2.f / 16777216.f) - 1.f);
        }
        YOLOC_CUDA(cudaMemcpy(arena, h.data(), h.size() * 2, cudaMemcpyHostToDevice));
    } else {
        YOLOC_CUDA(cudaMemset(arena, 0, size_t(std::max<int64_t>(E.memory.arena_bytes, 256))));
    }
    void* dnn_w = nullptr;  // one layer's weights in cuDNN's layout, for its cuDNN candidates
    cudaStream_t st = nullptr;
    YOLOC_CUDA(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    cuda::tensor_cores_available();
    try {
        for (size_t i = 0; i < p.ops.size(); ++i) {
            if (p.ops[i].kind != engine::OpKind::Conv) continue;
            cuda::OpArgs a = cuda::make_op_args(p, i, static_cast<uint8_t*>(arena), E.memory.offsets, E.w_dev[i],
                                                E.b_dev[i], E.s_dev[i], E.y_dev[i]);
            TacticChoice tc;
            tc.op = int(i);
            tc.name = p.ops[i].name;
            tc.shape = conv_shape(p, p.ops[i]);
            const std::string key = cache_key(p, p.ops[i], a.conv);
            // A one-launch probe first: slow candidates (the old kernels on big layers,
            // batch 32) are timed with fewer launches, hopeless ones not at all.
            std::map<int, std::shared_ptr<cuda::DnnPlan>> dnn;  // cuDNN candidates' plans
            auto with_tactic = [&](int t) {
                cuda::ConvArgs c = a.conv;
                c.kernel = t;
                if (is_cudnn_tactic(t)) {
                    auto it = dnn.find(t);
                    c.dnn = it == dnn.end() ? nullptr : it->second.get();
                    c.wt = dnn_w;
                }
                return c;
            };
            auto time_tactic = [&](int t, double bound_us) {
                const cuda::ConvArgs c = with_tactic(t);
                if (is_cudnn_tactic(t) && !c.dnn) return double(INFINITY);
                auto fn = [&](cudaStream_t s) { cuda::conv(c, fp16, s); };
                const double probe = time_in_graph(st, fn, 1, 1);
                if (!std::isfinite(probe) || probe > 4 * bound_us + 20) return probe;
                const int per = int(std::max(1.0, std::min(20.0, 2000.0 / std::max(probe, 1.0))));
                return time_in_graph(st, fn, per, probe > 500 ? 3 : 7);
            };
            auto hit = cache.find(key);
            if (hit != cache.end()) {
                tc.tactic = hit->second.first;
                tc.best_us = hit->second.second;
                tc.cached = true;
            } else {
                std::vector<int> cands = {a.conv.qscale ? int(cuda::kConvInt8Direct) : int(cuda::kConvDirect)};
                if (a.conv.nchw) {
                    // The stem reading the input: its one-pixel-per-thread kernel (kConvDirect
                    // here), and the shared-memory tile and four- and two-pixel kernels where
                    // the shape allows.
                    if (cuda::stem_tile_supported(a.conv)) {
                        cands.push_back(cuda::kConvStemTile);
                        cands.push_back(cuda::kConvStemQuad);
                        cands.push_back(cuda::kConvStemPair);
                    }
                } else if (a.conv.qscale) {
                    for (int c = 0; c < cuda::int8_config_count(); ++c)
                        if (cuda::int8_mma_supported(a.conv, c)) cands.push_back(cuda::kConvInt8MmaBase + c);
                    for (int c = 0; c < cuda::int8in_config_count(); ++c)
                        if (cuda::int8in_mma_supported(a.conv, c)) cands.push_back(cuda::kConvInt8InMmaBase + c);
                    for (int c = 0; c < cuda::int8halo_config_count(); ++c)
                        if (cuda::int8halo_supported(a.conv, c)) cands.push_back(cuda::kConvInt8HaloBase + c);
                } else if (a.conv.group == 1) {
                    cands.push_back(cuda::kConvSimtGemm);
                }
                if (fp16 && !a.conv.qscale && !a.conv.nchw && a.conv.group == 1 && cuda::device_cc_major() >= 7)
                    cands.push_back(cuda::kConvWmma);
                if (fp16 && !a.conv.qscale && !a.conv.nchw) {
                    for (int c = 0; c < cuda::mma_config_count(); ++c)
                        if (cuda::mma_supported(a.conv, c)) cands.push_back(cuda::kConvMmaBase + c);
                    for (int c = 0; c < cuda::halo_config_count(); ++c)
                        if (cuda::halo_supported(a.conv, c)) cands.push_back(cuda::kConvHaloBase + c);
                    // cuDNN: the first configurations of its heuristic list that run here
                    // without workspace (YOLOC_CUDNN_CANDIDATES, default 4; YOLOC_CUDNN=0: none).
                    // Below batch 8 none by default: an engine with cuDNN layers takes about
                    // 23 MB more device memory (cuDNN's handle and kernels: H100, batch 1,
                    // 41.94 vs 18.87 MB in bench/gpu_ablation.sh; docs/BENCHMARKS.md), above the
                    // 20 MB asked at batch 1, for 20% less time (0.2436 vs 0.3039 ms).
                    int ndnn = p.batch >= 8 ? 4 : 0;
                    if (const char* v = env_get("YOLOC_CUDNN_CANDIDATES")) ndnn = std::max(0, std::atoi(v));
                    const auto dc = cuda::cudnn_conv_candidates(a.conv, ndnn);
                    if (!dc.empty()) {
                        upload_cudnn_weights(p, i, &dnn_w);
                        // Each candidate must compute what our heuristic kernel computes on
                        // these activations: a configuration that does not is dropped.
                        const std::vector<float> want = run_conv_output(with_tactic(cuda::kConvAuto), st);
                        for (const auto& d : dc) {
                            const int t = cuda::kConvCudnnBase + d.index;
                            dnn[t] = d.plan;
                            // Twice: a configuration that reads what it should not differs
                            // between runs.
                            const double err = std::max(max_rel_diff(run_conv_output(with_tactic(t), st), want),
                                                        max_rel_diff(run_conv_output(with_tactic(t), st), want));
                            if (err > 2e-2) {
                                tc.rejected.push_back({t, err});
                                dnn.erase(t);
                                continue;
                            }
                            cands.push_back(t);
                        }
                    }
                }
                tc.best_us = INFINITY;
                for (int t : cands) {
                    const double us = time_tactic(t, tc.best_us);
                    tc.tried.push_back({t, us});
                    if (us < tc.best_us) {
                        tc.best_us = us;
                        tc.tactic = t;
                    }
                }
                YOLOC_CHECK(std::isfinite(tc.best_us), "no conv kernel could run ", tc.name);
                cache[key] = {tc.tactic, tc.best_us};
            }
            tc.auto_us = time_tactic(cuda::kConvAuto, INFINITY);
            p.ops[i].tactic = tc.tactic;
            r.tactics.push_back(tc);
            keys.push_back(key);
        }
        share_tactics(r, keys, cache);
    } catch (...) {
        cudaStreamDestroy(st);
        cudaFree(arena);
        if (dnn_w) cudaFree(dnn_w);
        throw;
    }
    YOLOC_CUDA(cudaStreamSynchronize(st));
    cudaStreamDestroy(st);
    cudaFree(arena);
    if (dnn_w) cudaFree(dnn_w);
    if (!opts.timing_cache.empty()) {
        // Rewritten whole (entries of other devices in the file are dropped), through a
        // temporary file and a rename: an interrupted build leaves the old cache or the new one.
        std::ostringstream out;
        out << "# yoloc timing cache: layer key, tactic id, microseconds per launch\n# device " << dev << "\n";
        for (const auto& kv : cache) out << kv.first << "\t" << kv.second.first << "\t" << kv.second.second << "\n";
        write_file_atomic(opts.timing_cache, out.str());
    }
}

}  // namespace

BuildResult build_engine(const Model& model, const BuildOptions& opts) {
    BuildResult r;
    r.file.plan = engine::build_plan(model, opts.plan);
    // Experiments (bench/gpu_ablation.sh): YOLOC_ARENA=concurrent keeps every independent
    // branch in its own bytes, whatever the arena costs; =sequential shares in op order.
    engine::Plan::MemoryMode arena = engine::Plan::MemoryMode::Bounded;
    if (const char* v = env_get("YOLOC_ARENA")) {
        const std::string a = v;
        if (a == "concurrent") arena = engine::Plan::MemoryMode::Concurrent;
        else if (a == "sequential") arena = engine::Plan::MemoryMode::Sequential;
        else YOLOC_CHECK(a == "bounded", "YOLOC_ARENA=", a, ": expected bounded, concurrent or sequential");
    }
    r.memory = engine::plan_memory_within(r.file.plan, opts.memory_budget, arena);
    r.file.info.yoloc_version = engine::yoloc_version();
    r.file.info.device = current_device();
    r.file.info.source_model = opts.source;
    r.file.info.created = today();
    if (opts.tune) tune_tactics(r, opts);
    // The cuDNN version is part of the engine's identity only when a layer runs on cuDNN.
    bool dnn = false;
    for (const auto& op : r.file.plan.ops) dnn = dnn || (op.kind == engine::OpKind::Conv && is_cudnn_tactic(op.tactic));
    r.file.info.device.cudnn = dnn ? cuda::cudnn_version() : 0;
    return r;
}

// ---------------------------------------------------------------- Context

struct Context::Impl {
    std::shared_ptr<const Engine> engine;
    ContextOptions opts;
    cudaStream_t stream = nullptr;
    void* arena = nullptr;
    bool own_arena = false;                   // false: the engine's built-in arena, lent to this context
    float* host_in = nullptr;                 // pinned
    std::vector<float*> host_out;             // pinned
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    cudaEvent_t ev0 = nullptr, ev1 = nullptr;
    float last_ms = 0;
    // Extra streams for independent branches (the Detect heads, the neck beside the
    // head of a finished level); captured into the same graph as a DAG.
    std::vector<cudaStream_t> side;
    std::vector<cudaEvent_t> op_ev, join_ev;
    cudaEvent_t fork_ev = nullptr;
    // With side streams and stream priorities: the critical chain of the op DAG
    // (engine::critical_chain) runs on `stream`, created with the highest priority; every
    // other op on the side streams, created with the lowest (YOLOC_PRIORITY=0: off).
    std::vector<char> crit;
    std::vector<int> on;  // stream of each op (assign_streams)

    ~Impl() {
        if (stream) cudaStreamSynchronize(stream);  // nothing may still use the arena when it is handed back
        if (exec) cudaGraphExecDestroy(exec);
        if (graph) cudaGraphDestroy(graph);
        for (cudaEvent_t e : op_ev)
            if (e) cudaEventDestroy(e);
        for (cudaEvent_t e : join_ev) cudaEventDestroy(e);
        if (fork_ev) cudaEventDestroy(fork_ev);
        for (cudaStream_t t : side) cudaStreamDestroy(t);
        if (ev0) cudaEventDestroy(ev0);
        if (ev1) cudaEventDestroy(ev1);
        if (stream) cudaStreamDestroy(stream);
        if (arena && own_arena) cudaFree(arena);
        if (arena && !own_arena) engine->impl().arena_lent = false;
        if (host_in) cudaFreeHost(host_in);
        for (float* p : host_out)
            if (p) cudaFreeHost(p);
    }

    const engine::Plan& plan() const { return engine->impl().file.plan; }
    uint8_t* base(int32_t buf) const {
        return static_cast<uint8_t*>(arena) + engine->impl().memory.offsets[size_t(buf)];
    }

    cuda::OpArgs op_args(size_t i) const {
        const engine::Plan& p = plan();
        const auto& E = engine->impl();
        cuda::OpArgs a = cuda::make_op_args(p, i, static_cast<uint8_t*>(arena), E.memory.offsets, E.w_dev[i], E.b_dev[i],
                                            E.s_dev[i], E.y_dev[i], static_cast<const uint8_t*>(E.weights), &E.resident);
        // A forced kernel (experiments) cannot replace cuDNN: its weights are in cuDNN's layout.
        a.conv.kernel = opts.conv_kernel != 0 && !is_cudnn_tactic(p.ops[i].tactic) ? opts.conv_kernel : p.ops[i].tactic;
        a.conv.dnn = E.dnn[i].get();
        return a;
    }

    // One op as the engine runs it.
    void launch_planned(size_t i, bool fp16, cudaStream_t s) {
        cuda::OpArgs a = op_args(i);
        launch_op(a, fp16, s);
    }

    // Launches every op (captured into the CUDA graph once). Ops go on `stream` and,
    // where the op DAG allows, on side streams joined by events, so that independent
    // branches overlap; everything is joined back into `stream` at the end.
    void enqueue() {
        const engine::Plan& p = plan();
        const bool fp16 = p.precision != engine::Precision::FP32;
        const auto& E = engine->impl();
        const size_t n = p.ops.size();
        if (side.empty()) {
            for (size_t i = 0; i < n; ++i) launch_planned(i, fp16, stream);
            YOLOC_CUDA(cudaGetLastError());
            return;
        }
        const char* chain_only = crit.empty() ? nullptr : env_get("YOLOC_DEBUG_CHAIN_ONLY");
        if (chain_only) {
            // Diagnostic (wrong outputs): the critical chain alone, to time it without
            // the branches beside it; a number N > 1 keeps its first N ops only, so that
            // differences between N and N - 1 give each chain op's time inside the graph.
            const long keep = std::atol(chain_only);
            long k = 0;
            for (size_t i = 0; i < n; ++i)
                if (crit[i] && (keep <= 1 || k++ < keep)) launch_planned(i, fp16, stream);
            YOLOC_CUDA(cudaGetLastError());
            return;
        }
        auto st = [&](int k) { return k == 0 ? stream : side[size_t(k - 1)]; };
        YOLOC_CUDA(cudaEventRecord(fork_ev, stream));
        for (cudaStream_t t : side) YOLOC_CUDA(cudaStreamWaitEvent(t, fork_ev, 0));
        for (size_t i = 0; i < n; ++i) {
            const int k = on[i];
            for (int d : E.dag.deps[i])
                if (on[size_t(d)] != k) YOLOC_CUDA(cudaStreamWaitEvent(st(k), op_ev[size_t(d)], 0));
            launch_planned(i, fp16, st(k));
            if (op_ev[i]) YOLOC_CUDA(cudaEventRecord(op_ev[i], st(k)));
        }
        for (size_t k = 1; k <= side.size(); ++k) {
            YOLOC_CUDA(cudaEventRecord(join_ev[k - 1], st(int(k))));
            YOLOC_CUDA(cudaStreamWaitEvent(stream, join_ev[k - 1], 0));
        }
        YOLOC_CUDA(cudaGetLastError());
    }

    // Which stream each op runs on (0: `stream`, k: side[k-1]), fixed when the context is
    // made: an op follows its predecessor's stream when it is that stream's latest op,
    // else takes a stream whose latest op is one of its ancestors, else the one idle
    // longest. With priorities the critical chain owns stream 0 (it is a path of the DAG,
    // so stream order adds no false dependency) and the other ops use streams 1.. only.
    void assign_streams() {
        const auto& E = engine->impl();
        const size_t n = plan().ops.size();
        const int ns = 1 + int(side.size());
        std::vector<int> last(size_t(ns), -1);
        on.assign(n, 0);
        const bool prio = !crit.empty();
        for (size_t i = 0; i < n; ++i) {
            const int k0 = prio ? 1 : 0;
            int k = prio && crit[i] ? 0 : -1;
            for (int d : E.dag.deps[i])
                if (k < 0 && on[size_t(d)] >= k0 && last[size_t(on[size_t(d)])] == d) {
                    k = on[size_t(d)];
                    break;
                }
            for (int kk = k0; kk < ns && k < 0; ++kk)
                if (last[size_t(kk)] < 0 || E.dag.is_anc(i, last[size_t(kk)])) k = kk;
            if (k < 0) {
                k = k0;
                for (int kk = k0 + 1; kk < ns; ++kk)
                    if (last[size_t(kk)] < last[size_t(k)]) k = kk;
            }
            on[i] = k;
            last[size_t(k)] = int(i);
        }
    }

    void launch() {
        const CarveoutScope carveout(plan());  // baked into the graph's kernel nodes at capture
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
            mem_trace("launch: captured");
#if CUDART_VERSION >= 12000
            // Node priorities are copied from the capturing streams' priorities.
            YOLOC_CUDA(cudaGraphInstantiate(&exec, graph, crit.empty() ? 0 : cudaGraphInstantiateFlagUseNodePriority));
#else
            YOLOC_CUDA(cudaGraphInstantiate(&exec, graph, nullptr, nullptr, 0));
#endif
            mem_trace("launch: instantiated");
            if (mem_tracing()) {
                YOLOC_CUDA(cudaGraphLaunch(exec, stream));
                YOLOC_CUDA(cudaStreamSynchronize(stream));
                mem_trace("launch: first replay done");
                return;
            }
        }
        YOLOC_CUDA(cudaGraphLaunch(exec, stream));
    }
};

void context_init(Context::Impl* impl_, std::shared_ptr<const Engine> engine, const ContextOptions& opts) {
    YOLOC_CHECK(engine != nullptr, "Context needs an engine");
    impl_->engine = std::move(engine);
    impl_->opts = opts;
    // Experiments: force one conv kernel everywhere (see cuda::ConvTactic).
    if (const char* k = env_get("YOLOC_CONV_KERNEL"))
        if (impl_->opts.conv_kernel == 0) impl_->opts.conv_kernel = std::atoi(k);
    const auto& E = impl_->engine->impl();
    YOLOC_CUDA(cudaSetDevice(E.device));
    cuda::tensor_cores_available();  // cache the answer before any graph capture
    mem_trace("context: device queries");
    // Side streams for the op DAG (YOLOC_GRAPH_STREAMS, default 4 in all; 1 = one stream).
    int streams = 4;
    if (const char* v = env_get("YOLOC_GRAPH_STREAMS")) streams = std::max(1, std::min(8, std::atoi(v)));
    int prio_least = 0, prio_greatest = 0;
    bool prio = false;
#if CUDART_VERSION >= 12000
    if (streams > 1 && cudaDeviceGetStreamPriorityRange(&prio_least, &prio_greatest) == cudaSuccess &&
        prio_greatest < prio_least) {
        const char* v = env_get("YOLOC_PRIORITY");
        prio = !(v && v[0] == '0');
    }
#endif
    if (prio)
        YOLOC_CUDA(cudaStreamCreateWithPriority(&impl_->stream, cudaStreamNonBlocking, prio_greatest));
    else
        YOLOC_CUDA(cudaStreamCreateWithFlags(&impl_->stream, cudaStreamNonBlocking));
    YOLOC_CUDA(cudaEventCreate(&impl_->ev0));
    YOLOC_CUDA(cudaEventCreate(&impl_->ev1));
    mem_trace("context: stream, events");
    if (!E.arena_lent.exchange(true)) {
        impl_->arena = static_cast<uint8_t*>(E.weights) + E.arena_off;
    } else {
        YOLOC_CUDA(cudaMalloc(&impl_->arena, size_t(std::max<int64_t>(E.memory.arena_bytes, 256))));
        impl_->own_arena = true;
    }
    if (streams > 1) {
        if (prio) impl_->crit = engine::critical_chain(E.file.plan, E.dag);
        for (int k = 1; k < streams; ++k) {
            cudaStream_t t = nullptr;
            if (prio)
                YOLOC_CUDA(cudaStreamCreateWithPriority(&t, cudaStreamNonBlocking, prio_least));
            else
                YOLOC_CUDA(cudaStreamCreateWithFlags(&t, cudaStreamNonBlocking));
            impl_->side.push_back(t);
            cudaEvent_t e = nullptr;
            YOLOC_CUDA(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
            impl_->join_ev.push_back(e);
        }
        YOLOC_CUDA(cudaEventCreateWithFlags(&impl_->fork_ev, cudaEventDisableTiming));
        // Events only for ops that another stream waits for (a dozen, not one per op).
        impl_->assign_streams();
        const size_t n = E.file.plan.ops.size();
        impl_->op_ev.assign(n, nullptr);
        for (size_t i = 0; i < n; ++i)
            for (int d : E.dag.deps[i])
                if (impl_->on[size_t(d)] != impl_->on[i] && !impl_->op_ev[size_t(d)])
                    YOLOC_CUDA(cudaEventCreateWithFlags(&impl_->op_ev[size_t(d)], cudaEventDisableTiming));
    }
    const engine::Plan& p = E.file.plan;
    YOLOC_CUDA(cudaHostAlloc(reinterpret_cast<void**>(&impl_->host_in),
                             size_t(p.buffers[size_t(p.input_buf)].bytes()), cudaHostAllocDefault));
    for (int32_t o : p.output_bufs) {
        float* h = nullptr;
        YOLOC_CUDA(cudaHostAlloc(reinterpret_cast<void**>(&h), size_t(p.buffers[size_t(o)].bytes()),
                                 cudaHostAllocDefault));
        impl_->host_out.push_back(h);
    }
    mem_trace("context: side streams, pinned");
}

Context::Context(std::shared_ptr<const Engine> engine, const ContextOptions& opts) : impl_(new Impl) {
    context_init(impl_.get(), std::move(engine), opts);
}

Context::~Context() = default;

void Context::infer(const float* input, std::vector<std::vector<float>>& outputs) {
    Impl& c = *impl_;
    const engine::Plan& p = c.plan();
    const size_t in_bytes = size_t(p.buffers[size_t(p.input_buf)].bytes());
    std::memcpy(c.host_in, input, in_bytes);
    YOLOC_CUDA(cudaMemcpyAsync(c.base(p.input_buf), c.host_in, in_bytes, cudaMemcpyHostToDevice, c.stream));
    c.launch();
    for (size_t i = 0; i < p.output_bufs.size(); ++i) {
        const size_t b = size_t(p.buffers[size_t(p.output_bufs[i])].bytes());
        YOLOC_CUDA(cudaMemcpyAsync(c.host_out[i], c.base(p.output_bufs[i]), b, cudaMemcpyDeviceToHost, c.stream));
    }
    YOLOC_CUDA(cudaStreamSynchronize(c.stream));
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

std::vector<OpProfile> profile_ops(const std::shared_ptr<const Engine>& engine, int reps) {
    const auto& E = engine->impl();
    const engine::Plan& p = E.file.plan;
    const bool fp16 = p.precision != engine::Precision::FP32;
    const CarveoutScope carveout(p);
    Context::Impl c;
    context_init(&c, engine, ContextOptions());
    c.launch();  // a real forward first: the arena holds real activations
    YOLOC_CUDA(cudaStreamSynchronize(c.stream));
    const std::vector<char> chain = engine::critical_chain(p, E.dag);
    std::vector<OpProfile> out;
    for (size_t i = 0; i < p.ops.size(); ++i) {
        const auto& op = p.ops[i];
        cuda::OpArgs a = c.op_args(i);
        OpProfile r;
        r.op = int(i);
        r.chain = i < chain.size() && chain[i];
        r.kind = engine::op_kind_name(op.kind);
        r.name = op.name;
        if (op.kind == engine::OpKind::Conv) r.detail = conv_shape(p, op) + " " + tactic_name(a.conv.kernel);
        if (op.kind == engine::OpKind::Generic) r.detail = engine::generic_kind_name(engine::GenericKind(op.gop));
        r.us = time_in_graph(c.stream, [&](cudaStream_t s) { c.launch_planned(i, fp16, s); }, 20, std::max(1, reps));
        out.push_back(r);
    }
    return out;
}

}  // namespace gpu
}  // namespace yoloc

// ---------------------------------------------------------------- Context: low-level access
// (used by the GPU pre/post-processing in gpu_detect.cpp and by the benchmarks)

namespace yoloc {
namespace gpu {

void* Context::device_input() { return impl_->base(impl_->plan().input_buf); }

const float* Context::device_output(int i) const {
    const engine::Plan& p = impl_->plan();
    YOLOC_CHECK(i >= 0 && size_t(i) < p.output_bufs.size(), "engine output ", i, " does not exist (",
                p.output_bufs.size(), " outputs)");
    return reinterpret_cast<const float*>(impl_->base(p.output_bufs[size_t(i)]));
}

void* Context::stream_handle() const { return impl_->stream; }

void Context::enqueue_async() { impl_->launch(); }

const EngineSummary& Context::summary() const { return impl_->engine->summary(); }

}  // namespace gpu
}  // namespace yoloc
