#include "quant/quantize.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <set>

#include "engine/cpu/executor.h"
#include "ir/op_table.h"
#include "ir/shape_inference.h"
#include "quant/fake_quant.h"
#include "yolo/image.h"
#include "yolo/input_size.h"
#include "yolo/letterbox.h"

namespace yoloc {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

bool is_quant_op(const Node& n) {
    const std::string& op = n.op_type;
    return op == "QuantizeLinear" || op == "DequantizeLinear" || op == "DynamicQuantizeLinear" ||
           op == "ConvInteger" || op == "MatMulInteger" || op.rfind("QLinear", 0) == 0 || op == "QGemm" ||
           op == "QAttention" || op == "DynamicQuantizeMatMul";
}

// The value a Conv+SiLU unit produces: Mul(y, Sigmoid(y)) when the Conv output
// feeds exactly that pair, else the Conv output itself.
std::string unit_output(const Graph& g, const Node& conv) {
    const std::string& y = conv.outputs[0];
    std::vector<int> cs = g.consumers(y);
    if (cs.size() != 2) return y;
    const Node* sig = nullptr;
    const Node* mul = nullptr;
    for (int c : cs) {
        const Node& n = g.nodes[size_t(c)];
        if (n.op_type == "Sigmoid") sig = &n;
        if (n.op_type == "Mul") mul = &n;
    }
    if (!sig || !mul) return y;
    const std::string& s = sig->outputs[0];
    bool ok = mul->inputs.size() == 2 && ((mul->inputs[0] == y && mul->inputs[1] == s) ||
                                          (mul->inputs[1] == y && mul->inputs[0] == s));
    return ok ? mul->outputs[0] : y;
}

Model concrete(const Model& m) {
    Model r = m;
    const auto& in = r.graph.inputs;
    YOLOC_CHECK(in.size() == 1 && in[0].shape.size() == 4, "quantize needs one [N,3,H,W] image input");
    bool ok = in[0].shape[0].value == 1 && in[0].shape[2].known() && in[0].shape[3].known();
    if (!ok) set_input_size(r, 1, model_imgsz(m));
    return r;
}

Tensor int8_scalar_zero() { return Tensor(DType::Int8, {}); }

// Symmetric int8 quantization of a Conv weight: per output channel (axis 0) or per tensor.
struct QWeight {
    Tensor q, scale, zp;
    double sqnr_db = 0;
};
QWeight quantize_weight(const Tensor& w, bool per_channel) {
    const int64_t M = w.dim(0), K = w.numel() / M;
    const float* pw = w.data<float>();
    QWeight r;
    r.q = Tensor(DType::Int8, w.shape());
    int64_t ns = per_channel ? M : 1;
    r.scale = per_channel ? Tensor(DType::Float32, {M}) : Tensor(DType::Float32, {});
    r.zp = per_channel ? Tensor(DType::Int8, {M}) : Tensor(DType::Int8, {});
    std::vector<float> s(size_t(ns), 0.f);
    for (int64_t i = 0; i < w.numel(); ++i) {
        size_t c = per_channel ? size_t(i / K) : 0;
        s[c] = std::max(s[c], std::fabs(pw[i]));
    }
    // An all-zero channel (pruned) still needs a positive scale; any works, q stays 0.
    for (auto& v : s) v = v > 0 ? v / 127.0f : 1.0f;
    for (int64_t c = 0; c < ns; ++c) r.scale.data<float>()[c] = s[size_t(c)];
    double sig = 0, noise = 0;
    for (int64_t i = 0; i < w.numel(); ++i) {
        float sc = s[per_channel ? size_t(i / K) : 0];
        // Same arithmetic as QuantizeLinear: float division, round half to even.
        double v = std::nearbyint(double(pw[i] / sc));
        v = std::min(std::max(v, -127.0), 127.0);
        r.q.data<int8_t>()[i] = int8_t(v);
        float back = float(v) * sc;
        sig += double(pw[i]) * pw[i];
        noise += double(back - pw[i]) * (back - pw[i]);
    }
    r.sqnr_db = noise > 0 ? 10 * std::log10(sig / noise) : std::numeric_limits<double>::infinity();
    return r;
}

// Output0 error measure for sensitivity: boxes and class scores have different
// scales, so their relative noise powers are averaged (SQNR of the average).
double output_sqnr(const Tensor& ref, const Tensor& q) {
    if (ref.rank() != 3 || ref.dim(1) <= 4) return sqnr_db(ref, q);
    const int64_t C = ref.dim(1), A = ref.dim(2), N = ref.dim(0);
    double sb = 0, nb = 0, sc = 0, nc = 0;
    const float* a = ref.data<float>();
    const float* b = q.data<float>();
    for (int64_t n = 0; n < N; ++n)
        for (int64_t c = 0; c < C; ++c)
            for (int64_t i = 0; i < A; ++i) {
                int64_t k = (n * C + c) * A + i;
                double d = double(a[k]) - b[k];
                if (c < 4) {
                    sb += double(a[k]) * a[k];
                    nb += d * d;
                } else {
                    sc += double(a[k]) * a[k];
                    nc += d * d;
                }
            }
    double r = 0.5 * ((sb > 0 ? nb / sb : 0) + (sc > 0 ? nc / sc : 0));
    return r > 0 ? -10 * std::log10(r) : std::numeric_limits<double>::infinity();
}

}  // namespace

