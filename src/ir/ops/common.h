// Helpers shared by the op families of the op table (ir/op_table.h); internal to ir/.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/half.h"
#include "ir/op_table.h"

namespace yoloc {
namespace ops {

using Tensors = std::vector<Tensor>;

// Each family file lists its records here (called once, by op_table.cpp).
void add_elementwise_ops(std::vector<OpSchema>& t);
void add_nn_ops(std::vector<OpSchema>& t);
void add_tensor_ops(std::vector<OpSchema>& t);
void add_index_ops(std::vector<OpSchema>& t);
void add_reduce_ops(std::vector<OpSchema>& t);
void add_quant_ops(std::vector<OpSchema>& t);
void add_fused_ops(std::vector<OpSchema>& t);

inline int64_t norm_axis(int64_t axis, size_t rank, const Node& n) {
    int64_t r = int64_t(rank);
    if (axis < 0) axis += r;
    YOLOC_CHECK(axis >= 0 && axis < r, "node ", n.label(), ": axis out of range for rank ", rank);
    return axis;
}

inline const Tensor& in(const Tensors& ins, size_t i, const Node& n) {
    YOLOC_CHECK(i < ins.size() && !ins[i].empty(), "node ", n.label(), ": missing input ", i);
    return ins[i];
}

inline bool has_in(const Tensors& ins, size_t i) { return i < ins.size() && !ins[i].empty(); }

inline std::vector<int64_t> strides_of(const Shape& s) {
    std::vector<int64_t> st(s.size(), 1);
    for (size_t k = s.size(); k-- > 1;) st[k - 1] = st[k] * s[k];
    return st;
}

inline Shape broadcast_shape(const Shape& a, const Shape& b, const Node& n) {
    size_t r = std::max(a.size(), b.size());
    Shape out(r);
    for (size_t k = 0; k < r; ++k) {
        int64_t da = k < r - a.size() ? 1 : a[k - (r - a.size())];
        int64_t db = k < r - b.size() ? 1 : b[k - (r - b.size())];
        YOLOC_CHECK(da == db || da == 1 || db == 1, "node ", n.label(), ": shapes ", shape_str(a), " and ",
                    shape_str(b), " do not broadcast (wrong input size for this model?)");
        out[k] = da == 1 ? db : da;
    }
    return out;
}

// Element strides of `s` seen through broadcasting into `out` (0 on broadcast dims).
inline std::vector<int64_t> broadcast_strides(const Shape& s, const Shape& out) {
    std::vector<int64_t> st = strides_of(s);
    std::vector<int64_t> r(out.size(), 0);
    size_t off = out.size() - s.size();
    for (size_t k = 0; k < s.size(); ++k) r[k + off] = s[k] == 1 ? 0 : st[k];
    return r;
}

// Calls f(out_index, index_a, index_b) for every element of the broadcast result.
template <typename F>
void for_each_broadcast(const Shape& out, const std::vector<int64_t>& sa, const std::vector<int64_t>& sb, F f) {
    int64_t total = shape_numel(out);
    size_t r = out.size();
    std::vector<int64_t> idx(r, 0);
    int64_t ia = 0, ib = 0;
    for (int64_t o = 0; o < total; ++o) {
        f(o, ia, ib);
        for (size_t k = r; k-- > 0;) {
            idx[k]++;
            ia += sa[k];
            ib += sb[k];
            if (idx[k] < out[k]) break;
            ia -= sa[k] * out[k];
            ib -= sb[k] * out[k];
            idx[k] = 0;
        }
    }
}

inline Tensor to_f32(const Tensor& t) {
    if (t.dtype() == DType::Float32) return t;
    Tensor r(DType::Float32, t.shape());
    if (t.dtype() == DType::Float16) {
        for (int64_t i = 0; i < t.numel(); ++i) r.data<float>()[i] = half_to_float(t.data<uint16_t>()[i]);
    } else {
        for (int64_t i = 0; i < t.numel(); ++i) r.data<float>()[i] = float(t.at_f64(i));
    }
    return r;
}

inline bool is_int_type(DType d) {
    return d == DType::Int64 || d == DType::Int32 || d == DType::Int8 || d == DType::UInt8 || d == DType::Int16 ||
           d == DType::UInt16 || d == DType::UInt32 || d == DType::UInt64 || d == DType::Bool;
}

// Writes value v (double) into element i of an int or float tensor.
inline void store(Tensor& t, int64_t i, double v) {
    switch (t.dtype()) {
        case DType::Float32: t.data<float>()[i] = float(v); break;
        case DType::Float64: t.data<double>()[i] = v; break;
        case DType::Int64: t.data<int64_t>()[i] = int64_t(v); break;
        case DType::Int32: t.data<int32_t>()[i] = int32_t(v); break;
        case DType::Int8: t.data<int8_t>()[i] = int8_t(v); break;
        case DType::UInt8: t.data<uint8_t>()[i] = uint8_t(v); break;
        case DType::Bool: t.data<uint8_t>()[i] = v != 0; break;
        case DType::Float16: t.data<uint16_t>()[i] = float_to_half(float(v)); break;
        default: fail("cannot store into a ", dtype_name(t.dtype()), " tensor");
    }
}

// Axes from input `i` (opset 13+ style) or the "axes" attribute.
inline std::vector<int64_t> axes_from(const Node& n, const Tensors& ins, size_t i) {
    if (has_in(ins, i)) return ins[i].to_int64s();
    return n.attr_ints("axes");
}

// outer x len x inner view of a tensor around `axis`.
struct AxisSplit {
    int64_t outer = 1, len = 1, inner = 1;
};
inline AxisSplit split_at(const Shape& s, int64_t axis) {
    AxisSplit a;
    for (int64_t k = 0; k < axis; ++k) a.outer *= s[size_t(k)];
    a.len = s[size_t(axis)];
    for (size_t k = size_t(axis) + 1; k < s.size(); ++k) a.inner *= s[k];
    return a;
}

// Shape rule of ops whose output has the type and shape of input 0.
inline std::vector<ValueType> same_as_input(const Node& n, const ShapeInputs& in, int64_t) {
    YOLOC_CHECK(!in.types.empty() && in.types[0], "node ", n.label(), ": missing input 0");
    return {*in.types[0]};
}

// A record with the fields most ops share.
inline OpSchema op(const char* name, RefKernel ref, ChannelFlow ch = ChannelFlow::Pin, QuantRole q = QuantRole::None,
                   CostKind cost = CostKind::PerOutput, ShapeRule shape = nullptr) {
    OpSchema s;
    s.name = name;
    s.ref = ref;
    s.shape = shape;
    s.channels = ch;
    s.quant = q;
    s.cost = cost;
    return s;
}

}  // namespace ops
}  // namespace yoloc
