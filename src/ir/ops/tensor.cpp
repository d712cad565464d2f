// Data-movement and shape ops: Concat, Split, Reshape, Transpose, Shape, (Un)Squeeze,
// Flatten, Slice, Cast, Constant, ConstantOfShape, Range, Expand, Tile.
#include "ir/ops/common.h"

namespace yoloc {
namespace ops {
namespace {

Shape concat_out(const Node& n, const std::vector<Shape>& shapes, int64_t* axis_out) {
    YOLOC_CHECK(!shapes.empty(), "node ", n.label(), ": Concat needs inputs");
    const Shape& first = shapes[0];
    int64_t axis = norm_axis(n.attr_i("axis", 0), first.size(), n);
    Shape out = first;
    out[size_t(axis)] = 0;
    for (size_t i = 0; i < shapes.size(); ++i) {
        const Shape& s = shapes[i];
        YOLOC_CHECK(s.size() == first.size(), "node ", n.label(), ": inputs differ in rank");
        for (size_t k = 0; k < s.size(); ++k)
            YOLOC_CHECK(int64_t(k) == axis || s[k] == first[k], "node ", n.label(), ": input ", i, " has shape ",
                        shape_str(s), ", which does not fit ", shape_str(first), " on axis ", k,
                        " (wrong input size for this model? sizes must be divisible by 32)");
        out[size_t(axis)] += s[size_t(axis)];
    }
    *axis_out = axis;
    return out;
}

Tensors concat(const Node& n, const Tensors& ins, int64_t) {
    std::vector<Shape> shapes;
    for (size_t i = 0; i < ins.size(); ++i) {
        shapes.push_back(in(ins, i, n).shape());
        YOLOC_CHECK(ins[i].dtype() == ins[0].dtype(), "node ", n.label(), ": inputs differ in type");
    }
    int64_t axis = 0;
    Shape out = concat_out(n, shapes, &axis);
    Tensor r(ins[0].dtype(), out);
    AxisSplit s = split_at(out, axis);
    size_t es = dtype_size(ins[0].dtype());
    int64_t off = 0;
    for (const auto& t : ins) {
        int64_t chunk = t.dim(size_t(axis)) * s.inner;
        for (int64_t o = 0; o < s.outer; ++o)
            std::memcpy(r.raw() + size_t((o * s.len * s.inner + off) * int64_t(es)),
                        t.raw() + size_t(o * chunk * int64_t(es)), size_t(chunk) * es);
        off += chunk;
    }
    return {r};
}

std::vector<ValueType> concat_shape(const Node& n, const ShapeInputs& in, int64_t) {
    std::vector<Shape> shapes;
    for (size_t i = 0; i < in.types.size(); ++i) {
        YOLOC_CHECK(in.types[i], "node ", n.label(), ": missing input ", i);
        shapes.push_back(in.types[i]->shape);
    }
    int64_t axis = 0;
    return {{in.types.empty() ? DType::Undefined : in.types[0]->dtype, concat_out(n, shapes, &axis)}};
}

std::vector<int64_t> split_sizes(const Node& n, int64_t len, const Tensor* sizes_input) {
    std::vector<int64_t> sizes;
    if (sizes_input) sizes = sizes_input->to_int64s();
    else if (n.has("split")) sizes = n.attr_ints("split");
    const size_t nout = n.outputs.size();
    if (sizes.empty()) {
        int64_t parts = n.has("num_outputs") ? n.attr_i("num_outputs", 1) : int64_t(nout);
        YOLOC_CHECK(parts > 0, "node ", n.label(), ": bad number of outputs");
        int64_t each = (len + parts - 1) / parts;
        for (int64_t i = 0; i < parts; ++i) sizes.push_back(std::max<int64_t>(0, std::min(each, len - each * i)));
    }
    YOLOC_CHECK(sizes.size() == nout, "node ", n.label(), ": ", sizes.size(), " split sizes for ", nout, " outputs");
    int64_t sum = 0;
    for (int64_t s : sizes) {
        YOLOC_CHECK(s >= 0, "node ", n.label(), ": negative split size");
        sum += s;
    }
    YOLOC_CHECK(sum == len, "node ", n.label(), ": split sizes add up to ", sum, " but the axis has ", len);
    return sizes;
}

Tensors split(const Node& n, const Tensors& ins, int64_t) {
    const Tensor& x = in(ins, 0, n);
    int64_t axis = norm_axis(n.attr_i("axis", 0), x.rank(), n);
    AxisSplit s = split_at(x.shape(), axis);
    std::vector<int64_t> sizes = split_sizes(n, s.len, has_in(ins, 1) ? &ins[1] : nullptr);
    size_t es = dtype_size(x.dtype());
    Tensors outs;
    int64_t off = 0;
    for (int64_t sz : sizes) {
        Shape sh = x.shape();
        sh[size_t(axis)] = sz;
        Tensor r(x.dtype(), sh);
        for (int64_t o = 0; o < s.outer; ++o)
            std::memcpy(r.raw() + size_t(o * sz * s.inner) * es, x.raw() + size_t((o * s.len + off) * s.inner) * es,
                        size_t(sz * s.inner) * es);
        off += sz;
        outs.push_back(r);
    }
    return outs;
}

std::vector<ValueType> split_shape(const Node& n, const ShapeInputs& in, int64_t) {
    YOLOC_CHECK(!in.types.empty() && in.types[0], "node ", n.label(), ": missing input 0");
    const Shape& x = in.types[0]->shape;
    int64_t axis = norm_axis(n.attr_i("axis", 0), x.size(), n);
    const bool given = n.inputs.size() > 1 && !n.inputs[1].empty();
    YOLOC_CHECK(!given || (in.values.size() > 1 && in.values[1]), "node ", n.label(),
                ": the split sizes must be a constant (computed at load time); this graph computes them from data, "
                "which yoloc does not support");
    std::vector<ValueType> outs;
    for (int64_t s : split_sizes(n, x[size_t(axis)], given ? in.values[1] : nullptr)) {
        Shape o = x;
        o[size_t(axis)] = s;
        outs.push_back({in.types[0]->dtype, o});
    }
    return outs;
}

Tensors reshape(const Node& n, const Tensors& ins, int64_t) {
    const Tensor& x = in(ins, 0, n);
    auto target = in(ins, 1, n).to_int64s();
    bool allowzero = n.attr_i("allowzero", 0) != 0;
    Shape out(target.size());
    int64_t known = 1, infer = -1;
    for (size_t k = 0; k < target.size(); ++k) {
        int64_t v = target[k];
        if (v == 0 && !allowzero) {
            YOLOC_CHECK(k < x.rank(), "node ", n.label(), ": reshape 0 refers to a missing input dim");
            v = x.dim(k);
        }
        if (v == -1) {
            YOLOC_CHECK(infer < 0, "node ", n.label(), ": more than one -1 in the target shape");
            infer = int64_t(k);
            out[k] = 1;
            continue;
        }
        YOLOC_CHECK(v >= 0, "node ", n.label(), ": bad target dim ", v);
        out[k] = v;
        known *= v;
    }
    if (infer >= 0) {
        YOLOC_CHECK(known > 0 && x.numel() % known == 0, "node ", n.label(), ": cannot reshape ", shape_str(x.shape()),
                    " to ", shape_str(target));
        out[size_t(infer)] = x.numel() / known;
    }
    YOLOC_CHECK(shape_numel(out) == x.numel(), "node ", n.label(), ": cannot reshape ", shape_str(x.shape()), " to ",
                shape_str(out), " (element counts differ; wrong input size for this model?)");
    return {x.reshaped(out)};
}

Tensors transpose(const Node& n, const Tensors& ins, int64_t) {
    const Tensor& x = in(ins, 0, n);
    std::vector<int64_t> perm = n.attr_ints("perm");
    if (perm.empty())
        for (size_t k = x.rank(); k-- > 0;) perm.push_back(int64_t(k));
    YOLOC_CHECK(perm.size() == x.rank(), "node ", n.label(), ": perm has the wrong length");
    Shape out(x.rank());
    for (size_t k = 0; k < perm.size(); ++k) {
        perm[k] = norm_axis(perm[k], x.rank(), n);
        out[k] = x.dim(size_t(perm[k]));
    }
    Tensor r(x.dtype(), out);
    auto ist = strides_of(x.shape());
    std::vector<int64_t> st(perm.size());
    for (size_t k = 0; k < perm.size(); ++k) st[k] = ist[size_t(perm[k])];
    std::vector<int64_t> zero(perm.size(), 0);
    size_t es = dtype_size(x.dtype());
    for_each_broadcast(out, st, zero, [&](int64_t o, int64_t i, int64_t) {
        std::memcpy(r.raw() + size_t(o) * es, x.raw() + size_t(i) * es, es);
    });
    return {r};
}

Tensors shape_op(const Node& n, const Tensors& ins, int64_t) {
    const Tensor& x = in(ins, 0, n);
    int64_t r = int64_t(x.rank());
    int64_t start = n.attr_i("start", 0), end = n.attr_i("end", r);
    if (start < 0) start += r;
    if (end < 0) end += r;
    start = std::min(std::max<int64_t>(start, 0), r);
    end = std::min(std::max<int64_t>(end, start), r);
    std::vector<int64_t> v(x.shape().begin() + start, x.shape().begin() + end);
    return {Tensor::from_int64s({int64_t(v.size())}, v)};
}

Tensors size_op(const Node& n, const Tensors& ins, int64_t) {
    return {Tensor::from_int64s({}, {in(ins, 0, n).numel()})};
}

Tensors unsqueeze(const Node& n, const Tensors& ins, int64_t) {
    const Tensor& x = in(ins, 0, n);
    auto axes = axes_from(n, ins, 1);
    size_t r = x.rank() + axes.size();
    std::vector<bool> ins_at(r, false);
    for (int64_t a : axes) ins_at[size_t(norm_axis(a, r, n))] = true;
    Shape out;
    size_t k = 0;
    for (size_t i = 0; i < r; ++i) out.push_back(ins_at[i] ? 1 : x.dim(k++));
    return {x.reshaped(out)};
}

Tensors squeeze(const Node& n, const Tensors& ins, int64_t) {
    const Tensor& x = in(ins, 0, n);
    auto axes = axes_from(n, ins, 1);
    std::vector<bool> drop(x.rank(), false);
    if (axes.empty())
        for (size_t k = 0; k < x.rank(); ++k) drop[k] = x.dim(k) == 1;
    for (int64_t a : axes) {
        size_t k = size_t(norm_axis(a, x.rank(), n));
        YOLOC_CHECK(x.dim(k) == 1, "node ", n.label(), ": cannot squeeze a dimension of size ", x.dim(k));
        drop[k] = true;
    }
    Shape out;
    for (size_t k = 0; k < x.rank(); ++k)
        if (!drop[k]) out.push_back(x.dim(k));
    return {x.reshaped(out)};
}

Tensors flatten(const Node& n, const Tensors& ins, int64_t) {
    const Tensor& x = in(ins, 0, n);
    int64_t axis = n.attr_i("axis", 1);
    if (axis < 0) axis += int64_t(x.rank());
    YOLOC_CHECK(axis >= 0 && axis <= int64_t(x.rank()), "node ", n.label(), ": axis out of range");
    int64_t a = 1;
    for (int64_t k = 0; k < axis; ++k) a *= x.dim(size_t(k));
    return {x.reshaped({a, x.numel() / std::max<int64_t>(a, 1)})};
}

Tensors slice(const Node& n, const Tensors& ins, int64_t opset) {
    const Tensor& x = in(ins, 0, n);
    std::vector<int64_t> starts, ends, axes, steps;
    if (opset >= 10) {
        starts = in(ins, 1, n).to_int64s();
        ends = in(ins, 2, n).to_int64s();
        if (has_in(ins, 3)) axes = ins[3].to_int64s();
        if (has_in(ins, 4)) steps = ins[4].to_int64s();
    } else {
        starts = n.attr_ints("starts");
        ends = n.attr_ints("ends");
        axes = n.attr_ints("axes");
    }
    if (axes.empty())
        for (size_t k = 0; k < starts.size(); ++k) axes.push_back(int64_t(k));
    if (steps.empty()) steps.assign(starts.size(), 1);
    YOLOC_CHECK(starts.size() == ends.size() && axes.size() == starts.size() && steps.size() == starts.size(),
                "node ", n.label(), ": Slice inputs differ in length");
    size_t r = x.rank();
    std::vector<int64_t> st(r, 0), step(r, 1);
    Shape out = x.shape();
    for (size_t i = 0; i < axes.size(); ++i) {
        size_t a = size_t(norm_axis(axes[i], r, n));
        int64_t len = x.dim(a), s = starts[i], e = ends[i], p = steps[i];
        YOLOC_CHECK(p != 0, "node ", n.label(), ": slice step 0");
        if (s < 0) s += len;
        if (e < 0) e += len;
        if (p > 0) {
            s = std::min(std::max<int64_t>(s, 0), len);
            e = std::min(std::max<int64_t>(e, 0), len);
            out[a] = e > s ? (e - s + p - 1) / p : 0;
        } else {
            s = std::min(std::max<int64_t>(s, -1), len - 1);
            e = std::min(std::max<int64_t>(e, -1), len - 1);
            out[a] = s > e ? (s - e - p - 1) / (-p) : 0;
        }
        st[a] = s;
        step[a] = p;
    }
    Tensor res(x.dtype(), out);
    auto xs = strides_of(x.shape());
    std::vector<int64_t> mul(r), zero(r, 0);
    int64_t base = 0;
    for (size_t k = 0; k < r; ++k) {
        mul[k] = xs[k] * step[k];
        base += st[k] * xs[k];
    }
    size_t es = dtype_size(x.dtype());
    if (res.numel() > 0)
        for_each_broadcast(out, mul, zero, [&](int64_t o, int64_t i, int64_t) {
            std::memcpy(res.raw() + size_t(o) * es, x.raw() + size_t(base + i) * es, es);
        });
    return {res};
}

Tensors cast(const Node& n, const Tensors& ins, int64_t) {
    const Tensor& x = in(ins, 0, n);
    int64_t to = n.attr_i("to", 1);
    YOLOC_CHECK(dtype_known(int32_t(to)), "node ", n.label(), ": cast to unsupported type ", to);
    DType dt = static_cast<DType>(to);
    if (dt == x.dtype()) return {x};
    Tensor r(dt, x.shape());
    for (int64_t i = 0; i < x.numel(); ++i) {
        double v = x.dtype() == DType::Float16 ? half_to_float(x.data<uint16_t>()[i]) : x.at_f64(i);
        if (dt == DType::Int64 && is_int_type(x.dtype())) r.data<int64_t>()[i] = x.at_i64(i);
        else store(r, i, v);
    }
    return {r};
}

std::vector<ValueType> cast_shape(const Node& n, const ShapeInputs& in, int64_t) {
    YOLOC_CHECK(!in.types.empty() && in.types[0], "node ", n.label(), ": missing input 0");
    return {{static_cast<DType>(n.attr_i("to", 1)), in.types[0]->shape}};
}

Tensors constant(const Node& n, const Tensors&, int64_t) {
    if (n.has("value")) {
        const Attribute& a = n.attrs.at("value");
        YOLOC_CHECK(a.kind == Attribute::Kind::Tensor, "node ", n.label(), ": value must be a tensor");
        return {a.t};
    }
    if (n.has("value_float")) return {Tensor::scalar_f32(n.attr_f("value_float", 0))};
    if (n.has("value_int")) return {Tensor::from_int64s({}, {n.attr_i("value_int", 0)})};
    if (n.has("value_floats")) {
        const auto& v = n.attrs.at("value_floats").floats;
        return {Tensor::from_floats({int64_t(v.size())}, v)};
    }
    if (n.has("value_ints")) {
        auto v = n.attr_ints("value_ints");
        return {Tensor::from_int64s({int64_t(v.size())}, v)};
    }
    fail("node ", n.label(), ": Constant without a supported value attribute");
}

Tensors constant_of_shape(const Node& n, const Tensors& ins, int64_t) {
    auto shape = in(ins, 0, n).to_int64s();
    Tensor value = n.has("value") ? n.attrs.at("value").t : Tensor::from_floats({1}, {0.f});
    Tensor r(value.dtype(), shape);
    size_t es = dtype_size(value.dtype());
    for (int64_t i = 0; i < r.numel(); ++i) std::memcpy(r.raw() + size_t(i) * es, value.raw(), es);
    return {r};
}

Tensors range(const Node& n, const Tensors& ins, int64_t) {
    const Tensor& s = in(ins, 0, n);
    double start = s.at_f64(0), limit = in(ins, 1, n).at_f64(0), delta = in(ins, 2, n).at_f64(0);
    YOLOC_CHECK(delta != 0, "node ", n.label(), ": Range delta is 0");
    int64_t count = std::max<int64_t>(int64_t(std::ceil((limit - start) / delta)), 0);
    YOLOC_CHECK(count < (int64_t(1) << 31), "node ", n.label(), ": Range is too long");
    Tensor r(s.dtype(), {count});
    for (int64_t i = 0; i < count; ++i) store(r, i, start + double(i) * delta);
    return {r};
}

Tensors expand(const Node& n, const Tensors& ins, int64_t) {
    const Tensor& x = in(ins, 0, n);
    Shape target = in(ins, 1, n).to_int64s();
    Shape out = broadcast_shape(x.shape(), target, n);
    auto sx = broadcast_strides(x.shape(), out);
    std::vector<int64_t> zero(out.size(), 0);
    Tensor r(x.dtype(), out);
    size_t es = dtype_size(x.dtype());
    for_each_broadcast(out, sx, zero, [&](int64_t o, int64_t i, int64_t) {
        std::memcpy(r.raw() + size_t(o) * es, x.raw() + size_t(i) * es, es);
    });
    return {r};
}

Tensors tile(const Node& n, const Tensors& ins, int64_t) {
    const Tensor& x = in(ins, 0, n);
    auto reps = in(ins, 1, n).to_int64s();
    YOLOC_CHECK(reps.size() == x.rank(), "node ", n.label(), ": repeats has ", reps.size(), " values for rank ", x.rank());
    Shape out = x.shape();
    for (size_t k = 0; k < out.size(); ++k) {
        YOLOC_CHECK(reps[k] >= 0, "node ", n.label(), ": negative repeat");
        out[k] *= reps[k];
    }
    Tensor r(x.dtype(), out);
    auto xs = strides_of(x.shape());
    size_t es = dtype_size(x.dtype());
    std::vector<int64_t> idx(out.size(), 0);
    for (int64_t o = 0; o < r.numel(); ++o) {
        int64_t src = 0;
        for (size_t k = 0; k < out.size(); ++k) src += (idx[k] % x.dim(k)) * xs[k];
        std::memcpy(r.raw() + size_t(o) * es, x.raw() + size_t(src) * es, es);
        for (size_t k = out.size(); k-- > 0;) {
            if (++idx[k] < out[k]) break;
            idx[k] = 0;
        }
    }
    return {r};
}

}  // namespace

void add_tensor_ops(std::vector<OpSchema>& t) {
    t.push_back(op("Concat", concat, ChannelFlow::Concat, QuantRole::Commutes, CostKind::Movement, concat_shape));
    t.push_back(op("Split", split, ChannelFlow::Split, QuantRole::Commutes, CostKind::Movement, split_shape));
    t.push_back(op("Cast", cast, ChannelFlow::Pin, QuantRole::None, CostKind::Movement, cast_shape));
    // Shapes computed by evaluating the kernel on placeholders (their parameters are constants).
    for (auto f : {std::make_pair("Reshape", reshape), std::make_pair("Transpose", transpose),
                   std::make_pair("Unsqueeze", unsqueeze), std::make_pair("Squeeze", squeeze),
                   std::make_pair("Flatten", flatten), std::make_pair("Slice", slice)})
        t.push_back(op(f.first, f.second, ChannelFlow::Pin, QuantRole::Commutes, CostKind::Movement));
    for (auto f : {std::make_pair("Shape", shape_op), std::make_pair("Size", size_op),
                   std::make_pair("Constant", constant), std::make_pair("ConstantOfShape", constant_of_shape),
                   std::make_pair("Range", range), std::make_pair("Expand", expand), std::make_pair("Tile", tile)})
        t.push_back(op(f.first, f.second, ChannelFlow::Pin, QuantRole::None, CostKind::Movement));
}

}  // namespace ops
}  // namespace yoloc
