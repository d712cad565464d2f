// build_plan: the folded, fused IR lowered to plan ops, as named steps:
//   retarget -> recognise -> fold + fuse (ir/fuse.h) -> analyse Q/DQ -> lower each node
//   (NHWC ops for what the tuned kernels take, the generic tier for everything else)
//   -> place concats -> assign buffers -> emit ops -> plan passes (plan_passes.h).
// Lowering rules and their reasons are in plan.h.
#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <set>

#include "core/error.h"
#include "engine/plan.h"
#include "engine/plan_passes.h"
#include "ir/fuse.h"
#include "ir/op_table.h"
#include "ir/shape_inference.h"
#include "ir/unary_ops.h"
#include "quant/fake_quant.h"
#include "yolo/input_size.h"
#include "yolo/recognize.h"

namespace yoloc {
namespace engine {
namespace {

// An op before buffers are assigned: reads and writes plan values by name.
struct LOp {
    LOp(OpKind k, std::string n, std::vector<std::string> i, std::string o)
        : kind(k), name(std::move(n)), in(std::move(i)), out(std::move(o)) {}
    OpKind kind;
    std::string name;
    std::vector<std::string> in;
    std::string out;
    PlanOp p;  // window, weights, generic parameters
    // Concat marker (kind == Copy with concat = true): `in` are the concat inputs.
    bool concat = false;
    int64_t nodes = 1;
    std::vector<std::string> more;  // MaxPool chain: later pools' outputs; TopK: the indices
};

struct Place {
    std::string parent;
    int64_t off = 0;
};

// A value of the generic tier: ONNX layout, float32 or int32.
struct TensorValue {
    Shape shape;
    bool integer = false;
};

bool all_ones(const std::vector<int64_t>& v) {
    for (int64_t x : v)
        if (x != 1) return false;
    return true;
}

bool is_int_dtype(DType d) {
    return d == DType::Int64 || d == DType::Int32 || d == DType::Bool || d == DType::Int8 || d == DType::UInt8 ||
           d == DType::Int16 || d == DType::UInt16 || d == DType::UInt32 || d == DType::UInt64;
}

// Row-major strides of `s`.
std::vector<int64_t> strides_of(const Shape& s) {
    std::vector<int64_t> st(s.size(), 1);
    for (size_t k = s.size(); k-- > 1;) st[k - 1] = st[k] * s[k];
    return st;
}

// `v` (one entry per dim of a rank <= 6 shape) padded to kGenericRank with `fill` in front.
std::vector<int64_t> pad6(const std::vector<int64_t>& v, int64_t fill) {
    std::vector<int64_t> r(size_t(kGenericRank) - v.size(), fill);
    r.insert(r.end(), v.begin(), v.end());
    return r;
}

// Strides of `s` read through broadcasting into `out` (0 on broadcast dims), padded.
std::vector<int64_t> bstrides6(const Shape& s, const Shape& out) {
    std::vector<int64_t> st = strides_of(s), r(out.size(), 0);
    const size_t off = out.size() - s.size();
    for (size_t k = 0; k < s.size(); ++k) r[k + off] = s[k] == 1 ? 0 : st[k];
    return pad6(r, 0);
}

void append(std::vector<int64_t>& to, const std::vector<int64_t>& v) { to.insert(to.end(), v.begin(), v.end()); }

class Lowering {
public:
    Lowering(const Model& model, const ShapeInfo& info, const PlanOptions& opts, const YoloArch& arch, Plan& plan)
        : g_(model.graph), info_(info), opts_(opts), arch_(arch), plan_(plan), opset_(model.opset()) {
        for (size_t i = 0; i < g_.nodes.size(); ++i) {
            node_index_[g_.nodes[i].name] = int(i);
            for (const auto& v : g_.nodes[i].inputs)
                if (!v.empty()) cons_[v].push_back(int(i));
        }
        for (const auto& o : g_.outputs) graph_outs_.insert(o.name);
    }

    void run() {
        lower_input();
        find_detect_nodes();
        analyse_qdq();
        for (size_t i = 0; i < g_.nodes.size(); ++i) {
            if (done_.count(int(i))) continue;
            lower_node(int(i));
        }
        // A Q -> DQ pair is lowered where its value is first read: a graph output that no
        // node reads is read here, so that its FakeQuant op exists before emit().
        for (const auto& o : g_.outputs) pv(o.name);
        place_concats();
        emit();
    }

private:
    // ---- values and layouts -------------------------------------------------------------

    const Shape& shape_of(const std::string& v) const { return info_.at(v).shape; }
    bool is4d(const std::string& v) const {
        const ValueType& t = info_.at(v);
        return t.dtype == DType::Float32 && t.shape.size() == 4;
    }
    static Shape to_nhwc(const Shape& s) { return Shape{s[0], s[2], s[3], s[1]}; }

    bool is_nhwc(const std::string& pv) const { return nhwc_.count(pv) != 0; }
    bool is_tensor(const std::string& pv) const { return tensors_.count(pv) != 0; }

    // IR value -> the plan value that holds it (after renames and Q/DQ folding).
    std::string pv(const std::string& v) {
        auto f = fq_.find(v);
        if (f != fq_.end()) {
            if (!f->second.materialized) {
                f->second.materialized = true;
                const std::string x = nhwc_of(f->second.x);
                LOp l{OpKind::FakeQuant, "fakequant " + f->second.x, {x}, v};
                l.p.in_scale = f->second.scale;
                l.nodes = 0;
                nhwc_[v] = to_nhwc(shape_of(v));
                produced_[v] = "op";
                lops_.push_back(l);
            }
            return v;
        }
        auto gq = generic_fq_.find(v);
        if (gq != generic_fq_.end()) {  // a Q -> DQ pair off the NHWC path: generic fake quantization
            if (!gq->second.materialized) {
                gq->second.materialized = true;
                const std::string x = tensor_of(gq->second.x);
                YOLOC_CHECK(!tensors_.at(x).integer, "value ", gq->second.x, " is quantized but not float");
                LOp l{OpKind::Generic, "fakequant " + gq->second.x, {x}, v};
                l.p.gop = int32_t(GenericKind::FakeQuant);
                l.p.floats = {gq->second.scale};
                l.nodes = 0;
                lops_.push_back(l);
                ++plan_.stats.generic_ops;
                new_tensor(v);
            }
            return v;
        }
        auto it = rename_.find(v);
        return it == rename_.end() ? v : it->second;
    }

    // The NHWC form of IR value v, converting an ONNX-layout float32 value once (InputPack).
    std::string nhwc_of(const std::string& v) {
        const std::string p = pv(v);
        if (is_nhwc(p)) return p;
        auto c = as_nhwc_.find(p);
        if (c != as_nhwc_.end()) return c->second;
        const std::string t = tensor_of(v);
        const TensorValue& tv = tensors_.at(t);
        YOLOC_CHECK(tv.shape.size() == 4 && !tv.integer, "value ", v, " (", shape_str(tv.shape),
                    ") cannot feed a convolution, pool or resize: it is not a 4-D float32 tensor");
        const std::string n = t + "#nhwc";
        LOp l{OpKind::InputPack, "to NHWC " + v, {t}, n};
        l.nodes = 0;
        lops_.push_back(l);
        nhwc_[n] = to_nhwc(tv.shape);
        produced_[n] = "op";
        as_nhwc_[p] = n;
        ++plan_.stats.layout_changes;
        return n;
    }

    // The ONNX-layout form of IR value v: itself for generic values, a converted copy of
    // an NHWC value (OutputUnpack into a Tensor buffer), or a Const op for a constant.
    std::string tensor_of(const std::string& v) {
        const std::string p = pv(v);
        if (is_tensor(p)) return p;
        auto c = as_tensor_.find(p);
        if (c != as_tensor_.end()) return c->second;
        if (is_nhwc(p)) {
            const std::string t = p + "#tensor";
            LOp l{OpKind::OutputUnpack, "to ONNX layout " + v, {p}, t};
            l.nodes = 0;
            lops_.push_back(l);
            const Shape& s = nhwc_.at(p);
            tensors_[t] = TensorValue{Shape{s[0], s[3], s[1], s[2]}, false};
            produced_[t] = "op";
            as_tensor_[p] = t;
            ++plan_.stats.layout_changes;
            return t;
        }
        const Tensor* c0 = constant(v);
        YOLOC_CHECK(c0, "value ", v, " is used before the GPU plan produces it");
        return const_tensor(v, *c0);
    }

