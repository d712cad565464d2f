#include "quant/fake_quant.h"

#include <cmath>

#include "ir/op_table.h"

namespace yoloc {

bool has_qdq(const Model& model) {
    for (const auto& n : model.graph.nodes)
        if (n.domain.empty() && (n.op_type == "QuantizeLinear" || n.op_type == "DequantizeLinear")) return true;
    return false;
}

Model prepare_qdq_for_float(const Model& model) {
    if (!has_qdq(model)) return model;
    Model r = model;
    Graph& g = r.graph;
    std::vector<Node> kept;
    kept.reserve(g.nodes.size());
    bool changed = false;
    for (const auto& n : g.nodes) {
        bool constant = n.domain.empty() && n.op_type == "DequantizeLinear" && n.outputs.size() == 1;
        for (const auto& in : n.inputs) constant = constant && (in.empty() || g.is_initializer(in));
        if (!constant) {
            kept.push_back(n);
            continue;
        }
        std::vector<Tensor> ins;
        for (const auto& in : n.inputs) ins.push_back(in.empty() ? Tensor() : g.initializers.at(in));
        // The reference kernel is the definition of DequantizeLinear here.
        g.initializers[n.outputs[0]] = ref_eval(n, ins, r.opset()).at(0);
        changed = true;
    }
    if (!changed) return r;
    g.nodes = std::move(kept);
    remove_dead(g);
    return r;
}

namespace {
bool scalar_int8_zero(const Graph& g, const Node& n) {
    if (n.inputs.size() < 3 || n.inputs[2].empty()) return false;
    const Tensor* z = g.find_initializer(n.inputs[2]);
    return z && z->dtype() == DType::Int8 && z->numel() == 1 && z->data<int8_t>()[0] == 0;
}
const Tensor* scalar_scale(const Graph& g, const Node& n) {
    const Tensor* s = n.inputs.size() > 1 ? g.find_initializer(n.inputs[1]) : nullptr;
    return s && s->dtype() == DType::Float32 && s->numel() == 1 && s->data<float>()[0] > 0 ? s : nullptr;
}
}  // namespace

int qdq_pair(const Graph& g, int q, float* scale) {
    const Node& qn = g.nodes[size_t(q)];
    if (!qn.domain.empty() || qn.op_type != "QuantizeLinear" || qn.outputs.size() != 1) return -1;
    const Tensor* qs = scalar_scale(g, qn);
    if (!qs || !scalar_int8_zero(g, qn)) return -1;
    for (const auto& o : g.outputs)
        if (o.name == qn.outputs[0]) return -1;
    std::vector<int> cs = g.consumers(qn.outputs[0]);
    if (cs.size() != 1) return -1;
    const Node& dn = g.nodes[size_t(cs[0])];
    if (!dn.domain.empty() || dn.op_type != "DequantizeLinear" || dn.inputs[0] != qn.outputs[0]) return -1;
    const Tensor* ds = scalar_scale(g, dn);
    if (!ds || !scalar_int8_zero(g, dn) || ds->data<float>()[0] != qs->data<float>()[0]) return -1;
    *scale = qs->data<float>()[0];
    return cs[0];
}

void fake_quant_int8(const float* x, float* y, int64_t n, float scale) {
    for (int64_t i = 0; i < n; ++i) {
        float v = std::nearbyint(x[i] / scale);
        v = v < -128.f ? -128.f : (v > 127.f ? 127.f : v);
        y[i] = v * scale;
    }
}

}  // namespace yoloc
