// Reductions: ReduceMax/Min/Sum/Mean over a set of axes, ArgMax/ArgMin along one.
#include <limits>

#include "ir/ops/common.h"

namespace yoloc {
namespace ops {
namespace {

// Axes come from input 1 (ReduceSum from opset 13, the others from 18) or the attribute.
std::vector<bool> reduced_axes(const Node& n, size_t rank, const Tensor* axes_input) {
    std::vector<int64_t> axes = axes_input ? axes_input->to_int64s() : n.attr_ints("axes");
    std::vector<bool> red(rank, false);
    if (axes.empty()) {
        if (n.attr_i("noop_with_empty_axes", 0) == 0) red.assign(rank, true);
        return red;
    }
    for (int64_t a : axes) red[size_t(norm_axis(a, rank, n))] = true;
    return red;
}

Shape reduced_shape(const Shape& x, const std::vector<bool>& red, bool keepdims) {
    Shape out;
    for (size_t k = 0; k < x.size(); ++k) {
        if (!red[k]) out.push_back(x[k]);
        else if (keepdims) out.push_back(1);
    }
    return out;
}

Tensors reduce(const Node& n, const Tensors& ins, int64_t) {
    const Tensor& x = in(ins, 0, n);
    const std::vector<bool> red = reduced_axes(n, x.rank(), has_in(ins, 1) ? &ins[1] : nullptr);
    const bool keep = n.attr_i("keepdims", 1) != 0;
    const Shape out = reduced_shape(x.shape(), red, keep);
    const std::string& op = n.op_type;
    // Accumulate in double; the output keeps the input's type.
    const double init = op == "ReduceMax"   ? -std::numeric_limits<double>::infinity()
                        : op == "ReduceMin" ? std::numeric_limits<double>::infinity()
                                            : 0.0;
    // Index of the output element each input element reduces into: the input index with
    // the reduced axes' coordinates dropped.
    Shape kept = reduced_shape(x.shape(), red, true);
    const auto ks = strides_of(kept);
    std::vector<double> acc(size_t(shape_numel(kept)), init);
    std::vector<int64_t> pos(x.rank(), 0);
    for (int64_t i = 0; i < x.numel(); ++i) {
        int64_t o = 0;
        for (size_t k = 0; k < pos.size(); ++k)
            if (!red[k]) o += pos[k] * ks[k];
        const double v = x.at_f64(i);
        double& a = acc[size_t(o)];
        if (op == "ReduceMax") a = std::isnan(v) || std::isnan(a) ? NAN : std::max(a, v);
        else if (op == "ReduceMin") a = std::isnan(v) || std::isnan(a) ? NAN : std::min(a, v);
        else a += v;
        for (size_t k = pos.size(); k-- > 0;) {
            if (++pos[k] < x.dim(k)) break;
            pos[k] = 0;
        }
    }
    int64_t count = 1;
    for (size_t k = 0; k < x.rank(); ++k)
        if (red[k]) count *= x.dim(k);
    Tensor r(x.dtype(), out);
    for (size_t o = 0; o < acc.size(); ++o) store(r, int64_t(o), op == "ReduceMean" ? acc[o] / double(count) : acc[o]);
    return {r};
}

std::vector<ValueType> reduce_shape(const Node& n, const ShapeInputs& in, int64_t) {
    YOLOC_CHECK(!in.types.empty() && in.types[0], "node ", n.label(), ": missing input 0");
    const bool given = n.inputs.size() > 1 && !n.inputs[1].empty();
    YOLOC_CHECK(!given || (in.values.size() > 1 && in.values[1]), "node ", n.label(),
                ": the axes must be a constant (computed at load time)");
    const Shape& x = in.types[0]->shape;
    return {{in.types[0]->dtype,
             reduced_shape(x, reduced_axes(n, x.size(), given ? in.values[1] : nullptr), n.attr_i("keepdims", 1) != 0)}};
}

// ArgMax/ArgMin: the first index of the extreme value (select_last_index=1: the last).
Tensors arg_extreme(const Node& n, const Tensors& ins, int64_t) {
    const Tensor& x = in(ins, 0, n);
    const int64_t axis = norm_axis(n.attr_i("axis", 0), x.rank(), n);
    const bool keep = n.attr_i("keepdims", 1) != 0, last = n.attr_i("select_last_index", 0) != 0;
    const bool max = n.op_type == "ArgMax";
    AxisSplit s = split_at(x.shape(), axis);
    Shape out = x.shape();
    if (keep) out[size_t(axis)] = 1;
    else out.erase(out.begin() + axis);
    Tensor r(DType::Int64, out);
    for (int64_t o = 0; o < s.outer; ++o)
        for (int64_t i = 0; i < s.inner; ++i) {
            int64_t best = 0;
            double bv = x.at_f64(o * s.len * s.inner + i);
            for (int64_t j = 1; j < s.len; ++j) {
                const double v = x.at_f64((o * s.len + j) * s.inner + i);
                const bool better = max ? (last ? v >= bv : v > bv) : (last ? v <= bv : v < bv);
                if (better) {
                    best = j;
                    bv = v;
                }
            }
            r.data<int64_t>()[o * s.inner + i] = best;
        }
    return {r};
}

}  // namespace

void add_reduce_ops(std::vector<OpSchema>& t) {
    for (const char* name : {"ReduceMax", "ReduceMin", "ReduceSum", "ReduceMean"})
        t.push_back(op(name, reduce, ChannelFlow::Pin, QuantRole::None, CostKind::PerOutput, reduce_shape));
    t.push_back(op("ArgMax", arg_extreme, ChannelFlow::Pin, QuantRole::None, CostKind::PerOutput));
    t.push_back(op("ArgMin", arg_extreme, ChannelFlow::Pin, QuantRole::None, CostKind::PerOutput));
}

}  // namespace ops
}  // namespace yoloc
