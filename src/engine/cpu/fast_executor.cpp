#include "engine/cpu/fast_executor.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <chrono>
#include <cmath>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <thread>

#include "core/error.h"
#include "engine/cpu/fast/blocked.h"
#include "engine/cpu/fast/conv.h"
#include "engine/cpu/fast/plain_ops.h"
#include "engine/cpu/fast/thread_pool.h"
#include "ir/fuse.h"
#include "ir/op_table.h"
#include "ir/shape_inference.h"
#include "quant/fake_quant.h"

namespace yoloc {

using fast::BlockedShape;

namespace {

// Where a value lives at run time. A value is either blocked (a preallocated
// buffer) or plain (a Tensor set when its producer runs); a blocked value read by a
// plain consumer also gets a plain twin, filled once right after its producer.
struct Slot {
    std::string name;
    bool blocked = false;
    BlockedShape bs;
    float* data = nullptr;
    Tensor plain;
    int twin = -1;  // plain twin of a blocked value
    int def = -1, last = -1;  // steps that write it first / read it last (blocked values)
};

struct Step {
    std::string label;
    std::function<void()> fn;
};

// ONNX Resize (nearest) source index for output index x along one axis.
int64_t nearest_source(int64_t x, int64_t in, int64_t out, double scale, const std::string& ctm,
                       const std::string& nm) {
    double o;
    if (ctm == "asymmetric")
        o = x / scale;
    else if (ctm == "align_corners")
        o = out == 1 ? 0.0 : double(x) * double(in - 1) / double(out - 1);
    else if (ctm == "pytorch_half_pixel")
        o = out > 1 ? (x + 0.5) / scale - 0.5 : 0.0;
    else if (ctm == "tf_half_pixel_for_nn")
        o = (x + 0.5) / scale;
    else if (ctm == "half_pixel")
        o = (x + 0.5) / scale - 0.5;
    else
        fail("Resize: unsupported coordinate_transformation_mode ", ctm);
    int64_t i;
    if (nm == "floor")
        i = int64_t(std::floor(o));
    else if (nm == "ceil")
        i = int64_t(std::ceil(o));
    else if (nm == "round_prefer_ceil")
        i = int64_t(std::floor(o + 0.5));
    else if (nm == "round_prefer_floor")
        i = (o - std::floor(o) == 0.5) ? int64_t(std::floor(o)) : int64_t(std::floor(o + 0.5));
    else
        fail("Resize: unsupported nearest_mode ", nm);
    return std::min(std::max<int64_t>(i, 0), in - 1);
}

}  // namespace

struct FastExecutor::Impl {
    Model source;
    ExecutorOptions opts;
    FastExecutorOptions fopts;
    int threads = 1;
    bool use_dnnl = false;
    bool dnnl_forced = false;  // ConvKernels::Dnnl or YOLOC_CPU_CONV=dnnl: every conv that oneDNN can run
    std::unique_ptr<fast::ThreadPool> pool;

    // The compiled plan.
    bool compiled = false;
    std::map<std::string, Shape> input_shapes;
    Model model;  // folded copy
    std::deque<Slot> slots;
    std::map<std::string, int> slot_of;
    std::vector<Step> steps;
    std::vector<std::unique_ptr<fast::ConvKernel>> convs;
    std::vector<std::pair<std::string, int>> outputs;  // graph output -> plain slot
    FastPlanStats st;
    std::vector<StepProfile> prof;

