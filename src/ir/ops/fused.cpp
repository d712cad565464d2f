// Fused nodes the IR passes write (domain "yoloc"; never saved to ONNX files):
//   FusedConv(X, W, B, [R]): Conv with the attributes of Conv, then the activation named by
//   `activation` ("" or "silu" = x * sigmoid(x)), then + R (a residual of the output's shape).
// Their reference kernels are the unfused ops in sequence, so a fused graph computes exactly
// what the graph it came from computes.
#include "ir/ops/common.h"

namespace yoloc {
namespace ops {
namespace {

Node conv_part(const Node& n) {
    Node c = n;
    c.op_type = "Conv";
    c.domain.clear();
    c.attrs.erase("activation");
    c.inputs.resize(std::min<size_t>(n.inputs.size(), 3));
    return c;
}

Tensors fused_conv(const Node& n, const Tensors& ins, int64_t opset) {
    const Node c = conv_part(n);
    Tensors conv_ins(ins.begin(), ins.begin() + std::min<size_t>(ins.size(), 3));
    Tensor y = ref_eval(c, conv_ins, opset).at(0).clone();
    const std::string act = n.attr_s("activation", "");
    float* p = y.data<float>();
    if (act == "silu") {
        // Sigmoid then Mul, as the two reference ops compute it.
        for (int64_t i = 0; i < y.numel(); ++i) p[i] = p[i] * (1.0f / (1.0f + expf(-p[i])));
    } else {
        YOLOC_CHECK(act.empty(), "node ", n.label(), ": unknown activation '", act, "'");
    }
    if (has_in(ins, 3)) {
        const Tensor r = to_f32(ins[3]);
        YOLOC_CHECK(r.shape() == y.shape(), "node ", n.label(), ": residual ", shape_str(r.shape()),
                    " does not match the output ", shape_str(y.shape()));
        for (int64_t i = 0; i < y.numel(); ++i) p[i] += r.data<float>()[i];
    }
    return {y};
}

std::vector<ValueType> fused_conv_shape(const Node& n, const ShapeInputs& in, int64_t opset) {
    const Node c = conv_part(n);
    ShapeInputs ci = in;
    ci.types.resize(std::min<size_t>(ci.types.size(), 3));
    ci.values.resize(std::min<size_t>(ci.values.size(), 3));
    return find_op("Conv")->shape(c, ci, opset);
}

}  // namespace

void add_fused_ops(std::vector<OpSchema>& t) {
    OpSchema s = op("FusedConv", fused_conv, ChannelFlow::Conv, QuantRole::Compute, CostKind::Conv, fused_conv_shape);
    s.domain = "yoloc";
    s.weight_inputs = {1, 2};
    t.push_back(s);
}

}  // namespace ops
}  // namespace yoloc
