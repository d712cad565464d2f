// The per-op differential table (like ggml's test-backend-ops and ncnn's test_layer): the
// one-node cases of generic_op_cases.h plus cases for the op table's remaining ops, each
// made into a model the engine plan can take, so that every backend runs the same node:
// the reference executor (the oracle), the fast CPU executor, the plan emulated on the
// host (test_op_diff.cpp) and the CUDA plan (gpu/test_gpu_op_diff.cpp).
//
// A plan model has one 4-D float input; the case's data inputs are cut from it
// (Slice -> Reshape, then Cast for integer and bool inputs), its parameter inputs
// (Slice starts, shapes, axes, K, weights...) are initializers, and its non-float
// outputs are cast to float32 (the plan's outputs are float32). Those adapters are exact
// (values below 2^24), so a difference is the op's own.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "generic_op_cases.h"

namespace yoloc_test {

using namespace yoloc;

// Whether input k of `op` is data (cut from the model input) rather than a parameter
// the lowering needs as a constant.
inline bool diff_data_input(const std::string& op, size_t k) {
    if (k == 0) return op != "ConstantOfShape" && op != "Range" && op != "DequantizeLinear";
    // Gather's indices stay constants: shape inference evaluates it on its constant inputs.
    static const std::set<std::string> all = {"Where", "MatMul", "Concat", "Sum", "Max", "Min"};
    return all.count(op) || binary_table().count(op);
}

// A case as a model of one node (plus the exact adapters above).
struct DiffModel {
    Model model;
    Tensor input;                      // [1, 1, 1, T] float32
    std::vector<std::string> outputs;  // graph outputs, one per node output
};

// Builds the model of case c; false (with why) when the plan cannot hold it.
inline bool make_diff_model(const OpCase& c, DiffModel* dm, std::string* why) {
    if (!find_op(c.node.op_type) && c.node.op_type != "QuantizeLinear") {
        *why = "not in the op table";
        return false;
    }
    Model& m = dm->model;
    m = Model();
    m.opsets = {{"", c.opset}};
    Graph& g = m.graph;
    Node n = c.node;
    n.name = "node";
    std::vector<float> data;
    std::vector<Node> pre;
    auto shape_ints = [](const Shape& s) { return ints(std::vector<int64_t>(s.begin(), s.end())); };
    for (size_t k = 0; k < c.inputs.size() && k < n.inputs.size(); ++k) {
        const Tensor& t = c.inputs[k];
        if (t.empty()) {
            n.inputs[k] = "";
            continue;
        }
        if (t.numel() == 0) {
            *why = "empty tensors (the plan holds none)";
            return false;
        }
        const std::string v = "in" + std::to_string(k);
        if (!diff_data_input(n.op_type, k)) {
            g.initializers[v] = t;
            n.inputs[k] = v;
            continue;
        }
        const int64_t off = int64_t(data.size());
        for (int64_t i = 0; i < t.numel(); ++i) data.push_back(float(t.at_f64(i)));
        const std::string p = "param" + std::to_string(k);
        g.initializers[p + "_starts"] = ints({off});
        g.initializers[p + "_ends"] = ints({off + t.numel()});
        g.initializers[p + "_axes"] = ints({3});
        g.initializers[p + "_shape"] = shape_ints(t.shape());
        Node sl;
        sl.name = "cut " + v;
        sl.op_type = "Slice";
        sl.inputs = {"input", p + "_starts", p + "_ends", p + "_axes"};
        sl.outputs = {v + "_flat"};
        if (c.opset < 10) {  // Slice-1: attributes
            sl.inputs = {"input"};
            sl.attrs["starts"] = Attribute::of_ints({off});
            sl.attrs["ends"] = Attribute::of_ints({off + t.numel()});
            sl.attrs["axes"] = Attribute::of_ints({3});
        }
        Node rs;
        rs.name = "shape " + v;
        rs.op_type = "Reshape";
        rs.inputs = {v + "_flat", p + "_shape"};
        rs.outputs = {t.dtype() == DType::Float32 ? v : v + "_float"};
        pre.push_back(sl);
        pre.push_back(rs);
        if (t.dtype() != DType::Float32) {
            Node cast;
            cast.name = "type " + v;
            cast.op_type = "Cast";
            cast.inputs = {v + "_float"};
            cast.outputs = {v};
            cast.attrs["to"] = Attribute::of_int(int64_t(t.dtype()));
            pre.push_back(cast);
        }
        n.inputs[k] = v;
    }
    // A node that reads no data has a constant value: it is what a model's consumers read,
    // never its output, so it feeds y + 0 (exact; the 0 is cut from the input).
    const bool constant = data.empty();
    if (constant) {
        data.push_back(0.f);
        g.initializers["zero_starts"] = ints({0});
        g.initializers["zero_ends"] = ints({1});
        g.initializers["zero_axes"] = ints({3});
        g.initializers["zero_shape"] = ints({1});
        Node sl;
        sl.name = "cut zero";
        sl.op_type = "Slice";
        sl.inputs = {"input", "zero_starts", "zero_ends", "zero_axes"};
        sl.outputs = {"zero_flat"};
        Node rs;
        rs.name = "shape zero";
        rs.op_type = "Reshape";
        rs.inputs = {"zero_flat", "zero_shape"};
        rs.outputs = {"zero"};
        pre.push_back(sl);
        pre.push_back(rs);
    }
    if (int64_t(data.size()) >= (int64_t(1) << 24)) {
        *why = "inputs too large for one plan dimension";
        return false;
    }
    dm->input = Tensor::from_floats({1, 1, 1, int64_t(data.size())}, data);
    g.inputs.push_back({"input", DType::Float32, {Dim{1, ""}, Dim{1, ""}, Dim{1, ""}, Dim{int64_t(data.size()), ""}}, true});
    // The node's outputs as the reference computes them: their types and sizes.
    std::vector<Tensor> want;
    try {
        want = c.oracle ? c.oracle(c) : ref_eval(c.node, c.inputs, c.opset);
    } catch (const Error& e) {
        *why = std::string("the reference refuses it: ") + e.what();
        return false;
    }
    std::vector<Node> post;
    dm->outputs.clear();
    for (size_t o = 0; o < n.outputs.size(); ++o) {
        const std::string y = "node_out" + std::to_string(o);
        n.outputs[o] = y;
        if (o >= want.size()) continue;
        if (want[o].numel() == 0) {
            *why = "empty tensors (the plan holds none)";
            return false;
        }
        std::string out = y;
        if (n.op_type == "QuantizeLinear") {  // the pair the plan takes: Q -> DQ with the same parameters
            Node dq;
            dq.name = "node dequantize";
            dq.op_type = "DequantizeLinear";
            dq.inputs = {y, n.inputs.at(1), n.inputs.at(2)};
            dq.outputs = {y + "_dq"};
            post.push_back(dq);
            out = y + "_dq";
        } else if (want[o].dtype() != DType::Float32) {
            Node cast;
            cast.name = "float " + y;
            cast.op_type = "Cast";
            cast.inputs = {y};
            cast.outputs = {y + "_float"};
            cast.attrs["to"] = Attribute::of_int(int64_t(DType::Float32));
            post.push_back(cast);
            out = y + "_float";
        }
        if (constant) {
            Node add;
            add.name = "read " + y;
            add.op_type = "Add";
            add.inputs = {out, "zero"};
            add.outputs = {y + "_read"};
            post.push_back(add);
            out = y + "_read";
        }
        g.outputs.push_back({out, DType::Float32, {}, false});
        dm->outputs.push_back(out);
    }
    for (Node& p : pre) g.nodes.push_back(p);
    g.nodes.push_back(n);
    for (Node& p : post) g.nodes.push_back(p);
    return true;
}

// ---- cases for the op table's ops that generic_op_cases.h does not cover ---------------------

// FakeQuant (the tier's own op) as the QuantizeLinear -> DequantizeLinear pair it stands for.
inline OpCase qdq_case(const OpCase& fq) {
    OpCase c = fq;
    c.node = make_node("QuantizeLinear", 3);
    c.name = "QuantizeLinear+DequantizeLinear " + fq.name.substr(fq.name.find(' ') + 1);
    c.oracle = nullptr;
    c.inputs.push_back(Tensor::scalar_f32(fq.node.attr_f("scale", 1.f)));
    c.inputs.push_back(Tensor(DType::Int8, {}));
    return c;
}

inline std::vector<OpCase> more_diff_cases() {
    Rng r(31);
    std::vector<OpCase> cs;
    auto attr_ints = [](Node n, const char* a, std::vector<int64_t> v) {
        n.attrs[a] = Attribute::of_ints(std::move(v));
        return n;
    };
    auto attr_int = [](Node n, const char* a, int64_t v) {
        n.attrs[a] = Attribute::of_int(v);
        return n;
    };
    // Conv (the NHWC fast path: FusedConv), float32 accumulation in another order: 1e-5.
    struct Cv {
        Shape x, w;
        int64_t stride, pad, group;
        bool bias;
    };
    for (const Cv& v : std::vector<Cv>{{{1, 4, 8, 8}, {6, 4, 3, 3}, 1, 1, 1, true},
                                       {{2, 4, 9, 7}, {8, 4, 3, 3}, 2, 1, 1, true},
                                       {{1, 6, 6, 6}, {6, 3, 3, 3}, 1, 1, 2, false},
                                       {{1, 8, 5, 5}, {4, 8, 1, 1}, 1, 0, 1, true},
                                       {{1, 3, 16, 16}, {5, 3, 3, 3}, 2, 1, 1, true}}) {
        Node n = make_node("Conv", v.bias ? 3 : 2);
        const int64_t k = v.w[2];
        n = attr_ints(n, "kernel_shape", {k, k});
        n = attr_ints(n, "strides", {v.stride, v.stride});
        n = attr_ints(n, "pads", {v.pad, v.pad, v.pad, v.pad});
        n = attr_int(n, "group", v.group);
        std::vector<Tensor> in{rand_floats(v.x, r), rand_floats(v.w, r, -0.5f, 0.5f)};
        if (v.bias) in.push_back(rand_floats({v.w[0]}, r));
        cs.push_back(make_case(n, in, "group " + std::to_string(v.group), 1e-5, 1e-5));
    }
    // MaxPool: SPPF's 5x5 "same" pool, a 2x2 stride-2 pool, a 3x3 stride-2 pool.
    struct Mp {
        Shape x;
        int64_t k, s, p;
    };
    for (const Mp& v : std::vector<Mp>{{{1, 4, 8, 8}, 5, 1, 2}, {{2, 3, 8, 6}, 2, 2, 0}, {{1, 5, 9, 9}, 3, 2, 1}}) {
        Node n = make_node("MaxPool", 1);
        n = attr_ints(n, "kernel_shape", {v.k, v.k});
        n = attr_ints(n, "strides", {v.s, v.s});
        n = attr_ints(n, "pads", {v.p, v.p, v.p, v.p});
        cs.push_back(make_case(n, {rand_floats(v.x, r)}, "k " + std::to_string(v.k) + " s " + std::to_string(v.s)));
    }
    // Resize: nearest, integer factors (the neck's upsampling).
    for (const auto& f : std::vector<std::pair<Shape, std::vector<float>>>{{{1, 4, 5, 6}, {1, 1, 2, 2}},
                                                                         {{2, 3, 4, 4}, {1, 1, 3, 2}}}) {
        Node n = make_node("Resize", 3);
        n.attrs["mode"] = Attribute::of_string("nearest");
        n.attrs["coordinate_transformation_mode"] = Attribute::of_string("asymmetric");  // Ultralytics' export
        n.attrs["nearest_mode"] = Attribute::of_string("floor");
        cs.push_back(make_case(n, {rand_floats(f.first, r), Tensor(), Tensor::from_floats({4}, f.second)}, "nearest"));
    }
    // Upsample (opset 9, deprecated since 10): nearest, scales as an input.
    {
        Node n = make_node("Upsample", 2);
        n.attrs["mode"] = Attribute::of_string("nearest");
        cs.push_back(make_case(n, {rand_floats({1, 3, 4, 5}, r), Tensor::from_floats({4}, {1, 1, 2, 2})}, "nearest", 0,
                               0, 9));
    }
    // Clip with constant bounds, one bound or both.
    for (const auto& b : std::vector<std::pair<Tensor, Tensor>>{{Tensor::scalar_f32(-1.f), Tensor::scalar_f32(2.f)},
                                                                {Tensor::scalar_f32(0.f), Tensor()},
                                                                {Tensor(), Tensor::scalar_f32(0.5f)}})
        cs.push_back(make_case(make_node("Clip", 3), {rand_floats({3, 4, 5}, r), b.first, b.second}));
    // Reshape-like and Identity: the same elements in the same order.
    for (const auto& s : std::vector<std::pair<Shape, std::vector<int64_t>>>{{{2, 3, 4}, {4, 6}},
                                                                             {{2, 3, 4}, {-1}},
                                                                             {{1, 64, 400}, {1, 2, 32, 400}},
                                                                             {{6, 5}, {0, 5, 1}}})
        cs.push_back(make_case(make_node("Reshape", 2), {rand_floats(s.first, r), ints(s.second)}));
    cs.push_back(make_case(make_node("Reshape", 2), {rand_ints({2, 6}, r, -9, 9), ints({3, 4})}, "int64"));
    for (int64_t axis : {0, 1, 2, -1})
        cs.push_back(make_case(attr_int(make_node("Flatten", 1), "axis", axis), {rand_floats({2, 3, 4}, r)},
                               "axis " + std::to_string(axis)));
    cs.push_back(make_case(make_node("Squeeze", 2), {rand_floats({2, 1, 4, 1}, r), ints({1, -1})}));
    cs.push_back(make_case(make_node("Squeeze", 1), {rand_floats({1, 3, 1}, r)}, "all"));
    cs.push_back(make_case(make_node("Unsqueeze", 2), {rand_floats({3, 4}, r), ints({0, 3})}));
    cs.push_back(make_case(make_node("Identity", 1), {rand_floats({3, 5}, r)}));
    cs.push_back(make_case(make_node("Identity", 1), {rand_ints({7}, r, -5, 5)}, "int64"));
    // Variadic Sum / Max / Min of three, broadcast.
    for (const char* op : {"Sum", "Max", "Min"})
        cs.push_back(make_case(make_node(op, 3), {rand_halves({2, 3, 4}, r), rand_halves({4}, r),
                                                  rand_halves({3, 1}, r)}, "of three"));
    // Tile (rank <= 3).
    for (const auto& t : std::vector<std::pair<Shape, std::vector<int64_t>>>{{{3}, {4}}, {{2, 3}, {2, 1}},
                                                                             {{2, 1, 3}, {1, 4, 2}}})
        cs.push_back(make_case(make_node("Tile", 2), {rand_floats(t.first, r), ints(t.second)}));
    // ArgMax / ArgMin, ties on a grid of halves (the first index wins).
    for (const char* op : {"ArgMax", "ArgMin"})
        for (const auto& a : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {-1, 0}, {0, 1}}) {
            Node n = attr_int(attr_int(make_node(op, 1), "axis", a.first), "keepdims", a.second);
            cs.push_back(make_case(n, {rand_halves({3, 7, 5}, r, -3, 3)},
                                   "axis " + std::to_string(a.first) + " keepdims " + std::to_string(a.second)));
        }
    // Ops whose values the plan folds to constants (static shapes): the Const path.
    cs.push_back(make_case(make_node("Shape", 1), {rand_floats({2, 3, 4}, r)}));
    cs.push_back(make_case(make_node("Size", 1), {rand_floats({2, 3, 4}, r)}));
    {
        Node n = make_node("ConstantOfShape", 1);
        Tensor v = Tensor::from_floats({1}, {2.5f});
        n.attrs["value"] = Attribute::of_tensor(v);
        cs.push_back(make_case(n, {ints({2, 3})}));
        cs.push_back(make_case(make_node("Range", 3), {Tensor::scalar_f32(1.f), Tensor::scalar_f32(7.f),
                                                       Tensor::scalar_f32(1.5f)}, "float32"));
        Node k = make_node("Constant", 0);
        k.attrs["value"] = Attribute::of_tensor(Tensor::from_floats({2, 2}, {1.f, -2.f, 3.f, 0.5f}));
        cs.push_back(make_case(k, {}));
    }
    // Not (bool).
    cs.push_back(make_case(make_node("Not", 1), {rand_ints({3, 4}, r, 0, 1, DType::Bool)}));
    // DequantizeLinear of constant int8 data (its value feeds the graph as a constant).
    {
        Tensor q(DType::Int8, {2, 3});
        for (int64_t i = 0; i < q.numel(); ++i) q.data<int8_t>()[i] = int8_t(i * 37 - 100);
        cs.push_back(make_case(make_node("DequantizeLinear", 3), {q, Tensor::scalar_f32(0.05f), Tensor(DType::Int8, {})},
                               "constant int8"));
    }
    return cs;
}