double sqnr_db(const Tensor& ref, const Tensor& approx) {
    YOLOC_CHECK(ref.numel() == approx.numel(), "sqnr: shapes differ");
    double s = 0, n = 0;
    const float* a = ref.data<float>();
    const float* b = approx.data<float>();
    for (int64_t i = 0; i < ref.numel(); ++i) {
        double d = double(a[i]) - b[i];
        s += double(a[i]) * a[i];
        n += d * d;
    }
    if (n <= 0) return std::numeric_limits<double>::infinity();
    if (s <= 0) return -std::numeric_limits<double>::infinity();
    return 10 * std::log10(s / n);
}

void check_float_model(const Model& model) {
    for (const auto& n : model.graph.nodes)
        if (is_quant_op(n))
            fail("the model is already quantized (node ", n.label(), "); quantize the float model instead");
    for (const auto& kv : model.graph.initializers)
        if (kv.second.dtype() == DType::Int8 || kv.second.dtype() == DType::UInt8)
            fail("the model is already quantized (initializer '", kv.first, "' is ", dtype_name(kv.second.dtype()),
                 "); quantize the float model instead");
}

bool is_dfl_conv(const Graph& g, const Node& n) {
    if (n.op_type != "Conv" || n.inputs.size() < 2) return false;
    const Tensor* w = g.find_initializer(n.inputs[1]);
    if (!w || w->dtype() != DType::Float32 || w->rank() != 4 || w->dim(0) != 1 || w->dim(2) != 1 || w->dim(3) != 1 ||
        w->dim(1) < 2)
        return false;
    for (int64_t i = 0; i < w->numel(); ++i)
        if (w->data<float>()[i] != float(i)) return false;
    return true;
}

QuantPlan plan_quantization(const Model& model, const std::vector<std::string>& exclude, bool quantize_dfl) {
    const Graph& g = model.graph;
    std::set<std::string> ex(exclude.begin(), exclude.end());
    std::set<std::string> names;
    for (const auto& n : g.nodes) names.insert(n.name);
    for (const auto& e : ex)
        YOLOC_CHECK(names.count(e), "--exclude: no node named '", e, "' in the model");
    ShapeInfo info = infer_shapes(concrete(model));
    auto f32_4d = [&](const std::string& v) {
        auto it = info.values.find(v);
        return it != info.values.end() && it->second.dtype == DType::Float32 && it->second.shape.size() == 4;
    };
    std::set<std::string> unit_outs;
    QuantPlan plan;
    for (const auto& n : g.nodes) {
        // TensorRT computes in INT8 the ops the op table marks QuantRole::Compute; of those,
        // yoloc quantizes convolutions (MatMul and ConvTranspose stay float).
        const OpSchema* op = find_op(n.op_type, n.domain);
        if (!op || op->quant != QuantRole::Compute || n.op_type != "Conv" || n.inputs.size() < 2) continue;
        unit_outs.insert(unit_output(g, n));
        const Tensor* w = g.find_initializer(n.inputs[1]);
        if (!w || w->dtype() != DType::Float32 || w->rank() != 4 || !f32_4d(n.inputs[0]) || ex.count(n.name)) continue;
        if (!quantize_dfl && is_dfl_conv(g, n)) continue;
        plan.layers.push_back({n.name, "Conv", n.inputs[0], unit_output(g, n)});
    }
    for (const auto& n : g.nodes) {
        if (n.op_type != "Add" || !n.domain.empty() || n.inputs.size() != 2 || ex.count(n.name)) continue;
        const std::string &a = n.inputs[0], &b = n.inputs[1];
        if (g.is_initializer(a) || g.is_initializer(b) || !f32_4d(a) || !f32_4d(b) || !f32_4d(n.outputs[0])) continue;
        if (info.at(a).shape != info.at(b).shape) continue;
        // The residual is the side that is not a Conv unit's output: the other side
        // is what TensorRT fuses the Add into.
        bool ua = unit_outs.count(a) != 0, ub = unit_outs.count(b) != 0;
        if (ua == ub) continue;
        plan.layers.push_back({n.name, "Add", ua ? b : a, n.outputs[0]});
    }
    return plan;
}