    // A constant (initializer, or a DequantizeLinear of one) as a Tensor value, written
    // by a Const op from the weights blob.
    const Tensor* constant(const std::string& v) {
        if (const Tensor* t = g_.find_initializer(v)) return t;
        auto it = dq_consts_.find(v);
        return it == dq_consts_.end() ? nullptr : &it->second;
    }
    std::string const_tensor(const std::string& v, const Tensor& t) {
        const std::string name = v + "#const";
        if (is_tensor(name)) return name;
        Shape s = t.shape();
        if (s.empty()) s = {1};
        YOLOC_CHECK(s.size() <= size_t(kGenericRank), "constant ", v, " has rank ", s.size(), " (at most ",
                    kGenericRank, ")");
        const bool integer = is_int_dtype(t.dtype());
        YOLOC_CHECK(integer || t.dtype() == DType::Float32 || t.dtype() == DType::Float16, "constant ", v, " is ",
                    dtype_name(t.dtype()), ": the GPU engine keeps float32 and int32 tensors");
        LOp l{OpKind::Generic, "const " + v, {}, name};
        l.p.gop = int32_t(GenericKind::Const);
        l.p.b_off = int64_t(plan_.weights.size());
        l.p.b_count = t.numel();
        for (int64_t i = 0; i < t.numel(); ++i) {
            const double x = t.at_f64(i);
            // Integers travel as floats in the weights blob: exact below 2^24.
            if (integer) {
                const double c = std::min(std::max(x, -16777216.0), 16777216.0);
                plan_.weights.push_back(float(c));
            } else {
                plan_.weights.push_back(float(x));
            }
        }
        l.nodes = 0;
        lops_.push_back(l);
        ++plan_.stats.generic_ops;  // a Generic op of the plan like the others (the runtime may launch nothing for it)
        tensors_[name] = TensorValue{s, integer};
        produced_[name] = "op";
        return name;
    }

    // A new generic-tier value for IR value `v` (its own name).
    void new_tensor(const std::string& v, bool integer = false) {
        const ValueType& t = info_.at(v);
        Shape s = t.shape;
        if (s.empty()) s = {1};
        YOLOC_CHECK(s.size() <= size_t(kGenericRank), "value ", v, " has rank ", s.size(),
                    ": the GPU engine's generic ops take rank 6 at most");
        tensors_[v] = TensorValue{s, integer || is_int_dtype(t.dtype)};
        produced_[v] = "op";
    }
    LOp& generic(const Node& n, GenericKind k, std::vector<std::string> in, const std::string& out,
                 const std::string& suffix = "") {
        LOp l{OpKind::Generic, n.name + suffix, std::move(in), out};
        l.p.gop = int32_t(k);
        l.nodes = 0;  // lower_node counts the IR node once, however many ops it became
        lops_.push_back(l);
        ++plan_.stats.generic_ops;
        generic_ops_.insert(n.op_type);
        return lops_.back();
    }

    // ---- steps ------------------------------------------------------------------------

    void lower_input() {
        const ValueInfo& in0 = g_.inputs[0];
        input_ = in0.name;
        const std::string packed = in0.name + "#nhwc";
        LOp l{OpKind::InputPack, "input " + in0.name, {in0.name}, packed};
        l.nodes = 0;
        lops_.push_back(l);
        produced_[packed] = "op";
        nhwc_[packed] = to_nhwc(plan_.input_shape);
        rename_[in0.name] = packed;
    }

    // Nodes the fused Detect op replaces (the recogniser confirmed what they compute).
    void find_detect_nodes() {
        fuse_detect_ = arch_.recognised && arch_.head.fused;
        if (!fuse_detect_) return;
        // Every decode node but the per-level Concat(box, cls) of older exports, which
        // stays: the Detect op reads it.
        std::set<std::string> level_concats;
        for (const auto& L : arch_.head.levels) level_concats.insert(L.concat);
        for (const auto& d : arch_.head.decode)
            if (!level_concats.count(d)) detect_nodes_.insert(d);
        int last = -1;
        for (const auto& n : detect_nodes_) {
            auto it = node_index_.find(n);
            if (it != node_index_.end()) last = std::max(last, it->second);
        }
        if (last >= 0) detect_anchor_ = g_.nodes[size_t(last)].name;
    }

    // Q/DQ (models from `yoloc quantize` and other TensorRT-style exports): per-tensor int8
    // Q -> DQ pairs on 4-D activations (fq_: the DQ output -> the Q input and scale),
    // DequantizeLinear of constant int8 conv weights (wdq_), and of other constants
    // (dq_consts_: evaluated here).
    void analyse_qdq() {
        for (size_t i = 0; i < g_.nodes.size(); ++i) {
            const Node& n = g_.nodes[i];
            if (n.op_type == "QuantizeLinear" && n.domain.empty()) {
                any_qdq_ = true;
                float sc = 0.f;
                const int d = qdq_pair(g_, int(i), &sc);
                YOLOC_CHECK(d >= 0 && sc > 0.f && std::isfinite(sc), "node ", n.label(),
                            ": the GPU engine takes QuantizeLinear only as a per-tensor int8 QuantizeLinear -> "
                            "DequantizeLinear pair with zero point 0");
                const std::string& dout = g_.nodes[size_t(d)].outputs[0];
                bool in_detect = false;
                for (int c : cons_[dout]) in_detect = in_detect || detect_nodes_.count(g_.nodes[size_t(c)].name);
                done_.insert(int(i));
                done_.insert(d);
                plan_.stats.ir_nodes += 2;
                if (is4d(n.inputs[0]) && !in_detect)
                    fq_[dout] = FakeQ{n.inputs[0], sc, false};
                else
                    generic_fq_[dout] = FakeQ{n.inputs[0], sc, false};  // lowered where it is first read
            } else if (n.op_type == "DequantizeLinear" && n.domain.empty() && !done_.count(int(i))) {
                any_qdq_ = true;
                const Tensor* q = n.inputs.empty() ? nullptr : g_.find_initializer(n.inputs[0]);
                YOLOC_CHECK(q, "node ", n.label(), ": the GPU engine takes DequantizeLinear only on constants or "
                            "after a QuantizeLinear");
                bool conv_weight = !cons_[n.outputs[0]].empty();
                for (int c : cons_[n.outputs[0]]) {
                    const Node& u = g_.nodes[size_t(c)];
                    conv_weight = conv_weight && u.op_type == "FusedConv" && u.inputs.size() > 1 &&
                                  u.inputs[1] == n.outputs[0] && u.inputs[0] != n.outputs[0];
                }
                const Tensor* sc = n.inputs.size() < 2 ? nullptr : g_.find_initializer(n.inputs[1]);
                bool int8_w = conv_weight && q->dtype() == DType::Int8 && q->rank() == 4 && sc &&
                              sc->dtype() == DType::Float32 &&
                              (sc->numel() == 1 || (sc->numel() == q->dim(0) && n.attr_i("axis", 1) % 4 == 0));
                if (int8_w && n.inputs.size() > 2 && !n.inputs[2].empty()) {
                    const Tensor* zp = g_.find_initializer(n.inputs[2]);
                    int8_w = zp && zp->numel() == sc->numel() && zp->dtype() == DType::Int8;
                    for (int64_t k = 0; int8_w && k < zp->numel(); ++k) int8_w = zp->at_i64(k) == 0;
                }
                if (int8_w)
                    for (int k = 0; k < sc->numel(); ++k)
                        int8_w = int8_w && sc->data<float>()[k] > 0.f && std::isfinite(sc->data<float>()[k]);
                if (int8_w) {
                    wdq_[n.outputs[0]] = int(i);
                } else {
                    // Any other constant: dequantized here, as the reference computes it.
                    std::vector<Tensor> ins;
                    for (const auto& v : n.inputs) {
                        const Tensor* t = v.empty() ? nullptr : g_.find_initializer(v);
                        YOLOC_CHECK(v.empty() || t, "node ", n.label(), ": input ", v, " is not a constant");
                        ins.push_back(t ? *t : Tensor());
                    }
                    dq_consts_[n.outputs[0]] = ref_eval(n, ins, opset_).at(0);
                }
                done_.insert(int(i));
                plan_.stats.ir_nodes += 1;
            }
        }
        if (opts_.precision == Precision::INT8 && !any_qdq_) {
            YOLOC_CHECK(!opts_.int8_requires_qdq, "--precision int8 needs a Q/DQ model (from `yoloc quantize`); this "
                        "model has no QuantizeLinear/DequantizeLinear nodes: quantize it first, or use --precision "
                        "fp16 or best");
            plan_.precision = Precision::FP16;
        }
    }

    void lower_node(int i) {
        const Node& n = g_.nodes[size_t(i)];
        done_.insert(i);
        if (detect_nodes_.count(n.name)) {
            if (n.name == detect_anchor_) lower_detect();
            return;
        }
        YOLOC_CHECK(n.domain.empty() || n.domain == "ai.onnx" || n.domain == "yoloc", "node ", n.label(), ": domain ",
                    n.domain, " is not supported by the GPU engine");
        const std::string& op = n.op_type;
        if (op == "FusedConv" && lower_conv(n)) return;
        if (op == "Split" && lower_split_view(n)) return;
        if (op == "Concat" && lower_concat_in_place(n)) return;
        if (op == "MaxPool" && lower_maxpool(n, i)) return;
        if (op == "Resize" && lower_resize(n)) return;
        if (op == "Identity") {
            rename_[n.outputs[0]] = pv(n.inputs[0]);
            return;
        }
        lower_generic(n);
        ++plan_.stats.ir_nodes;
    }

    // ---- the fused Detect op ------------------------------------------------------------