    int new_slot(const std::string& name) {
        slots.emplace_back();
        slots.back().name = name;
        int id = int(slots.size()) - 1;
        if (!name.empty()) slot_of[name] = id;
        return id;
    }
    int blocked_slot(const std::string& name, const Shape& shape) {
        YOLOC_CHECK(shape.size() == 4, "fast executor: ", name, " is not 4-D");
        int id = new_slot(name);
        Slot& s = slots[size_t(id)];
        s.blocked = true;
        s.bs = BlockedShape{shape[0], shape[1], shape[2], shape[3]};
        s.def = s.last = int(steps.size());  // its buffer comes from plan_memory()
        return id;
    }
    bool is_blocked(const std::string& name) const {
        auto it = slot_of.find(name);
        return it != slot_of.end() && slots[size_t(it->second)].blocked;
    }
    Slot& slot(const std::string& name) {
        auto it = slot_of.find(name);
        YOLOC_CHECK(it != slot_of.end(), "fast executor: value ", name, " is used before it is produced");
        Slot& s = slots[size_t(it->second)];
        // While planning, every read of a blocked value goes through here just
        // before the step that reads it is added: that is its live range.
        if (planning && s.blocked) s.last = std::max(s.last, int(steps.size()));
        return s;
    }
    // The slot holding `name` as a plain tensor, adding a conversion step if needed.
    Slot* plain_of(const std::string& name) {
        Slot& s = slot(name);
        if (!s.blocked) return &s;
        if (s.twin >= 0) return &slots[size_t(s.twin)];
        int t = new_slot("");
        Slot* src = &s;
        Slot* dst = &slots[size_t(t)];
        src->twin = t;
        dst->name = name;
        dst->plain = Tensor(DType::Float32, src->bs.shape());
        fast::ThreadPool* p = pool.get();
        steps.push_back({"to_nchw " + name, [src, dst, p] {
                             fast::blocked_to_nchw(src->data, dst->plain.data<float>(), src->bs, p);
                         }});
        ++st.layout_changes;
        return dst;
    }

    // The slot holding `name` in the blocked layout, adding a conversion step if needed
    // (a fused conv's residual computed by a plain step).
    Slot* blocked_of(const std::string& name, const Shape& shape) {
        if (is_blocked(name)) return &slot(name);
        Slot* src = &slot(name);
        const int id = new_slot("");  // unnamed: readers of `name` keep the plain slot
        Slot* dst = &slots[size_t(id)];
        dst->blocked = true;
        dst->bs = BlockedShape{shape[0], shape[1], shape[2], shape[3]};
        dst->def = dst->last = int(steps.size());
        fast::ThreadPool* p = pool.get();
        steps.push_back({"to_blocked " + name, [src, dst, p] {
                             fast::nchw_to_blocked(src->plain.data<float>(), dst->data, dst->bs, p);
                         }});
        dst->last = int(steps.size());  // read by the step the caller adds next
        ++st.layout_changes;
        return dst;
    }

    bool planning = false;
    std::vector<std::shared_ptr<uint8_t>> arena;  // buffers of blocked values
    int64_t arena_bytes = 0;