Model insert_qdq(const Model& model, const QuantPlan& plan, const std::map<std::string, double>& act_amax,
                 bool per_channel) {
    YOLOC_CHECK(model.opset() >= 13, "the model's opset is ", model.opset(),
                "; TensorRT's per-channel Q/DQ needs opset >= 13 (re-export with opset 13 or newer)");
    Model r = model;
    Graph& g = r.graph;
    std::map<std::string, std::string> act_dq;   // activation -> its DQ output
    std::map<std::string, std::string> w_dq;     // weight initializer -> its DQ output
    auto act = [&](const std::string& v) -> std::string {
        auto it = act_dq.find(v);
        if (it != act_dq.end()) return it->second;
        auto a = act_amax.find(v);
        YOLOC_CHECK(a != act_amax.end(), "quantize: no calibration range for '", v, "'");
        float scale = a->second > 0 ? float(a->second / 127.0) : 1.0f / 127.0f;
        std::string sname = g.unique_name(v + "_scale");
        g.initializers[sname] = Tensor::scalar_f32(scale);
        std::string zname = g.unique_name(v + "_zero_point");
        g.initializers[zname] = int8_scalar_zero();
        Node q, dq;
        q.op_type = "QuantizeLinear";
        q.name = g.unique_name(v + "_QuantizeLinear");
        q.inputs = {v, sname, zname};
        q.outputs = {g.unique_name(v + "_QuantizeLinear_Output")};
        g.nodes.push_back(q);  // reserve the names for unique_name
        dq.op_type = "DequantizeLinear";
        dq.name = g.unique_name(v + "_DequantizeLinear");
        dq.inputs = {q.outputs[0], sname, zname};
        dq.outputs = {g.unique_name(v + "_DequantizeLinear_Output")};
        g.nodes.push_back(dq);
        act_dq[v] = dq.outputs[0];
        return dq.outputs[0];
    };
    auto weight = [&](const std::string& w) -> std::string {
        auto it = w_dq.find(w);
        if (it != w_dq.end()) return it->second;
        QWeight qw = quantize_weight(g.initializers.at(w), per_channel);
        std::string qn = g.unique_name(w + "_quantized");
        g.initializers[qn] = qw.q;
        std::string sn = g.unique_name(w + "_scale");
        g.initializers[sn] = qw.scale;
        std::string zn = g.unique_name(w + "_zero_point");
        g.initializers[zn] = qw.zp;
        Node dq;
        dq.op_type = "DequantizeLinear";
        dq.name = g.unique_name(w + "_DequantizeLinear");
        dq.inputs = {qn, sn, zn};
        dq.outputs = {g.unique_name(w + "_DequantizeLinear_Output")};
        if (per_channel) dq.attrs["axis"] = Attribute::of_int(0);
        g.nodes.push_back(dq);
        w_dq[w] = dq.outputs[0];
        return dq.outputs[0];
    };
    std::map<std::string, const QuantLayer*> by_node;
    for (const auto& l : plan.layers) by_node[l.node] = &l;
    const size_t n_orig = g.nodes.size();
    for (size_t i = 0; i < n_orig; ++i) {
        auto it = by_node.find(g.nodes[i].name);
        if (it == by_node.end()) continue;
        const QuantLayer& l = *it->second;
        std::string xd = act(l.input);
        // A copy: weight() grows g.nodes, which would leave a reference dangling.
        const std::string wname = l.op == "Conv" ? g.nodes[i].inputs[1] : std::string();
        std::string wd = l.op == "Conv" ? weight(wname) : std::string();
        Node& n = g.nodes[i];  // re-fetch: act()/weight() grew the vector
        if (l.op == "Conv") {
            n.inputs[0] = xd;
            n.inputs[1] = wd;
        } else {
            for (auto& in : n.inputs)
                if (in == l.input) in = xd;
        }
    }
    // Sort first: remove_dead walks the nodes backwards in topological order.
    validate_and_sort(g);
    remove_dead(g);
    return r;
}

