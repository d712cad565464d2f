#include "ir/fuse.h"

#include <set>

#include "ir/shape_inference.h"

namespace yoloc {

FusionStats fuse_conv_activation(Model& model, const std::map<std::string, Shape>& input_shapes) {
    Graph& g = model.graph;
    ShapeInfo info = infer_shapes(model, input_shapes);
    std::map<std::string, std::vector<int>> cons;
    std::map<std::string, int> prod;
    for (size_t i = 0; i < g.nodes.size(); ++i) {
        for (const auto& v : g.nodes[i].inputs)
            if (!v.empty()) cons[v].push_back(int(i));
        for (const auto& v : g.nodes[i].outputs)
            if (!v.empty()) prod[v] = int(i);
    }
    std::set<std::string> graph_outs;
    for (const auto& o : g.outputs) graph_outs.insert(o.name);
    std::set<std::string> graph_ins;
    for (const auto& in : g.inputs) graph_ins.insert(in.name);
    auto readers = [&](const std::string& v) -> const std::vector<int>& {
        static const std::vector<int> none;
        auto it = cons.find(v);
        return it == cons.end() ? none : it->second;
    };
    auto is_op = [&](int i, const char* op) { return g.nodes[size_t(i)].op_type == op && g.nodes[size_t(i)].domain.empty(); };
    auto f32_4d = [&](const std::string& v) {
        auto it = info.values.find(v);
        return it != info.values.end() && it->second.dtype == DType::Float32 && it->second.shape.size() == 4;
    };

    FusionStats st;
    std::set<int> removed;
    for (size_t i = 0; i < g.nodes.size(); ++i) {
        Node& n = g.nodes[i];
        if (!is_op(int(i), "Conv") || n.outputs.size() != 1 || n.inputs.size() < 2) continue;
        std::string out = n.outputs[0];
        std::string act;
        // SiLU.
        const auto& yc = readers(out);
        if (yc.size() == 2 && !graph_outs.count(out)) {
            int si = is_op(yc[0], "Sigmoid") ? yc[0] : is_op(yc[1], "Sigmoid") ? yc[1] : -1;
            int mi = is_op(yc[0], "Mul") ? yc[0] : is_op(yc[1], "Mul") ? yc[1] : -1;
            if (si >= 0 && mi >= 0) {
                const Node& s = g.nodes[size_t(si)];
                const Node& m = g.nodes[size_t(mi)];
                const std::string& so = s.outputs[0];
                const bool ok = m.inputs.size() == 2 && readers(so).size() == 1 && !graph_outs.count(so) &&
                                ((m.inputs[0] == out && m.inputs[1] == so) || (m.inputs[1] == out && m.inputs[0] == so));
                if (ok) {
                    act = "silu";
                    removed.insert(si);
                    removed.insert(mi);
                    out = m.outputs[0];
                    ++st.silu;
                }
            }
        }
        // Residual Add.
        std::string residual;
        const auto& ac = readers(out);
        if (ac.size() == 1 && !graph_outs.count(out) && is_op(ac[0], "Add")) {
            const Node& a = g.nodes[size_t(ac[0])];
            if (a.inputs.size() == 2 && a.outputs.size() == 1) {
                const std::string& r = a.inputs[0] == out ? a.inputs[1] : a.inputs[0];
                auto p = prod.find(r);
                const bool before = graph_ins.count(r) || (p != prod.end() && p->second < int(i));
                if (r != out && before && f32_4d(r) && f32_4d(out) && info.at(r).shape == info.at(out).shape &&
                    info.at(a.outputs[0]).shape == info.at(out).shape) {
                    residual = r;
                    removed.insert(ac[0]);
                    out = a.outputs[0];
                    ++st.residual;
                }
            }
        }
        n.op_type = "FusedConv";
        n.domain = "yoloc";
        n.attrs["activation"] = Attribute::of_string(act);
        n.inputs.resize(std::max<size_t>(n.inputs.size(), 3));
        if (!residual.empty()) n.inputs.push_back(residual);
        n.outputs[0] = out;
        ++st.convs;
    }
    std::vector<Node> kept;
    for (size_t i = 0; i < g.nodes.size(); ++i)
        if (!removed.count(int(i))) kept.push_back(std::move(g.nodes[i]));
    g.nodes = std::move(kept);
    return st;
}

}  // namespace yoloc
