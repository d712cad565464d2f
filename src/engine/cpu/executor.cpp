#include "engine/cpu/executor.h"

#include <set>
#include <unordered_map>

#include "engine/cpu/fast_executor.h"
#include "ir/op_table.h"
#include "quant/fake_quant.h"

namespace yoloc {

// Checks the caller's inputs against what the graph declares, so a wrong image
// size fails here with a clear message instead of deep inside a Reshape.
void check_inputs(const Graph& g, const TensorMap& inputs) {
    for (const auto& in : g.inputs) {
        auto it = inputs.find(in.name);
        if (it == inputs.end()) fail("missing model input '", in.name, "'");
        const Tensor& t = it->second;
        YOLOC_CHECK(t.dtype() == in.dtype, "input '", in.name, "' must be ", dtype_name(in.dtype), ", got ",
                    dtype_name(t.dtype()));
        if (!in.has_shape) continue;
        bool ok = t.rank() == in.shape.size();
        for (size_t k = 0; ok && k < in.shape.size(); ++k)
            ok = !in.shape[k].known() || in.shape[k].value == t.dim(k);
        if (!ok) {
            std::string want = "[";
            for (size_t k = 0; k < in.shape.size(); ++k)
                want += (k ? "," : "") + (in.shape[k].known() ? std::to_string(in.shape[k].value) : in.shape[k].param);
            fail("input '", in.name, "' has shape ", shape_str(t.shape()), " but the model expects ", want, "]");
        }
    }
}

ReferenceExecutor::ReferenceExecutor(const Model& model, bool keep_intermediates)
    : model_(model), keep_(keep_intermediates) {
    validate_and_sort(model_.graph);
    for (const auto& n : model_.graph.nodes) op_schema(n);  // an unsupported op fails here, naming the node
}

TensorMap ReferenceExecutor::run(const TensorMap& inputs) {
    const Graph& g = model_.graph;
    check_inputs(g, inputs);
    // Last use of every value, so memory is released as early as possible.
    std::unordered_map<std::string, size_t> last_use;
    for (size_t i = 0; i < g.nodes.size(); ++i)
        for (const auto& v : g.nodes[i].inputs) last_use[v] = i;
    std::unordered_map<std::string, Tensor> env;
    for (const auto& kv : g.initializers) env[kv.first] = kv.second;
    for (const auto& in : g.inputs) env[in.name] = inputs.at(in.name);
    std::set<std::string> outputs;
    for (const auto& o : g.outputs) outputs.insert(o.name);
    TensorMap result;
    int64_t opset = model_.opset();
    for (size_t i = 0; i < g.nodes.size(); ++i) {
        const Node& n = g.nodes[i];
        std::vector<Tensor> ins;
        for (const auto& v : n.inputs) ins.push_back(v.empty() ? Tensor() : env.at(v));
        std::vector<Tensor> outs = ref_eval(n, ins, opset);
        for (size_t k = 0; k < n.outputs.size() && k < outs.size(); ++k) {
            if (n.outputs[k].empty()) continue;
            env[n.outputs[k]] = outs[k];
            if (keep_) result[n.outputs[k]] = outs[k];
        }
        if (!keep_)
            for (const auto& v : n.inputs) {
                auto lu = last_use.find(v);
                if (lu != last_use.end() && lu->second == i && !outputs.count(v) && !g.is_initializer(v)) env.erase(v);
            }
    }
    for (const auto& o : g.outputs) result[o.name] = env.at(o.name);
    return result;
}

std::unique_ptr<Executor> make_executor(const Model& model, const std::string& kind, const ExecutorOptions& opts) {
    if (kind == "reference" || kind == "ref") return std::make_unique<ReferenceExecutor>(model);
    // Q/DQ models: constant weight DequantizeLinear folded to float weights so the
    // fused conv kernels apply (quant/fake_quant.h); activation Q/DQ stay.
    if (kind == "fast" || kind == "cpu")
        return make_fast_executor(has_qdq(model) ? prepare_qdq_for_float(model) : model, opts);
    fail("unknown CPU executor '", kind, "' (use 'reference' or 'fast')");
}

}  // namespace yoloc
