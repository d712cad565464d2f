#include "ir/cost.h"

#include <set>

#include "core/error.h"
#include "ir/op_table.h"

namespace yoloc {

namespace {

// How an op is counted: its record in the op table. Ops yoloc does not implement count
// one FLOP per output element.
CostKind cost_kind(const Node& n) {
    const OpSchema* s = find_op(n.op_type, n.domain);
    return s ? s->cost : CostKind::PerOutput;
}

bool is_matmul_class(CostKind k) {
    return k == CostKind::Conv || k == CostKind::ConvTranspose || k == CostKind::MatMul || k == CostKind::Gemm;
}

int64_t prod(const Shape& s, size_t from = 0) {
    int64_t p = 1;
    for (size_t i = from; i < s.size(); ++i) p *= s[i];
    return p;
}

class CostCounter {
public:
    CostCounter(const Model& m, const ShapeInfo& si) : g_(m.graph), si_(si) {
        for (size_t i = 0; i < g_.nodes.size(); ++i)
            for (const auto& o : g_.nodes[i].outputs)
                if (!o.empty()) producer_[o] = int(i);
    }

    ModelCost run() {
        ModelCost c;
        for (const auto& kv : g_.initializers) c.weight_bytes += int64_t(kv.second.nbytes());
        for (const Node& n : g_.nodes) {
            if (n.op_type == "Constant") {
                auto it = n.attrs.find("value");
                if (it != n.attrs.end() && it->second.kind == Attribute::Kind::Tensor)
                    c.weight_bytes += int64_t(it->second.t.nbytes());
            }
        }
        std::set<std::string> counted;
        for (const Node& n : g_.nodes) {
            count_params(n, counted, c.params);
            double f = node_flops(n);
            if (f < 0) continue;  // data movement
            c.flops_by_op[n.op_type] += f;
            if (is_matmul_class(cost_kind(n))) c.flops += f;
        }
        activations(c);
        return c;
    }

private:
    const Shape& shape(const std::string& v, const Node& n) const {
        auto it = si_.values.find(v);
        if (it != si_.values.end()) return it->second.shape;
        // Weights may be left out of the inferred values: their shape is their own.
        if (const Tensor* t = g_.find_initializer(v)) return t->shape();
        fail("cost: no inferred shape for value '", v, "' of node ", n.label());
    }

    // The numel of a constant behind `v`: initializer, Constant node, or the integer
    // initializer a DequantizeLinear reads. -1 when `v` is computed at run time.
    int64_t constant_numel(const std::string& v) const {
        if (const Tensor* t = g_.find_initializer(v)) return t->numel();
        auto it = producer_.find(v);
        if (it == producer_.end()) return -1;
        const Node& p = g_.nodes[size_t(it->second)];
        if (p.op_type == "Constant") {
            auto a = p.attrs.find("value");
            return a != p.attrs.end() && a->second.kind == Attribute::Kind::Tensor ? a->second.t.numel() : -1;
        }
        if (p.op_type == "DequantizeLinear" || p.op_type == "Identity") return constant_numel(p.inputs[0]);
        return -1;
    }

    void count_params(const Node& n, std::set<std::string>& counted, int64_t& params) const {
        const OpSchema* op = find_op(n.op_type, n.domain);
        if (!op) return;
        for (int si : op->weight_inputs) {
            const size_t s = size_t(si);
            if (s >= n.inputs.size() || n.inputs[s].empty()) continue;
            int64_t k = constant_numel(n.inputs[s]);
            if (k >= 0 && counted.insert(n.inputs[s]).second) params += k;
        }
    }

