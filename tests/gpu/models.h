// Small synthetic models that exercise every GPU-engine op and lowering rule
// (shared by the CPU plan tests and the GPU parity tests).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace yoloc_test {

// Deterministic pseudo-random floats in [-a, a].
inline std::vector<float> random_floats(size_t n, uint32_t seed, float a = 1.0f) {
    std::vector<float> v(n);
    uint32_t s = seed * 2654435761u + 12345u;
    for (auto& x : v) {
        s = s * 1664525u + 1013904223u;
        x = (float((s >> 8) & 0xffffff) / float(0xffffff) * 2.0f - 1.0f) * a;
    }
    return v;
}

// x[N,6,10,12] -> Conv3x3+SiLU (8) -> Split(4,4) -> bottleneck Conv3x3+SiLU+Add on
// s1 -> Concat(s0, s1, r) -> MaxPool x2 -> Concat(cat, p1, p2) -> Conv1x1 s2 + SiLU (d,
// also an output) -> Resize x2 -> Concat(u, x, s0) (s0 needs a Copy) -> grouped
// Conv3x3 s2 (y). Covers: SiLU and residual fusion, split views, in-place concat,
// nested concat, copy, maxpool, resize, groups, stride, odd channel counts.
inline yoloc::Model tiny_engine_model(int64_t batch = 1) {
    using namespace yoloc;
    Model m;
    Graph& g = m.graph;
    g.inputs.push_back({"x", DType::Float32, {Dim{batch, ""}, Dim{6, ""}, Dim{10, ""}, Dim{12, ""}}, true});
    g.outputs.push_back({"y", DType::Float32, {}, false});
    g.outputs.push_back({"d", DType::Float32, {}, false});
    uint32_t seed = 1;
    auto weights = [&](const std::string& name, Shape s, float a) {
        g.initializers[name] = Tensor::from_floats(s, random_floats(size_t(shape_numel(s)), seed++, a));
    };
    auto node = [&](const std::string& op, std::vector<std::string> ins, std::vector<std::string> outs) {
        Node n;
        n.name = op + "_" + outs[0];
        n.op_type = op;
        n.inputs = std::move(ins);
        n.outputs = std::move(outs);
        g.nodes.push_back(n);
        return &g.nodes.back();
    };
    auto conv = [&](const std::string& in, const std::string& out, int64_t cin, int64_t cout, int64_t k, int64_t s,
                    int64_t group, bool silu) {
        weights("w_" + out, {cout, cin / group, k, k}, 0.5f);
        weights("b_" + out, {cout}, 0.2f);
        std::string co = silu ? out + "_conv" : out;
        Node* c = node("Conv", {in, "w_" + out, "b_" + out}, {co});
        c->attrs["kernel_shape"] = Attribute::of_ints({k, k});
        c->attrs["strides"] = Attribute::of_ints({s, s});
        c->attrs["pads"] = Attribute::of_ints({k / 2, k / 2, k / 2, k / 2});
        c->attrs["group"] = Attribute::of_int(group);
        if (silu) {
            node("Sigmoid", {co}, {out + "_sig"});
            node("Mul", {co, out + "_sig"}, {out});
        }
    };
    conv("x", "a", 6, 8, 3, 1, 1, true);
    g.initializers["split"] = Tensor::from_int64s({2}, {4, 4});
    node("Split", {"a", "split"}, {"s0", "s1"})->attrs["axis"] = Attribute::of_int(1);
    conv("s1", "t", 4, 4, 3, 1, 1, true);
    node("Add", {"s1", "t"}, {"r"});
    node("Concat", {"s0", "s1", "r"}, {"cat"})->attrs["axis"] = Attribute::of_int(1);
    for (const char* p : {"p1", "p2"}) {
        Node* n = node("MaxPool", {std::string(p) == "p1" ? "cat" : "p1"}, {p});
        n->attrs["kernel_shape"] = Attribute::of_ints({5, 5});
        n->attrs["strides"] = Attribute::of_ints({1, 1});
        n->attrs["pads"] = Attribute::of_ints({2, 2, 2, 2});
    }
    node("Concat", {"cat", "p1", "p2"}, {"sp"})->attrs["axis"] = Attribute::of_int(1);
    conv("sp", "d", 36, 16, 1, 2, 1, true);
    g.initializers["scales"] = Tensor::from_floats({4}, {1, 1, 2, 2});
    Node* rz = node("Resize", {"d", "", "scales"}, {"u"});
    rz->attrs["mode"] = Attribute::of_string("nearest");
    rz->attrs["coordinate_transformation_mode"] = Attribute::of_string("asymmetric");
    rz->attrs["nearest_mode"] = Attribute::of_string("floor");
    node("Concat", {"u", "x", "s0"}, {"v"})->attrs["axis"] = Attribute::of_int(1);
    conv("v", "y", 26, 6, 3, 2, 2, false);
    return m;
}

}  // namespace yoloc_test
