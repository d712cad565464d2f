#include "ir/graph.h"

#include <algorithm>
#include <set>
#include <unordered_map>
#include <unordered_set>

namespace yoloc {

Shape ValueInfo::concrete() const {
    Shape s;
    for (const auto& d : shape) {
        YOLOC_CHECK(d.known(), "value '", name, "' has a symbolic dimension '", d.param,
                    "'; give a concrete input shape");
        s.push_back(d.value);
    }
    return s;
}

Attribute Attribute::of_int(int64_t v) {
    Attribute a;
    a.kind = Kind::Int;
    a.i = v;
    return a;
}
Attribute Attribute::of_float(float v) {
    Attribute a;
    a.kind = Kind::Float;
    a.f = v;
    return a;
}
Attribute Attribute::of_ints(std::vector<int64_t> v) {
    Attribute a;
    a.kind = Kind::Ints;
    a.ints = std::move(v);
    return a;
}
Attribute Attribute::of_string(std::string v) {
    Attribute a;
    a.kind = Kind::String;
    a.s = std::move(v);
    return a;
}
Attribute Attribute::of_tensor(yoloc::Tensor v) {
    Attribute a;
    a.kind = Kind::Tensor;
    a.t = std::move(v);
    return a;
}

int64_t Node::attr_i(const std::string& a, int64_t dflt) const {
    auto it = attrs.find(a);
    if (it == attrs.end()) return dflt;
    YOLOC_CHECK(it->second.kind == Attribute::Kind::Int, "node ", label(), ": attribute '", a, "' must be an int");
    return it->second.i;
}

float Node::attr_f(const std::string& a, float dflt) const {
    auto it = attrs.find(a);
    if (it == attrs.end()) return dflt;
    if (it->second.kind == Attribute::Kind::Int) return float(it->second.i);
    YOLOC_CHECK(it->second.kind == Attribute::Kind::Float, "node ", label(), ": attribute '", a, "' must be a float");
    return it->second.f;
}

std::string Node::attr_s(const std::string& a, const std::string& dflt) const {
    auto it = attrs.find(a);
    if (it == attrs.end()) return dflt;
    YOLOC_CHECK(it->second.kind == Attribute::Kind::String, "node ", label(), ": attribute '", a, "' must be a string");
    return it->second.s;
}

std::vector<int64_t> Node::attr_ints(const std::string& a, std::vector<int64_t> dflt) const {
    auto it = attrs.find(a);
    if (it == attrs.end()) return dflt;
    if (it->second.kind == Attribute::Kind::Int) return {it->second.i};
    YOLOC_CHECK(it->second.kind == Attribute::Kind::Ints, "node ", label(), ": attribute '", a, "' must be a list of ints");
    return it->second.ints;
}

std::string Node::label() const {
    return "'" + (name.empty() ? std::string("<unnamed>") : name) + "' (" + op_type + ")";
}

const Tensor* Graph::find_initializer(const std::string& n) const {
    auto it = initializers.find(n);
    return it == initializers.end() ? nullptr : &it->second;
}

int Graph::producer(const std::string& value) const {
    for (size_t i = 0; i < nodes.size(); ++i)
        for (const auto& o : nodes[i].outputs)
            if (o == value) return int(i);
    return -1;
}

std::vector<int> Graph::consumers(const std::string& value) const {
    std::vector<int> r;
    for (size_t i = 0; i < nodes.size(); ++i)
        for (const auto& in : nodes[i].inputs)
            if (in == value) {
                r.push_back(int(i));
                break;
            }
    return r;
}

int64_t Graph::parameter_count() const {
    // Counted like Ultralytics: weights and biases of the layers that have them
    // (directly or behind a DequantizeLinear), not decode constants like anchors.
    std::unordered_map<std::string, const Node*> dq_by_output;
    for (const auto& n : nodes)
        if (n.op_type == "DequantizeLinear" && !n.outputs.empty()) dq_by_output[n.outputs[0]] = &n;
    std::set<std::string> counted;
    int64_t total = 0;
    for (const auto& n : nodes) {
        if (n.op_type != "Conv" && n.op_type != "Gemm" && n.op_type != "MatMul" && n.op_type != "ConvTranspose")
            continue;
        for (size_t k = 1; k < n.inputs.size() && k <= 2; ++k) {
            std::string v = n.inputs[k];
            auto dq = dq_by_output.find(v);
            if (dq != dq_by_output.end()) v = dq->second->inputs[0];
            const Tensor* t = find_initializer(v);
            if (t && counted.insert(v).second) total += t->numel();
        }
    }
    return total;
}

int64_t Graph::weight_bytes() const {
    int64_t b = 0;
    for (const auto& kv : initializers) b += int64_t(kv.second.nbytes());
    return b;
}

std::map<std::string, int> Graph::op_histogram() const {
    std::map<std::string, int> h;
    for (const auto& n : nodes) h[n.op_type]++;
    return h;
}

std::string Graph::unique_name(const std::string& base) const {
    std::unordered_set<std::string> used;
    for (const auto& n : nodes) {
        used.insert(n.name);
        for (const auto& o : n.outputs) used.insert(o);
    }
    for (const auto& kv : initializers) used.insert(kv.first);
    for (const auto& v : inputs) used.insert(v.name);
    if (!used.count(base)) return base;
    for (int i = 1;; ++i) {
        std::string c = base + "_" + std::to_string(i);
        if (!used.count(c)) return c;
    }
}

int64_t Model::opset() const {
    for (const auto& o : opsets)
        if (o.domain.empty() || o.domain == "ai.onnx") return o.version;
    return 0;
}

void validate_and_sort(Graph& g) {
    std::unordered_map<std::string, int> producer_of;
    for (size_t i = 0; i < g.nodes.size(); ++i) {
        for (const auto& o : g.nodes[i].outputs) {
            if (o.empty()) continue;
            if (g.is_initializer(o)) fail("node ", g.nodes[i].label(), " writes '", o, "', which is also an initializer");
            if (!producer_of.emplace(o, int(i)).second)
                fail("value '", o, "' is produced by two nodes (", g.nodes[size_t(producer_of[o])].label(), " and ",
                     g.nodes[i].label(), "); the graph is not valid ONNX (SSA)");
        }
    }
    std::unordered_set<std::string> available;
    for (const auto& in : g.inputs) available.insert(in.name);
    for (const auto& kv : g.initializers) available.insert(kv.first);
    for (size_t i = 0; i < g.nodes.size(); ++i)
        for (const auto& in : g.nodes[i].inputs)
            if (!in.empty() && !available.count(in) && !producer_of.count(in))
                fail("node ", g.nodes[i].label(), " reads '", in,
                     "', which no node produces and which is neither a graph input nor an initializer "
                     "(missing initializer?); re-export the model");

    // Kahn's algorithm, stable (keeps the file's order when it is already valid).
    size_t n = g.nodes.size();
    std::vector<int> indeg(n, 0);
    std::vector<std::vector<int>> users(n);
    for (size_t i = 0; i < n; ++i) {
        std::set<int> deps;
        for (const auto& in : g.nodes[i].inputs) {
            auto it = producer_of.find(in);
            if (!in.empty() && it != producer_of.end()) deps.insert(it->second);
        }
        for (int d : deps) {
            users[size_t(d)].push_back(int(i));
            indeg[i]++;
        }
    }
    std::set<int> ready;
    for (size_t i = 0; i < n; ++i)
        if (indeg[i] == 0) ready.insert(int(i));
    std::vector<int> order;
    order.reserve(n);
    while (!ready.empty()) {
        int i = *ready.begin();
        ready.erase(ready.begin());
        order.push_back(i);
        for (int u : users[size_t(i)])
            if (--indeg[size_t(u)] == 0) ready.insert(u);
    }
    if (order.size() != n) {
        for (size_t i = 0; i < n; ++i)
            if (indeg[i] > 0) fail("the graph has a cycle through node ", g.nodes[i].label(), "; ONNX graphs must be acyclic");
    }
    bool sorted = true;
    for (size_t i = 0; i < n; ++i) sorted = sorted && order[i] == int(i);
    if (!sorted) {
        std::vector<Node> nodes;
        nodes.reserve(n);
        for (int i : order) nodes.push_back(std::move(g.nodes[size_t(i)]));
        g.nodes = std::move(nodes);
    }
    for (const auto& o : g.outputs)
        if (!producer_of.count(o.name) && !available.count(o.name))
            fail("graph output '", o.name, "' is not produced by any node");
}

void remove_dead(Graph& g) {
    std::unordered_set<std::string> live;
    for (const auto& o : g.outputs) live.insert(o.name);
    std::vector<bool> keep(g.nodes.size(), false);
    for (size_t k = g.nodes.size(); k-- > 0;) {
        const Node& n = g.nodes[k];
        bool used = false;
        for (const auto& o : n.outputs) used = used || live.count(o);
        if (!used) continue;
        keep[k] = true;
        for (const auto& in : n.inputs) live.insert(in);
    }
    std::vector<Node> nodes;
    for (size_t k = 0; k < g.nodes.size(); ++k)
        if (keep[k]) nodes.push_back(std::move(g.nodes[k]));
    g.nodes = std::move(nodes);
    for (auto it = g.initializers.begin(); it != g.initializers.end();)
        it = live.count(it->first) ? std::next(it) : g.initializers.erase(it);
    std::vector<ValueInfo> vi;
    for (auto& v : g.value_info)
        if (live.count(v.name)) vi.push_back(std::move(v));
    g.value_info = std::move(vi);
}

}  // namespace yoloc
