#include "ir/shape_inference.h"

#include <algorithm>
#include <cmath>
#include <set>


namespace yoloc {
namespace {

// Ops whose result we never fold into a constant: Q/DQ on weights must stay
// visible (TensorRT's explicit quantization reads them).
bool never_fold(const Node& n) { return n.op_type == "QuantizeLinear" || n.op_type == "DequantizeLinear"; }

// Largest constant we materialise while inferring (shape subgraphs are tiny; a
// constant Conv on a 1 GiB tensor is not worth holding twice).
constexpr int64_t kMaxFoldElements = int64_t(1) << 26;

struct Inferencer {
    const Model& model;
    std::map<std::string, ValueType> types;
    std::map<std::string, Tensor> consts;  // values known at compile time

    explicit Inferencer(const Model& m) : model(m) {}

    const ValueType& type_of(const Node& n, const std::string& v) {
        auto it = types.find(v);
        if (it == types.end()) fail("node ", n.label(), ": input '", v, "' has no known type");
        return it->second;
    }
    std::vector<ValueType> rule(const Node& n, int64_t opset) {
        const OpSchema& op = op_schema(n);
        if (!op.shape) return eval_on_placeholders(n, opset);
        ShapeInputs in;
        for (const auto& v : n.inputs) {
            if (v.empty()) {
                in.types.push_back(nullptr);
                in.values.push_back(nullptr);
                continue;
            }
            in.types.push_back(&type_of(n, v));
            auto c = consts.find(v);
            in.values.push_back(c == consts.end() ? nullptr : &c->second);
        }
        return op.shape(n, in, opset);
    }

    // Evaluates a data-movement op on zero-filled placeholders of the real shapes
    // (cheap: these ops move at most a few MB in detection graphs).
    std::vector<ValueType> eval_on_placeholders(const Node& n, int64_t opset) {
        std::vector<Tensor> ins;
        for (size_t i = 0; i < n.inputs.size(); ++i) {
            if (n.inputs[i].empty()) {
                ins.emplace_back();
                continue;
            }
            auto c = consts.find(n.inputs[i]);
            if (c != consts.end()) {
                ins.push_back(c->second);
                continue;
            }
            const ValueType& t = type_of(n, n.inputs[i]);
            YOLOC_CHECK(i == 0, "node ", n.label(), ": parameter input ", i, " must be a constant");
            YOLOC_CHECK(shape_numel(t.shape) <= kMaxFoldElements, "node ", n.label(), ": tensor too large");
            ins.emplace_back(t.dtype == DType::Undefined ? DType::Float32 : t.dtype, t.shape);
        }
        auto outs = ref_eval(n, ins, opset);
        std::vector<ValueType> r;
        for (auto& o : outs) r.push_back({o.dtype(), o.shape()});
        return r;
    }

    void run(const std::map<std::string, Shape>& input_shapes, bool fold_all) {
        const Graph& g = model.graph;
        int64_t opset = model.opset();
        for (const auto& kv : g.initializers) {
            types[kv.first] = {kv.second.dtype(), kv.second.shape()};
            consts[kv.first] = kv.second;
        }
        for (const auto& in : g.inputs) {
            auto it = input_shapes.find(in.name);
            Shape s;
            if (it != input_shapes.end()) {
                s = it->second;
                YOLOC_CHECK(!in.has_shape || s.size() == in.shape.size(), "input '", in.name, "' must have rank ",
                            in.shape.size(), ", got ", shape_str(s));
            } else {
                s = in.concrete();
            }
            types[in.name] = {in.dtype, s};
        }
        for (const auto& n : g.nodes) {
            bool all_const = true;
            for (const auto& i : n.inputs)
                if (!i.empty() && !consts.count(i)) all_const = false;
            std::vector<ValueType> outs;
            if (n.op_type == "Shape" && !n.inputs.empty() && types.count(n.inputs[0])) {
                // The input's shape is known here, so Shape is a constant.
                std::vector<int64_t> dims = types[n.inputs[0]].shape;
                int64_t r = int64_t(dims.size());
                int64_t start = n.attr_i("start", 0), end = n.attr_i("end", r);
                if (start < 0) start += r;
                if (end < 0) end += r;
                start = std::min(std::max<int64_t>(start, 0), r);
                end = std::min(std::max<int64_t>(end, start), r);
                std::vector<int64_t> sl(dims.begin() + start, dims.begin() + end);
                Tensor c = Tensor::from_int64s({int64_t(sl.size())}, sl);
                consts[n.outputs[0]] = c;
                types[n.outputs[0]] = {DType::Int64, c.shape()};
                continue;
            }
            if (all_const && (fold_all || !never_fold(n))) {
                std::vector<Tensor> ins;
                int64_t total = 0;
                for (const auto& i : n.inputs) {
                    ins.push_back(i.empty() ? Tensor() : consts[i]);
                    if (!i.empty()) total += consts[i].numel();
                }
                if (total <= kMaxFoldElements) {
                    auto res = ref_eval(n, ins, opset);
                    for (size_t k = 0; k < n.outputs.size() && k < res.size(); ++k) {
                        if (n.outputs[k].empty()) continue;
                        consts[n.outputs[k]] = res[k];
                        types[n.outputs[k]] = {res[k].dtype(), res[k].shape()};
                    }
                    continue;
                }
            }
            outs = rule(n, opset);
            for (size_t k = 0; k < n.outputs.size() && k < outs.size(); ++k)
                if (!n.outputs[k].empty()) types[n.outputs[k]] = outs[k];
        }
    }
};

}  // namespace

const ValueType& ShapeInfo::at(const std::string& name) const {
    auto it = values.find(name);
    if (it == values.end()) fail("no inferred type for value '", name, "'");
    return it->second;
}

ShapeInfo infer_shapes(const Model& model, const std::map<std::string, Shape>& input_shapes) {
    Inferencer inf(model);
    inf.run(input_shapes, false);
    ShapeInfo info;
    info.values = std::move(inf.types);
    return info;
}

int fold_constants(Model& model, const std::map<std::string, Shape>& input_shapes) {
    Inferencer inf(model);
    inf.run(input_shapes, false);
    Graph& g = model.graph;
    std::vector<Node> kept;
    int folded = 0;
    std::set<std::string> graph_outputs;
    for (const auto& o : g.outputs) graph_outputs.insert(o.name);
    for (auto& n : g.nodes) {
        bool all_out_const = !n.outputs.empty();
        for (const auto& o : n.outputs)
            if (!o.empty() && (!inf.consts.count(o) || graph_outputs.count(o))) all_out_const = false;
        if (all_out_const && !never_fold(n)) {
            for (const auto& o : n.outputs)
                if (!o.empty()) g.initializers[o] = inf.consts[o];
            ++folded;
        } else {
            kept.push_back(std::move(n));
        }
    }
    g.nodes = std::move(kept);
    remove_dead(g);
    return folded;
}

}  // namespace yoloc