std::map<std::string, double> share_concat_amax(const Model& model, const std::map<std::string, double>& amax,
                                                std::vector<std::vector<std::string>>* groups) {
    // Union-find over value names.
    std::map<std::string, std::string> parent;
    std::function<std::string(const std::string&)> find = [&](const std::string& v) -> std::string {
        auto it = parent.find(v);
        if (it == parent.end()) return parent[v] = v;
        if (it->second == v) return v;
        std::string r = find(it->second);
        parent[v] = r;
        return r;
    };
    auto join = [&](const std::string& a, const std::string& b) {
        if (!amax.count(a) || !amax.count(b)) return;
        std::string ra = find(a), rb = find(b);
        if (ra != rb) parent[ra] = rb;
    };
    for (const Node& n : model.graph.nodes) {
        if (n.outputs.empty() || n.inputs.empty()) continue;
        const std::string& y = n.outputs[0];
        // Ops that move values without arithmetic and keep channels (op table): a Concat
        // joins all its inputs, a MaxPool or nearest Resize its input and output.
        const OpSchema* op = find_op(n.op_type, n.domain);
        if (!op || op->quant != QuantRole::Commutes) continue;
        if (op->channels == ChannelFlow::Concat) {
            for (const auto& x : n.inputs)
                if (!x.empty()) join(x, y);
        } else if (op->channels == ChannelFlow::PassThrough && n.attr_s("mode", "nearest") == "nearest") {
            join(n.inputs[0], y);
        }
    }
    std::map<std::string, std::vector<std::string>> members;
    for (const auto& kv : parent) members[find(kv.first)].push_back(kv.first);
    std::map<std::string, double> r = amax;
    for (const auto& g : members) {
        if (g.second.size() < 2) continue;
        double m = 0;
        for (const auto& v : g.second) m = std::max(m, amax.at(v));
        for (const auto& v : g.second) r[v] = m;
        if (groups) groups->push_back(g.second);
    }
    return r;
}

std::vector<std::string> calibration_tensors(const Model& model) {
    Model cm = concrete(model);
    validate_and_sort(cm.graph);
    const Graph& g = cm.graph;
    ShapeInfo info = infer_shapes(cm);
    // Activations: the graph inputs and whatever a node computes from them. Shape/Size
    // outputs (and everything computed only from initializers or Constant nodes) are
    // fixed once the input shape is, so they are not activations.
    std::set<std::string> act;
    for (const auto& in : g.inputs)
        if (!g.is_initializer(in.name)) act.insert(in.name);
    std::vector<std::string> r;
    auto add = [&](const std::string& v) {
        auto it = info.values.find(v);
        if (it != info.values.end() && it->second.dtype == DType::Float32) r.push_back(v);
    };
    for (const auto& in : g.inputs)
        if (act.count(in.name)) add(in.name);
    for (const auto& n : g.nodes) {  // topological order
        if (n.op_type == "Shape" || n.op_type == "Size") continue;
        bool dynamic = false;
        for (const auto& in : n.inputs) dynamic = dynamic || (!in.empty() && act.count(in));
        if (!dynamic) continue;
        for (const auto& o : n.outputs) {
            if (o.empty() || !act.insert(o).second) continue;
            add(o);
        }
    }
    return r;
}