// Every case of the table: generic_op_cases.h's (FakeQuant as its Q -> DQ pair) and the above.
inline std::vector<OpCase> diff_cases() {
    std::vector<OpCase> all;
    for (auto* make : {unary_cases, binary_cases, where_cases, softmax_cases, matmul_cases, copy_cases, gather_cases,
                       topk_cases, reduce_cases, cast_cases, conv_transpose_cases, more_diff_cases})
        for (OpCase& c : make()) all.push_back(std::move(c));
    for (const OpCase& c : fake_quant_cases()) all.push_back(qdq_case(c));
    return all;
}

// ---- comparing ---------------------------------------------------------------------------------

// max |got - want| / (1 + |want|) over float32 values (both NaN: equal; sizes must agree).
inline double diff_error(const std::vector<float>& got, const Tensor& want) {
    if (int64_t(got.size()) != want.numel()) return 1e30;
    double e = 0;
    for (size_t i = 0; i < got.size(); ++i) {
        const double a = got[i], b = want.at_f64(int64_t(i));
        if (std::isnan(a) && std::isnan(b)) continue;
        const double d = std::isnan(a) || std::isnan(b) ? 1e30 : std::fabs(a - b) / (1.0 + std::fabs(b));
        e = std::max(e, d);
    }
    return e;
}

// What one backend did with the table, per op type.
struct OpTally {
    int ran = 0, failed = 0;
    double worst = 0;
    std::vector<std::string> failures;  // case names with their errors (the first few)
};

}  // namespace yoloc_test
