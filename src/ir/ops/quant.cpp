// QuantizeLinear / DequantizeLinear: y = saturate(round_half_even(x / scale) + zero_point);
// x = (q - zero_point) * scale; per tensor or per channel along `axis`.
#include "ir/ops/common.h"

namespace yoloc {
namespace ops {
namespace {

struct QParams {
    int64_t axis = -1;  // -1: per tensor
    Tensor scale, zp;
};

QParams qparams(const Node& n, const Tensors& ins, const Tensor& x) {
    QParams q;
    q.scale = to_f32(in(ins, 1, n));
    if (has_in(ins, 2)) q.zp = ins[2];
    if (q.scale.numel() > 1) {
        q.axis = norm_axis(n.attr_i("axis", 1), x.rank(), n);
        YOLOC_CHECK(q.scale.numel() == x.dim(size_t(q.axis)), "node ", n.label(), ": ", q.scale.numel(),
                    " scales for axis ", q.axis, " of size ", x.dim(size_t(q.axis)));
    }
    if (!q.zp.empty())
        YOLOC_CHECK(q.zp.numel() == q.scale.numel(), "node ", n.label(), ": zero point and scale sizes differ");
    return q;
}

int64_t channel_of(int64_t i, const Tensor& x, int64_t axis) {
    if (axis < 0) return 0;
    int64_t inner = 1;
    for (size_t k = size_t(axis) + 1; k < x.rank(); ++k) inner *= x.dim(k);
    return (i / inner) % x.dim(size_t(axis));
}

Tensors quantize(const Node& n, const Tensors& ins, int64_t) {
    const Tensor x = to_f32(in(ins, 0, n));
    QParams q = qparams(n, ins, x);
    DType out_t = q.zp.empty() ? DType::UInt8 : q.zp.dtype();
    YOLOC_CHECK(out_t == DType::Int8 || out_t == DType::UInt8, "node ", n.label(), ": only int8/uint8 quantization");
    double lo = out_t == DType::Int8 ? -128 : 0, hi = out_t == DType::Int8 ? 127 : 255;
    Tensor r(out_t, x.shape());
    for (int64_t i = 0; i < x.numel(); ++i) {
        int64_t c = channel_of(i, x, q.axis);
        double s = q.scale.data<float>()[c];
        double z = q.zp.empty() ? 0 : double(q.zp.at_i64(c));
        // Divide in float32 like the spec's reference (x / y_scale), then round half to even.
        float d = x.data<float>()[i] / float(s);
        double v = std::nearbyint(double(d)) + z;
        v = std::min(std::max(v, lo), hi);
        store(r, i, v);
    }
    return {r};
}

Tensors dequantize(const Node& n, const Tensors& ins, int64_t) {
    const Tensor& x = in(ins, 0, n);
    QParams q = qparams(n, ins, x);
    Tensor r(DType::Float32, x.shape());
    for (int64_t i = 0; i < x.numel(); ++i) {
        int64_t c = channel_of(i, x, q.axis);
        float s = q.scale.data<float>()[c];
        int64_t z = q.zp.empty() ? 0 : q.zp.at_i64(c);
        r.data<float>()[i] = float(x.at_i64(i) - z) * s;
    }
    return {r};
}

std::vector<ValueType> quantize_shape(const Node& n, const ShapeInputs& in, int64_t) {
    YOLOC_CHECK(!in.types.empty() && in.types[0], "node ", n.label(), ": missing input 0");
    const bool zp = in.types.size() > 2 && in.types[2];
    return {{zp ? in.types[2]->dtype : DType::UInt8, in.types[0]->shape}};
}

std::vector<ValueType> dequantize_shape(const Node& n, const ShapeInputs& in, int64_t) {
    YOLOC_CHECK(!in.types.empty() && in.types[0], "node ", n.label(), ": missing input 0");
    return {{DType::Float32, in.types[0]->shape}};
}

}  // namespace

void add_quant_ops(std::vector<OpSchema>& t) {
    t.push_back(op("QuantizeLinear", quantize, ChannelFlow::PassThrough, QuantRole::None, CostKind::PerOutput,
                   quantize_shape));
    t.push_back(op("DequantizeLinear", dequantize, ChannelFlow::PassThrough, QuantRole::None, CostKind::PerOutput,
                   dequantize_shape));
}

}  // namespace ops
}  // namespace yoloc