std::string float_hex(float scale) {
    uint32_t bits;
    std::memcpy(&bits, &scale, 4);
    char buf[16];
    std::snprintf(buf, sizeof buf, "%08x", bits);
    return buf;
}

std::string calibration_cache(const std::map<std::string, double>& amax, int trt_version, CalibMethod m) {
    std::string s = "TRT-" + std::to_string(trt_version) + "-" +
                    (m == CalibMethod::MinMax ? "MinMaxCalibration" : "EntropyCalibration2") + "\n";
    for (const auto& kv : amax) {
        float scale = kv.second > 0 ? float(kv.second / 127.0) : 1.0f / 127.0f;
        s += kv.first + ": " + float_hex(scale) + "\n";
    }
    return s;
}

QuantizeResult quantize_model(const Model& model, const std::vector<std::string>& images, const QuantizeOptions& opt,
                              const QuantProgress& progress) {
    check_float_model(model);
    YOLOC_CHECK(model.opset() >= 13, "the model's opset is ", model.opset(),
                "; TensorRT's per-channel Q/DQ needs opset >= 13 (re-export with opset 13 or newer)");
    YOLOC_CHECK(!images.empty(), "quantize: no calibration images");
    QuantizeResult res;
    res.calib_images = int(images.size());
    QuantPlan plan = plan_quantization(model, opt.exclude, opt.quantize_dfl);
    YOLOC_CHECK(!plan.layers.empty(), "quantize: the model has no Conv to quantize");

    // Calibrate every float activation (any rank): the Q/DQ inputs need them, and the
    // TensorRT cache is only useful for implicit INT8 when it covers the network,
    // the 3-D Detect tail included (calibration_tensors()).
    Model cm = concrete(model);
    std::vector<std::string> values;
    std::set<std::string> seen;
    for (const auto& l : plan.layers)
        if (seen.insert(l.input).second) values.push_back(l.input);
    for (const auto& v : calibration_tensors(cm))
        if (seen.insert(v).second) values.push_back(v);

    auto t0 = std::chrono::steady_clock::now();
    std::map<std::string, TensorStats> stats = collect_stats(model, values, images, opt.threads, [&](int d, int t) {
        if (progress) progress("calibrate", d, t);
    });
    std::map<std::string, double> amax;
    for (const auto& kv : stats) amax[kv.first] = choose_amax(kv.second, opt.method, opt.percentile);
    res.calib_seconds = seconds_since(t0);
    res.cache_amax = amax;
    res.cache_text = calibration_cache(amax, opt.trt_version, opt.method);
    // The Q/DQ model's scales: the cache keeps each tensor's own range (implicit INT8
    // lets TensorRT requantize), the Q/DQ nodes share one per concat group.
    if (opt.share_concat_scales) amax = share_concat_amax(model, amax);

    // Inputs shared by the report and the sensitivity analysis.
    const int size = model_imgsz(cm);
    const std::string input = cm.graph.inputs[0].name;
    const std::string out0 = cm.graph.outputs[0].name;
    int n_img = std::max(opt.report_images, opt.sensitivity || opt.keep_fp > 0 ? opt.sensitivity_images : 0);
    n_img = std::min<int>(n_img, int(images.size()));
    std::vector<Tensor> xs;
    for (int i = 0; i < n_img; ++i) xs.push_back(preprocess(load_image(images[size_t(i)]), size));
    ExecutorOptions eo;
    eo.threads = opt.threads;

    std::map<std::string, double> sens;
    std::vector<std::string> keep;
    if (opt.sensitivity || opt.keep_fp > 0) {
        auto ts = std::chrono::steady_clock::now();
        int ns = std::min<int>(opt.sensitivity_images, int(xs.size()));
        auto fexec = make_executor(cm, "fast", eo);
        std::vector<Tensor> ref;
        for (int i = 0; i < ns; ++i) ref.push_back(fexec->run({{input, xs[size_t(i)]}}).at(out0).clone());
        fexec.reset();
        int done = 0;
        for (const auto& l : plan.layers) {
            QuantPlan one;
            one.layers.push_back(l);
            Model qm = prepare_qdq_for_float(insert_qdq(cm, one, amax, opt.per_channel));
            auto qe = make_executor(qm, "fast", eo);
            double worst = 0;
            // Average noise ratio over the images, as SQNR.
            for (int i = 0; i < ns; ++i) {
                Tensor y = qe->run({{input, xs[size_t(i)]}}).at(out0);
                double db = output_sqnr(ref[size_t(i)], y);
                worst += std::isinf(db) ? 0 : std::pow(10.0, -db / 10);
            }
            worst /= std::max(ns, 1);
            sens[l.node] = worst > 0 ? -10 * std::log10(worst) : std::numeric_limits<double>::infinity();
            if (progress) progress("sensitivity", ++done, int(plan.layers.size()));
        }
        std::vector<std::pair<double, std::string>> rank;
        for (const auto& kv : sens) rank.push_back({kv.second, kv.first});
        std::sort(rank.begin(), rank.end());
        for (int i = 0; i < opt.keep_fp && i < int(rank.size()); ++i) keep.push_back(rank[size_t(i)].second);
        res.sensitivity_seconds = seconds_since(ts);
    }
    res.kept_fp = keep;
    QuantPlan final_plan;
    std::set<std::string> keep_set(keep.begin(), keep.end());
    for (const auto& l : plan.layers)
        if (!keep_set.count(l.node)) final_plan.layers.push_back(l);
    res.model = insert_qdq(model, final_plan, amax, opt.per_channel);

    // Report: every planned layer, with the error of its output in the final model.
    auto tr = std::chrono::steady_clock::now();
    std::vector<std::string> outs;
    for (const auto& l : plan.layers) outs.push_back(l.output);
    std::map<std::string, double> sig, noise;
    int nr = std::min<int>(opt.report_images, int(xs.size()));
    if (nr > 0) {
        auto fe = make_executor(with_extra_outputs(cm, outs), "fast", eo);
        Model qc = concrete(res.model);
        auto qe = make_executor(prepare_qdq_for_float(with_extra_outputs(qc, outs)), "fast", eo);
        for (int i = 0; i < nr; ++i) {
            TensorMap a = fe->run({{input, xs[size_t(i)]}});
            TensorMap b = qe->run({{input, xs[size_t(i)]}});
            for (const auto& o : outs) {
                const Tensor &ta = a.at(o), &tb = b.at(o);
                for (int64_t k = 0; k < ta.numel(); ++k) {
                    double x = ta.data<float>()[k], d = x - tb.data<float>()[k];
                    sig[o] += x * x;
                    noise[o] += d * d;
                }
            }
            if (progress) progress("report", i + 1, nr);
        }
    }
    res.report_seconds = seconds_since(tr);
    for (const auto& l : plan.layers) {
        LayerReport lr;
        lr.node = l.node;
        lr.op = l.op;
        lr.input = l.input;
        lr.amax = amax.at(l.input);
        lr.scale = lr.amax > 0 ? lr.amax / 127.0 : 1.0 / 127.0;
        lr.clip_ratio = clipping_ratio(stats.at(l.input), lr.amax);
        lr.kept_fp = keep_set.count(l.node) != 0;
        if (l.op == "Conv") {
            const Node& n = cm.graph.nodes[size_t([&] {
                for (size_t i = 0; i < cm.graph.nodes.size(); ++i)
                    if (cm.graph.nodes[i].name == l.node) return i;
                return size_t(0);
            }())];
            lr.weight_sqnr_db = lr.kept_fp ? std::numeric_limits<double>::infinity()
                                           : quantize_weight(*cm.graph.find_initializer(n.inputs[1]), opt.per_channel).sqnr_db;
        }
        double s = sig[l.output], nn = noise[l.output];
        lr.output_sqnr_db = nn > 0 ? 10 * std::log10(s / nn) : std::numeric_limits<double>::infinity();
        auto it = sens.find(l.node);
        if (it != sens.end()) {
            lr.sensitivity_db = it->second;
            lr.sensitivity_measured = true;
        }
        res.layers.push_back(lr);
    }
    return res;
}

}  // namespace yoloc