    void compile(const std::map<std::string, Shape>& shapes);
    void plan_memory();
    void plan_conv(const Node& n, const ShapeInfo& info);
    void plan_ref(const Node& n);
    bool plan_plain(const Node& n, const ShapeInfo& info);
};

static bool all_ones(const std::vector<int64_t>& v) {
    return std::all_of(v.begin(), v.end(), [](int64_t x) { return x == 1; });
}

void FastExecutor::Impl::plan_ref(const Node& n) {
    std::vector<Slot*> ins;
    for (const auto& i : n.inputs) ins.push_back(i.empty() ? nullptr : plain_of(i));
    std::vector<Slot*> outs;
    for (const auto& o : n.outputs) outs.push_back(o.empty() ? nullptr : &slots[size_t(new_slot(o))]);
    const Node* node = &n;
    int64_t opset = model.opset();
    steps.push_back({n.op_type + " " + n.name, [ins, outs, node, opset] {
                         std::vector<Tensor> in;
                         in.reserve(ins.size());
                         for (Slot* s : ins) in.push_back(s ? s->plain : Tensor());
                         std::vector<Tensor> out = ref_eval(*node, in, opset);
                         for (size_t k = 0; k < outs.size() && k < out.size(); ++k)
                             if (outs[k]) outs[k]->plain = std::move(out[k]);
                     }});
    ++st.ref_steps;
}

// Sigmoid, Softmax, Concat and Split on plain float tensors: own kernels writing
// into preallocated outputs (the Detect tail). False: not handled here.
bool FastExecutor::Impl::plan_plain(const Node& n, const ShapeInfo& info) {
    if (!n.domain.empty()) return false;
    for (const auto& i : n.inputs)
        if (i.empty() || info.at(i).dtype != DType::Float32) {
            if (!(n.op_type == "Split" && &i == &n.inputs[1])) return false;
        }
    for (const auto& o : n.outputs)
        if (o.empty() || info.at(o).dtype != DType::Float32) return false;
    auto out_slot = [&](const std::string& name) {
        Slot* s = &slots[size_t(new_slot(name))];
        s->plain = Tensor(DType::Float32, info.at(name).shape);
        return s;
    };
    auto prod = [](const Shape& s, size_t b, size_t e) {
        int64_t p = 1;
        for (size_t i = b; i < e; ++i) p *= s[i];
        return p;
    };
    fast::ThreadPool* p = pool.get();
    if (n.op_type == "Sigmoid" && n.inputs.size() == 1) {
        Slot* x = plain_of(n.inputs[0]);
        Slot* y = out_slot(n.outputs[0]);
        steps.push_back({"sigmoid " + n.name, [x, y, p] {
                             fast::sigmoid(x->plain.data<float>(), y->plain.data<float>(), y->plain.numel(), p);
                         }});
        ++st.plain_steps;
        return true;
    }
    if (n.op_type == "Softmax" && n.inputs.size() == 1 && model.opset() >= 13) {
        const Shape& sh = info.at(n.inputs[0]).shape;
        int64_t axis = n.attr_i("axis", -1);
        if (axis < 0) axis += int64_t(sh.size());
        if (axis < 0 || axis >= int64_t(sh.size())) return false;
        int64_t outer = prod(sh, 0, size_t(axis)), dim = sh[size_t(axis)], inner = prod(sh, size_t(axis) + 1, sh.size());
        Slot* x = plain_of(n.inputs[0]);
        Slot* y = out_slot(n.outputs[0]);
        steps.push_back({"softmax " + n.name, [x, y, p, outer, dim, inner] {
                             fast::softmax(x->plain.data<float>(), y->plain.data<float>(), outer, dim, inner, p);
                         }});
        ++st.plain_steps;
        return true;
    }
    if (n.op_type == "Concat" && !n.inputs.empty()) {
        const Shape& os = info.at(n.outputs[0]).shape;
        int64_t axis = n.attr_i("axis", 0);
        if (axis < 0) axis += int64_t(os.size());
        if (axis < 0 || axis >= int64_t(os.size())) return false;
        int64_t outer = prod(os, 0, size_t(axis)), inner = prod(os, size_t(axis) + 1, os.size());
        std::vector<Slot*> xs;
        std::vector<int64_t> lens;
        for (const auto& i : n.inputs) {
            xs.push_back(plain_of(i));
            lens.push_back(info.at(i).shape[size_t(axis)] * inner);
        }
        Slot* y = out_slot(n.outputs[0]);
        steps.push_back({"concat_plain " + n.name, [xs, lens, y, outer] {
                             std::vector<const float*> ins;
                             for (Slot* s : xs) ins.push_back(s->plain.data<float>());
                             fast::concat_rows(ins, lens, y->plain.data<float>(), outer);
                         }});
        ++st.plain_steps;
        return true;
    }
    if (n.op_type == "Split" && info.at(n.inputs[0]).dtype == DType::Float32) {
        const Shape& is = info.at(n.inputs[0]).shape;
        int64_t axis = n.attr_i("axis", 0);
        if (axis < 0) axis += int64_t(is.size());
        if (axis < 0 || axis >= int64_t(is.size())) return false;
        int64_t outer = prod(is, 0, size_t(axis)), inner = prod(is, size_t(axis) + 1, is.size());
        Slot* x = plain_of(n.inputs[0]);
        std::vector<Slot*> ys;
        std::vector<int64_t> lens;
        for (const auto& o : n.outputs) {
            ys.push_back(out_slot(o));
            lens.push_back(info.at(o).shape[size_t(axis)] * inner);
        }
        steps.push_back({"split_plain " + n.name, [x, ys, lens, outer] {
                             std::vector<float*> outs;
                             for (Slot* s : ys) outs.push_back(s->plain.data<float>());
                             fast::split_rows(x->plain.data<float>(), outer, outs, lens);
                         }});
        ++st.plain_steps;
        return true;
    }
    return false;
}

// A FusedConv (ir/fuse.h) on the conv kernels: the SiLU and the residual Add are the
// kernel's epilogue.
void FastExecutor::Impl::plan_conv(const Node& n, const ShapeInfo& info) {
    const Graph& g = model.graph;
    const std::string& x = n.inputs[0];
    const Tensor* w = g.find_initializer(n.inputs[1]);
    const Tensor* b = n.inputs.size() > 2 && !n.inputs[2].empty() ? g.find_initializer(n.inputs[2]) : nullptr;
    const Shape& xs = info.at(x).shape;
    const Shape& ys = info.at(n.outputs[0]).shape;

    fast::ConvSpec s;
    s.in = BlockedShape{xs[0], xs[1], xs[2], xs[3]};
    s.out = BlockedShape{ys[0], ys[1], ys[2], ys[3]};
    s.kh = w->dim(2);
    s.kw = w->dim(3);
    auto st_ = n.attr_ints("strides", {1, 1});
    auto di = n.attr_ints("dilations", {1, 1});
    auto pads = n.attr_ints("pads", {0, 0, 0, 0});
    s.sh = st_[0]; s.sw = st_[1];
    s.dh = di[0]; s.dw = di[1];
    s.pt = pads[0]; s.pl = pads[1]; s.pb = pads[2]; s.pr = pads[3];
    s.src_plain = !is_blocked(x);

    s.silu = n.attr_s("activation", "") == "silu";
    const std::string residual = n.inputs.size() > 3 ? n.inputs[3] : std::string();
    s.residual = !residual.empty();
    const std::string out = n.outputs[0];
    if (s.silu) ++st.fused_silu;
    if (s.residual) ++st.fused_residual;

    Tensor bias = b ? *b : Tensor();
    std::unique_ptr<fast::ConvKernel> k;
    // oneDNN's nChw16c kernels reduce over whole 16-channel input blocks, zero padding
    // included; ours reads only the real channels. For a channel-pruned input (C2f
    // bottleneck 24 of 32 channels: a quarter of oneDNN's multiply-adds are padding) ours
    // is faster on wide maps: 24 -> 32 at 80x80, 1 thread, 0.45-0.49 ms vs 0.55-0.58. At
    // 12.5% padding (56 of 64) or on narrow maps (20x20, where our 12-pixel row tiles
    // fit badly) oneDNN still won, hence the thresholds. Not when oneDNN is forced.
    const bool padded_input = !s.src_plain && (s.in.cp() - s.in.c) * 4 >= s.in.cp() && s.out.w >= 40;
    if (use_dnnl && !(padded_input && !dnnl_forced && fast::direct_conv_wide())) k = fast::make_dnnl_conv(s, *w, bias);
    if (k)
        ++st.dnnl_convs;
    else
        k = fast::make_direct_conv(s, *w, bias, pool.get());
    ++st.convs;

    Slot* src = &slot(x);
    Slot* res = s.residual ? blocked_of(residual, ys) : nullptr;
    Slot* dst = &slots[size_t(blocked_slot(out, ys))];
    fast::ConvKernel* kp = k.get();
    convs.push_back(std::move(k));
    bool plain = s.src_plain;
    std::string label = cat("conv", s.silu ? "+silu" : "", s.residual ? "+add" : "", " ", n.name, " ",
                            shape_str(xs), "->", shape_str(ys), " k", s.kh, "s", s.sh, " (", kp->name(), ")");
    steps.push_back({label, [kp, src, dst, res, plain] {
                         const float* in = plain ? src->plain.data<float>() : src->data;
                         kp->run(in, dst->data, res ? res->data : nullptr);
                     }});
}

// Buffers for blocked values, reused once a value is dead: the activations of
// YOLOv8n at 640 then fit the 32 MB L3 instead of streaming ~100 MB through DRAM.
// A step's outputs are placed before its inputs are released, so they never alias.
void FastExecutor::Impl::plan_memory() {
    std::vector<std::vector<Slot*>> defs(steps.size() + 1), lasts(steps.size() + 1);
    for (Slot& s : slots)
        if (s.blocked) {
            defs[size_t(s.def)].push_back(&s);
            lasts[size_t(std::max(s.last, s.def))].push_back(&s);
        }
    std::multimap<int64_t, float*> free_bufs;  // bytes -> buffer
    std::map<float*, int64_t> size_of;
    for (size_t k = 0; k < defs.size(); ++k) {
        for (Slot* s : defs[k]) {
            int64_t need = s->bs.floats() * int64_t(sizeof(float));
            auto it = free_bufs.lower_bound(need);  // best fit
            if (it != free_bufs.end()) {
                s->data = it->second;
                free_bufs.erase(it);
            } else {
                arena.push_back(alloc_aligned(size_t(need)));
                s->data = reinterpret_cast<float*>(arena.back().get());
                size_of[s->data] = need;
                arena_bytes += need;
            }
        }
        for (Slot* s : lasts[k]) free_bufs.insert({size_of[s->data], s->data});
    }
}

void FastExecutor::Impl::compile(const std::map<std::string, Shape>& shapes) {
    compiled = false;
    slots.clear();
    slot_of.clear();
    steps.clear();
    convs.clear();
    outputs.clear();
    st = FastPlanStats{};
    prof.clear();

    arena.clear();
    arena_bytes = 0;
    planning = true;
    // Before any oneDNN primitive is made: its kernels fix their thread count when
    // they are created (dnnl_get_max_threads() at primitive-descriptor time), so a
    // call only in run() came too late and `--threads 1` ran every oneDNN conv on an
    // OpenMP team of all cores (192% CPU). Under load from other processes each conv
    // then waited a scheduler time slice for a preempted team member: 480-500 ms per
    // YOLOv8n run instead of 47-50 (measured on the shared 2-core machine), hitting
    // whichever model happened to run then (a pruned model looked 30% slower).
    fast::dnnl_set_threads(threads);
    model = source;
    fold_constants(model, shapes);
    fuse_conv_activation(model, shapes);  // Conv + SiLU + residual Add -> FusedConv (ir/fuse.h)
    ShapeInfo info = infer_shapes(model, shapes);
    const Graph& g = model.graph;
    input_shapes = shapes;

    std::map<std::string, std::vector<int>> cons;
    for (size_t i = 0; i < g.nodes.size(); ++i)
        for (const auto& in : g.nodes[i].inputs)
            if (!in.empty()) cons[in].push_back(int(i));
    std::set<std::string> graph_outs;
    for (const auto& o : g.outputs) graph_outs.insert(o.name);

    for (const auto& kv : g.initializers) {
        int id = new_slot(kv.first);
        slots[size_t(id)].plain = kv.second;
    }
    for (const auto& in : g.inputs) new_slot(in.name);

    auto f32_4d = [&](const std::string& v) {
        const ValueType& t = info.at(v);
        return t.dtype == DType::Float32 && t.shape.size() == 4;
    };

    std::set<int> done;
    fast::ThreadPool* p = pool.get();
    for (size_t i = 0; i < g.nodes.size(); ++i) {
        if (done.count(int(i))) continue;
        const Node& n = g.nodes[i];
        const std::string op = n.domain.empty() || n.domain == "yoloc" ? n.op_type : std::string();

        if (op == "FusedConv" && n.inputs.size() >= 2 && f32_4d(n.inputs[0]) && g.is_initializer(n.inputs[1]) &&
            (n.inputs.size() < 3 || n.inputs[2].empty() || g.is_initializer(n.inputs[2])) &&
            n.attr_i("group", 1) == 1 && n.attr_s("auto_pad", "NOTSET") == "NOTSET" &&
            g.find_initializer(n.inputs[1])->rank() == 4 &&
            // a plain input is worth a conv kernel only when the output is wide
            // (the graph input); the DFL conv (16 -> 1) stays with the reference.
            (is_blocked(n.inputs[0]) || info.at(n.outputs[0]).shape[1] >= 16)) {
            plan_conv(n, info);
            continue;
        }
        if (op == "MaxPool" && is_blocked(n.inputs[0]) && n.outputs.size() == 1 &&
            n.attr_i("ceil_mode", 0) == 0 && n.attr_s("auto_pad", "NOTSET") == "NOTSET" &&
            n.attr_i("storage_order", 0) == 0 && all_ones(n.attr_ints("dilations", {1, 1})) &&
            n.attr_ints("kernel_shape").size() == 2) {
            auto k = n.attr_ints("kernel_shape");
            auto s = n.attr_ints("strides", {1, 1});
            auto pd = n.attr_ints("pads", {0, 0, 0, 0});
            fast::PoolSpec ps{k[0], k[1], s[0], s[1], pd[0], pd[1]};
            Slot* src = &slot(n.inputs[0]);
            Slot* dst = &slots[size_t(blocked_slot(n.outputs[0], info.at(n.outputs[0]).shape))];
            steps.push_back({"maxpool " + n.name, [src, dst, ps, p] {
                                 fast::maxpool_blocked(src->data, src->bs, dst->data, dst->bs, ps, p);
                             }});
            ++st.blocked_steps;
            continue;
        }
        if (op == "Resize" && is_blocked(n.inputs[0]) && n.attr_s("mode", "nearest") == "nearest") {
            const Shape& is = info.at(n.inputs[0]).shape;
            const Shape& os = info.at(n.outputs[0]).shape;
            if (os.size() == 4 && os[0] == is[0] && os[1] == is[1]) {
                // Scales as given when present (ONNX uses them, not out/in, for coordinates).
                double sy = double(os[2]) / double(is[2]), sx = double(os[3]) / double(is[3]);
                if (n.inputs.size() > 2 && !n.inputs[2].empty()) {
                    const Tensor* sc = g.find_initializer(n.inputs[2]);
                    if (sc && sc->numel() == 4) {
                        sy = sc->at_f64(2);
                        sx = sc->at_f64(3);
                    }
                }
                std::string ctm = n.attr_s("coordinate_transformation_mode", "half_pixel");
                std::string nm = n.attr_s("nearest_mode", "round_prefer_floor");
                std::vector<int64_t> ym(static_cast<size_t>(os[2])), xm(static_cast<size_t>(os[3]));
                for (int64_t y = 0; y < os[2]; ++y) ym[size_t(y)] = nearest_source(y, is[2], os[2], sy, ctm, nm);
                for (int64_t x = 0; x < os[3]; ++x) xm[size_t(x)] = nearest_source(x, is[3], os[3], sx, ctm, nm);
                Slot* src = &slot(n.inputs[0]);
                Slot* dst = &slots[size_t(blocked_slot(n.outputs[0], os))];
                steps.push_back({"resize " + n.name, [src, dst, ym, xm, p] {
                                     fast::resize_nearest_blocked(src->data, src->bs, dst->data, dst->bs, ym, xm, p);
                                 }});
                ++st.blocked_steps;
                continue;
            }
        }
        if (op == "Concat" && f32_4d(n.outputs[0])) {
            int64_t axis = n.attr_i("axis", 1);
            if (axis < 0) axis += 4;
            bool ok = axis == 1;
            for (const auto& in : n.inputs) ok = ok && is_blocked(in) && info.at(in).shape[1] % fast::kBlock == 0;
            if (ok) {
                std::vector<Slot*> ins;
                for (const auto& in : n.inputs) ins.push_back(&slot(in));
                Slot* dst = &slots[size_t(blocked_slot(n.outputs[0], info.at(n.outputs[0]).shape))];
                steps.push_back({"concat " + n.name, [ins, dst] {
                                     int64_t off = 0, hw = dst->bs.h * dst->bs.w;
                                     for (Slot* s : ins) {
                                         int64_t len = s->bs.image_floats();
                                         fast::copy_slices(s->data, len, dst->data + off, dst->bs.image_floats(), len,
                                                           dst->bs.n);
                                         off += s->bs.c * hw;
                                     }
                                 }});
                ++st.blocked_steps;
                continue;
            }
        }
        if (op == "Split" && is_blocked(n.inputs[0])) {
            int64_t axis = n.attr_i("axis", 0);
            if (axis < 0) axis += 4;
            bool ok = axis == 1;
            for (const auto& o : n.outputs) ok = ok && !o.empty() && info.at(o).shape[1] % fast::kBlock == 0;
            if (ok) {
                Slot* src = &slot(n.inputs[0]);
                std::vector<Slot*> outs;
                for (const auto& o : n.outputs) outs.push_back(&slots[size_t(blocked_slot(o, info.at(o).shape))]);
                steps.push_back({"split " + n.name, [src, outs] {
                                     int64_t off = 0, hw = src->bs.h * src->bs.w;
                                     for (Slot* s : outs) {
                                         int64_t len = s->bs.image_floats();
                                         fast::copy_slices(src->data + off, src->bs.image_floats(), s->data, len, len,
                                                           s->bs.n);
                                         off += s->bs.c * hw;
                                     }
                                 }});
                ++st.blocked_steps;
                continue;
            }
        }
        // Q -> DQ pair of yoloc's INT8 form (quant/fake_quant.h): fake quantization on
        // the blocked layout, so the Conv behind it keeps a blocked input.
        if (op == "QuantizeLinear" && is_blocked(n.inputs[0])) {
            float qscale = 0;
            int dq = qdq_pair(g, int(i), &qscale);
            if (dq >= 0) {
                Slot* a = &slot(n.inputs[0]);
                Slot* dst = &slots[size_t(blocked_slot(g.nodes[size_t(dq)].outputs[0], a->bs.shape()))];
                steps.push_back({"fakequant " + n.name, [a, dst, qscale] {
                                     fake_quant_int8(a->data, dst->data, dst->bs.floats(), qscale);
                                 }});
                done.insert(dq);
                ++st.blocked_steps;
                continue;
            }
        }
        if (op == "Add" && n.inputs.size() == 2 && is_blocked(n.inputs[0]) && is_blocked(n.inputs[1]) &&
            slot(n.inputs[0]).bs.shape() == slot(n.inputs[1]).bs.shape()) {
            Slot* a = &slot(n.inputs[0]);
            Slot* b = &slot(n.inputs[1]);
            Slot* dst = &slots[size_t(blocked_slot(n.outputs[0], info.at(n.outputs[0]).shape))];
            steps.push_back({"add " + n.name, [a, b, dst, p] {
                                 fast::add_blocked(a->data, b->data, dst->data, dst->bs.floats(), p);
                             }});
            ++st.blocked_steps;
            continue;
        }
        if (plan_plain(n, info)) continue;
        plan_ref(n);
    }
    for (const auto& o : g.outputs) {
        YOLOC_CHECK(slot_of.count(o.name), "fast executor: graph output ", o.name, " is never produced");
        int id = slot_of[o.name];
        if (slots[size_t(id)].blocked) {
            plain_of(o.name);
            id = slots[size_t(id)].twin;
        }
        outputs.push_back({o.name, id});
    }
    plan_memory();
    planning = false;
    st.arena_bytes = arena_bytes;
    prof.resize(steps.size());
    for (size_t i = 0; i < steps.size(); ++i) prof[i].label = steps[i].label;
    compiled = true;
}

static std::string lower(std::string s) {
    for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// See ConvKernels::Auto.
static bool resolve_dnnl(ConvKernels k, size_t graph_outputs, bool* forced) {
    *forced = false;
    if (k == ConvKernels::Dnnl) return *forced = fast::dnnl_available();
    if (k == ConvKernels::Own) return false;
    if (const char* e = std::getenv("YOLOC_CPU_CONV")) {
        std::string v = lower(e);
        if (v == "dnnl" || v == "onednn") return *forced = fast::dnnl_available();
        if (v == "own") return false;
        fail("YOLOC_CPU_CONV='", e, "': expected 'dnnl' or 'own'");
    }
    // oneDNN when built in: on a quiet 2-core machine it measured 0.76-1.05x of ONNX
    // Runtime's time against 1.05-1.36x for our own kernels (docs/DECISIONS.md). Under
    // heavy CPU contention its spinning OpenMP threads slow it down; YOLOC_CPU_CONV=own
    // or OMP_WAIT_POLICY=passive are the remedies documented there.
    // Graphs that expose many intermediate values (calibration and pruning taps) ran
    // about 10x slower with oneDNN than with our kernels (yoloc quantize on 2 images:
    // 100 s vs 8.6 s), cause not yet found; they keep our kernels.
    return fast::dnnl_available() && graph_outputs <= 4;
}

FastExecutor::FastExecutor(const Model& model, const ExecutorOptions& opts, const FastExecutorOptions& fopts)
    : impl_(new Impl) {
    impl_->source = model;
    impl_->opts = opts;
    impl_->fopts = fopts;
    impl_->threads = opts.threads > 0 ? opts.threads : int(std::max(1u, std::thread::hardware_concurrency()));
    impl_->use_dnnl = resolve_dnnl(fopts.conv, model.graph.outputs.size(), &impl_->dnnl_forced);
    impl_->pool.reset(new fast::ThreadPool(impl_->threads, impl_->use_dnnl));
    // Compile now when the declared input shapes are concrete (a symbolic batch counts as 1).
    std::map<std::string, Shape> shapes;
    bool concrete = true;
    for (const auto& in : model.graph.inputs) {
        Shape s;
        for (size_t d = 0; d < in.shape.size(); ++d) {
            if (in.shape[d].known())
                s.push_back(in.shape[d].value);
            else if (d == 0)
                s.push_back(1);
            else
                concrete = false;
        }
        if (!in.has_shape) concrete = false;
        shapes[in.name] = s;
    }
    if (concrete) impl_->compile(shapes);
}

FastExecutor::~FastExecutor() = default;

TensorMap FastExecutor::run(const TensorMap& inputs) {
    Impl& m = *impl_;
    std::map<std::string, Shape> shapes;
    for (const auto& in : m.source.graph.inputs) {
        auto it = inputs.find(in.name);
        YOLOC_CHECK(it != inputs.end(), "fast executor: missing input '", in.name, "'");
        YOLOC_CHECK(it->second.dtype() == DType::Float32, "fast executor: input '", in.name, "' must be float32, got ",
                    dtype_name(it->second.dtype()));
        shapes[in.name] = it->second.shape();
    }
    if (!m.compiled || shapes != m.input_shapes) m.compile(shapes);
    for (const auto& in : m.source.graph.inputs) m.slot(in.name).plain = inputs.at(in.name);
    fast::dnnl_set_threads(m.threads);
    for (size_t i = 0; i < m.steps.size(); ++i) {
        if (m.fopts.profile) {
            auto t0 = std::chrono::steady_clock::now();
            m.steps[i].fn();
            auto t1 = std::chrono::steady_clock::now();
            m.prof[i].total_ms += std::chrono::duration<double, std::milli>(t1 - t0).count();
            ++m.prof[i].calls;
        } else {
            m.steps[i].fn();
        }
    }
    TensorMap out;
    for (const auto& o : m.outputs) out[o.first] = m.slots[size_t(o.second)].plain.clone();
    // Drop references to the caller's inputs and to per-run plain tensors.
    for (const auto& in : m.source.graph.inputs) m.slot(in.name).plain = Tensor();
    return out;
}

FastPlanStats FastExecutor::stats() {
    if (!impl_->compiled) fail("fast executor: no plan yet (the input shape is not concrete; call run first)");
    return impl_->st;
}

std::vector<StepProfile> FastExecutor::profile() const { return impl_->prof; }

std::unique_ptr<Executor> make_fast_executor(const Model& model, const ExecutorOptions& opts) {
    return std::unique_ptr<Executor>(new FastExecutor(model, opts));
}

std::unique_ptr<Executor> make_fast_executor(const Model& model, const ExecutorOptions& opts,
                                             const FastExecutorOptions& fopts) {
    return std::unique_ptr<Executor>(new FastExecutor(model, opts, fopts));
}

}  // namespace yoloc
