#include "ir/cost.h"

#include <set>

#include "core/error.h"

namespace yoloc {

namespace {

// Ops that only move or relabel data: no arithmetic worth counting.
const std::set<std::string>& data_movement_ops() {
    static const std::set<std::string> s{"Constant", "Reshape", "Transpose", "Split", "Concat", "Shape",
                                         "Gather", "Slice", "Squeeze", "Unsqueeze", "Flatten", "Identity",
                                         "Cast", "Expand", "Tile", "Pad", "ConstantOfShape", "Resize",
                                         "Upsample", "DepthToSpace", "SpaceToDepth"};
    return s;
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
            if (is_matmul_class(n.op_type)) c.flops += f;
        }
        activations(c);
        return c;
    }

private:
    static bool is_matmul_class(const std::string& op) {
        return op == "Conv" || op == "ConvTranspose" || op == "Gemm" || op == "MatMul" || op == "ConvInteger" ||
               op == "MatMulInteger" || op == "QLinearConv" || op == "QLinearMatMul";
    }

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
        std::vector<size_t> slots;
        if (n.op_type == "Conv" || n.op_type == "ConvTranspose" || n.op_type == "Gemm")
            slots = {1, 2};
        else if (n.op_type == "MatMul")
            slots = {0, 1};
        for (size_t s : slots) {
            if (s >= n.inputs.size() || n.inputs[s].empty()) continue;
            int64_t k = constant_numel(n.inputs[s]);
            if (k >= 0 && counted.insert(n.inputs[s]).second) params += k;
        }
    }

    // FLOPs of one node; -1 for data movement.
    double node_flops(const Node& n) const {
        if (data_movement_ops().count(n.op_type) || n.outputs.empty() || n.outputs[0].empty()) return -1;
        const Shape& out = shape(n.outputs[0], n);
        const double out_n = double(prod(out));
        if (n.op_type == "Conv" || n.op_type == "ConvInteger" || n.op_type == "QLinearConv") {
            size_t wi = n.op_type == "QLinearConv" ? 3 : 1;
            const Shape& w = shape(n.inputs[wi], n);  // [Cout, Cin/group, k...]
            return 2.0 * out_n * double(prod(w, 1));
        }
        if (n.op_type == "ConvTranspose") {
            const Shape& x = shape(n.inputs[0], n);
            const Shape& w = shape(n.inputs[1], n);  // [Cin, Cout/group, k...]
            return 2.0 * double(prod(x)) * double(prod(w, 1));
        }
        if (n.op_type == "Gemm") {
            const Shape& a = shape(n.inputs[0], n);
            YOLOC_CHECK(a.size() == 2, "cost: Gemm ", n.label(), " expects a 2-D A");
            int64_t k = n.attr_i("transA", 0) ? a[0] : a[1];
            return 2.0 * out_n * double(k);
        }
        if (n.op_type == "MatMul" || n.op_type == "MatMulInteger" || n.op_type == "QLinearMatMul") {
            const Shape& a = shape(n.inputs[0], n);
            int64_t k = a.empty() ? 1 : a.back();
            return 2.0 * out_n * double(k);
        }
        if (n.op_type == "MaxPool" || n.op_type == "AveragePool")
            return out_n * double(prod(n.attr_ints("kernel_shape", {1})));
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