    // FLOPs of one node; -1 for data movement.
    double node_flops(const Node& n) const {
        const CostKind kind = cost_kind(n);
        if (kind == CostKind::Movement || n.outputs.empty() || n.outputs[0].empty()) return -1;
        const Shape& out = shape(n.outputs[0], n);
        const double out_n = double(prod(out));
        switch (kind) {
            case CostKind::Movement: return -1;
            case CostKind::PerOutput: return out_n;
            case CostKind::PerWindow: return out_n * double(prod(n.attr_ints("kernel_shape", {1})));
            case CostKind::Conv: {
                const Shape& w = shape(n.inputs.at(1), n);  // [Cout, Cin/group, k...]
                return 2.0 * out_n * double(prod(w, 1));
            }
            case CostKind::ConvTranspose: {
                const Shape& x = shape(n.inputs.at(0), n);
                const Shape& w = shape(n.inputs.at(1), n);  // [Cin, Cout/group, k...]
                return 2.0 * double(prod(x)) * double(prod(w, 1));
            }
            case CostKind::Gemm: {
                const Shape& a = shape(n.inputs.at(0), n);
                YOLOC_CHECK(a.size() == 2, "cost: Gemm ", n.label(), " expects a 2-D A");
                int64_t k = n.attr_i("transA", 0) ? a[0] : a[1];
                return 2.0 * out_n * double(k);
            }
            case CostKind::MatMul: {
                const Shape& a = shape(n.inputs.at(0), n);
                int64_t k = a.empty() ? 1 : a.back();
                return 2.0 * out_n * double(k);
            }
        }
        return out_n;
    }

    int64_t value_bytes(const std::string& v, const Node* n) const {
        auto it = si_.values.find(v);
        if (it == si_.values.end()) fail("cost: no inferred shape for value '", v, "'", n ? " of node " + n->label() : "");
        const ValueType& t = it->second;
        bool floating = t.dtype == DType::Float32 || t.dtype == DType::Float16 || t.dtype == DType::BFloat16 ||
                        t.dtype == DType::Float64 || t.dtype == DType::Undefined;
        size_t es = floating ? 4 : dtype_size(t.dtype);
        return prod(t.shape) * int64_t(es);
    }

    void activations(ModelCost& c) const {
        std::map<std::string, int> last_use;
        for (size_t i = 0; i < g_.nodes.size(); ++i)
            for (const auto& in : g_.nodes[i].inputs)
                if (!in.empty()) last_use[in] = int(i);
        std::set<std::string> outputs;
        for (const auto& o : g_.outputs) outputs.insert(o.name);
        const int forever = int(g_.nodes.size());
        for (const auto& o : outputs) last_use[o] = forever;

        int64_t live = 0;
        std::map<std::string, int64_t> live_bytes;
        for (const ValueInfo& in : g_.inputs) {
            if (g_.is_initializer(in.name)) continue;
            int64_t b = value_bytes(in.name, nullptr);
            live += b;
            live_bytes[in.name] = b;
            c.activation_bytes_total += b;
        }
        c.activation_bytes_peak = live;
        for (size_t i = 0; i < g_.nodes.size(); ++i) {
            const Node& n = g_.nodes[i];
            if (n.op_type == "Constant") continue;  // stored with the weights
            for (const auto& o : n.outputs) {
                if (o.empty() || live_bytes.count(o)) continue;
                int64_t b = value_bytes(o, &n);
                live += b;
                live_bytes[o] = b;
                c.activation_bytes_total += b;
            }
            c.activation_bytes_peak = std::max(c.activation_bytes_peak, live);
            // Free what this node was the last to read, and outputs nobody reads.
            std::vector<std::string> dead;
            for (const auto& in : n.inputs) {
                auto lu = last_use.find(in);
                if (!in.empty() && live_bytes.count(in) && lu != last_use.end() && lu->second == int(i)) dead.push_back(in);
            }
            for (const auto& o : n.outputs)
                if (!o.empty() && !last_use.count(o)) dead.push_back(o);
            for (const auto& d : dead) {
                auto it = live_bytes.find(d);
                if (it == live_bytes.end()) continue;
                live -= it->second;
                live_bytes.erase(it);
            }
        }
    }

    const Graph& g_;
    const ShapeInfo& si_;
    std::map<std::string, int> producer_;
};

}  // namespace

ModelCost count_cost(const Model& model, const ShapeInfo& shapes) {
    return CostCounter(model, shapes).run();
}

}  // namespace yoloc
