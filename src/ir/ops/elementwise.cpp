// Element-wise ops: the unary list of ir/unary_ops.h, binary arithmetic and comparisons
// with numpy broadcasting, Where, Clip, Identity.
#include <map>

#include "ir/ops/common.h"
#include "ir/unary_ops.h"

namespace yoloc {
namespace ops {
namespace {

struct UnaryInfo {
    UnaryOp op;
    const char* a_name;
    float a_default;
    const char* b_name;
    float b_default;
};

const std::map<std::string, UnaryInfo>& unary_infos() {
    static const std::map<std::string, UnaryInfo> m = {
#define YOLOC_UNARY_INFO(name, an, ad, bn, bd, expr) {#name, {UnaryOp::name, an, ad, bn, bd}},
        YOLOC_UNARY_OPS(YOLOC_UNARY_INFO)
#undef YOLOC_UNARY_INFO
    };
    return m;
}

Tensors unary(const Node& n, const Tensors& ins, int64_t) {
    const Tensor& x = in(ins, 0, n);
    YOLOC_CHECK(x.dtype() == DType::Float32, "node ", n.label(), ": expects float32, got ", dtype_name(x.dtype()));
    const UnaryInfo& u = unary_infos().at(n.op_type);
    const float a = u.a_name[0] ? n.attr_f(u.a_name, u.a_default) : u.a_default;
    const float b = u.b_name[0] ? n.attr_f(u.b_name, u.b_default) : u.b_default;
    Tensor r(DType::Float32, x.shape());
    for (int64_t i = 0; i < x.numel(); ++i) r.data<float>()[i] = apply_unary(u.op, x.data<float>()[i], a, b);
    return {r};
}

enum class Bin { Add, Sub, Mul, Div, Pow, Min, Max, Mod, Equal, Less, Greater, LessEq, GreaterEq, And, Or };

bool is_compare(Bin op) {
    return op == Bin::Equal || op == Bin::Less || op == Bin::Greater || op == Bin::LessEq || op == Bin::GreaterEq ||
           op == Bin::And || op == Bin::Or;
}

Bin bin_of(const std::string& op) {
    static const std::map<std::string, Bin> m = {
        {"Add", Bin::Add},   {"Sub", Bin::Sub},     {"Mul", Bin::Mul},         {"Div", Bin::Div},
        {"Pow", Bin::Pow},   {"Min", Bin::Min},     {"Max", Bin::Max},         {"Mod", Bin::Mod},
        {"Equal", Bin::Equal}, {"Less", Bin::Less}, {"Greater", Bin::Greater}, {"LessOrEqual", Bin::LessEq},
        {"GreaterOrEqual", Bin::GreaterEq}, {"And", Bin::And}, {"Or", Bin::Or}, {"Sum", Bin::Add}};
    return m.at(op);
}

// ONNX Mod: fmod=1 is C's fmod (sign of the dividend); fmod=0 (integers only) takes the
// divisor's sign, like Python's %.
int64_t int_mod(int64_t x, int64_t y) {
    int64_t r = x % y;
    if (r != 0 && ((r < 0) != (y < 0))) r += y;
    return r;
}

Tensor binary2(const Node& n, const Tensor& a, const Tensor& b, Bin op) {
    Shape out = broadcast_shape(a.shape(), b.shape(), n);
    auto sa = broadcast_strides(a.shape(), out), sb = broadcast_strides(b.shape(), out);
    const bool cmp = is_compare(op);
    const bool fmod = n.attr_i("fmod", 0) != 0;
    if (a.dtype() == DType::Float32 && b.dtype() == DType::Float32 && !cmp && op != Bin::Mod) {
        Tensor r(DType::Float32, out);
        const float* pa = a.data<float>();
        const float* pb = b.data<float>();
        float* pr = r.data<float>();
        switch (op) {
            case Bin::Add: for_each_broadcast(out, sa, sb, [&](int64_t o, int64_t i, int64_t j) { pr[o] = pa[i] + pb[j]; }); break;
            case Bin::Sub: for_each_broadcast(out, sa, sb, [&](int64_t o, int64_t i, int64_t j) { pr[o] = pa[i] - pb[j]; }); break;
            case Bin::Mul: for_each_broadcast(out, sa, sb, [&](int64_t o, int64_t i, int64_t j) { pr[o] = pa[i] * pb[j]; }); break;
            case Bin::Div: for_each_broadcast(out, sa, sb, [&](int64_t o, int64_t i, int64_t j) { pr[o] = pa[i] / pb[j]; }); break;
            case Bin::Pow: for_each_broadcast(out, sa, sb, [&](int64_t o, int64_t i, int64_t j) { pr[o] = std::pow(pa[i], pb[j]); }); break;
            case Bin::Min: for_each_broadcast(out, sa, sb, [&](int64_t o, int64_t i, int64_t j) { pr[o] = std::min(pa[i], pb[j]); }); break;
            case Bin::Max: for_each_broadcast(out, sa, sb, [&](int64_t o, int64_t i, int64_t j) { pr[o] = std::max(pa[i], pb[j]); }); break;
            default: fail("node ", n.label(), ": bad binary op");
        }
        return r;
    }
    YOLOC_CHECK(a.dtype() == b.dtype() || op == Bin::Pow, "node ", n.label(), ": operand types differ (",
                dtype_name(a.dtype()), " vs ", dtype_name(b.dtype()), ")");
    const bool integer = is_int_type(a.dtype());
    YOLOC_CHECK(op != Bin::Mod || integer || fmod, "node ", n.label(), ": Mod of floats needs fmod=1");
    Tensor r(cmp ? DType::Bool : a.dtype(), out);
    for_each_broadcast(out, sa, sb, [&](int64_t o, int64_t i, int64_t j) {
        if (integer && op != Bin::Pow) {
            int64_t x = a.at_i64(i), y = b.at_i64(j), v = 0;
            switch (op) {
                case Bin::Add: v = x + y; break;
                case Bin::Sub: v = x - y; break;
                case Bin::Mul: v = x * y; break;
                case Bin::Div:
                    YOLOC_CHECK(y != 0, "node ", n.label(), ": integer division by zero");
                    v = x / y;  // ONNX integer Div truncates
                    break;
                case Bin::Mod:
                    YOLOC_CHECK(y != 0, "node ", n.label(), ": integer modulo by zero");
                    v = fmod ? x % y : int_mod(x, y);
                    break;
                case Bin::Min: v = std::min(x, y); break;
                case Bin::Max: v = std::max(x, y); break;
                case Bin::Equal: v = x == y; break;
                case Bin::Less: v = x < y; break;
                case Bin::Greater: v = x > y; break;
                case Bin::LessEq: v = x <= y; break;
                case Bin::GreaterEq: v = x >= y; break;
                case Bin::And: v = (x != 0) && (y != 0); break;
                case Bin::Or: v = (x != 0) || (y != 0); break;
                case Bin::Pow: break;
            }
            store(r, o, double(v));
        } else {
            double x = a.at_f64(i), y = b.at_f64(j), v = 0;
            switch (op) {
                case Bin::Add: v = x + y; break;
                case Bin::Sub: v = x - y; break;
                case Bin::Mul: v = x * y; break;
                case Bin::Div: v = x / y; break;
                case Bin::Pow: v = std::pow(x, y); break;
                case Bin::Min: v = std::min(x, y); break;
                case Bin::Max: v = std::max(x, y); break;
                case Bin::Mod: v = std::fmod(x, y); break;
                case Bin::Equal: v = x == y; break;
                case Bin::Less: v = x < y; break;
                case Bin::Greater: v = x > y; break;
                case Bin::LessEq: v = x <= y; break;
                case Bin::GreaterEq: v = x >= y; break;
                case Bin::And: v = (x != 0) && (y != 0); break;
                case Bin::Or: v = (x != 0) || (y != 0); break;
            }
            store(r, o, v);
        }
    });
    return r;
}

// Binary ops; Min, Max and Sum take any number of inputs (folded left to right).
Tensors binary(const Node& n, const Tensors& ins, int64_t) {
    const Bin op = bin_of(n.op_type);
    YOLOC_CHECK(!ins.empty(), "node ", n.label(), ": needs inputs");
    Tensor r = in(ins, 0, n);
    const bool nary = n.op_type == "Min" || n.op_type == "Max" || n.op_type == "Sum";
    YOLOC_CHECK(nary || ins.size() == 2, "node ", n.label(), ": expects 2 inputs, has ", ins.size());
    if (ins.size() == 1) return {r.clone()};
    for (size_t i = 1; i < ins.size(); ++i) r = binary2(n, r, in(ins, i, n), op);
    return {r};
}

std::vector<ValueType> binary_shape(const Node& n, const ShapeInputs& in, int64_t) {
    YOLOC_CHECK(!in.types.empty() && in.types[0], "node ", n.label(), ": needs inputs");
    Shape out = in.types[0]->shape;
    for (size_t i = 1; i < in.types.size(); ++i) {
        YOLOC_CHECK(in.types[i], "node ", n.label(), ": missing input ", i);
        out = broadcast_shape(out, in.types[i]->shape, n);
    }
    return {{is_compare(bin_of(n.op_type)) ? DType::Bool : in.types[0]->dtype, out}};
}

Tensors where(const Node& n, const Tensors& ins, int64_t) {
    const Tensor& c = in(ins, 0, n);
    const Tensor& a = in(ins, 1, n);
    const Tensor& b = in(ins, 2, n);
    Shape out = broadcast_shape(broadcast_shape(c.shape(), a.shape(), n), b.shape(), n);
    Tensor r(a.dtype(), out);
    auto sc = broadcast_strides(c.shape(), out), sa = broadcast_strides(a.shape(), out),
         sb = broadcast_strides(b.shape(), out);
    size_t es = dtype_size(a.dtype());
    std::vector<int64_t> zero(out.size(), 0);
    // Two passes keep for_each_broadcast's two-operand form.
    std::vector<int64_t> ci(static_cast<size_t>(r.numel()));
    for_each_broadcast(out, sc, zero, [&](int64_t o, int64_t i, int64_t) { ci[size_t(o)] = i; });
    for_each_broadcast(out, sa, sb, [&](int64_t o, int64_t i, int64_t j) {
        bool take_a = c.at_i64(ci[size_t(o)]) != 0;
        std::memcpy(r.raw() + size_t(o) * es, take_a ? a.raw() + size_t(i) * es : b.raw() + size_t(j) * es, es);
    });
    return {r};
}

std::vector<ValueType> where_shape(const Node& n, const ShapeInputs& in, int64_t) {
    for (size_t i = 0; i < 3; ++i) YOLOC_CHECK(i < in.types.size() && in.types[i], "node ", n.label(), ": missing input ", i);
    Shape out = broadcast_shape(broadcast_shape(in.types[0]->shape, in.types[1]->shape, n), in.types[2]->shape, n);
    return {{in.types[1]->dtype, out}};
}

Tensors clip(const Node& n, const Tensors& ins, int64_t opset) {
    const Tensor& x = in(ins, 0, n);
    float lo = -std::numeric_limits<float>::infinity(), hi = std::numeric_limits<float>::infinity();
    if (opset >= 11) {
        if (has_in(ins, 1)) lo = float(ins[1].at_f64(0));
        if (has_in(ins, 2)) hi = float(ins[2].at_f64(0));
    } else {
        lo = n.attr_f("min", lo);
        hi = n.attr_f("max", hi);
    }
    Tensor r = to_f32(x).clone();
    for (int64_t i = 0; i < r.numel(); ++i) r.data<float>()[i] = std::min(std::max(r.data<float>()[i], lo), hi);
    return {r};
}

Tensors identity(const Node& n, const Tensors& ins, int64_t) { return {in(ins, 0, n)}; }

Tensors not_op(const Node& n, const Tensors& ins, int64_t) {
    const Tensor& x = in(ins, 0, n);
    Tensor r(DType::Bool, x.shape());
    for (int64_t i = 0; i < x.numel(); ++i) r.data<uint8_t>()[i] = x.at_i64(i) == 0;
    return {r};
}

}  // namespace

void add_elementwise_ops(std::vector<OpSchema>& t) {
    for (const auto& kv : unary_infos())
        t.push_back(op(kv.first.c_str(), unary, ChannelFlow::PassThrough, QuantRole::None, CostKind::PerOutput,
                       same_as_input));
    for (const char* name : {"Add", "Sub", "Mul", "Div", "Pow", "Min", "Max", "Mod", "Sum"})
        t.push_back(op(name, binary, ChannelFlow::Elementwise, QuantRole::None, CostKind::PerOutput, binary_shape));
    for (const char* name : {"Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or"})
        t.push_back(op(name, binary, ChannelFlow::Pin, QuantRole::None, CostKind::PerOutput, binary_shape));
    t.push_back(op("Not", not_op, ChannelFlow::Pin, QuantRole::None, CostKind::PerOutput, same_as_input));
    t.push_back(op("Where", where, ChannelFlow::Pin, QuantRole::None, CostKind::PerOutput, where_shape));
    t.push_back(op("Clip", clip, ChannelFlow::PassThrough, QuantRole::None, CostKind::PerOutput, same_as_input));
    t.push_back(op("Identity", identity, ChannelFlow::PassThrough, QuantRole::Commutes, CostKind::Movement,
                   same_as_input));
}

}  // namespace ops
}  // namespace yoloc
