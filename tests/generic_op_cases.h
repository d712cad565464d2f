// One-node cases for the GPU engine's generic tier (engine/cuda/generic_ops.h) and the
// lowering of one ONNX node to the tier's argument structs, shared by the host test
// (test_generic_ops.cpp: the element functions in loops) and the GPU test
// (gpu/test_gpu_generic.cpp: the CUDA launchers). Both compare with the reference
// kernels (ref_eval), the oracle: every op on random inputs of several shapes
// (broadcast on each side, rank 0..6, size-1 dims, negative axes, empty tensors).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "ir/op_table.h"
#include "engine/cuda/generic_ops.h"
#include "ir/graph.h"

namespace yoloc_test {

using namespace yoloc;

// Where the tier's kernels run: element functions in host loops, or CUDA launchers.
// Buffers belong to the backend; alloc fills them with 0xFF bytes (NaN, -1) so that an
// output element nobody wrote shows.
class GenericBackend {
public:
    virtual ~GenericBackend() = default;
    virtual void* alloc(size_t bytes) = 0;
    virtual void upload(void* dst, const void* src, size_t bytes) = 0;
    virtual void download(void* dst, const void* src, size_t bytes) = 0;
    virtual void unary(const cuda::UnaryArgs& a) = 0;
    virtual void binary(const cuda::BinaryArgs& a, bool int32) = 0;
    virtual void where(const cuda::WhereArgs& a) = 0;
    virtual void softmax(const cuda::SoftmaxArgs& a) = 0;
    virtual void matmul(const cuda::MatMulArgs& a) = 0;
    virtual void strided_copy(const cuda::StridedCopyArgs& a) = 0;
    virtual void gather(const cuda::GatherArgs& a) = 0;
    virtual void gather_elements(const cuda::GatherElementsArgs& a) = 0;
    virtual void topk(const cuda::TopKArgs& a, bool int32) = 0;
    virtual void reduce(const cuda::ReduceArgs& a, bool int32) = 0;
    virtual void cast(const cuda::CastArgs& a) = 0;
    virtual void fake_quant(const cuda::FakeQuantArgs& a) = 0;
    virtual void conv_transpose(const cuda::ConvTransposeArgs& a) = 0;
    // Copied into MatMulArgs::kernel and TopKArgs::kernel by the lowering.
    int matmul_kernel = 0, topk_kernel = 0;
};

// A tensor in a backend's memory: float32, or int32 for every integer and bool type.
struct DevTensor {
    void* p = nullptr;
    Shape shape;
    bool int32 = false;
    int64_t numel() const { return shape_numel(shape); }
};

inline DevTensor dev_alloc(GenericBackend& be, const Shape& s, bool int32) {
    DevTensor d;
    d.shape = s;
    d.int32 = int32;
    d.p = be.alloc(size_t(std::max<int64_t>(d.numel(), 1)) * 4);
    return d;
}

// Uploads t, narrowing int64 / bool / other integers to int32 (the tier's rule).
inline DevTensor dev_put(GenericBackend& be, const Tensor& t) {
    YOLOC_CHECK(t.dtype() != DType::Float16 && t.dtype() != DType::Float64, "the generic tier holds float32 or int32");
    DevTensor d = dev_alloc(be, t.shape(), t.dtype() != DType::Float32);
    if (!d.int32) {
        be.upload(d.p, t.raw(), size_t(t.numel()) * 4);
        return d;
    }
    std::vector<int32_t> v(size_t(t.numel()));
    for (int64_t i = 0; i < t.numel(); ++i) v[size_t(i)] = int32_t(t.at_i64(i));
    be.upload(d.p, v.data(), v.size() * 4);
    return d;
}

inline Tensor dev_get(GenericBackend& be, const DevTensor& d) {
    Tensor t(d.int32 ? DType::Int32 : DType::Float32, d.shape);
    if (t.numel() > 0) be.download(t.raw(), d.p, size_t(t.numel()) * 4);
    return t;
}

// ---- shapes, as the plan computes them -------------------------------------------------

inline int64_t axis_of(int64_t axis, size_t rank) { return axis < 0 ? axis + int64_t(rank) : axis; }

inline std::vector<int64_t> row_strides(const Shape& s) {
    std::vector<int64_t> st(s.size(), 1);
    for (size_t k = s.size(); k-- > 1;) st[k - 1] = st[k] * s[k];
    return st;
}

inline Shape broadcast(const Shape& a, const Shape& b) {
    const size_t r = std::max(a.size(), b.size());
    Shape out(r);
    for (size_t k = 0; k < r; ++k) {
        const int64_t da = k < r - a.size() ? 1 : a[k - (r - a.size())];
        const int64_t db = k < r - b.size() ? 1 : b[k - (r - b.size())];
        out[k] = da == 1 ? db : da;
    }
    return out;
}

inline void set_dims(const Shape& s, int* dims) {
    YOLOC_CHECK(s.size() <= size_t(cuda::kGenericRank), "rank ", s.size(), " is above the generic tier's 6");
    cuda::pad_dims(s.data(), int(s.size()), dims);
}
inline void set_bstrides(const Shape& s, int* st) { cuda::broadcast_strides(s.data(), int(s.size()), st); }
// Padded strides from an explicit list (right-aligned, 0 on the padding).
inline void set_strides(const std::vector<int64_t>& v, int* st) {
    const size_t lead = size_t(cuda::kGenericRank) - v.size();
    for (size_t k = 0; k < size_t(cuda::kGenericRank); ++k) st[k] = k < lead ? 0 : int(v[k - lead]);
}

// ---- the unary list, from ir/unary_ops.h ------------------------------------------------

struct UnaryEntry {
    const char* name;
    UnaryOp op;
    const char* an;
    float ad;
    const char* bn;
    float bd;
};
inline const std::vector<UnaryEntry>& unary_table() {
    static const std::vector<UnaryEntry> t = {
#define YOLOC_UNARY_ENTRY(name, an, ad, bn, bd, expr) {#name, UnaryOp::name, an, ad, bn, bd},
        YOLOC_UNARY_OPS(YOLOC_UNARY_ENTRY)
#undef YOLOC_UNARY_ENTRY
    };
    return t;
}
inline const UnaryEntry* find_unary(const std::string& op) {
    for (const auto& e : unary_table())
        if (op == e.name) return &e;
    return nullptr;
}

inline const std::map<std::string, cuda::BinaryOp>& binary_table() {
    using B = cuda::BinaryOp;
    static const std::map<std::string, B> t = {
        {"Add", B::Add},     {"Sub", B::Sub},         {"Mul", B::Mul},
        {"Div", B::Div},     {"Pow", B::Pow},         {"Min", B::Min},
        {"Max", B::Max},     {"Mod", B::Mod},         {"Equal", B::Equal},
        {"Less", B::Less},   {"Greater", B::Greater}, {"LessOrEqual", B::LessOrEqual},
        {"GreaterOrEqual", B::GreaterOrEqual},        {"And", B::And},
        {"Or", B::Or},       {"Xor", B::Xor},
    };
    return t;
}

inline const std::map<std::string, cuda::ReduceOp>& reduce_table() {
    using R = cuda::ReduceOp;
    static const std::map<std::string, R> t = {
        {"ReduceMax", R::Max}, {"ReduceMin", R::Min}, {"ReduceSum", R::Sum}, {"ReduceMean", R::Mean}};
    return t;
}

inline bool has_input(const std::vector<Tensor>& ins, size_t i) { return i < ins.size() && !ins[i].empty(); }

// ---- one node through the tier ------------------------------------------------------------

// Lowers node n to the tier's argument structs (what the plan does for one node), runs it
// on `be` and returns its outputs (float32, or int32 for integer and bool outputs).
inline std::vector<Tensor> run_generic(const Node& n, const std::vector<Tensor>& ins, int64_t opset,
                                       GenericBackend& be) {
    const std::string& op = n.op_type;
    const Tensor& x0 = ins.at(0);
    const size_t rank = x0.rank();
    std::vector<DevTensor> outs;

    if (const UnaryEntry* e = find_unary(op)) {
        DevTensor x = dev_put(be, x0), y = dev_alloc(be, x0.shape(), false);
        cuda::UnaryArgs a;
        a.x = static_cast<const float*>(x.p);
        a.y = static_cast<float*>(y.p);
        a.n = x.numel();
        a.op = int(e->op);
        a.alpha = *e->an ? n.attr_f(e->an, e->ad) : e->ad;
        a.beta = *e->bn ? n.attr_f(e->bn, e->bd) : e->bd;
        be.unary(a);
        outs.push_back(y);
    } else if (binary_table().count(op)) {
        DevTensor x = dev_put(be, x0), w = dev_put(be, ins.at(1));
        cuda::BinaryArgs a;
        a.op = int(binary_table().at(op));
        if (op == "Mod" && n.attr_i("fmod", 0) != 0) a.op = int(cuda::BinaryOp::FMod);
        const Shape out = broadcast(x.shape, w.shape);
        DevTensor y = dev_alloc(be, out, x.int32 || cuda::binary_is_predicate(a.op));
        a.a = x.p;
        a.b = w.p;
        a.y = y.p;
        set_dims(out, a.dims);
        set_bstrides(x.shape, a.as);
        set_bstrides(w.shape, a.bs);
        be.binary(a, x.int32);
        outs.push_back(y);
    } else if (op == "Where") {
        DevTensor c = dev_put(be, x0), x = dev_put(be, ins.at(1)), w = dev_put(be, ins.at(2));
        const Shape out = broadcast(broadcast(c.shape, x.shape), w.shape);
        DevTensor y = dev_alloc(be, out, x.int32);
        cuda::WhereArgs a;
        a.c = static_cast<const int*>(c.p);
        a.a = x.p;
        a.b = w.p;
        a.y = y.p;
        set_dims(out, a.dims);
        set_bstrides(c.shape, a.cs);
        set_bstrides(x.shape, a.as);
        set_bstrides(w.shape, a.bs);
        be.where(a);
        outs.push_back(y);
    } else if (op == "Softmax" || op == "LogSoftmax") {
        DevTensor x = dev_put(be, x0), y = dev_alloc(be, x0.shape(), false);
        const int64_t axis = axis_of(n.attr_i("axis", opset >= 13 ? -1 : 1), rank);
        int64_t outer = 1, len = 1, inner = 1;
        for (int64_t k = 0; k < axis; ++k) outer *= x0.dim(size_t(k));
        if (opset >= 13) {
            len = x0.dim(size_t(axis));
            for (size_t k = size_t(axis) + 1; k < rank; ++k) inner *= x0.dim(k);
        } else {  // coerced to 2-D at the axis
            for (size_t k = size_t(axis); k < rank; ++k) len *= x0.dim(k);
        }
        cuda::SoftmaxArgs a;
        a.x = static_cast<const float*>(x.p);
        a.y = static_cast<float*>(y.p);
        a.outer = int(outer);
        a.len = int(len);
        a.inner = int(inner);
        a.log = op == "LogSoftmax";
        be.softmax(a);
        outs.push_back(y);
    } else if (op == "MatMul") {
        const Tensor& b0 = ins.at(1);
        DevTensor x = dev_put(be, x0), w = dev_put(be, b0);
        // 1-D operands: a row (a) or a column (b), the added dim dropped from the output.
        const Shape sa = x0.rank() == 1 ? Shape{1, x0.dim(0)} : x0.shape();
        const Shape sb = b0.rank() == 1 ? Shape{b0.dim(0), 1} : b0.shape();
        const int64_t M = sa[sa.size() - 2], K = sa.back(), N = sb.back();
        const Shape ba(sa.begin(), sa.end() - 2), bb(sb.begin(), sb.end() - 2);
        const Shape batch = broadcast(ba, bb);
        YOLOC_CHECK(batch.size() <= size_t(cuda::kMatMulBatchRank), "MatMul batch rank above 4");
        Shape out = batch;
        if (x0.rank() != 1) out.push_back(M);
        if (b0.rank() != 1) out.push_back(N);
        DevTensor y = dev_alloc(be, out, false);
        cuda::MatMulArgs a;
        a.a = static_cast<const float*>(x.p);
        a.b = static_cast<const float*>(w.p);
        a.y = static_cast<float*>(y.p);
        a.m = int(M);
        a.n = int(N);
        a.k = int(K);
        a.kernel = be.matmul_kernel;
        const size_t lead = size_t(cuda::kMatMulBatchRank) - batch.size();
        for (size_t d = 0; d < batch.size(); ++d) a.batch[lead + d] = int(batch[d]);
        // Matrix strides per batch dim, 0 where the operand broadcasts.
        auto strides = [&](const Shape& b, int64_t mat, int* st) {
            int64_t s = mat;
            for (size_t d = b.size(); d-- > 0;) {
                st[size_t(cuda::kMatMulBatchRank) - b.size() + d] = b[d] == 1 ? 0 : int(s);
                s *= b[d];
            }
        };
        strides(ba, M * K, a.as);
        strides(bb, K * N, a.bs);
        be.matmul(a);
        outs.push_back(y);
    } else if (op == "Transpose") {
        std::vector<int64_t> perm = n.attr_ints("perm");
        if (perm.empty())
            for (size_t k = rank; k-- > 0;) perm.push_back(int64_t(k));
        const auto xs = row_strides(x0.shape());
        Shape out(rank);
        std::vector<int64_t> ps(rank);
        for (size_t k = 0; k < rank; ++k) {
            const size_t p = size_t(axis_of(perm[k], rank));
            out[k] = x0.dim(p);
            ps[k] = xs[p];
        }
        DevTensor x = dev_put(be, x0), y = dev_alloc(be, out, x.int32);
        cuda::StridedCopyArgs a;
        a.x = x.p;
        a.y = y.p;
        set_dims(out, a.dims);
        set_strides(ps, a.xs);
        set_strides(row_strides(out), a.ys);
        be.strided_copy(a);
        outs.push_back(y);
    } else if (op == "Slice") {
        std::vector<int64_t> starts = ins.at(1).to_int64s(), ends = ins.at(2).to_int64s(), axes, steps;
        if (has_input(ins, 3)) axes = ins[3].to_int64s();
        if (has_input(ins, 4)) steps = ins[4].to_int64s();
        if (axes.empty())
            for (size_t k = 0; k < starts.size(); ++k) axes.push_back(int64_t(k));
        if (steps.empty()) steps.assign(starts.size(), 1);
        const auto xs = row_strides(x0.shape());
        Shape out = x0.shape();
        std::vector<int64_t> st(xs);
        long long off = 0;
        for (size_t i = 0; i < axes.size(); ++i) {
            const size_t ax = size_t(axis_of(axes[i], rank));
            const int64_t len = x0.dim(ax), p = steps[i];
            int64_t s = starts[i] < 0 ? starts[i] + len : starts[i], e = ends[i] < 0 ? ends[i] + len : ends[i];
            if (p > 0) {
                s = std::min(std::max<int64_t>(s, 0), len);
                e = std::min(std::max<int64_t>(e, 0), len);
                out[ax] = e > s ? (e - s + p - 1) / p : 0;
            } else {
                s = std::min(std::max<int64_t>(s, -1), len - 1);
                e = std::min(std::max<int64_t>(e, -1), len - 1);
                out[ax] = s > e ? (s - e - p - 1) / (-p) : 0;
            }
            if (out[ax] > 0) off += s * xs[ax];
            st[ax] = xs[ax] * p;
        }
        DevTensor x = dev_put(be, x0), y = dev_alloc(be, out, x.int32);
        cuda::StridedCopyArgs a;
        a.x = x.p;
        a.y = y.p;
        a.x_off = off;
        set_dims(out, a.dims);
        set_strides(st, a.xs);
        set_strides(row_strides(out), a.ys);
        be.strided_copy(a);
        outs.push_back(y);
    } else if (op == "Expand") {
        const Shape out = broadcast(x0.shape(), ins.at(1).to_int64s());
        DevTensor x = dev_put(be, x0), y = dev_alloc(be, out, x.int32);
        cuda::StridedCopyArgs a;
        a.x = x.p;
        a.y = y.p;
        set_dims(out, a.dims);
        set_bstrides(x0.shape(), a.xs);
        set_strides(row_strides(out), a.ys);
        be.strided_copy(a);
        outs.push_back(y);
    } else if (op == "Concat") {
        const size_t axis = size_t(axis_of(n.attr_i("axis", 0), rank));
        Shape out = x0.shape();
        out[axis] = 0;
        for (const Tensor& t : ins) out[axis] += t.dim(axis);
        DevTensor y = dev_alloc(be, out, x0.dtype() != DType::Float32);
        const auto ys = row_strides(out);
        int64_t at = 0;
        for (const Tensor& t : ins) {  // each input into its slice of the output
            DevTensor x = dev_put(be, t);
            cuda::StridedCopyArgs a;
            a.x = x.p;
            a.y = y.p;
            a.y_off = at * ys[axis];
            set_dims(t.shape(), a.dims);
            set_strides(row_strides(t.shape()), a.xs);
            set_strides(ys, a.ys);
            be.strided_copy(a);
            at += t.dim(axis);
        }
        outs.push_back(y);
    } else if (op == "Split") {
        const size_t axis = size_t(axis_of(n.attr_i("axis", 0), rank));
        const int64_t len = x0.dim(axis);
        std::vector<int64_t> sizes;
        if (has_input(ins, 1)) sizes = ins[1].to_int64s();
        else if (n.has("split")) sizes = n.attr_ints("split");
        if (sizes.empty()) {
            const int64_t parts = n.has("num_outputs") ? n.attr_i("num_outputs", 1) : int64_t(n.outputs.size());
            const int64_t each = (len + parts - 1) / parts;
            for (int64_t i = 0; i < parts; ++i) sizes.push_back(std::min(each, len - each * i));
        }
        DevTensor x = dev_put(be, x0);
        const auto xs = row_strides(x0.shape());
        int64_t at = 0;
        for (int64_t s : sizes) {  // each output a slice of the input
            Shape out = x0.shape();
            out[axis] = s;
            DevTensor y = dev_alloc(be, out, x.int32);
            cuda::StridedCopyArgs a;
            a.x = x.p;
            a.y = y.p;
            a.x_off = at * xs[axis];
            set_dims(out, a.dims);
            set_strides(xs, a.xs);
            set_strides(row_strides(out), a.ys);
            be.strided_copy(a);
            outs.push_back(y);
            at += s;
        }
    } else if (op == "Gather") {
        const Tensor& i0 = ins.at(1);
        const size_t axis = size_t(axis_of(n.attr_i("axis", 0), rank));
        Shape out(x0.shape().begin(), x0.shape().begin() + long(axis));
        out.insert(out.end(), i0.shape().begin(), i0.shape().end());
        out.insert(out.end(), x0.shape().begin() + long(axis) + 1, x0.shape().end());
        DevTensor x = dev_put(be, x0), idx = dev_put(be, i0), y = dev_alloc(be, out, x.int32);
        cuda::GatherArgs a;
        a.x = x.p;
        a.idx = static_cast<const int*>(idx.p);
        a.y = y.p;
        a.outer = 1;
        for (size_t k = 0; k < axis; ++k) a.outer *= int(x0.dim(k));
        a.len = int(x0.dim(axis));
        for (size_t k = axis + 1; k < rank; ++k) a.inner *= int(x0.dim(k));
        a.count = int(i0.numel());
        be.gather(a);
        outs.push_back(y);
    } else if (op == "GatherElements") {
        const Tensor& i0 = ins.at(1);
        const size_t axis = size_t(axis_of(n.attr_i("axis", 0), rank));
        DevTensor x = dev_put(be, x0), idx = dev_put(be, i0), y = dev_alloc(be, i0.shape(), x.int32);
        cuda::GatherElementsArgs a;
        a.x = x.p;
        a.idx = static_cast<const int*>(idx.p);
        a.y = y.p;
        set_dims(i0.shape(), a.dims);
        set_strides(row_strides(x0.shape()), a.xs);
        a.axis = int(axis + size_t(cuda::kGenericRank) - rank);
        a.len = int(x0.dim(axis));
        be.gather_elements(a);
        outs.push_back(y);
    } else if (op == "TopK") {
        const size_t axis = size_t(axis_of(n.attr_i("axis", -1), rank));
        const int64_t k = ins.at(1).at_i64(0);
        Shape out = x0.shape();
        out[axis] = k;
        DevTensor x = dev_put(be, x0), v = dev_alloc(be, out, x.int32), i = dev_alloc(be, out, true);
        cuda::TopKArgs a;
        a.x = x.p;
        a.values = v.p;
        a.indices = static_cast<int*>(i.p);
        a.outer = 1;
        for (size_t d = 0; d < axis; ++d) a.outer *= int(x0.dim(d));
        a.len = int(x0.dim(axis));
        for (size_t d = axis + 1; d < rank; ++d) a.inner *= int(x0.dim(d));
        a.k = int(k);
        a.largest = int(n.attr_i("largest", 1));
        a.kernel = be.topk_kernel;
        be.topk(a, x.int32);
        outs.push_back(v);
        outs.push_back(i);
    } else if (reduce_table().count(op)) {
        std::vector<int64_t> axes;
        const bool axes_input = opset >= 18 || (op == "ReduceSum" && opset >= 13);
        if (axes_input) {
            if (has_input(ins, 1)) axes = ins[1].to_int64s();
        } else {
            axes = n.attr_ints("axes");
        }
        const bool keep = n.attr_i("keepdims", 1) != 0;
        const bool noop = axes.empty() && n.attr_i("noop_with_empty_axes", 0) != 0;
        std::vector<bool> reduced(rank, axes.empty() && !noop);
        for (int64_t ax : axes) reduced[size_t(axis_of(ax, rank))] = true;
        const auto xs = row_strides(x0.shape());
        Shape kept, out;
        std::vector<int64_t> kept_st, rd, rd_st;
        for (size_t d = 0; d < rank; ++d) {
            if (reduced[d]) {
                rd.push_back(x0.dim(d));
                rd_st.push_back(xs[d]);
                if (keep) out.push_back(1);
            } else {
                kept.push_back(x0.dim(d));
                kept_st.push_back(xs[d]);
                out.push_back(x0.dim(d));
            }
        }
        DevTensor x = dev_put(be, x0), y = dev_alloc(be, out, x.int32);
        cuda::ReduceArgs a;
        a.x = x.p;
        a.y = y.p;
        a.op = int(reduce_table().at(op));
        set_dims(kept, a.dims);
        set_strides(kept_st, a.xs);
        set_dims(rd, a.rdims);
        set_strides(rd_st, a.rs);
        be.reduce(a, x.int32);
        outs.push_back(y);
    } else if (op == "Cast") {
        const DType to = static_cast<DType>(n.attr_i("to", 1));
        DevTensor x = dev_put(be, x0);
        const bool to_float = to == DType::Float32;
        YOLOC_CHECK(to_float == x.int32 || to == DType::Bool, "an identity Cast is no kernel");
        DevTensor y = dev_alloc(be, x0.shape(), !to_float);
        cuda::CastArgs a;
        a.x = x.p;
        a.y = y.p;
        a.n = x.numel();
        using C = cuda::CastKind;
        a.kind = int(to == DType::Bool ? (x.int32 ? C::IntToBool : C::FloatToBool)
                                       : (to_float ? C::IntToFloat : C::FloatToInt));
        be.cast(a);
        outs.push_back(y);
    } else if (op == "FakeQuant") {  // the plan's name for a Q -> DQ pair (int8, zero point 0)
        DevTensor x = dev_put(be, x0), y = dev_alloc(be, x0.shape(), false);
        cuda::FakeQuantArgs a;
        a.x = static_cast<const float*>(x.p);
        a.y = static_cast<float*>(y.p);
        a.n = x.numel();
        a.scale = n.attr_f("scale", 1.f);
        be.fake_quant(a);
        outs.push_back(y);
    } else if (op == "ConvTranspose") {
        const Tensor& w0 = ins.at(1);
        const auto s = n.attr_ints("strides", {1, 1}), d = n.attr_ints("dilations", {1, 1});
        const auto p = n.attr_ints("pads", {0, 0, 0, 0}), op_ = n.attr_ints("output_padding", {0, 0});
        const int64_t group = n.attr_i("group", 1);
        Shape out{x0.dim(0), w0.dim(1) * group, 0, 0};
        for (size_t k = 0; k < 2; ++k)
            out[2 + k] = s[k] * (x0.dim(2 + k) - 1) + op_[k] + (w0.dim(2 + k) - 1) * d[k] + 1 - p[k] - p[k + 2];
        DevTensor x = dev_put(be, x0), w = dev_put(be, w0), y = dev_alloc(be, out, false);
        DevTensor b = has_input(ins, 2) ? dev_put(be, ins[2]) : DevTensor();
        cuda::ConvTransposeArgs a;
        a.x = static_cast<const float*>(x.p);
        a.wt = static_cast<const float*>(w.p);
        a.bias = static_cast<const float*>(b.p);
        a.y = static_cast<float*>(y.p);
        a.n = int(x0.dim(0));
        a.c = int(x0.dim(1));
        a.h = int(x0.dim(2));
        a.w = int(x0.dim(3));
        a.m = int(out[1]);
        a.oh = int(out[2]);
        a.ow = int(out[3]);
        a.kh = int(w0.dim(2));
        a.kw = int(w0.dim(3));
        a.sh = int(s[0]);
        a.sw = int(s[1]);
        a.ph = int(p[0]);
        a.pw = int(p[1]);
        a.dh = int(d[0]);
        a.dw = int(d[1]);
        a.group = int(group);
        be.conv_transpose(a);
        outs.push_back(y);
    } else {
        fail("the generic tier's test lowering has no rule for ", op);
    }
    std::vector<Tensor> r;
    for (const DevTensor& d : outs) r.push_back(dev_get(be, d));
    return r;
}

// ---- cases -----------------------------------------------------------------------------------

struct OpCase {
    std::string name;
    Node node;
    std::vector<Tensor> inputs;
    int64_t opset = 17;
    double tol = 0;         // host: max |got - want| / (1 + |want|); 0: bit-exact
    double device_tol = 0;  // the same on the GPU (its expf, powf, FMA contraction)
    // The oracle when it is not ref_eval(node) (an op the reference does not have).
    std::function<std::vector<Tensor>(const OpCase&)> oracle;
};

class Rng {
public:
    explicit Rng(uint32_t seed) : g_(seed) {}
    float uniform(float lo, float hi) { return lo + (hi - lo) * float(g_() >> 8) / float(1u << 24); }
    int64_t integer(int64_t lo, int64_t hi) { return lo + int64_t(g_() % uint32_t(hi - lo + 1)); }

private:
    std::mt19937 g_;
};

inline Tensor rand_floats(const Shape& s, Rng& r, float lo = -3.f, float hi = 3.f) {
    Tensor t(DType::Float32, s);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = r.uniform(lo, hi);
    return t;
}
// Values on a grid of halves: comparisons see equal values, and ties happen.
inline Tensor rand_halves(const Shape& s, Rng& r, int64_t lo = -6, int64_t hi = 6) {
    Tensor t(DType::Float32, s);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = float(r.integer(lo, hi)) * 0.5f;
    return t;
}
inline Tensor rand_ints(const Shape& s, Rng& r, int64_t lo, int64_t hi, DType dt = DType::Int64) {
    Tensor t(dt, s);
    for (int64_t i = 0; i < t.numel(); ++i) {
        const int64_t v = r.integer(lo, hi);
        if (dt == DType::Int64) t.data<int64_t>()[i] = v;
        else if (dt == DType::Int32) t.data<int32_t>()[i] = int32_t(v);
        else t.data<uint8_t>()[i] = uint8_t(v != 0);  // Bool
    }
    return t;
}
inline Tensor ints(const std::vector<int64_t>& v) { return Tensor::from_int64s({int64_t(v.size())}, v); }

inline Node make_node(const std::string& op, size_t n_in, size_t n_out = 1) {
    Node n;
    n.name = op;
    n.op_type = op;
    for (size_t i = 0; i < n_in; ++i) n.inputs.push_back("x" + std::to_string(i));
    for (size_t i = 0; i < n_out; ++i) n.outputs.push_back("y" + std::to_string(i));
    return n;
}

inline std::string shapes_str(const std::vector<Tensor>& ins) {
    std::string s;
    for (const Tensor& t : ins) s += (s.empty() ? "" : " ") + shape_str(t.shape());
    return s;
}

inline OpCase make_case(Node n, std::vector<Tensor> ins, const std::string& note = "", double tol = 0,
                        double device_tol = -1, int64_t opset = 17) {
    OpCase c;
    c.name = n.op_type + " " + shapes_str(ins) + (note.empty() ? "" : " " + note);
    c.node = std::move(n);
    c.inputs = std::move(ins);
    c.opset = opset;
    c.tol = tol;
    c.device_tol = device_tol < 0 ? tol : device_tol;
    return c;
}

// Shapes of two operands: broadcast on either side, scalars, ranks 1..6, size-1 dims, empty.
inline std::vector<std::pair<Shape, Shape>> broadcast_pairs() {
    return {{{2, 3, 4}, {2, 3, 4}},  {{2, 3, 4}, {4}},       {{4}, {2, 3, 4}},
            {{3, 1}, {1, 5}},        {{}, {2, 3}},           {{2, 3}, {}},
            {{7}, {1}},              {{2, 1, 4, 1, 3}, {5, 1, 6, 1}},
            {{1, 2, 1, 2, 1, 3}, {2, 1, 2, 1, 3, 1}},         {{0, 3}, {1, 3}}};
}

// Every unary op of ir/unary_ops.h; the same expression on both sides on the host, the
// device's expf / tanhf / erff (a few ulp) on the GPU.
inline std::vector<OpCase> unary_cases() {
    Rng r(11);
    std::vector<OpCase> cs;
    for (const UnaryEntry& e : unary_table()) {
        for (const Shape& s : {Shape{7}, Shape{2, 3, 5}, Shape{1, 4, 1, 6}, Shape{0, 3}})
            cs.push_back(make_case(make_node(e.name, 1), {rand_floats(s, r, -6.f, 6.f)}, "", 0, 2e-6));
        if (*e.an) {  // attributes other than the defaults
            Node n = make_node(e.name, 1);
            n.attrs[e.an] = Attribute::of_float(0.3f);
            if (*e.bn) n.attrs[e.bn] = Attribute::of_float(0.7f);
            cs.push_back(make_case(n, {rand_floats({3, 8}, r, -6.f, 6.f)}, "alpha 0.3 beta 0.7", 0, 2e-6));
        }
    }
    return cs;
}

// The oracle of a binary op the reference lacks, composed from ones it has: a <= b is
// a < b or a == b; on bool tensors the reference's integer Mul, Add and Sub, stored as
// bool (!= 0), are And, Or and Xor.
inline void compose_oracle(OpCase& c) {
    const std::string op = c.node.op_type;
    if (ref_supports(op)) return;
    if (op == "LessOrEqual" || op == "GreaterOrEqual") {
        c.oracle = [](const OpCase& k) {
            Node strict = k.node, eq = k.node;
            strict.op_type = k.node.op_type == "LessOrEqual" ? "Less" : "Greater";
            eq.op_type = "Equal";
            const Tensor a = ref_eval(strict, k.inputs, k.opset)[0], b = ref_eval(eq, k.inputs, k.opset)[0];
            Tensor t(DType::Bool, a.shape());
            for (int64_t i = 0; i < t.numel(); ++i) t.data<uint8_t>()[i] = a.at_i64(i) != 0 || b.at_i64(i) != 0;
            return std::vector<Tensor>{t};
        };
    } else if (op == "And" || op == "Or" || op == "Xor") {
        c.oracle = [](const OpCase& k) {
            Node m = k.node;
            m.op_type = k.node.op_type == "And" ? "Mul" : (k.node.op_type == "Or" ? "Add" : "Sub");
            return ref_eval(m, k.inputs, k.opset);
        };
    }
}

inline std::vector<OpCase> binary_cases() {
    Rng r(12);
    std::vector<OpCase> cs;
    // float32: the same single operation on both sides (Pow: the device's powf).
    for (const char* op : {"Add", "Sub", "Mul", "Div", "Pow", "Min", "Max", "Equal", "Less", "Greater",
                           "LessOrEqual", "GreaterOrEqual"})
        for (const auto& p : broadcast_pairs()) {
            const std::string o = op;
            Tensor a = o == "Pow" ? rand_floats(p.first, r, 0.1f, 3.f) : rand_halves(p.first, r);
            Tensor b = o == "Pow" ? rand_floats(p.second, r, -2.f, 2.f) : rand_halves(p.second, r);
            if (o == "Div")
                for (int64_t i = 0; i < b.numel(); ++i)
                    if (b.data<float>()[i] == 0.f) b.data<float>()[i] = 1.5f;
            cs.push_back(make_case(make_node(op, 2), {a, b}, "float32", 0, o == "Pow" ? 1e-6 : 0));
        }
    {  // C's fmod: the dividend's sign
        Node n = make_node("Mod", 2);
        n.attrs["fmod"] = Attribute::of_int(1);
        for (const auto& p : broadcast_pairs()) {
            Tensor b = rand_floats(p.second, r, -4.f, 4.f);
            for (int64_t i = 0; i < b.numel(); ++i)
                if (std::fabs(b.data<float>()[i]) < 0.25f) b.data<float>()[i] = 0.75f;
            cs.push_back(make_case(n, {rand_floats(p.first, r, -9.f, 9.f), b}, "fmod 1 float32"));
        }
    }
    // int64 (int32 on the device): exact. Div and Mod with divisors of both signs, never 0.
    for (const char* op : {"Add", "Sub", "Mul", "Div", "Pow", "Min", "Max", "Mod", "Equal", "Less", "Greater",
                           "LessOrEqual", "GreaterOrEqual"})
        for (int fmod = 0; fmod < (std::string(op) == "Mod" ? 2 : 1); ++fmod)
            for (const auto& p : broadcast_pairs()) {
                const std::string o = op;
                Tensor a = rand_ints(p.first, r, -20, 20);
                Tensor b = o == "Pow" ? rand_ints(p.second, r, 0, 4) : rand_ints(p.second, r, -7, 7);
                if (o == "Div" || o == "Mod")
                    for (int64_t i = 0; i < b.numel(); ++i)
                        if (b.data<int64_t>()[i] == 0) b.data<int64_t>()[i] = -3;
                Node n = make_node(op, 2);
                if (o == "Mod") n.attrs["fmod"] = Attribute::of_int(fmod);
                cs.push_back(make_case(n, {a, b}, o == "Mod" ? "fmod " + std::to_string(fmod) + " int64" : "int64"));
            }
    for (const char* op : {"And", "Or", "Xor"})
        for (const auto& p : broadcast_pairs())
            cs.push_back(make_case(make_node(op, 2), {rand_ints(p.first, r, 0, 1, DType::Bool),
                                                      rand_ints(p.second, r, 0, 1, DType::Bool)}, "bool"));
    for (OpCase& c : cs) compose_oracle(c);
    return cs;
}

inline std::vector<OpCase> where_cases() {
    Rng r(13);
    std::vector<OpCase> cs;
    const std::vector<std::vector<Shape>> shapes = {
        {{2, 3, 4}, {2, 3, 4}, {2, 3, 4}}, {{2, 1, 4}, {3, 1}, {4}}, {{}, {2, 3}, {2, 3}},
        {{5}, {}, {2, 5}},                 {{1, 2, 1, 2, 1, 3}, {2, 1, 2, 1, 3, 1}, {3, 1}},
        {{0, 2}, {1, 2}, {2}}};
    for (const auto& s : shapes) {
        Tensor c = rand_ints(s[0], r, 0, 1, DType::Bool);
        cs.push_back(make_case(make_node("Where", 3), {c, rand_floats(s[1], r), rand_floats(s[2], r)}, "float32"));
        cs.push_back(make_case(make_node("Where", 3), {c, rand_ints(s[1], r, -50, 50), rand_ints(s[2], r, -50, 50)},
                               "int64"));
    }
    return cs;
}

// The reference sums in double, the tier in float32: measured on the host, at most 6e-8
// (Softmax) and 3.2e-7 (LogSoftmax) over rows of up to 400; the GPU's expf and logf add an
// ulp or two.
inline std::vector<OpCase> softmax_cases() {
    Rng r(14);
    std::vector<OpCase> cs;
    struct S {
        Shape s;
        int64_t axis, opset;
    };
    for (const S& s : std::vector<S>{{{2, 3, 5}, -1, 17},
                                     {{2, 3, 5}, 0, 17},
                                     {{2, 3, 5}, 1, 17},
                                     {{3, 1}, -1, 17},
                                     {{7}, 0, 13},
                                     {{2, 1, 3, 1, 4, 2}, -3, 17},
                                     {{4, 7}, 1, 11},
                                     {{2, 3, 4, 5}, 2, 11},
                                     {{1, 2, 400, 400}, -1, 17}}) {
        for (const char* op : {"Softmax", "LogSoftmax"}) {
            Node n = make_node(op, 1);
            n.attrs["axis"] = Attribute::of_int(s.axis);
            const bool log = std::string(op) == "LogSoftmax";
            OpCase c = make_case(n, {rand_floats(s.s, r, -8.f, 8.f)}, "axis " + std::to_string(s.axis),
                                 log ? 1e-6 : 2e-7, log ? 4e-6 : 1e-6, s.opset);
            if (log && !ref_supports("LogSoftmax")) {
                // Oracle: the log of the reference's Softmax (no underflow from inputs in [-8, 8]).
                c.oracle = [](const OpCase& k) {
                    Node sm = k.node;
                    sm.op_type = "Softmax";
                    Tensor t = ref_eval(sm, k.inputs, k.opset)[0].clone();
                    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = std::log(t.data<float>()[i]);
                    return std::vector<Tensor>{t};
                };
            }
            cs.push_back(c);
        }
    }
    return cs;
}

// float32 accumulation in k order on both sides; the GPU contracts to FMA.
inline std::vector<OpCase> matmul_cases() {
    Rng r(15);
    std::vector<OpCase> cs;
    const std::vector<std::pair<Shape, Shape>> shapes = {
        {{3, 4}, {4, 5}},          {{2, 3, 4}, {4, 5}},           {{4, 5}, {2, 5, 3}},
        {{4}, {4, 5}},             {{3, 4}, {4}},                 {{4}, {4}},
        {{2, 4}, {3, 1, 4, 2}},    {{2, 1, 3, 4}, {1, 5, 4, 2}},  {{1, 1, 2, 3, 4}, {2, 1, 1, 4, 3}},
        {{3, 0}, {0, 5}},          {{0, 3}, {3, 2}},              {{1, 1, 65, 70}, {1, 1, 70, 33}},
        {{1, 2, 400, 32}, {1, 2, 32, 400}}, {{1, 2, 64, 400}, {1, 2, 400, 400}}};
    for (const auto& s : shapes)
        cs.push_back(make_case(make_node("MatMul", 2), {rand_floats(s.first, r, -1.f, 1.f),
                                                        rand_floats(s.second, r, -1.f, 1.f)}, "", 1e-5, 1e-5));
    return cs;
}

// Transpose, Slice, Expand, Concat, Split: copies, exact.
inline std::vector<OpCase> copy_cases() {
    Rng r(16);
    std::vector<OpCase> cs;
    auto both = [&](Node n, const Shape& s, std::vector<Tensor> rest, const std::string& note) {
        std::vector<Tensor> a{rand_floats(s, r)}, b{rand_ints(s, r, -1000, 1000)};
        a.insert(a.end(), rest.begin(), rest.end());
        b.insert(b.end(), rest.begin(), rest.end());
        cs.push_back(make_case(n, a, note + " float32"));
        cs.push_back(make_case(n, b, note + " int64"));
    };
    struct T {
        Shape s;
        std::vector<int64_t> perm;
    };
    for (const T& t : std::vector<T>{{{5}, {0}},
                                     {{3, 4}, {1, 0}},
                                     {{2, 3, 4}, {}},
                                     {{1, 2, 400, 16}, {0, 1, 3, 2}},
                                     {{2, 3, 4, 5}, {3, 1, 0, 2}},
                                     {{2, 1, 3, 2, 4}, {4, 2, 0, 3, 1}},
                                     {{2, 3, 1, 2, 2, 3}, {5, 0, 4, 1, 3, 2}},
                                     {{2, 0, 3}, {2, 0, 1}}}) {
        Node n = make_node("Transpose", 1);
        if (!t.perm.empty()) n.attrs["perm"] = Attribute::of_ints(t.perm);
        both(n, t.s, {}, t.perm.empty() ? "perm reversed" : "");
    }
    struct Sl {
        Shape s;
        std::vector<int64_t> starts, ends, axes, steps;
    };
    for (const Sl& sl : std::vector<Sl>{{{10}, {2}, {7}, {}, {}},
                                        {{5, 6, 7}, {1}, {4}, {1}, {}},
                                        {{5, 6, 7}, {-1}, {-100}, {0}, {-1}},
                                        {{5, 6, 7}, {0, 6}, {100, -8}, {-1, 1}, {2, -3}},
                                        {{5, 6, 7}, {3}, {1}, {2}, {1}},
                                        {{5, 6, 7}, {-2, 1}, {100, 1000}, {0, 2}, {1, 3}},
                                        {{1, 4, 8400}, {0}, {2}, {1}, {1}},
                                        {{1, 4, 8400}, {2}, {4}, {-2}, {1}},
                                        {{2, 3, 2, 3, 2, 3}, {1, 2, 0}, {0, 0, 3}, {1, -1, 3}, {-1, -2, 2}}}) {
        Node n = make_node("Slice", 5);
        std::vector<Tensor> rest{ints(sl.starts), ints(sl.ends), sl.axes.empty() ? Tensor() : ints(sl.axes),
                                 sl.steps.empty() ? Tensor() : ints(sl.steps)};
        both(n, sl.s, rest, "");
    }
    for (const auto& e : std::vector<std::pair<Shape, std::vector<int64_t>>>{{{3, 1}, {2, 3, 4}},
                                                                             {{1}, {5}},
                                                                             {{1, 3}, {2, 1, 1}},
                                                                             {{2, 3}, {1, 1, 2, 3}},
                                                                             {{4, 1, 1}, {4, 2, 1}},
                                                                             {{1, 300, 1}, {1, 1, 7}},
                                                                             {{2, 1, 3}, {1, 2, 0, 1}}})
        both(make_node("Expand", 2), e.first, {ints(e.second)}, "");
    struct C {
        std::vector<Shape> s;
        int64_t axis;
    };
    for (const C& c : std::vector<C>{{{{2, 3, 4}, {2, 1, 4}, {2, 5, 4}}, 1},
                                     {{{2, 3}, {2, 4}}, -1},
                                     {{{1, 3}, {4, 3}, {2, 3}}, 0},
                                     {{{6}, {0}, {3}}, 0},
                                     {{{1, 4, 6400}, {1, 4, 1600}, {1, 4, 400}}, -1},
                                     {{{2, 2, 1, 2, 1, 2}, {2, 2, 3, 2, 1, 2}}, 2}}) {
        Node n = make_node("Concat", c.s.size());
        n.attrs["axis"] = Attribute::of_int(c.axis);
        for (int k = 0; k < 2; ++k) {
            std::vector<Tensor> in;
            for (const Shape& s : c.s) in.push_back(k == 0 ? rand_floats(s, r) : rand_ints(s, r, -99, 99));
            cs.push_back(make_case(n, in, k == 0 ? "float32" : "int64"));
        }
    }
    {
        Node n = make_node("Split", 2, 3);
        n.attrs["axis"] = Attribute::of_int(1);
        both(n, {2, 10, 3}, {ints({2, 5, 3})}, "sizes 2 5 3");
        both(n, {2, 10, 3}, {ints({0, 7, 3})}, "sizes 0 7 3");
        Node eq = make_node("Split", 1, 3);
        eq.attrs["axis"] = Attribute::of_int(-1);
        both(eq, {2, 4, 9}, {}, "equal parts");
        Node no = make_node("Split", 1, 3);
        no.attrs["axis"] = Attribute::of_int(0);
        no.attrs["num_outputs"] = Attribute::of_int(3);
        std::vector<Tensor> in{rand_floats({10, 2}, r)};
        cs.push_back(make_case(no, in, "num_outputs 3 of 10", 0, 0, 18));
        Node c2 = make_node("Split", 2, 3);
        c2.attrs["axis"] = Attribute::of_int(2);
        both(c2, {1, 1, 64, 400}, {ints({16, 16, 32})}, "C2PSA qkv");
    }
    return cs;
}

inline std::vector<OpCase> gather_cases() {
    Rng r(17);
    std::vector<OpCase> cs;
    struct G {
        Shape s;
        int64_t axis;
        Shape is;
    };
    for (const G& g : std::vector<G>{{{5, 4}, 0, {3}},
                                     {{5, 4}, 1, {2, 2}},
                                     {{5, 4}, -1, {}},
                                     {{2, 3, 4, 5}, 2, {6}},
                                     {{7}, 0, {2, 3}},
                                     {{2, 8400, 7}, 1, {300}},
                                     {{3, 4}, 0, {0}}}) {
        const int64_t len = g.s[size_t(axis_of(g.axis, g.s.size()))];
        Tensor idx = rand_ints(g.is, r, -len, len - 1);  // negative indices wrap
        Node n = make_node("Gather", 2);
        n.attrs["axis"] = Attribute::of_int(g.axis);
        cs.push_back(make_case(n, {rand_floats(g.s, r), idx}, "axis " + std::to_string(g.axis) + " float32"));
        cs.push_back(make_case(n, {rand_ints(g.s, r, -99, 99), idx}, "axis " + std::to_string(g.axis) + " int64"));
    }
    struct E {
        Shape s;
        int64_t axis;
        Shape is;
    };
    for (const E& e : std::vector<E>{{{3, 4}, 0, {2, 4}},
                                     {{3, 4}, 1, {3, 6}},
                                     {{3, 4}, -1, {2, 2}},
                                     {{2, 3, 4, 5}, 2, {2, 3, 7, 5}},
                                     {{1, 8400, 7}, 1, {1, 300, 7}},
                                     {{1, 2100}, 1, {1, 300}},
                                     {{5}, 0, {0}}}) {
        const int64_t len = e.s[size_t(axis_of(e.axis, e.s.size()))];
        Tensor idx = rand_ints(e.is, r, -len, len - 1);
        Node n = make_node("GatherElements", 2);
        n.attrs["axis"] = Attribute::of_int(e.axis);
        cs.push_back(make_case(n, {rand_floats(e.s, r), idx}, "axis " + std::to_string(e.axis) + " float32"));
        cs.push_back(make_case(n, {rand_ints(e.s, r, -99, 99), idx}, "axis " + std::to_string(e.axis) + " int64"));
    }
    return cs;
}

// Values with many ties (a grid of halves) and without; exact.
inline std::vector<OpCase> topk_cases() {
    Rng r(18);
    std::vector<OpCase> cs;
    struct K {
        Shape s;
        int64_t axis, k;
    };
    for (const K& t : std::vector<K>{{{1, 8400}, 1, 300},
                                     {{3, 8400}, -1, 300},
                                     {{2, 2100}, 1, 300},
                                     {{2, 12000}, 1, 300},  // too long for the GPU's shared-memory key cache
                                     {{7, 3}, 0, 2},
                                     {{2, 5, 3}, 1, 5},
                                     {{2, 6, 3}, -2, 0},
                                     {{4, 1000}, 1, 1000},
                                     {{1, 20000}, 1, 4097},
                                     {{2, 1, 3, 1, 40}, -1, 7}})
        for (int largest = 0; largest < 2; ++largest) {
            Node n = make_node("TopK", 2, 2);
            n.attrs["axis"] = Attribute::of_int(t.axis);
            n.attrs["largest"] = Attribute::of_int(largest);
            const std::string note = "k " + std::to_string(t.k) + (largest ? " largest" : " smallest");
            cs.push_back(make_case(n, {rand_floats(t.s, r, 0.f, 1.f), ints({t.k})}, note + " float32"));
            cs.push_back(make_case(n, {rand_halves(t.s, r, -8, 8), ints({t.k})}, note + " ties float32"));
            cs.push_back(make_case(n, {rand_ints(t.s, r, -30, 30), ints({t.k})}, note + " ties int64"));
        }
    return cs;
}

inline std::vector<OpCase> reduce_cases() {
    Rng r(19);
    std::vector<OpCase> cs;
    struct R {
        Shape s;
        std::vector<int64_t> axes;
        int keep, noop;
    };
    const std::vector<R> rs = {{{2, 3, 4}, {1}, 1, 0},         {{2, 3, 4}, {-1}, 0, 0},
                               {{2, 3, 4}, {0, 2}, 1, 0},      {{2, 3, 4}, {}, 0, 0},
                               {{2, 3, 4}, {}, 1, 1},          {{1, 8400, 7}, {-1}, 0, 0},
                               {{2, 84, 50}, {1}, 1, 0},       {{2, 1, 3, 2, 2, 3}, {0, 3, -1}, 0, 0},
                               {{5}, {0}, 1, 0},               {{3, 0, 2}, {0}, 1, 0}};
    for (const auto& kv : reduce_table()) {
        const std::string op = kv.first;
        for (const R& q : rs) {
            Node n = make_node(op, 2);
            n.attrs["keepdims"] = Attribute::of_int(q.keep);
            if (q.noop) n.attrs["noop_with_empty_axes"] = Attribute::of_int(1);
            const Tensor ax = q.axes.empty() ? Tensor() : ints(q.axes);
            const std::string note = "axes " + std::to_string(q.axes.size()) + " keepdims " + std::to_string(q.keep);
            cs.push_back(make_case(n, {rand_floats(q.s, r), ax}, note + " float32", 0, 0, 18));
            if (op != "ReduceMean")
                cs.push_back(make_case(n, {rand_ints(q.s, r, -500, 500), ax}, note + " int64", 0, 0, 18));
        }
        // Over an empty axis: -inf, +inf, 0 and NaN (float32 only: the reference's int64 has no
        // infinity to store).
        Node n = make_node(op, 2);
        cs.push_back(make_case(n, {rand_floats({2, 0, 3}, r), ints({1})}, "empty reduction float32", 0, 0, 18));
    }
    return cs;
}

// Truncation toward zero both ways; exact.
inline std::vector<OpCase> cast_cases() {
    Rng r(20);
    std::vector<OpCase> cs;
    auto cast = [](DType to) {
        Node n = make_node("Cast", 1);
        n.attrs["to"] = Attribute::of_int(int64_t(to));
        return n;
    };
    for (const Shape& s : {Shape{9}, Shape{2, 3, 4}, Shape{0}}) {
        Tensor f = rand_halves(s, r, -11, 11);  // .5s and exact integers of both signs
        Tensor g = rand_floats(s, r, -100.f, 100.f);
        for (DType to : {DType::Int64, DType::Int32, DType::Bool}) {
            cs.push_back(make_case(cast(to), {f}, std::string("to ") + dtype_name(to)));
            cs.push_back(make_case(cast(to), {g}, std::string("to ") + dtype_name(to)));
        }
        cs.push_back(make_case(cast(DType::Float32), {rand_ints(s, r, -100000, 100000)}, "int64 to float"));
        cs.push_back(make_case(cast(DType::Float32), {rand_ints(s, r, 0, 1, DType::Bool)}, "bool to float"));
        cs.push_back(make_case(cast(DType::Bool), {rand_ints(s, r, -2, 2)}, "int64 to bool"));
    }
    return cs;
}

// FakeQuant (the plan's Q -> DQ pair): exact against the reference's QuantizeLinear then
// DequantizeLinear (int8, zero point 0), values around and beyond the int8 range.
inline std::vector<OpCase> fake_quant_cases() {
    Rng r(21);
    std::vector<OpCase> cs;
    for (float scale : {0.02f, 0.1f, 1.f / 3.f})
        for (const Shape& s : {Shape{37}, Shape{2, 3, 4, 5}, Shape{0}}) {
            Node n = make_node("FakeQuant", 1);
            n.attrs["scale"] = Attribute::of_float(scale);
            OpCase c = make_case(n, {rand_floats(s, r, -160.f * scale, 160.f * scale)}, "scale " + std::to_string(scale));
            c.oracle = [](const OpCase& k) {
                const float sc = k.node.attr_f("scale", 1.f);
                Node q = make_node("QuantizeLinear", 3), dq = make_node("DequantizeLinear", 3);
                Tensor zp(DType::Int8, {});
                const Tensor scale_t = Tensor::scalar_f32(sc);
                const Tensor qv = ref_eval(q, {k.inputs[0], scale_t, zp}, k.opset)[0];
                return ref_eval(dq, {qv, scale_t, zp}, k.opset);
            };
            cs.push_back(c);
        }
    return cs;
}

// ConvTranspose: YOLOv8-seg's proto upsampler (2x2, stride 2) and strides, pads,
// dilations, output_padding and groups around it. Exact on the host (same order of
// additions as the reference); the GPU contracts to FMA.
inline std::vector<OpCase> conv_transpose_cases() {
    Rng r(22);
    std::vector<OpCase> cs;
    struct C {
        Shape x, w;
        std::vector<int64_t> s, p, d, op;
        int64_t group;
        bool bias;
    };
    for (const C& c : std::vector<C>{{{1, 8, 5, 5}, {8, 8, 2, 2}, {2, 2}, {0, 0, 0, 0}, {1, 1}, {0, 0}, 1, true},
                                     {{2, 3, 4, 6}, {3, 5, 3, 3}, {1, 1}, {1, 1, 1, 1}, {1, 1}, {0, 0}, 1, false},
                                     {{1, 4, 3, 5}, {4, 3, 3, 2}, {3, 2}, {0, 1, 2, 0}, {1, 1}, {2, 1}, 1, true},
                                     {{1, 6, 4, 4}, {6, 2, 3, 3}, {2, 2}, {1, 1, 0, 0}, {2, 1}, {1, 0}, 3, true},
                                     {{1, 4, 1, 7}, {4, 1, 1, 3}, {1, 2}, {0, 0, 0, 0}, {1, 2}, {0, 1}, 4, false}}) {
        Node n = make_node("ConvTranspose", c.bias ? 3 : 2);
        n.attrs["strides"] = Attribute::of_ints(c.s);
        n.attrs["pads"] = Attribute::of_ints(c.p);
        n.attrs["dilations"] = Attribute::of_ints(c.d);
        n.attrs["output_padding"] = Attribute::of_ints(c.op);
        n.attrs["group"] = Attribute::of_int(c.group);
        std::vector<Tensor> in{rand_floats(c.x, r), rand_floats(c.w, r, -0.5f, 0.5f)};
        if (c.bias) in.push_back(rand_floats({c.w[1] * c.group}, r));
        cs.push_back(make_case(n, in, "group " + std::to_string(c.group), 0, 2e-6));
    }
    return cs;
}

// ---- comparing --------------------------------------------------------------------------------

// got (float32 / int32) against want (any numeric type): same shape, same kind (float or
// integer), values equal (both NaN counts as equal) or within tol as max |a-b| / (1 + |b|).
inline void expect_matches(const Tensor& got, const Tensor& want, double tol, const std::string& what) {
    ASSERT_EQ(got.shape(), want.shape()) << what;
    EXPECT_EQ(got.dtype() == DType::Float32, want.dtype() == DType::Float32) << what << ": float vs integer output";
    double worst = 0;
    int64_t bad = 0, first = -1;
    for (int64_t i = 0; i < got.numel(); ++i) {
        const double a = got.at_f64(i), b = want.at_f64(i);
        if (std::isnan(a) && std::isnan(b)) continue;
        const double e = std::isnan(a) || std::isnan(b) ? 1e30 : std::fabs(a - b) / (1.0 + std::fabs(b));
        if (tol == 0 ? a != b : !(e <= tol)) {
            if (first < 0) first = i;
            ++bad;
        }
        worst = std::max(worst, e);
    }
    EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << got.numel() << " elements differ (worst "
                      << worst << ", tolerance " << tol << "); first at " << first << ": got "
                      << (first >= 0 ? got.at_f64(first) : 0) << ", want " << (first >= 0 ? want.at_f64(first) : 0);
}

struct CaseTally {
    int ran = 0;
    std::vector<std::string> no_oracle;  // op types the reference does not run yet
};

// Runs every case through `be` and its oracle. Cases whose op the reference lacks (and
// that bring no oracle of their own) are listed in the tally instead.
inline CaseTally check_cases(const std::vector<OpCase>& cases, GenericBackend& be, bool device) {
    CaseTally t;
    for (const OpCase& c : cases) {
        if (!c.oracle && !ref_supports(c.node.op_type)) {
            if (std::find(t.no_oracle.begin(), t.no_oracle.end(), c.node.op_type) == t.no_oracle.end())
                t.no_oracle.push_back(c.node.op_type);
            continue;
        }
        SCOPED_TRACE(c.name);
        const std::vector<Tensor> want = c.oracle ? c.oracle(c) : ref_eval(c.node, c.inputs, c.opset);
        const std::vector<Tensor> got = run_generic(c.node, c.inputs, c.opset, be);
        EXPECT_EQ(got.size(), want.size()) << c.name;
        for (size_t o = 0; o < std::min(got.size(), want.size()); ++o)
            expect_matches(got[o], want[o], device ? c.device_tol : c.tol, c.name + ", output " + std::to_string(o));
        ++t.ran;
    }
    return t;
}

}  // namespace yoloc_test