    void lower_detect() {
        const DetectHead& h = arch_.head;
        // Its output: a graph output, or a Tensor value the rest of the head reads
        // (the end-to-end top-k, or the segment/pose concat).
        LOp l{OpKind::Detect, "Detect", {}, h.output};
        for (size_t li = 0; li < h.levels.size(); ++li) {
            const DetectLevel& L = h.levels[li];
            // The Detect op reads box and class channels side by side, one buffer per level:
            // the Concat(box, cls) of older exports, else a concat made here that the two
            // convs write in place.
            std::string level_value;
            if (!L.concat.empty()) {
                auto it = node_index_.find(L.concat);
                YOLOC_CHECK(it != node_index_.end(), "Detect level concat ", L.concat, " vanished while folding");
                level_value = pv(g_.nodes[size_t(it->second)].outputs[0]);
            } else {
                level_value = "detect level " + std::to_string(li);
                LOp cl{OpKind::Copy, level_value, {nhwc_of(L.box.back().output), nhwc_of(L.cls.back().output)},
                       level_value};
                cl.concat = true;
                cl.nodes = 0;
                const Shape& bs = nhwc_.at(cl.in[0]);
                nhwc_[level_value] = Shape{bs[0], bs[1], bs[2], bs[3] + nhwc_.at(cl.in[1])[3]};
                produced_[level_value] = "concat";
                lops_.push_back(cl);
            }
            YOLOC_CHECK(is_nhwc(level_value), "Detect level ", li, " is not an NHWC activation");
            l.in.push_back(level_value);
            l.p.strides.push_back(int32_t(L.stride));
        }
        l.p.reg_max = int32_t(arch_.reg_max);
        l.p.nc = int32_t(arch_.nc);
        l.p.xyxy = h.xyxy;
        l.nodes = int64_t(detect_nodes_.size());
        const Shape& os = shape_of(h.output);
        int64_t anchors = 0;
        for (const auto& v : l.in) anchors += nhwc_.at(v)[1] * nhwc_.at(v)[2];
        YOLOC_CHECK(os.size() == 3 && os[0] == plan_.input_shape[0] && os[1] == 4 + arch_.nc && os[2] == anchors,
                    "Detect output ", h.output, " has shape ", shape_str(os), ", expected [", plan_.input_shape[0],
                    ", ", 4 + arch_.nc, ", ", anchors, "]");
        lops_.push_back(l);
        new_tensor(h.output);
    }

    // ---- NHWC ops ----------------------------------------------------------------------

    // FusedConv (ir/fuse.h) -> Conv op: bias, SiLU and residual in its epilogue. Weights:
    // a float initializer, or int8 + scales behind a DequantizeLinear (kept as integers
    // for an INT8 conv, else dequantized as the reference does).
    bool lower_conv(const Node& n) {
        if (!(n.inputs.size() >= 2 && is4d(n.inputs[0]) && (g_.is_initializer(n.inputs[1]) || wdq_.count(n.inputs[1])) &&
              (n.inputs.size() < 3 || n.inputs[2].empty() || g_.is_initializer(n.inputs[2]))))
            fail("node ", n.label(), ": the GPU engine needs a 2-D convolution with constant weights and bias");
        YOLOC_CHECK(n.attr_s("auto_pad", "NOTSET") == "NOTSET" && all_ones(n.attr_ints("dilations", {1, 1})),
                    "node ", n.label(), ": auto_pad and dilation are not supported by the GPU engine");
        auto wq_it = wdq_.find(n.inputs[1]);
        const Tensor& w = wq_it == wdq_.end() ? *g_.find_initializer(n.inputs[1])
                                              : *g_.find_initializer(g_.nodes[size_t(wq_it->second)].inputs[0]);
        YOLOC_CHECK(w.rank() == 4 && (w.dtype() == DType::Float32 || wq_it != wdq_.end()), "node ", n.label(),
                    ": weights must be 4-D float");
        const Shape& xs = shape_of(n.inputs[0]);
        const int64_t M = w.dim(0), Cg = w.dim(1), kh = w.dim(2), kw = w.dim(3);
        const int64_t group = n.attr_i("group", 1);
        YOLOC_CHECK(Cg * group == xs[1], "node ", n.label(), ": weights do not match the input channels");
        const bool int8_convs = plan_.precision == Precision::INT8;
        const bool conv_int8 = int8_convs && wq_it != wdq_.end() && fq_.count(n.inputs[0]) && group == 1;
        std::vector<float> wvals(size_t(w.numel())), wscale;
        if (wq_it == wdq_.end()) {
            std::copy(w.data<float>(), w.data<float>() + w.numel(), wvals.begin());
        } else {
            const Tensor& sct = *g_.find_initializer(g_.nodes[size_t(wq_it->second)].inputs[1]);
            const int64_t per = w.numel() / M;
            wscale.resize(size_t(M));
            for (int64_t m = 0; m < M; ++m) wscale[size_t(m)] = sct.data<float>()[sct.numel() == 1 ? 0 : m];
            for (int64_t k = 0; k < w.numel(); ++k) wvals[size_t(k)] = float(w.data<int8_t>()[k]);
            if (!conv_int8)  // dequantize: (q - 0) * scale
                for (int64_t k = 0; k < w.numel(); ++k)
                    wvals[size_t(k)] = float(int64_t(w.data<int8_t>()[k])) * wscale[size_t(k / per)];
        }
        auto st = n.attr_ints("strides", {1, 1});
        auto pd = n.attr_ints("pads", {0, 0, 0, 0});
        LOp l{OpKind::Conv, n.name, {conv_int8 ? nhwc_of(fq_.at(n.inputs[0]).x) : nhwc_of(n.inputs[0])}, n.outputs[0]};
        if (conv_int8) {
            l.p.in_scale = fq_.at(n.inputs[0]).scale;
            l.name += "+int8";
            ++plan_.stats.qdq_folded;
        }
        l.p.kh = int32_t(kh);
        l.p.kw = int32_t(kw);
        l.p.sh = int32_t(st.at(0));
        l.p.sw = int32_t(st.at(1));
        l.p.ph = int32_t(pd.at(0));
        l.p.pw = int32_t(pd.at(1));
        l.p.group = int32_t(group);
        // Weights OIHW -> [kh][kw][C/group][M]: neighbouring threads (output channels) then
        // read neighbouring weights.
        l.p.w_off = int64_t(plan_.weights.size());
        l.p.w_count = M * Cg * kh * kw;
        plan_.weights.resize(plan_.weights.size() + size_t(l.p.w_count));
        float* wd = plan_.weights.data() + l.p.w_off;
        for (int64_t m = 0; m < M; ++m)
            for (int64_t c = 0; c < Cg; ++c)
                for (int64_t y = 0; y < kh; ++y)
                    for (int64_t x = 0; x < kw; ++x)
                        wd[((y * kw + x) * Cg + c) * M + m] = wvals[size_t(((m * Cg + c) * kh + y) * kw + x)];
        l.p.b_off = int64_t(plan_.weights.size());
        l.p.b_count = M;
        if (n.inputs.size() > 2 && !n.inputs[2].empty()) {
            const Tensor& b = *g_.find_initializer(n.inputs[2]);
            YOLOC_CHECK(b.numel() == M && b.dtype() == DType::Float32, "node ", n.label(), ": bad bias");
            plan_.weights.insert(plan_.weights.end(), b.data<float>(), b.data<float>() + M);
        } else {
            plan_.weights.insert(plan_.weights.end(), size_t(M), 0.0f);
        }
        if (conv_int8) {
            l.p.s_off = int64_t(plan_.weights.size());
            l.p.s_count = M;
            plan_.weights.insert(plan_.weights.end(), wscale.begin(), wscale.end());
        }
        if (n.attr_s("activation", "") == "silu") {
            l.p.silu = true;
            l.name += "+silu";
            l.nodes += 2;
        }
        if (n.inputs.size() > 3 && !n.inputs[3].empty()) {
            const std::string& r = n.inputs[3];
            // A Q -> DQ residual of an INT8 conv: fake-quantized in its epilogue.
            auto rq = fq_.find(r);
            if (l.p.in_scale > 0.f && rq != fq_.end()) {
                l.in.push_back(nhwc_of(rq->second.x));
                l.p.res_scale = rq->second.scale;
                ++plan_.stats.qdq_folded;
            } else {
                l.in.push_back(nhwc_of(r));
            }
            l.name += "+add";
            l.nodes += 1;
        }
        const std::string& out = n.outputs[0];
        nhwc_[out] = to_nhwc(shape_of(out));
        produced_[out] = "op";
        lops_.push_back(l);
        return true;
    }

    // A channel Split of an NHWC value: its outputs are views (free).
    bool lower_split_view(const Node& n) {
        if (!is4d(n.inputs[0]) || !is_nhwc(pv(n.inputs[0]))) return false;
        int64_t axis = n.attr_i("axis", 0);
        if (axis < 0) axis += 4;
        if (axis != 1) return false;
        int64_t off = 0;
        const std::string src = pv(n.inputs[0]);
        for (const auto& o : n.outputs) {
            place_[o] = Place{src, off};
            nhwc_[o] = to_nhwc(shape_of(o));
            produced_[o] = "view";
            off += shape_of(o)[1];
            ++plan_.stats.split_views;
        }
        plan_.stats.ir_nodes += 1;
        return true;
    }

