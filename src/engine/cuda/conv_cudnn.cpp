#include "engine/cuda/conv_cudnn.h"

#include <cstdint>
#include <cstdlib>

#include "core/env.h"
#include "core/error.h"
#include "engine/cuda/conv_mma.h"

#if defined(YOLOC_HAVE_CUDNN)
#include <cudnn.h>
#if CUDNN_VERSION >= 8400
#define YOLOC_CUDNN_GRAPH 1
#endif
#endif

#ifdef YOLOC_CUDNN_GRAPH
#include <array>
#include <map>
#include <mutex>
// The execution plan's and operation graph's handle attributes are deprecated in cuDNN 9
// in favour of device-property descriptors, which cuDNN 8 (JetPack) does not have.
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#endif

namespace yoloc {
namespace cuda {

#ifdef YOLOC_CUDNN_GRAPH

namespace {

// One backend descriptor, destroyed with its owner.
struct Desc {
    cudnnBackendDescriptor_t d = nullptr;
    cudnnStatus_t status = CUDNN_STATUS_SUCCESS;  // the first failure, kept for the message
    explicit Desc(cudnnBackendDescriptorType_t t) { note(cudnnBackendCreateDescriptor(t, &d)); }
    ~Desc() {
        if (d) cudnnBackendDestroyDescriptor(d);
    }
    Desc(const Desc&) = delete;
    Desc& operator=(const Desc&) = delete;
    void note(cudnnStatus_t s) {
        if (status == CUDNN_STATUS_SUCCESS) status = s;
    }
    Desc& set(cudnnBackendAttributeName_t n, cudnnBackendAttributeType_t t, int64_t count, const void* v) {
        if (status == CUDNN_STATUS_SUCCESS) note(cudnnBackendSetAttribute(d, n, t, count, v));
        return *this;
    }
    Desc& set_desc(cudnnBackendAttributeName_t n, const Desc& o) {
        return set(n, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &o.d);
    }
    bool finalize() {
        if (status == CUDNN_STATUS_SUCCESS) note(cudnnBackendFinalize(d));
        return status == CUDNN_STATUS_SUCCESS;
    }
};
using DescP = std::unique_ptr<Desc>;

// One cuDNN handle per device for the whole process: plans are finalized with it and
// executed through it. Launches happen at graph capture and tactic timing only, under
// this mutex (a handle is not thread-safe, and its stream is set per launch).
std::mutex g_mu;
std::map<int, cudnnHandle_t>& handles() {
    static std::map<int, cudnnHandle_t> h;
    return h;
}
cudnnHandle_t handle_locked() {
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess) fail("cuDNN: no current CUDA device");
    auto& h = handles();
    auto it = h.find(dev);
    if (it != h.end()) return it->second;
    cudnnHandle_t hd = nullptr;
    const cudnnStatus_t s = cudnnCreate(&hd);
    if (s != CUDNN_STATUS_SUCCESS) fail("cuDNN: cannot create a handle on device ", dev, ": ", cudnnGetErrorString(s));
    h[dev] = hd;
    return hd;
}

enum Uid : int64_t { kX = 1, kW, kB, kY, kR, kConvOut, kBiasOut, kActOut };

}  // namespace

// A finalized plan (its graph's descriptors are kept alive by its owner: plan_owning).
struct DnnPlan {
    DescP plan;
    cudnnHandle_t handle = nullptr;
    bool res = false;
};

namespace {

DescP tensor(int64_t uid, cudnnDataType_t dt, std::array<int64_t, 4> dims, std::array<int64_t, 4> strides,
             bool is_virtual) {
    DescP t(new Desc(CUDNN_BACKEND_TENSOR_DESCRIPTOR));
    const int64_t align = 16;
    t->set(CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &dt)
        .set(CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dims.data())
        .set(CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, strides.data())
        .set(CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid)
        .set(CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &align)
        .set(CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &is_virtual);
    t->finalize();
    return t;
}

// NHWC dims/strides of an [n][h][w] view with `c` channels out of `cs`.
std::array<int64_t, 4> nhwc_strides(int64_t h, int64_t w, int64_t cs) { return {h * w * cs, 1, w * cs, cs}; }

// A pointwise op y = mode(x[, b]).
DescP pointwise(std::vector<DescP>& keep, cudnnPointwiseMode_t mode, const Desc& x, const Desc* b, const Desc& y) {
    DescP pw(new Desc(CUDNN_BACKEND_POINTWISE_DESCRIPTOR));
    const cudnnDataType_t prec = CUDNN_DATA_FLOAT;
    pw->set(CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode)
        .set(CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &prec);
    pw->finalize();
    DescP op(new Desc(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR));
    op->set_desc(CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, *pw)
        .set_desc(CUDNN_ATTR_OPERATION_POINTWISE_XDESC, x)
        .set_desc(CUDNN_ATTR_OPERATION_POINTWISE_YDESC, y);
    if (b) op->set_desc(CUDNN_ATTR_OPERATION_POINTWISE_BDESC, *b);
    op->finalize();
    keep.push_back(std::move(pw));
    return op;
}

// The layer's operation graph: conv -> + bias -> [SiLU] -> [+ residual] -> y (fp16),
// float in between. `keep` receives every descriptor; returns the graph (or a failed one).
Desc* build_graph(const ConvArgs& a, cudnnHandle_t h, std::vector<DescP>& keep) {
    const int64_t n = a.n, c = a.c, m = a.m;
    const std::array<int64_t, 4> ydims = {n, m, a.oh, a.ow}, ypacked = nhwc_strides(a.oh, a.ow, m);
    auto add = [&](DescP d) {
        keep.push_back(std::move(d));
        return keep.back().get();
    };
    Desc* x = add(tensor(kX, CUDNN_DATA_HALF, {n, c, a.h, a.w}, nhwc_strides(a.h, a.w, a.xs), false));
    Desc* w = add(tensor(kW, CUDNN_DATA_HALF, {m, c, a.kh, a.kw}, {int64_t(a.kh) * a.kw * c, 1, int64_t(a.kw) * c, c}, false));
    Desc* b = add(tensor(kB, CUDNN_DATA_FLOAT, {1, m, 1, 1}, {m, 1, m, m}, false));
    Desc* y = add(tensor(kY, CUDNN_DATA_HALF, ydims, nhwc_strides(a.oh, a.ow, a.ys), false));
    Desc* conv_out = add(tensor(kConvOut, CUDNN_DATA_FLOAT, ydims, ypacked, true));
    const bool res = a.res != nullptr;
    Desc* bias_out = (a.silu || res) ? add(tensor(kBiasOut, CUDNN_DATA_FLOAT, ydims, ypacked, true)) : y;
    Desc* act_out = a.silu && res ? add(tensor(kActOut, CUDNN_DATA_FLOAT, ydims, ypacked, true)) : y;
    Desc* r = res ? add(tensor(kR, CUDNN_DATA_HALF, ydims, nhwc_strides(a.oh, a.ow, a.rs), false)) : nullptr;

    Desc* cd = add(DescP(new Desc(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR)));
    const cudnnDataType_t comp = CUDNN_DATA_FLOAT;
    const cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
    const int64_t dims = 2, dil[2] = {1, 1}, str[2] = {a.sh, a.sw}, pad[2] = {a.ph, a.pw};
    cd->set(CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &comp)
        .set(CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, 1, &mode)
        .set(CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, CUDNN_TYPE_INT64, 1, &dims)
        .set(CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_TYPE_INT64, 2, dil)
        .set(CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64, 2, str)
        .set(CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64, 2, pad)
        .set(CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, CUDNN_TYPE_INT64, 2, pad);
    cd->finalize();

    Desc* conv = add(DescP(new Desc(CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR)));
    const float alpha = 1.f, beta = 0.f;
    conv->set_desc(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, *x)
        .set_desc(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, *w)
        .set_desc(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y, *conv_out)
        .set_desc(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC, *cd)
        .set(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, CUDNN_TYPE_FLOAT, 1, &alpha)
        .set(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA, CUDNN_TYPE_FLOAT, 1, &beta);
    conv->finalize();
    std::vector<cudnnBackendDescriptor_t> ops = {conv->d};
    ops.push_back(add(pointwise(keep, CUDNN_POINTWISE_ADD, *conv_out, b, *bias_out))->d);
    // SiLU is x * sigmoid(x): cuDNN's swish with its default beta of 1.
    if (a.silu) ops.push_back(add(pointwise(keep, CUDNN_POINTWISE_SWISH_FWD, *bias_out, nullptr, *act_out))->d);
    if (res) ops.push_back(add(pointwise(keep, CUDNN_POINTWISE_ADD, a.silu ? *act_out : *bias_out, r, *y))->d);

    Desc* g = add(DescP(new Desc(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR)));
    g->set(CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, int64_t(ops.size()), ops.data())
        .set(CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &h);
    for (const auto& k : keep) g->note(k->status);  // a failed piece fails the graph
    g->finalize();
    return g;
}

// The heuristic list (mode A) of a finalized graph: engine configurations, best first.
std::vector<DescP> heuristic_configs(const Desc& graph, std::vector<DescP>& keep) {
    std::vector<DescP> cfgs;
    DescP heur(new Desc(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR));
    const cudnnBackendHeurMode_t mode = CUDNN_HEUR_MODE_A;
    heur->set_desc(CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, graph).set(CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode);
    if (!heur->finalize()) return cfgs;
    int64_t count = 0;
    if (cudnnBackendGetAttribute(heur->d, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count,
                                 nullptr) != CUDNN_STATUS_SUCCESS || count <= 0)
        return cfgs;
    count = std::min<int64_t>(count, kConvCudnnMax);
    std::vector<cudnnBackendDescriptor_t> raw;
    for (int64_t i = 0; i < count; ++i) {
        cfgs.emplace_back(new Desc(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR));
        raw.push_back(cfgs.back()->d);
    }
    int64_t got = 0;
    if (cudnnBackendGetAttribute(heur->d, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, count, &got,
                                 raw.data()) != CUDNN_STATUS_SUCCESS)
        got = 0;
    cfgs.resize(size_t(std::max<int64_t>(0, std::min(got, count))));
    keep.push_back(std::move(heur));
    return cfgs;
}

// A finalized plan for configuration i, or null (with the reason in *why) when this
// GPU/cuDNN cannot finalize it or it needs workspace (the engine's memory plan has none
// for cuDNN).
DescP finalized_plan(cudnnHandle_t h, const Desc& cfg, cudnnStatus_t* why) {
    DescP plan(new Desc(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR));
    plan->set(CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &h).set_desc(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, cfg);
    if (!plan->finalize()) {
        *why = plan->status;
        return nullptr;
    }
    int64_t ws = -1, got = 0;
    if (cudnnBackendGetAttribute(plan->d, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1, &got, &ws) !=
            CUDNN_STATUS_SUCCESS || ws != 0) {
        *why = CUDNN_STATUS_NOT_SUPPORTED;
        return nullptr;
    }
    return plan;
}

// A layer's graph, its descriptors and its heuristic list; plans made from it keep it alive.
struct Graph {
    std::vector<DescP> keep;
    Desc* graph = nullptr;
    std::vector<DescP> cfgs;
};

std::shared_ptr<DnnPlan> plan_owning(DescP plan, cudnnHandle_t h, bool res, std::shared_ptr<Graph> g) {
    DnnPlan* p = new DnnPlan;
    p->plan = std::move(plan);
    p->handle = h;
    p->res = res;
    return std::shared_ptr<DnnPlan>(p, [g](DnnPlan* q) { delete q; });
}

std::shared_ptr<Graph> graph_for(const ConvArgs& a, cudnnHandle_t h) {
    auto g = std::make_shared<Graph>();
    g->graph = build_graph(a, h, g->keep);
    if (g->graph->status != CUDNN_STATUS_SUCCESS) return g;
    g->cfgs = heuristic_configs(*g->graph, g->keep);
    return g;
}

}  // namespace

int cudnn_version() { return int(cudnnGetVersion()); }

bool cudnn_conv_supported(const ConvArgs& a) {
    static const bool off = [] {
        const char* v = env_get("YOLOC_CUDNN");
        return v && v[0] == '0';
    }();
    auto al = [](const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; };
    // Not when the residual is the conv's own input (the same tensor twice in one cuDNN
    // graph): cuDNN 9.14's first configuration for a 64-channel 3x3 at 13x13 with x + conv(x)
    // gave wrong outputs on the H100 (max error 1.3 and 19 in two runs); yolov8n's residuals
    // are other tensors.
    return !off && !a.qscale && !a.nchw && a.group == 1 && a.c % 8 == 0 && a.m % 8 == 0 && a.xs % 8 == 0 &&
           a.ys % 8 == 0 && (!a.res || (a.rs % 8 == 0 && a.res != a.x)) && al(a.x) && al(a.y) && al(a.wt) &&
           (!a.res || al(a.res));
}

std::vector<DnnCandidate> cudnn_conv_candidates(const ConvArgs& a, int max) {
    std::vector<DnnCandidate> out;
    if (max <= 0 || !cudnn_conv_supported(a)) return out;  // no handle is made unless asked
    std::lock_guard<std::mutex> lock(g_mu);
    cudnnHandle_t h = handle_locked();
    std::shared_ptr<Graph> g = graph_for(a, h);
    for (size_t i = 0; i < g->cfgs.size() && int(out.size()) < max; ++i) {
        cudnnStatus_t why = CUDNN_STATUS_SUCCESS;
        DescP p = finalized_plan(h, *g->cfgs[i], &why);
        if (!p) continue;
        DnnCandidate c;
        c.index = int(i);
        c.plan = plan_owning(std::move(p), h, a.res != nullptr, g);
        Desc eng(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
        int64_t got = 0;
        if (cudnnBackendGetAttribute(g->cfgs[i]->d, CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &got,
                                     &eng.d) == CUDNN_STATUS_SUCCESS) {
            int64_t id = -1;
            if (cudnnBackendGetAttribute(eng.d, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &got, &id) ==
                CUDNN_STATUS_SUCCESS)
                c.engine_id = id;
            int64_t nnotes = 0;
            cudnnBackendBehaviorNote_t notes[CUDNN_BEHAVIOR_NOTE_TYPE_COUNT];
            if (cudnnBackendGetAttribute(eng.d, CUDNN_ATTR_ENGINE_BEHAVIOR_NOTE, CUDNN_TYPE_BEHAVIOR_NOTE,
                                         CUDNN_BEHAVIOR_NOTE_TYPE_COUNT, &nnotes, notes) == CUDNN_STATUS_SUCCESS)
                for (int64_t k = 0; k < nnotes; ++k)
                    if (notes[k] == CUDNN_BEHAVIOR_NOTE_RUNTIME_COMPILATION) c.runtime_compiled = true;
        }
        out.push_back(std::move(c));
    }
    return out;
}

std::shared_ptr<DnnPlan> cudnn_conv_plan(const ConvArgs& a, int index, const std::string& layer) {
    YOLOC_CHECK(cudnn_conv_supported(a), "layer ", layer,
                ": the engine runs it through cuDNN, which cannot take this layer here (YOLOC_CUDNN=0?); rebuild the "
                "engine");
    std::lock_guard<std::mutex> lock(g_mu);
    cudnnHandle_t h = handle_locked();
    std::shared_ptr<Graph> g = graph_for(a, h);
    if (g->graph->status != CUDNN_STATUS_SUCCESS)
        fail("layer ", layer, ": cuDNN refused its graph (", cudnnGetErrorString(g->graph->status),
             "); rebuild the engine on this device");
    if (index < 0 || size_t(index) >= g->cfgs.size())
        fail("layer ", layer, ": cuDNN configuration ", index, " is not in this device's list (", g->cfgs.size(),
             " configurations): rebuild the engine on this device");
    cudnnStatus_t why = CUDNN_STATUS_SUCCESS;
    DescP p = finalized_plan(h, *g->cfgs[size_t(index)], &why);
    if (!p)
        fail("layer ", layer, ": cuDNN configuration ", index, " cannot run here (", cudnnGetErrorString(why),
             "): rebuild the engine on this device");
    return plan_owning(std::move(p), h, a.res != nullptr, g);
}

void cudnn_conv_run(const DnnPlan* plan, const ConvArgs& a, cudaStream_t s) {
    YOLOC_CHECK(plan != nullptr, "a cuDNN conv tactic was launched without its plan");
    const DnnPlan& p = *plan;
    void* ptrs[5] = {const_cast<void*>(a.x), const_cast<void*>(a.wt), const_cast<float*>(a.bias), a.y,
                     const_cast<void*>(a.res)};
    int64_t uids[5] = {kX, kW, kB, kY, kR};
    const int64_t n = p.res ? 5 : 4;
    void* ws = nullptr;
    Desc vp(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
    vp.set(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, n, ptrs)
        .set(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, n, uids)
        .set(CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &ws);
    if (!vp.finalize()) fail("cuDNN: variant pack: ", cudnnGetErrorString(vp.status));
    std::lock_guard<std::mutex> lock(g_mu);
    cudnnStatus_t st = cudnnSetStream(p.handle, s);
    if (st == CUDNN_STATUS_SUCCESS) st = cudnnBackendExecute(p.handle, p.plan->d, vp.d);
    if (st != CUDNN_STATUS_SUCCESS) fail("cuDNN conv failed: ", cudnnGetErrorString(st));
}

#else  // no cuDNN graph API: no candidates, and an engine that needs one cannot load

struct DnnPlan {};

int cudnn_version() { return 0; }
bool cudnn_conv_supported(const ConvArgs&) { return false; }
std::vector<DnnCandidate> cudnn_conv_candidates(const ConvArgs&, int) { return {}; }
std::shared_ptr<DnnPlan> cudnn_conv_plan(const ConvArgs&, int, const std::string& layer) {
    fail("layer ", layer, ": the engine runs it through cuDNN, and this yoloc was built without cuDNN 8.4+: rebuild "
         "the engine with this yoloc");
}
void cudnn_conv_run(const DnnPlan*, const ConvArgs&, cudaStream_t) { fail("this yoloc was built without cuDNN"); }

#endif

}  // namespace cuda
}  // namespace yoloc
