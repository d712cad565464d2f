#include "ir/shape_inference.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "engine/cpu/ref_ops.h"

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
    const Tensor& const_of(const Node& n, size_t i, const char* what) {
        auto it = consts.find(n.inputs.at(i));
        if (it == consts.end())
            fail("node ", n.label(), ": ", what, " must be a constant (computed at load time); this graph computes it "
                 "from data, which yoloc does not support");
        return it->second;
    }

    static Shape bcast(const Shape& a, const Shape& b, const Node& n) {
        size_t r = std::max(a.size(), b.size());
        Shape out(r);
        for (size_t k = 0; k < r; ++k) {
            int64_t da = k < r - a.size() ? 1 : a[k - (r - a.size())];
            int64_t db = k < r - b.size() ? 1 : b[k - (r - b.size())];
            if (!(da == db || da == 1 || db == 1))
                fail("node ", n.label(), ": shapes ", shape_str(a), " and ", shape_str(b),
                     " do not broadcast (wrong input size for this model?)");
            out[k] = da == 1 ? db : da;
        }
        return out;
    }

    std::vector<ValueType> rule(const Node& n, int64_t opset) {
        auto T = [&](size_t i) -> const ValueType& { return type_of(n, n.inputs.at(i)); };
        const std::string& op = n.op_type;
        auto has = [&](size_t i) { return i < n.inputs.size() && !n.inputs[i].empty(); };
        if (op == "Conv") {
            const Shape& x = T(0).shape;
            const Shape& w = T(1).shape;
            YOLOC_CHECK(x.size() == 4 && w.size() == 4, "node ", n.label(), ": only 2-D convolution is supported");
            int64_t group = n.attr_i("group", 1);
            YOLOC_CHECK(x[1] == w[1] * group, "node ", n.label(), ": input has ", x[1], " channels, the weight expects ",
                        w[1] * group, " (wrong model or input?)");
            auto s = n.attr_ints("strides", {1, 1});
            auto p = n.attr_ints("pads", {0, 0, 0, 0});
            auto d = n.attr_ints("dilations", {1, 1});
            std::string ap = n.attr_s("auto_pad", "NOTSET");
            Shape out{x[0], w[0], 0, 0};
            for (int a = 0; a < 2; ++a) {
                if (ap == "SAME_UPPER" || ap == "SAME_LOWER") out[2 + a] = (x[2 + a] + s[a] - 1) / s[a];
                else {
                    int64_t pp = ap == "VALID" ? 0 : p[a] + p[a + 2];
                    out[2 + a] = (x[2 + a] + pp - d[a] * (w[2 + a] - 1) - 1) / s[a] + 1;
                }
                YOLOC_CHECK(out[2 + a] > 0, "node ", n.label(), ": input ", shape_str(x), " is too small");
            }
            return {{DType::Float32, out}};
        }
        if (op == "MaxPool" || op == "AveragePool") {
            const Shape& x = T(0).shape;
            YOLOC_CHECK(x.size() == 4, "node ", n.label(), ": only 2-D pooling is supported");
            auto k = n.attr_ints("kernel_shape");
            auto s = n.attr_ints("strides", {1, 1});
            auto p = n.attr_ints("pads", {0, 0, 0, 0});
            auto d = n.attr_ints("dilations", {1, 1});
            bool ceil_mode = n.attr_i("ceil_mode", 0) != 0;
            YOLOC_CHECK(k.size() == 2, "node ", n.label(), ": kernel_shape must have 2 values");
            Shape out{x[0], x[1], 0, 0};
            for (int a = 0; a < 2; ++a) {
                double v = double(x[2 + a] + p[a] + p[a + 2] - ((k[a] - 1) * d[a] + 1)) / double(s[a]);
                out[2 + a] = int64_t(ceil_mode ? std::ceil(v) : std::floor(v)) + 1;
            }
            return {{T(0).dtype, out}};
        }
        static const std::set<std::string> binary = {"Add", "Sub", "Mul", "Div", "Pow", "Min", "Max"};
        static const std::set<std::string> compare = {"Equal", "Less", "Greater"};
        if (binary.count(op) || compare.count(op)) {
            Shape out = T(0).shape;
            for (size_t i = 1; i < n.inputs.size(); ++i) out = bcast(out, T(i).shape, n);
            return {{compare.count(op) ? DType::Bool : T(0).dtype, out}};
        }
        static const std::set<std::string> unary = {"Sigmoid", "Relu", "Exp", "Log", "Sqrt", "Neg", "Floor", "Ceil",
                                                    "Tanh", "HardSwish", "Identity", "Softmax", "Clip"};
        if (unary.count(op)) return {T(0)};
        if (op == "Where") {
            Shape out = bcast(bcast(T(0).shape, T(1).shape, n), T(2).shape, n);
            return {{T(1).dtype, out}};
        }
        if (op == "Concat") {
            Shape out = T(0).shape;
            int64_t axis = n.attr_i("axis", 0);
            if (axis < 0) axis += int64_t(out.size());
            YOLOC_CHECK(axis >= 0 && axis < int64_t(out.size()), "node ", n.label(), ": bad axis");
            out[size_t(axis)] = 0;
            for (size_t i = 0; i < n.inputs.size(); ++i) {
                const Shape& s = T(i).shape;
                YOLOC_CHECK(s.size() == out.size(), "node ", n.label(), ": inputs differ in rank");
                for (size_t k = 0; k < s.size(); ++k)
                    YOLOC_CHECK(int64_t(k) == axis || s[k] == T(0).shape[k], "node ", n.label(), ": input ", i, " shape ",
                                shape_str(s), " does not fit ", shape_str(T(0).shape),
                                " (wrong input size for this model? sizes must be divisible by 32)");
                out[size_t(axis)] += s[size_t(axis)];
            }
            return {{T(0).dtype, out}};
        }
        if (op == "Split") {
            const Shape& x = T(0).shape;
            int64_t axis = n.attr_i("axis", 0);
            if (axis < 0) axis += int64_t(x.size());
            YOLOC_CHECK(axis >= 0 && axis < int64_t(x.size()), "node ", n.label(), ": bad axis");
            std::vector<int64_t> sizes;
            if (has(1)) sizes = const_of(n, 1, "the split sizes").to_int64s();
            else if (n.has("split")) sizes = n.attr_ints("split");
            else {
                int64_t parts = n.has("num_outputs") ? n.attr_i("num_outputs", 1) : int64_t(n.outputs.size());
                int64_t each = (x[size_t(axis)] + parts - 1) / parts;
                for (int64_t i = 0; i < parts; ++i) sizes.push_back(std::min(each, x[size_t(axis)] - each * i));
            }
            YOLOC_CHECK(sizes.size() == n.outputs.size(), "node ", n.label(), ": split sizes do not match outputs");
            int64_t sum = 0;
            std::vector<ValueType> outs;
            for (int64_t s : sizes) {
                Shape o = x;
                o[size_t(axis)] = s;
                sum += s;
                outs.push_back({T(0).dtype, o});
            }
            YOLOC_CHECK(sum == x[size_t(axis)], "node ", n.label(), ": split sizes add up to ", sum, ", axis has ",
                        x[size_t(axis)]);
            return outs;
        }
        if (op == "Resize" || op == "Upsample") {
            const Shape& x = T(0).shape;
            Shape out = x;
            bool done = false;
            if (opset >= 11 && has(3)) {
                auto sz = const_of(n, 3, "Resize sizes").to_int64s();
                if (!sz.empty()) {
                    YOLOC_CHECK(sz.size() == x.size(), "node ", n.label(), ": sizes rank differs");
                    out = sz;
                    done = true;
                }
            }
            if (!done) {
                size_t si = opset >= 11 ? 2 : 1;
                auto sc = const_of(n, si, "Resize scales").to_floats();
                YOLOC_CHECK(sc.size() == x.size(), "node ", n.label(), ": scales rank differs");
                for (size_t k = 0; k < x.size(); ++k) out[k] = int64_t(std::floor(double(x[k]) * double(sc[k])));
            }
            return {{T(0).dtype, out}};
        }
        if (op == "Shape") {
            return {{DType::Int64, {int64_t(T(0).shape.size())}}};  // value folded by caller
        }
        if (op == "QuantizeLinear") {
            DType dt = has(2) ? T(2).dtype : DType::UInt8;
            return {{dt, T(0).shape}};
        }
        if (op == "DequantizeLinear") return {{DType::Float32, T(0).shape}};
        if (op == "Cast") return {{static_cast<DType>(n.attr_i("to", 1)), T(0).shape}};
        // Shape-manipulating ops whose result depends on constant parameters:
        // evaluate the op on a zero tensor of the same shape when it is small
        // enough, else on a tensor of size 1 per dim-preserving op below.
        if (op == "Reshape" || op == "Transpose" || op == "Flatten" || op == "Squeeze" || op == "Unsqueeze" ||
            op == "Slice" || op == "Gather" || op == "Expand" || op == "ConstantOfShape" || op == "Range" ||
            op == "Constant") {
            return eval_on_placeholders(n, opset);
        }
        fail("node ", n.label(), ": operator '", op, "' is not supported by yoloc's shape inference");
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