    // A channel Concat of NHWC values: free when its producers can write in place
    // (place_concats), else Copy ops.
    bool lower_concat_in_place(const Node& n) {
        if (!is4d(n.outputs[0])) return false;
        int64_t axis = n.attr_i("axis", 0);
        if (axis < 0) axis += 4;
        if (axis != 1) return false;
        for (const auto& v : n.inputs)
            if (!is_nhwc(pv(v))) return false;
        LOp l{OpKind::Copy, n.name, {}, n.outputs[0]};
        for (const auto& v : n.inputs) l.in.push_back(pv(v));
        l.concat = true;
        nhwc_[l.out] = to_nhwc(shape_of(l.out));
        produced_[l.out] = "concat";
        lops_.push_back(l);
        return true;
    }

    bool lower_maxpool(const Node& n, int i) {
        if (!(is4d(n.inputs[0]) && n.outputs.size() == 1 && n.attr_i("ceil_mode", 0) == 0 &&
              n.attr_s("auto_pad", "NOTSET") == "NOTSET" && n.attr_i("storage_order", 0) == 0 &&
              all_ones(n.attr_ints("dilations", {1, 1})) && n.attr_ints("kernel_shape").size() == 2))
            fail("node ", n.label(), ": this MaxPool form (ceil_mode, auto_pad, dilations or indices) is not "
                 "supported by the GPU engine");
        auto k = n.attr_ints("kernel_shape");
        auto s = n.attr_ints("strides", {1, 1});
        auto pd = n.attr_ints("pads", {0, 0, 0, 0});
        LOp l{OpKind::MaxPool, n.name, {nhwc_of(n.inputs[0])}, n.outputs[0]};
        l.p.kh = int32_t(k[0]);
        l.p.kw = int32_t(k[1]);
        l.p.sh = int32_t(s[0]);
        l.p.sw = int32_t(s[1]);
        l.p.ph = int32_t(pd[0]);
        l.p.pw = int32_t(pd[1]);
        nhwc_[l.out] = to_nhwc(shape_of(l.out));
        produced_[l.out] = "op";
        // SPPF: pools of the same stride-1 "same" window chained on each other's output
        // are one pass over the input (windows k, 2k-1, 3k-2 ...).
        const bool same = s[0] == 1 && s[1] == 1 && k[0] % 2 == 1 && k[1] % 2 == 1 && pd[0] == k[0] / 2 &&
                          pd[1] == k[1] / 2 && pd[2] == pd[0] && pd[3] == pd[1] &&
                          shape_of(n.outputs[0]) == shape_of(n.inputs[0]);
        std::string last = n.outputs[0];
        while (same && l.more.size() < 3 && !graph_outs_.count(last)) {
            int next = -1;
            for (int c : cons_[last]) {
                const Node& q = g_.nodes[size_t(c)];
                if (q.op_type == "MaxPool" && !done_.count(c) && c > i && q.outputs.size() == 1 && q.inputs[0] == last &&
                    q.attr_ints("kernel_shape") == k && q.attr_ints("strides", {1, 1}) == s &&
                    q.attr_ints("pads", {0, 0, 0, 0}) == pd && q.attr_i("ceil_mode", 0) == 0 &&
                    q.attr_s("auto_pad", "NOTSET") == "NOTSET" && all_ones(q.attr_ints("dilations", {1, 1})) &&
                    q.attr_i("storage_order", 0) == 0)
                    next = c;
            }
            if (next < 0) break;
            const Node& q = g_.nodes[size_t(next)];
            done_.insert(next);
            last = q.outputs[0];
            l.more.push_back(last);
            l.name += "+" + q.name;
            l.nodes += 1;
            nhwc_[last] = to_nhwc(shape_of(last));
            produced_[last] = "op";
        }
        lops_.push_back(l);
        return true;
    }

    bool lower_resize(const Node& n) {
        YOLOC_CHECK(is4d(n.inputs[0]) && n.attr_s("mode", "nearest") == "nearest",
                    "node ", n.label(), ": only nearest Resize is supported by the GPU engine");
        const Shape& is = shape_of(n.inputs[0]);
        const Shape& os = shape_of(n.outputs[0]);
        YOLOC_CHECK(os[0] == is[0] && os[1] == is[1] && os[2] % is[2] == 0 && os[3] % is[3] == 0,
                    "node ", n.label(), ": only integer up-sampling is supported by the GPU engine");
        // With an integer factor, asymmetric/floor (what exporters write) maps output y to
        // input y / f; anything else is refused.
        std::string ctm = n.attr_s("coordinate_transformation_mode", "half_pixel");
        std::string nm = n.attr_s("nearest_mode", "round_prefer_floor");
        YOLOC_CHECK(ctm == "asymmetric" && nm == "floor", "node ", n.label(), ": Resize with ", ctm, "/", nm,
                    " is not supported by the GPU engine (asymmetric/floor is)");
        LOp l{OpKind::Resize, n.name, {nhwc_of(n.inputs[0])}, n.outputs[0]};
        l.p.fy = int32_t(os[2] / is[2]);
        l.p.fx = int32_t(os[3] / is[3]);
        nhwc_[l.out] = to_nhwc(os);
        produced_[l.out] = "op";
        lops_.push_back(l);
        return true;
    }

    // ---- the generic tier ----------------------------------------------------------------

    void lower_generic(const Node& n);
    void lower_binary(const Node& n, const std::string& a, const std::string& b, const std::string& out, int bop,
                      const std::string& suffix = "");
    void lower_copy(const Node& n, const std::string& x, const std::string& out, const Shape& dims,
                    const std::vector<int64_t>& xs, int64_t x_off, const std::vector<int64_t>& ys, int64_t y_off,
                    const std::string& suffix = "");
    void lower_reshape_like(const Node& n);

    // ---- buffers and ops ---------------------------------------------------------------

    void place_concats();
    void emit();

    const Graph& g_;
    const ShapeInfo& info_;
    const PlanOptions& opts_;
    const YoloArch& arch_;
    Plan& plan_;
    const int64_t opset_;
    std::string input_;
    std::map<std::string, int> node_index_;
    std::map<std::string, std::vector<int>> cons_;
    std::set<std::string> graph_outs_;
    std::set<int> done_;
    bool fuse_detect_ = false;
    std::set<std::string> detect_nodes_;
    std::string detect_anchor_;
    struct FakeQ {
        std::string x;
        float scale = 0.f;
        bool materialized = false;
    };
    std::map<std::string, FakeQ> fq_, generic_fq_;
    std::map<std::string, int> wdq_;
    std::map<std::string, Tensor> dq_consts_;
    bool any_qdq_ = false;

