// Indexing ops: Gather, GatherElements, TopK.
#include <numeric>

#include "ir/ops/common.h"

namespace yoloc {
namespace ops {
namespace {

int64_t wrap_index(int64_t id, int64_t len, const Node& n) {
    if (id < 0) id += len;
    YOLOC_CHECK(id >= 0 && id < len, "node ", n.label(), ": index ", id, " out of range for a dimension of ", len);
    return id;
}

Tensors gather(const Node& n, const Tensors& ins, int64_t) {
    const Tensor& x = in(ins, 0, n);
    const Tensor& idx = in(ins, 1, n);
    int64_t axis = norm_axis(n.attr_i("axis", 0), x.rank(), n);
    Shape out;
    for (int64_t k = 0; k < axis; ++k) out.push_back(x.dim(size_t(k)));
    for (int64_t d : idx.shape()) out.push_back(d);
    for (size_t k = size_t(axis) + 1; k < x.rank(); ++k) out.push_back(x.dim(k));
    Tensor r(x.dtype(), out);
    AxisSplit s = split_at(x.shape(), axis);
    size_t es = dtype_size(x.dtype());
    int64_t ni = idx.numel();
    for (int64_t o = 0; o < s.outer; ++o)
        for (int64_t j = 0; j < ni; ++j) {
            int64_t id = wrap_index(idx.at_i64(j), s.len, n);
            std::memcpy(r.raw() + size_t((o * ni + j) * s.inner) * es, x.raw() + size_t((o * s.len + id) * s.inner) * es,
                        size_t(s.inner) * es);
        }
    return {r};
}

// out[i0..ik..] = x[i0..idx[i0..ik..]..] along `axis`; the output has the indices' shape.
Tensors gather_elements(const Node& n, const Tensors& ins, int64_t) {
    const Tensor& x = in(ins, 0, n);
    const Tensor& idx = in(ins, 1, n);
    YOLOC_CHECK(idx.rank() == x.rank(), "node ", n.label(), ": indices have rank ", idx.rank(), ", data ", x.rank());
    const int64_t axis = norm_axis(n.attr_i("axis", 0), x.rank(), n);
    for (size_t k = 0; k < x.rank(); ++k)
        YOLOC_CHECK(int64_t(k) == axis || idx.dim(k) <= x.dim(k), "node ", n.label(), ": indices ",
                    shape_str(idx.shape()), " exceed the data ", shape_str(x.shape()), " on axis ", k);
    Tensor r(x.dtype(), idx.shape());
    const auto xs = strides_of(x.shape());
    const size_t es = dtype_size(x.dtype());
    std::vector<int64_t> pos(idx.rank(), 0);
    for (int64_t o = 0; o < idx.numel(); ++o) {
        int64_t src = 0;
        for (size_t k = 0; k < pos.size(); ++k) {
            const int64_t p = int64_t(k) == axis ? wrap_index(idx.at_i64(o), x.dim(k), n) : pos[k];
            src += p * xs[k];
        }
        std::memcpy(r.raw() + size_t(o) * es, x.raw() + size_t(src) * es, es);
        for (size_t k = pos.size(); k-- > 0;) {
            if (++pos[k] < idx.dim(k)) break;
            pos[k] = 0;
        }
    }
    return {r};
}

std::vector<ValueType> gather_elements_shape(const Node& n, const ShapeInputs& in, int64_t) {
    YOLOC_CHECK(in.types.size() == 2 && in.types[0] && in.types[1], "node ", n.label(), ": needs data and indices");
    return {{in.types[0]->dtype, in.types[1]->shape}};
}

int64_t topk_k(const Node& n, const Tensor* k_input, int64_t opset) {
    if (opset >= 10) {
        YOLOC_CHECK(k_input && k_input->numel() == 1, "node ", n.label(), ": TopK needs K as a 1-element tensor");
        return k_input->at_i64(0);
    }
    return n.attr_i("k", -1);
}

Shape topk_out(const Node& n, const Shape& x, int64_t k, int64_t* axis) {
    *axis = norm_axis(n.attr_i("axis", -1), x.size(), n);
    YOLOC_CHECK(k >= 0 && k <= x[size_t(*axis)], "node ", n.label(), ": K = ", k, " for an axis of ", x[size_t(*axis)]);
    Shape out = x;
    out[size_t(*axis)] = k;
    return out;
}

// The k largest (or smallest) along `axis`; equal values keep their order (the lower index
// first), as the ONNX spec requires; sorted=0 allows any order, so sorted is returned too.
// Values are compared as doubles; NaN sorts as largest.
Tensors topk(const Node& n, const Tensors& ins, int64_t opset) {
    const Tensor& x = in(ins, 0, n);
    const int64_t k = topk_k(n, has_in(ins, 1) ? &ins[1] : nullptr, opset);
    int64_t axis = 0;
    Shape out = topk_out(n, x.shape(), k, &axis);
    const bool largest = n.attr_i("largest", 1) != 0;
    AxisSplit s = split_at(x.shape(), axis);
    Tensor vals(x.dtype(), out), idxs(DType::Int64, out);
    const size_t es = dtype_size(x.dtype());
    std::vector<int64_t> order(size_t(s.len));
    std::vector<double> v(size_t(s.len));
    for (int64_t o = 0; o < s.outer; ++o)
        for (int64_t i = 0; i < s.inner; ++i) {
            for (int64_t j = 0; j < s.len; ++j) {
                double e = x.at_f64((o * s.len + j) * s.inner + i);
                v[size_t(j)] = std::isnan(e) ? std::numeric_limits<double>::infinity() : e;
            }
            std::iota(order.begin(), order.end(), int64_t(0));
            std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
                return largest ? v[size_t(a)] > v[size_t(b)] : v[size_t(a)] < v[size_t(b)];
            });
            for (int64_t j = 0; j < k; ++j) {
                const int64_t src = (o * s.len + order[size_t(j)]) * s.inner + i;
                const int64_t dst = (o * k + j) * s.inner + i;
                std::memcpy(vals.raw() + size_t(dst) * es, x.raw() + size_t(src) * es, es);
                idxs.data<int64_t>()[dst] = order[size_t(j)];
            }
        }
    return {vals, idxs};
}

std::vector<ValueType> topk_shape(const Node& n, const ShapeInputs& in, int64_t opset) {
    YOLOC_CHECK(!in.types.empty() && in.types[0], "node ", n.label(), ": missing input 0");
    YOLOC_CHECK(opset < 10 || (in.values.size() > 1 && in.values[1]), "node ", n.label(),
                ": K must be a constant (computed at load time)");
    int64_t axis = 0;
    Shape out = topk_out(n, in.types[0]->shape, topk_k(n, opset >= 10 ? in.values[1] : nullptr, opset), &axis);
    return {{in.types[0]->dtype, out}, {DType::Int64, out}};
}

}  // namespace

void add_index_ops(std::vector<OpSchema>& t) {
    t.push_back(op("Gather", gather, ChannelFlow::Pin, QuantRole::Commutes, CostKind::Movement));
    t.push_back(op("GatherElements", gather_elements, ChannelFlow::Pin, QuantRole::None, CostKind::Movement,
                   gather_elements_shape));
    t.push_back(op("TopK", topk, ChannelFlow::Pin, QuantRole::None, CostKind::PerOutput, topk_shape));
}

}  // namespace ops
}  // namespace yoloc