    std::vector<LOp> lops_;
    std::map<std::string, Place> place_;
    std::map<std::string, std::string> produced_;
    std::map<std::string, std::string> rename_;
    std::map<std::string, Shape> nhwc_;
    std::map<std::string, TensorValue> tensors_;
    std::map<std::string, std::string> as_nhwc_, as_tensor_;
    std::set<std::string> generic_ops_;
    std::map<size_t, std::vector<std::pair<std::string, int64_t>>> copies_;  // concat LOp -> (value, channel offset)

public:
    const std::set<std::string>& generic_op_types() const { return generic_ops_; }
};

// ---- generic lowering --------------------------------------------------------------------

void Lowering::lower_copy(const Node& n, const std::string& x, const std::string& out, const Shape& dims,
                          const std::vector<int64_t>& xs, int64_t x_off, const std::vector<int64_t>& ys, int64_t y_off,
                          const std::string& suffix) {
    LOp& l = generic(n, GenericKind::Copy, {x}, out, suffix);
    append(l.p.ints, pad6(dims, 1));
    append(l.p.ints, pad6(xs, 0));
    append(l.p.ints, pad6(ys, 0));
    l.p.ints.push_back(x_off);
    l.p.ints.push_back(y_off);
}

// Reshape, Flatten, Squeeze, Unsqueeze: the same elements in the same order.
void Lowering::lower_reshape_like(const Node& n) {
    const std::string x = tensor_of(n.inputs[0]);
    new_tensor(n.outputs[0], tensors_.at(x).integer);
    const int64_t count = shape_numel(shape_of(n.outputs[0]));
    lower_copy(n, x, n.outputs[0], Shape{count}, {1}, 0, {1}, 0);
}

void Lowering::lower_binary(const Node& n, const std::string& a, const std::string& b, const std::string& out,
                            int bop, const std::string& suffix) {
    const TensorValue& ta = tensors_.at(a);
    const TensorValue& tb = tensors_.at(b);
    YOLOC_CHECK(ta.integer == tb.integer, "node ", n.label(), ": operands of different types (",
                ta.integer ? "int" : "float", ", ", tb.integer ? "int" : "float", ")");
    Shape os = ta.shape;
    {
        const size_t r = std::max(ta.shape.size(), tb.shape.size());
        os.assign(r, 1);
        for (size_t k = 0; k < r; ++k) {
            const int64_t da = k < r - ta.shape.size() ? 1 : ta.shape[k - (r - ta.shape.size())];
            const int64_t db = k < r - tb.shape.size() ? 1 : tb.shape[k - (r - tb.shape.size())];
            YOLOC_CHECK(da == db || da == 1 || db == 1, "node ", n.label(), ": shapes do not broadcast");
            os[k] = da == 1 ? db : da;
        }
    }
    LOp& l = generic(n, GenericKind::Binary, {a, b}, out, suffix);
    l.p.sub = bop;
    append(l.p.ints, pad6(os, 1));
    append(l.p.ints, bstrides6(ta.shape, os));
    append(l.p.ints, bstrides6(tb.shape, os));
}

// Numbers of the generic tier's binary ops (engine/cuda/generic_ops.h BinaryOp).
int binary_code(const std::string& op, bool fmod) {
    static const std::map<std::string, int> m = {
        {"Add", 0},   {"Sub", 1},   {"Mul", 2},          {"Div", 3},           {"Pow", 4},  {"Min", 5}, {"Max", 6},
        {"Equal", 9}, {"Less", 10}, {"Greater", 11},     {"LessOrEqual", 12},  {"GreaterOrEqual", 13},
        {"And", 14},  {"Or", 15},   {"Xor", 16},         {"Sum", 0}};
    if (op == "Mod") return fmod ? 8 : 7;
    auto it = m.find(op);
    return it == m.end() ? -1 : it->second;
}

int unary_code(const std::string& op, float* a, float* b, const Node& n) {
    int code = 0;
#define YOLOC_UNARY_CODE(name, an, ad, bn, bd, expr)             \
    if (op == #name) {                                           \
        *a = std::string(an).empty() ? ad : n.attr_f(an, ad);    \
        *b = std::string(bn).empty() ? bd : n.attr_f(bn, bd);    \
        return code;                                             \
    }                                                            \
    ++code;
    YOLOC_UNARY_OPS(YOLOC_UNARY_CODE)
#undef YOLOC_UNARY_CODE
    return -1;
}

void Lowering::lower_generic(const Node& n) {
    const std::string& op = n.op_type;
    auto out_shape = [&](size_t k = 0) -> const Shape& { return shape_of(n.outputs.at(k)); };
    auto axis_of = [&](int64_t a, size_t rank) {
        if (a < 0) a += int64_t(rank);
        YOLOC_CHECK(a >= 0 && a < int64_t(rank), "node ", n.label(), ": axis out of range");
        return a;
    };
    float ua = 0.f, ub = 0.f;
    const int ucode = unary_code(op, &ua, &ub, n);
    if (ucode >= 0 && n.domain.empty()) {
        const std::string x = tensor_of(n.inputs[0]);
        YOLOC_CHECK(!tensors_.at(x).integer, "node ", n.label(), ": ", op, " of an integer tensor");
        new_tensor(n.outputs[0]);
        LOp& l = generic(n, GenericKind::Unary, {x}, n.outputs[0]);
        l.p.sub = ucode;
        l.p.floats = {ua, ub};
        return;
    }
    const int bcode = binary_code(op, n.attr_i("fmod", 0) != 0);
    if (bcode >= 0) {
        YOLOC_CHECK(!n.inputs.empty(), "node ", n.label(), ": no inputs");
        std::string acc = tensor_of(n.inputs[0]);
        if (n.inputs.size() == 1) {  // Sum/Min/Max of one input
            new_tensor(n.outputs[0], tensors_.at(acc).integer);
            lower_copy(n, acc, n.outputs[0], Shape{shape_numel(out_shape())}, {1}, 0, {1}, 0);
            return;
        }
        for (size_t k = 1; k < n.inputs.size(); ++k) {
            const std::string b = tensor_of(n.inputs[k]);
            const bool last = k + 1 == n.inputs.size();
            const std::string o = last ? n.outputs[0] : n.outputs[0] + "#" + std::to_string(k);
            if (last) {
                new_tensor(o);
            } else {
                // Broadcast of the first k inputs.
                TensorValue tv = tensors_.at(acc);
                const Shape& sb = tensors_.at(b).shape;
                const size_t r = std::max(tv.shape.size(), sb.size());
                Shape s(r, 1);
                for (size_t d = 0; d < r; ++d) {
                    const int64_t x = d < r - tv.shape.size() ? 1 : tv.shape[d - (r - tv.shape.size())];
                    const int64_t y = d < r - sb.size() ? 1 : sb[d - (r - sb.size())];
                    s[d] = x == 1 ? y : x;
                }
                tensors_[o] = TensorValue{s, tv.integer};
                produced_[o] = "op";
            }
            lower_binary(n, acc, b, o, bcode, last ? "" : "#" + std::to_string(k));
            acc = o;
        }
        return;
    }
    if (op == "Where") {
        const std::string c = tensor_of(n.inputs[0]), a = tensor_of(n.inputs[1]), b = tensor_of(n.inputs[2]);
        YOLOC_CHECK(tensors_.at(c).integer, "node ", n.label(), ": the condition is not boolean");
        new_tensor(n.outputs[0], tensors_.at(a).integer);
        const Shape& os = out_shape();
        LOp& l = generic(n, GenericKind::Where, {c, a, b}, n.outputs[0]);
        append(l.p.ints, pad6(os, 1));
        append(l.p.ints, bstrides6(tensors_.at(c).shape, os));
        append(l.p.ints, bstrides6(tensors_.at(a).shape, os));
        append(l.p.ints, bstrides6(tensors_.at(b).shape, os));
        return;
    }
    if (op == "Clip") {
        // min(max(x, lo), hi) with the bounds as constants.
        std::string cur = tensor_of(n.inputs[0]);
        float lo = -INFINITY, hi = INFINITY;
        if (opset_ >= 11) {
            auto bound = [&](size_t i, float dflt) {
                if (i >= n.inputs.size() || n.inputs[i].empty()) return dflt;
                const Tensor* t = constant(n.inputs[i]);
                YOLOC_CHECK(t && t->numel() == 1, "node ", n.label(), ": Clip bounds must be constants");
                return float(t->at_f64(0));
            };
            lo = bound(1, lo);
            hi = bound(2, hi);
        } else {
            lo = n.attr_f("min", lo);
            hi = n.attr_f("max", hi);
        }
        const std::string clo = const_tensor(n.name + "#lo", Tensor::from_floats({1}, {lo}));
        const std::string chi = const_tensor(n.name + "#hi", Tensor::from_floats({1}, {hi}));
        const std::string mid = n.outputs[0] + "#lo";
        tensors_[mid] = TensorValue{tensors_.at(cur).shape, false};
        produced_[mid] = "op";
        lower_binary(n, cur, clo, mid, 6, "#lo");
        new_tensor(n.outputs[0]);
        lower_binary(n, mid, chi, n.outputs[0], 5);
        return;
    }
    if (op == "Softmax" || op == "LogSoftmax") {
        const std::string x = tensor_of(n.inputs[0]);
        const Shape& s = tensors_.at(x).shape;
        const int64_t axis = axis_of(n.attr_i("axis", opset_ >= 13 ? -1 : 1), s.size());
        int64_t outer = 1, len = 1, inner = 1;
        for (int64_t k = 0; k < axis; ++k) outer *= s[size_t(k)];
        if (opset_ >= 13) {
            len = s[size_t(axis)];
            for (size_t k = size_t(axis) + 1; k < s.size(); ++k) inner *= s[k];
        } else {
            len = shape_numel(s) / std::max<int64_t>(outer, 1);
        }
        new_tensor(n.outputs[0]);
        LOp& l = generic(n, GenericKind::Softmax, {x}, n.outputs[0]);
        l.p.sub = op == "LogSoftmax" ? 1 : 0;
        l.p.ints = {outer, len, inner};
        return;
    }
    if (op == "MatMul") {
        const std::string a = tensor_of(n.inputs[0]), b = tensor_of(n.inputs[1]);
        const Shape sa0 = tensors_.at(a).shape, sb0 = tensors_.at(b).shape;
        YOLOC_CHECK(!tensors_.at(a).integer && !tensors_.at(b).integer, "node ", n.label(), ": integer MatMul");
        const Shape sa = sa0.size() == 1 ? Shape{1, sa0[0]} : sa0;
        const Shape sb = sb0.size() == 1 ? Shape{sb0[0], 1} : sb0;
        const int64_t M = sa[sa.size() - 2], K = sa.back(), N = sb.back();
        const Shape ba(sa.begin(), sa.end() - 2), bb(sb.begin(), sb.end() - 2);
        const size_t r = std::max(ba.size(), bb.size());
        YOLOC_CHECK(r <= 4, "node ", n.label(), ": MatMul with more than 4 batch dims");
        Shape batch(r, 1);
        for (size_t k = 0; k < r; ++k) {
            const int64_t x = k < r - ba.size() ? 1 : ba[k - (r - ba.size())];
            const int64_t y = k < r - bb.size() ? 1 : bb[k - (r - bb.size())];
            batch[k] = x == 1 ? y : x;
        }
        auto mstrides = [&](const Shape& bs, int64_t mat) {  // matrix strides per batch dim, padded to 4
            std::vector<int64_t> st(r, 0);
            int64_t s = mat;
            for (size_t k = bs.size(); k-- > 0;) {
                st[k + (r - bs.size())] = bs[k] == 1 ? 0 : s;
                s *= bs[k];
            }
            std::vector<int64_t> p(4 - r, 0);
            p.insert(p.end(), st.begin(), st.end());
            return p;
        };
        new_tensor(n.outputs[0]);
        LOp& l = generic(n, GenericKind::MatMul, {a, b}, n.outputs[0]);
        l.p.ints = {M, N, K};
        std::vector<int64_t> bp(4 - r, 1);
        bp.insert(bp.end(), batch.begin(), batch.end());
        append(l.p.ints, bp);
        append(l.p.ints, mstrides(ba, M * K));
        append(l.p.ints, mstrides(bb, K * N));
        return;
    }
    if (op == "Reshape" || op == "Flatten" || op == "Squeeze" || op == "Unsqueeze") {
        lower_reshape_like(n);
        return;
    }
    if (op == "Transpose") {
        const std::string x = tensor_of(n.inputs[0]);
        const Shape& s = tensors_.at(x).shape;
        std::vector<int64_t> perm = n.attr_ints("perm");
        if (perm.empty())
            for (size_t k = s.size(); k-- > 0;) perm.push_back(int64_t(k));
        const auto st = strides_of(s);
        std::vector<int64_t> xs;
        for (int64_t p : perm) xs.push_back(st[size_t(axis_of(p, s.size()))]);
        new_tensor(n.outputs[0], tensors_.at(x).integer);
        lower_copy(n, x, n.outputs[0], out_shape(), xs, 0, strides_of(out_shape()), 0);
        return;
    }
    if (op == "Slice") {
        const std::string x = tensor_of(n.inputs[0]);
        const Shape& s = tensors_.at(x).shape;
        auto ints_of = [&](size_t i) -> std::vector<int64_t> {
            if (i >= n.inputs.size() || n.inputs[i].empty()) return {};
            const Tensor* t = constant(n.inputs[i]);
            YOLOC_CHECK(t, "node ", n.label(), ": Slice parameters must be constants");
            return t->to_int64s();
        };
        std::vector<int64_t> starts, ends, axes, steps;
        if (opset_ >= 10) {
            starts = ints_of(1);
            ends = ints_of(2);
            axes = ints_of(3);
            steps = ints_of(4);
        } else {
            starts = n.attr_ints("starts");
            ends = n.attr_ints("ends");
            axes = n.attr_ints("axes");
        }
        if (axes.empty())
            for (size_t k = 0; k < starts.size(); ++k) axes.push_back(int64_t(k));
        if (steps.empty()) steps.assign(starts.size(), 1);
        const auto st = strides_of(s);
        std::vector<int64_t> xs = st;
        int64_t off = 0;
        for (size_t i = 0; i < axes.size(); ++i) {
            const size_t a = size_t(axis_of(axes[i], s.size()));
            const int64_t len = s[a], p = steps[i];
            YOLOC_CHECK(p != 0, "node ", n.label(), ": slice step 0");
            int64_t b = starts[i];
            if (b < 0) b += len;
            b = p > 0 ? std::min(std::max<int64_t>(b, 0), len) : std::min(std::max<int64_t>(b, -1), len - 1);
            off += b * st[a];
            xs[a] = st[a] * p;
        }
        new_tensor(n.outputs[0], tensors_.at(x).integer);
        if (shape_numel(out_shape()) == 0) fail("node ", n.label(), ": an empty slice is not supported by the GPU engine");
        lower_copy(n, x, n.outputs[0], out_shape(), xs, off, strides_of(out_shape()), 0);
        return;
    }
    if (op == "Expand") {
        const std::string x = tensor_of(n.inputs[0]);
        new_tensor(n.outputs[0], tensors_.at(x).integer);
        const Shape& os = out_shape();
        std::vector<int64_t> xs = bstrides6(tensors_.at(x).shape, os);
        xs.erase(xs.begin(), xs.begin() + (kGenericRank - int64_t(os.size())));
        lower_copy(n, x, n.outputs[0], os, xs, 0, strides_of(os), 0);
        return;
    }
    if (op == "Tile") {
        // Output dim k of length r*l read as the pair (r, l): rank 3 at most.
        const std::string x = tensor_of(n.inputs[0]);
        const Shape& s = tensors_.at(x).shape;
        YOLOC_CHECK(s.size() <= 3, "node ", n.label(), ": Tile of rank ", s.size(), " is not supported by the GPU engine");
        const Tensor* reps = constant(n.inputs[1]);
        YOLOC_CHECK(reps, "node ", n.label(), ": Tile repeats must be constants");
        const auto rv = reps->to_int64s();
        const auto st = strides_of(s);
        Shape dims;
        std::vector<int64_t> xs;
        for (size_t k = 0; k < s.size(); ++k) {
            dims.push_back(rv[k]);
            dims.push_back(s[k]);
            xs.push_back(0);
            xs.push_back(st[k]);
        }
        new_tensor(n.outputs[0], tensors_.at(x).integer);
        lower_copy(n, x, n.outputs[0], dims, xs, 0, strides_of(dims), 0);
        return;
    }
    if (op == "Concat") {
        const Shape& os = out_shape();
        const int64_t axis = axis_of(n.attr_i("axis", 0), os.size());
        std::vector<std::string> ins;
        for (const auto& v : n.inputs) ins.push_back(tensor_of(v));
        new_tensor(n.outputs[0], tensors_.at(ins[0]).integer);
        const auto ost = strides_of(os);
        int64_t off = 0;
        for (size_t k = 0; k < ins.size(); ++k) {
            const Shape& s = tensors_.at(ins[k]).shape;
            if (shape_numel(s) > 0)
                lower_copy(n, ins[k], n.outputs[0], s, strides_of(s), 0, ost, off * ost[size_t(axis)],
                           "#" + std::to_string(k));
            off += s[size_t(axis)];
        }
        return;
    }
    if (op == "Split") {
        const std::string x = tensor_of(n.inputs[0]);
        const Shape& s = tensors_.at(x).shape;
        const int64_t axis = axis_of(n.attr_i("axis", 0), s.size());
        const auto st = strides_of(s);
        int64_t off = 0;
        for (size_t k = 0; k < n.outputs.size(); ++k) {
            const std::string& o = n.outputs[k];
            if (o.empty()) continue;
            new_tensor(o, tensors_.at(x).integer);
            const Shape& os = shape_of(o);
            if (shape_numel(os) > 0)
                lower_copy(n, x, o, os, st, off * st[size_t(axis)], strides_of(os), 0, "#" + std::to_string(k));
            off += os[size_t(axis)];
        }
        return;
    }
    if (op == "Gather") {
        const std::string x = tensor_of(n.inputs[0]), idx = tensor_of(n.inputs[1]);
        YOLOC_CHECK(tensors_.at(idx).integer, "node ", n.label(), ": Gather indices are not integers");
        const Shape& s = tensors_.at(x).shape;
        const int64_t axis = axis_of(n.attr_i("axis", 0), s.size());
        int64_t outer = 1, inner = 1;
        for (int64_t k = 0; k < axis; ++k) outer *= s[size_t(k)];
        for (size_t k = size_t(axis) + 1; k < s.size(); ++k) inner *= s[k];
        new_tensor(n.outputs[0], tensors_.at(x).integer);
        LOp& l = generic(n, GenericKind::Gather, {x, idx}, n.outputs[0]);
        l.p.ints = {outer, s[size_t(axis)], inner, shape_numel(tensors_.at(idx).shape)};
        return;
    }
    if (op == "GatherElements") {
        const std::string x = tensor_of(n.inputs[0]), idx = tensor_of(n.inputs[1]);
        YOLOC_CHECK(tensors_.at(idx).integer, "node ", n.label(), ": indices are not integers");
        const Shape& s = tensors_.at(x).shape;
        const Shape& is = tensors_.at(idx).shape;
        const int64_t axis = axis_of(n.attr_i("axis", 0), s.size());
        new_tensor(n.outputs[0], tensors_.at(x).integer);
        LOp& l = generic(n, GenericKind::GatherElements, {x, idx}, n.outputs[0]);
        append(l.p.ints, pad6(is, 1));
        append(l.p.ints, pad6(strides_of(s), 0));
        l.p.ints.push_back(axis + (kGenericRank - int64_t(s.size())));
        l.p.ints.push_back(s[size_t(axis)]);
        return;
    }
    if (op == "TopK" || op == "ArgMax" || op == "ArgMin") {
        const std::string x = tensor_of(n.inputs[0]);
        const Shape& s = tensors_.at(x).shape;
        int64_t axis = 0, k = 1, largest = 1;
        std::string values, indices;
        if (op == "TopK") {
            axis = axis_of(n.attr_i("axis", -1), s.size());
            if (opset_ >= 10) {
                const Tensor* kt = constant(n.inputs[1]);
                YOLOC_CHECK(kt && kt->numel() == 1, "node ", n.label(), ": K must be a constant");
                k = kt->at_i64(0);
            } else {
                k = n.attr_i("k", 1);
            }
            largest = n.attr_i("largest", 1);
            values = n.outputs[0].empty() ? n.name + "#values" : n.outputs[0];
            indices = n.outputs.size() > 1 && !n.outputs[1].empty() ? n.outputs[1] : n.name + "#indices";
            if (n.outputs[0].empty()) {
                Shape vs = s;
                vs[size_t(axis)] = k;
                tensors_[values] = TensorValue{vs, tensors_.at(x).integer};
                produced_[values] = "op";
            } else {
                new_tensor(values, tensors_.at(x).integer);
            }
            if (indices == n.name + "#indices") {
                Shape vs = s;
                vs[size_t(axis)] = k;
                tensors_[indices] = TensorValue{vs, true};
                produced_[indices] = "op";
            } else {
                new_tensor(indices, true);
            }
        } else {
            // ArgMax / ArgMin: the first extreme index is a TopK of 1 (lower index first on ties).
            YOLOC_CHECK(n.attr_i("select_last_index", 0) == 0, "node ", n.label(),
                        ": select_last_index is not supported by the GPU engine");
            axis = axis_of(n.attr_i("axis", 0), s.size());
            largest = op == "ArgMax";
            values = n.name + "#values";
            Shape vs = s;
            vs[size_t(axis)] = 1;
            tensors_[values] = TensorValue{vs, tensors_.at(x).integer};
            produced_[values] = "op";
            indices = n.outputs[0];
            new_tensor(indices, true);
        }
        YOLOC_CHECK(k >= 1 && k <= s[size_t(axis)], "node ", n.label(), ": K = ", k, " for an axis of ", s[size_t(axis)]);
        int64_t outer = 1, inner = 1;
        for (int64_t d = 0; d < axis; ++d) outer *= s[size_t(d)];
        for (size_t d = size_t(axis) + 1; d < s.size(); ++d) inner *= s[d];
        LOp& l = generic(n, GenericKind::TopK, {x}, values);
        l.p.sub = largest ? 1 : 0;
        l.p.ints = {outer, s[size_t(axis)], inner, k};
        l.more = {indices};
        return;
    }
    if (op == "ReduceMax" || op == "ReduceMin" || op == "ReduceSum" || op == "ReduceMean") {
        const std::string x = tensor_of(n.inputs[0]);
        const Shape& s = tensors_.at(x).shape;
        std::vector<int64_t> axes;
        if (n.inputs.size() > 1 && !n.inputs[1].empty()) {
            const Tensor* t = constant(n.inputs[1]);
            YOLOC_CHECK(t, "node ", n.label(), ": the axes must be constants");
            axes = t->to_int64s();
        } else {
            axes = n.attr_ints("axes");
        }
        std::vector<bool> red(s.size(), axes.empty() && n.attr_i("noop_with_empty_axes", 0) == 0);
        for (int64_t a : axes) red[size_t(axis_of(a, s.size()))] = true;
        const auto st = strides_of(s);
        std::vector<int64_t> dims, xs, rdims, rs;
        for (size_t d = 0; d < s.size(); ++d) {
            if (red[d]) {
                rdims.push_back(s[d]);
                rs.push_back(st[d]);
            } else {
                dims.push_back(s[d]);
                xs.push_back(st[d]);
            }
        }
        new_tensor(n.outputs[0], tensors_.at(x).integer);
        LOp& l = generic(n, GenericKind::Reduce, {x}, n.outputs[0]);
        l.p.sub = op == "ReduceMax" ? 0 : op == "ReduceMin" ? 1 : op == "ReduceSum" ? 2 : 3;
        append(l.p.ints, pad6(dims, 1));
        append(l.p.ints, pad6(xs, 0));
        append(l.p.ints, pad6(rdims, 1));
        append(l.p.ints, pad6(rs, 0));
        return;
    }
    if (op == "Cast") {
        const std::string x = tensor_of(n.inputs[0]);
        const DType to = static_cast<DType>(n.attr_i("to", 1));
        const bool from_int = tensors_.at(x).integer;
        const int64_t count = shape_numel(tensors_.at(x).shape);
        if (to == DType::Float32 || to == DType::Float16 || to == DType::Float64) {
            YOLOC_CHECK(to == DType::Float32, "node ", n.label(), ": the GPU engine keeps ", dtype_name(to),
                        " values as float32; a cast to it would not round the same");
            if (!from_int) {
                rename_[n.outputs[0]] = x;
                return;
            }
            new_tensor(n.outputs[0]);
            LOp& l = generic(n, GenericKind::Cast, {x}, n.outputs[0]);
            l.p.sub = 1;  // IntToFloat
            return;
        }
        new_tensor(n.outputs[0], true);
        if (to == DType::Bool) {
            LOp& l = generic(n, GenericKind::Cast, {x}, n.outputs[0]);
            l.p.sub = from_int ? 3 : 2;  // IntToBool, FloatToBool
            return;
        }
        if (from_int) {  // int -> int: the values fit int32 either way
            lower_copy(n, x, n.outputs[0], Shape{count}, {1}, 0, {1}, 0);
            return;
        }
        LOp& l = generic(n, GenericKind::Cast, {x}, n.outputs[0]);
        l.p.sub = 0;  // FloatToInt
        return;
    }
    if (op == "ConvTranspose") {
        const std::string x = tensor_of(n.inputs[0]);
        const Tensor* w = constant(n.inputs[1]);
        YOLOC_CHECK(w && w->rank() == 4 && tensors_.at(x).shape.size() == 4, "node ", n.label(),
                    ": the GPU engine needs a 2-D ConvTranspose with constant weights");
        YOLOC_CHECK(all_ones(n.attr_ints("dilations", {1, 1})) && n.attr_s("auto_pad", "NOTSET") == "NOTSET" &&
                        !n.has("output_shape"),
                    "node ", n.label(), ": ConvTranspose with dilations, auto_pad or output_shape is not supported by "
                    "the GPU engine");
        auto st = n.attr_ints("strides", {1, 1});
        auto pd = n.attr_ints("pads", {0, 0, 0, 0});
        new_tensor(n.outputs[0]);
        LOp& l = generic(n, GenericKind::ConvTranspose, {x}, n.outputs[0]);
        l.p.ints = {w->dim(2), w->dim(3), st.at(0), st.at(1), pd.at(0), pd.at(1), n.attr_i("group", 1)};
        // output_padding needs no field: the output's size (from shape inference) carries it.
        l.p.w_off = int64_t(plan_.weights.size());
        l.p.w_count = w->numel();
        for (int64_t i = 0; i < w->numel(); ++i) plan_.weights.push_back(float(w->at_f64(i)));
        l.p.b_off = int64_t(plan_.weights.size());
        l.p.b_count = out_shape()[1];
        const Tensor* b = n.inputs.size() > 2 && !n.inputs[2].empty() ? constant(n.inputs[2]) : nullptr;
        for (int64_t i = 0; i < l.p.b_count; ++i) plan_.weights.push_back(b ? float(b->at_f64(i)) : 0.f);
        return;
    }
    if (op == "FusedConv") fail("node ", n.label(), ": internal: fused conv not lowered");
    fail("node ", n.label(), ": op ", op, " is not supported by the GPU engine; supported: the ops of `yoloc check "
         "--help`");
}

// Concat placement, outermost first (reverse order) so that a concat that is itself
// placed in another resolves to the outer buffer.
void Lowering::place_concats() {
    auto placed = [&](const std::string& v) { return place_.count(v) != 0; };
    std::map<std::string, std::string> split_of;  // split output -> split input
    for (const auto& kv : place_) split_of[kv.first] = kv.second.parent;
    copies_.clear();
    for (size_t li = lops_.size(); li-- > 0;) {
        LOp& l = lops_[li];
        if (!l.concat) continue;
        int64_t off = 0;
        for (size_t k = 0; k < l.in.size(); ++k) {
            const std::string& v = l.in[k];
            const int64_t c = nhwc_.at(v)[3];
            ++plan_.stats.concat_inputs;
            bool in_place = false;
            const std::string pr = produced_.count(v) ? produced_[v] : "";
            if (!graph_outs_.count(v) && !placed(v) && (pr == "op" || pr == "concat")) {
                place_[v] = Place{l.out, off};
                in_place = true;
            } else if (pr == "view" && split_of.count(v)) {
                // A Split output: place the split's input when this concat holds all its
                // outputs in order, starting here (C2f: Concat(split0, split1, ...)).
                const std::string& u = split_of[v];
                std::vector<std::string> outs;
                for (const auto& kv : split_of)
                    if (kv.second == u) outs.push_back(kv.first);
                std::sort(outs.begin(), outs.end(),
                          [&](const std::string& a, const std::string& b) { return place_[a].off < place_[b].off; });
                bool ok = !graph_outs_.count(u) && !placed(u) && (produced_[u] == "op" || produced_[u] == "concat") &&
                          !outs.empty() && outs[0] == v &&
                          k + outs.size() <= l.in.size();
                for (size_t j = 0; ok && j < outs.size(); ++j) ok = l.in[k + j] == outs[j];
                if (ok) {
                    place_[u] = Place{l.out, off};
                    for (size_t j = 0; j < outs.size(); ++j) {
                        off += nhwc_.at(l.in[k + j])[3];
                        ++plan_.stats.concat_in_place;
                        if (j > 0) ++plan_.stats.concat_inputs;
                    }
                    k += outs.size() - 1;
                    continue;
                }
            }
            if (in_place) {
                ++plan_.stats.concat_in_place;
            } else {
                copies_[li].push_back({v, off});
                ++plan_.stats.copies;
            }
            off += c;
        }
        YOLOC_CHECK(off == nhwc_.at(l.out)[3], "concat ", l.name, " input widths do not add up");
    }
}

// Buffers (one per root value) and the plan ops.
void Lowering::emit() {
    std::map<std::string, int32_t> buf_of;
    auto resolve = [&](const std::string& v0) {
        std::string v = v0;
        int64_t off = 0;
        for (int guard = 0; guard < 1000; ++guard) {
            auto it = place_.find(v);
            if (it == place_.end()) break;
            off += it->second.off;
            v = it->second.parent;
        }
        auto b = buf_of.find(v);
        if (b == buf_of.end()) {
            PlanBuffer pb;
            pb.name = v;
            pb.kind = BufferKind::Activation;
            pb.shape = nhwc_.at(v);
            pb.elem_bytes = int32_t(precision_bytes(plan_.precision));
            plan_.buffers.push_back(pb);
            b = buf_of.emplace(v, int32_t(plan_.buffers.size() - 1)).first;
        }
        return View{b->second, off, nhwc_.at(v0)[3]};
    };
    {
        PlanBuffer ib;
        ib.name = input_;
        ib.kind = BufferKind::Input;
        ib.shape = plan_.input_shape;
        ib.elem_bytes = 4;
        plan_.buffers.push_back(ib);
        plan_.input_buf = int32_t(plan_.buffers.size() - 1);
        buf_of[input_] = plan_.input_buf;
    }
    std::map<std::string, int32_t> out_buf;
    for (const auto& o : g_.outputs) {
        PlanBuffer ob;
        ob.name = o.name;
        ob.kind = BufferKind::Output;
        ob.shape = shape_of(o.name);
        ob.elem_bytes = 4;
        YOLOC_CHECK(info_.at(o.name).dtype == DType::Float32, "output ", o.name, " is ",
                    dtype_name(info_.at(o.name).dtype), ": the GPU engine writes float32 outputs");
        plan_.buffers.push_back(ob);
        out_buf[o.name] = int32_t(plan_.buffers.size() - 1);
        plan_.output_names.push_back(o.name);
        plan_.output_shapes.push_back(ob.shape);
        plan_.output_bufs.push_back(out_buf[o.name]);
    }
    // A Tensor value: its own buffer, or the graph output it is.
    auto tensor_view = [&](const std::string& v) {
        auto o = out_buf.find(v);
        if (o != out_buf.end()) {
            YOLOC_CHECK(!tensors_.at(v).integer, "output ", v, " is an integer tensor: the GPU engine writes float32 "
                        "outputs");
            return View{o->second, 0, 0};
        }
        auto b = buf_of.find(v);
        if (b == buf_of.end()) {
            const TensorValue& tv = tensors_.at(v);
            PlanBuffer pb;
            pb.name = v;
            pb.kind = BufferKind::Tensor;
            pb.shape = tv.shape;
            pb.elem_bytes = 4;
            pb.integer = tv.integer;
            plan_.buffers.push_back(pb);
            b = buf_of.emplace(v, int32_t(plan_.buffers.size() - 1)).first;
        }
        return View{b->second, 0, 0};
    };
    auto view_of = [&](const std::string& v) {
        if (v == input_) return View{plan_.input_buf, 0, plan_.input_shape[1]};
        if (is_tensor(v)) return tensor_view(v);
        return resolve(v);
    };

    for (size_t li = 0; li < lops_.size(); ++li) {
        const LOp& l = lops_[li];
        plan_.stats.ir_nodes += int(l.nodes);
        if (l.concat) {
            for (const auto& cp : copies_[li]) {
                PlanOp op;
                op.kind = OpKind::Copy;
                op.name = l.name + " <- " + cp.first;
                op.in.push_back(resolve(cp.first));
                View o = resolve(l.out);
                o.c_off += cp.second;
                o.c = op.in[0].c;
                op.out = o;
                plan_.ops.push_back(op);
            }
            continue;
        }
        PlanOp op = l.p;
        op.kind = l.kind;
        op.name = l.name;
        for (const auto& v : l.in) op.in.push_back(view_of(v));
        switch (l.kind) {
            case OpKind::InputPack:
                op.out = resolve(l.out);
                break;
            case OpKind::Detect:
            case OpKind::OutputUnpack:
            case OpKind::Generic:
                op.out = view_of(l.out);
                if (l.kind == OpKind::Detect) ++plan_.stats.detects;
                for (const auto& v : l.more) op.more_out.push_back(view_of(v));
                break;
            default:
                op.out = resolve(l.out);
                if (l.kind == OpKind::FakeQuant) ++plan_.stats.fake_quants;
                if (l.kind == OpKind::Conv) {
                    if (op.int8()) ++plan_.stats.convs_int8;
                    ++plan_.stats.convs;
                    if (op.silu) ++plan_.stats.convs_silu;
                    if (op.in.size() == 2) ++plan_.stats.convs_residual;
                }
                if (l.kind == OpKind::MaxPool) {
                    for (const auto& v : l.more) op.more_out.push_back(resolve(v));
                    plan_.stats.maxpools += 1 + int(l.more.size());
                    if (!l.more.empty()) ++plan_.stats.maxpool_chains;
                }
                if (l.kind == OpKind::Resize) ++plan_.stats.resizes;
                break;
        }
        plan_.ops.push_back(op);
    }
    // Graph outputs still in NHWC: unpack into ONNX layout.
    for (const auto& o : g_.outputs) {
        const std::string v = pv(o.name);
        if (is_tensor(v) && v == o.name) continue;  // written by its generic op
        PlanOp op;
        if (is_tensor(v)) {  // another value's buffer (a rename): copy it
            op.kind = OpKind::Generic;
            op.gop = int32_t(GenericKind::Copy);
            op.name = "output " + o.name;
            const int64_t count = shape_numel(shape_of(o.name));
            append(op.ints, pad6({count}, 1));
            append(op.ints, pad6({1}, 0));
            append(op.ints, pad6({1}, 0));
            op.ints.push_back(0);
            op.ints.push_back(0);
            op.in.push_back(tensor_view(v));
            op.out = View{out_buf[o.name], 0, 0};
            plan_.ops.push_back(op);
            ++plan_.stats.generic_ops;
            continue;
        }
        YOLOC_CHECK(is_nhwc(v), "output ", o.name, " is not produced by the GPU plan");
        op.kind = OpKind::OutputUnpack;
        op.name = "output " + o.name;
        op.in.push_back(resolve(v));
        op.out = View{out_buf[o.name], 0, 0};
        plan_.ops.push_back(op);
    }
}

}  // namespace

Plan build_plan(const Model& original, const PlanOptions& opts) {
    // A static export (batch and size baked into its constants) is re-targeted when
    // another batch or size is asked for, as the CPU path does.
    Model retargeted;
    const Model* src = &original;
    {
        const Graph& og = original.graph;
        if (og.inputs.size() == 1 && og.inputs[0].shape.size() == 4) {
            const auto& d = og.inputs[0].shape;
            bool batch_differs = opts.batch > 0 && d[0].known() && d[0].value != opts.batch;
            bool size_differs = opts.imgsz > 0 && ((d[2].known() && d[2].value != opts.imgsz) ||
                                                   (d[3].known() && d[3].value != opts.imgsz));
            if (batch_differs || size_differs) {
                retargeted = original;
                int64_t sz = opts.imgsz > 0 ? opts.imgsz : (d[2].known() ? d[2].value : 640);
                set_input_size(retargeted, opts.batch > 0 ? opts.batch : (d[0].known() ? d[0].value : 1), sz);
                src = &retargeted;
            }
        }
    }
    const Model& source = *src;
    const Graph& sg = source.graph;
    YOLOC_CHECK(sg.inputs.size() == 1, "the GPU engine needs a model with one input, this one has ", sg.inputs.size());
    const ValueInfo& in0 = sg.inputs[0];
    YOLOC_CHECK(in0.shape.size() == 4, "the GPU engine needs a 4-D NCHW input, ", in0.name, " has rank ",
                in0.shape.size());
    Shape ishape(4);
    for (size_t i = 0; i < 4; ++i) {
        if (in0.shape[i].known()) {
            ishape[i] = in0.shape[i].value;
        } else if (i == 0) {
            ishape[i] = opts.batch > 0 ? opts.batch : 1;
        } else if (i >= 2 && opts.imgsz > 0) {
            ishape[i] = opts.imgsz;
        } else {
            fail("input ", in0.name, " dim ", i, " is symbolic: give the image size");
        }
    }

    // The recogniser reads the model as exported; node names survive folding and fusion
    // (a FusedConv keeps its Conv's name), so its answers apply to the lowered graph too.
    YoloArch arch = recognize_yolo(source);
    Model model = source;
    std::map<std::string, Shape> shapes{{in0.name, ishape}};
    fold_constants(model, shapes);
    fuse_conv_activation(model, shapes);
    ShapeInfo info = infer_shapes(model, shapes);

    Plan plan;
    plan.precision = opts.precision;
    plan.batch = ishape[0];
    plan.input_name = in0.name;
    plan.input_shape = ishape;
    Lowering lowering(model, info, opts, arch, plan);
    lowering.run();
    fold_input_pack(plan);
    if (fuses_siblings(opts.fuse_siblings, plan.batch)) fuse_sibling_convs(plan);
    if (opts.int8_storage && plan.precision == Precision::INT8) assign_int8_storage(plan);
    for (const auto& op : lowering.generic_op_types()) plan.generic_op_types.push_back(op);
    plan.validate();
    return plan;
}

}  // namespace engine
}  // namespace yoloc
