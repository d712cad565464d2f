#include "quant/trt_rules.h"

#include <set>

#include "ir/op_table.h"

namespace yoloc {

std::string Violation::line() const { return node + ": [" + rule + "] " + message + "; fix: " + fix; }

namespace {

// ONNX ops TensorRT 8.x's ONNX parser imports (onnx-tensorrt operators.md).
const std::set<std::string>& trt_ops() {
    static const std::set<std::string> s = {
        "Abs", "Acos", "Acosh", "Add", "And", "ArgMax", "ArgMin", "Asin", "Asinh", "Atan", "Atanh", "AveragePool",
        "BatchNormalization", "Cast", "Ceil", "Celu", "Clip", "Concat", "Constant", "ConstantOfShape", "Conv",
        "ConvTranspose", "Cos", "Cosh", "CumSum", "DepthToSpace", "DequantizeLinear", "Div", "Dropout", "Einsum",
        "Elu", "Equal", "Erf", "Exp", "Expand", "EyeLike", "Flatten", "Floor", "GRU", "Gather", "GatherElements",
        "GatherND", "Gemm", "GlobalAveragePool", "GlobalLpPool", "GlobalMaxPool", "Greater", "GreaterOrEqual",
        "GridSample", "HardSigmoid", "HardSwish", "Identity", "If", "InstanceNormalization", "IsInf", "IsNaN",
        "LRN", "LSTM", "LayerNormalization", "LeakyRelu", "Less", "LessOrEqual", "Log", "LogSoftmax", "Loop",
        "LpNormalization", "LpPool", "MatMul", "Max", "MaxPool", "Mean", "Min", "Mod", "Mul", "Neg",
        "NonMaxSuppression", "NonZero", "Not", "OneHot", "Or", "PRelu", "Pad", "Pow", "QuantizeLinear", "RNN",
        "RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Range", "Reciprocal",
        "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean", "ReduceMin",
        "ReduceProd", "ReduceSum", "ReduceSumSquare", "Relu", "Reshape", "Resize", "ReverseSequence", "RoiAlign",
        "Round", "ScatterElements", "ScatterND", "Selu", "Shape", "Shrink", "Sigmoid", "Sign", "Sin", "Sinh",
        "Size", "Slice", "Softmax", "Softplus", "Softsign", "SpaceToDepth", "Split", "Sqrt", "Squeeze", "Sub",
        "Sum", "Tan", "Tanh", "ThresholdedRelu", "Tile", "TopK", "Transpose", "Trilu", "Unsqueeze", "Upsample",
        "Where", "Xor"};
    return s;
}

const char* kStaticFix =
    "quantize statically with calibration images into QuantizeLinear/DequantizeLinear around float ops "
    "(yoloc quantize MODEL --calib DIR)";

std::string node_id(const Node& n) { return n.name.empty() ? "<" + n.op_type + ">" : n.name; }

}  // namespace

std::vector<Violation> check_model(const Model& model, const std::string& target) {
    const Graph& g = model.graph;
    std::vector<Violation> v;
    auto add = [&](const Node& n, const std::string& rule, const std::string& msg, const std::string& fix) {
        v.push_back({node_id(n), rule, msg, fix});
    };
    if (target == "yoloc") {
        for (const auto& n : g.nodes)
            if (!n.domain.empty() || !ref_supports(n.op_type))
                add(n, "unsupported-op", "operator '" + n.op_type + "' is not supported by yoloc's executors",
                    "re-export the model without it");
        return v;
    }
    YOLOC_CHECK(target == "tensorrt", "unknown check target '", target, "' (use tensorrt or yoloc)");
    const int64_t opset = model.opset();
    auto producer = [&](const std::string& val) -> const Node* {
        int p = g.producer(val);
        return p < 0 ? nullptr : &g.nodes[size_t(p)];
    };
    auto is_op = [](const Node* n, const char* op) { return n && n->domain.empty() && n->op_type == op; };
    std::set<std::string> graph_outs;
    for (const auto& o : g.outputs) graph_outs.insert(o.name);

    // Zero-point rules shared by Q/DQ and the integer ops.
    auto check_zp = [&](const Node& n, const std::string& zp, const char* what) {
        const Tensor* t = g.find_initializer(zp);
        if (!t) {
            const Node* p = producer(zp);
            add(n, "zero-point",
                std::string(what) + " zero point '" + zp + "' is computed at run time" +
                    (is_op(p, "DynamicQuantizeLinear") ? " by DynamicQuantizeLinear (asymmetric)" : "") +
                    "; TensorRT needs constant zero points of 0",
                kStaticFix);
            return;
        }
        if (t->dtype() == DType::UInt8)
            add(n, "uint8", std::string(what) + " zero point '" + zp + "' is uint8; TensorRT quantizes to int8 only",
                "use int8 zero points (symmetric int8, zero point 0)");
        bool nonzero = false;
        for (int64_t i = 0; i < t->numel() && !nonzero; ++i) nonzero = t->at_i64(i) != 0;
        if (nonzero)
            add(n, "zero-point", std::string(what) + " zero point '" + zp +
                                     "' is not all zeros (asymmetric); TensorRT requires zero points of 0",
                "quantize symmetrically (zero point 0), e.g. yoloc quantize");
    };

    for (const auto& n : g.nodes) {
        const std::string& op = n.op_type;
        if (!n.domain.empty() && n.domain != "ai.onnx") {
            add(n, "unsupported-op",
                "operator '" + n.domain + "::" + op + "' is not an ONNX standard op; TensorRT's parser rejects it",
                op.rfind("Q", 0) == 0 ? kStaticFix : "re-export without it (or register a TensorRT plugin)");
            continue;
        }
        if (op == "DynamicQuantizeLinear") {
            add(n, "dynamic-quantization",
                "DynamicQuantizeLinear (run-time uint8 asymmetric activation quantization) is not supported by "
                "TensorRT",
                kStaticFix);
            continue;
        }
        if (op == "ConvInteger" || op == "MatMulInteger") {
            add(n, "integer-op", op + " is not supported by TensorRT (it only takes INT8 as Q/DQ around float ops)",
                kStaticFix);
            if (n.inputs.size() > 2 && !n.inputs[2].empty()) check_zp(n, n.inputs[2], "input");
            if (n.inputs.size() > 3 && !n.inputs[3].empty()) check_zp(n, n.inputs[3], "weight");
            continue;
        }
        if (op.rfind("QLinear", 0) == 0) {
            add(n, "qoperator-format", op + " (ONNX QOperator format) is not supported by TensorRT", kStaticFix);
            continue;
        }
        if (!trt_ops().count(op)) {
            add(n, "unsupported-op", "operator '" + op + "' is not imported by TensorRT's ONNX parser",
                "re-export the model without it");
            continue;
        }
        if (op != "QuantizeLinear" && op != "DequantizeLinear") continue;

        // Q/DQ nodes.
        if (opset < 10) {
            add(n, "opset", op + " needs opset >= 10 (the model has " + std::to_string(opset) + ")",
                "re-export with opset 13 or newer");
            continue;
        }
        const std::string& x = n.inputs.at(0);
        const Tensor* scale = n.inputs.size() > 1 ? g.find_initializer(n.inputs[1]) : nullptr;
        if (!scale)
            add(n, "scale-not-constant", "scale '" + (n.inputs.size() > 1 ? n.inputs[1] : std::string()) +
                                             "' is not a constant initializer",
                "make the scale an initializer (calibrate statically)");
        bool has_zp = n.inputs.size() > 2 && !n.inputs[2].empty();
        if (has_zp)
            check_zp(n, n.inputs[2], op == "QuantizeLinear" ? "QuantizeLinear" : "DequantizeLinear");
        else if (op == "QuantizeLinear")
            add(n, "uint8", "QuantizeLinear without a zero point produces uint8; TensorRT quantizes to int8 only",
                "add an int8 zero point of 0");
        bool per_axis = scale && scale->numel() > 1;
        if (per_axis && opset < 13)
            add(n, "opset", "per-axis " + op + " needs opset >= 13 (the model has opset " + std::to_string(opset) + ")",
                "re-export with opset 13 or newer, or quantize per tensor");
        // A per-axis scale is only allowed on constant weights (DQ of an initializer).
        bool constant_input = g.is_initializer(x);
        if (per_axis && !constant_input)
            add(n, "per-channel-activation",
                op + " of activation '" + x + "' has " + std::to_string(scale->numel()) +
                    " scales; TensorRT supports only per-tensor scales for activations",
                "use one scale for the tensor (per-tensor activation quantization)");
        if (op == "QuantizeLinear") {
            if (graph_outs.count(n.outputs[0]))
                add(n, "q-without-dq", "QuantizeLinear output '" + n.outputs[0] + "' is a graph output",
                    "follow every QuantizeLinear by a DequantizeLinear");
            for (int c : g.consumers(n.outputs[0])) {
                const Node& cn = g.nodes[size_t(c)];
                if (!is_op(&cn, "DequantizeLinear")) {
                    add(n, "q-without-dq",
                        "QuantizeLinear output feeds " + cn.label() + " instead of a DequantizeLinear; TensorRT "
                        "only fuses Q -> DQ pairs",
                        "follow every QuantizeLinear by a DequantizeLinear");
                    continue;
                }
                const Tensor* s2 = cn.inputs.size() > 1 ? g.find_initializer(cn.inputs[1]) : nullptr;
                bool same = scale && s2 && scale->numel() == s2->numel();
                for (int64_t i = 0; same && i < scale->numel(); ++i)
                    same = scale->data<float>()[i] == s2->data<float>()[i];
                if (scale && s2 && !same)
                    add(cn, "qdq-scale-mismatch", "scale differs from its QuantizeLinear " + n.label(),
                        "use the same scale (and zero point) in a Q -> DQ pair");
            }
        } else {
            const Node* p = producer(x);
            if (!constant_input && !is_op(p, "QuantizeLinear"))
                add(n, "dq-without-q",
                    "DequantizeLinear reads '" + x + "', which is neither an int8 initializer nor a QuantizeLinear output",
                    "feed DequantizeLinear from a QuantizeLinear or an int8 weight initializer");
            if (constant_input) {
                const Tensor* q = g.find_initializer(x);
                if (q && q->dtype() != DType::Int8)
                    add(n, q->dtype() == DType::UInt8 ? "uint8" : "weight-dtype",
                        "weight '" + x + "' is " + dtype_name(q->dtype()) + "; TensorRT takes int8 weights",
                        "store weights as symmetric int8");
                // Conv weights: per-channel scales must be on the output-channel axis.
                for (int c : g.consumers(n.outputs[0])) {
                    const Node& cn = g.nodes[size_t(c)];
                    if (!is_op(&cn, "Conv") || cn.inputs.size() < 2 || cn.inputs[1] != n.outputs[0]) continue;
                    int64_t axis = n.attr_i("axis", 1);
                    if (per_axis && q && axis < 0) axis += int64_t(q->rank());
                    if (per_axis && axis != 0)
                        add(n, "weight-axis",
                            "Conv weight is quantized per channel on axis " + std::to_string(axis) +
                                "; TensorRT needs axis 0 (output channels)",
                            "quantize Conv weights per output channel (axis 0) or per tensor");
                }
            }
        }
    }

    // Placement: a Conv runs in INT8 only with both the input and the weight behind DQ.
    for (const auto& n : g.nodes) {
        if (!n.domain.empty()) continue;
        if (n.op_type == "Conv" && n.inputs.size() >= 2) {
            bool qin = is_op(producer(n.inputs[0]), "DequantizeLinear");
            bool qw = is_op(producer(n.inputs[1]), "DequantizeLinear");
            if (qin && !qw)
                add(n, "conv-weight-not-quantized",
                    "the Conv input is quantized but its weight is float; TensorRT cannot run it in INT8",
                    "quantize the weight (int8 initializer + DequantizeLinear on axis 0)");
            if (qw && !qin)
                add(n, "conv-input-not-quantized",
                    "the Conv weight is quantized but its input is float; TensorRT cannot fuse it into an INT8 conv",
                    "add QuantizeLinear -> DequantizeLinear on the Conv input");
        }
        if (n.op_type == "Add" && n.inputs.size() == 2) {
            const Node* a = producer(n.inputs[0]);
            const Node* b = producer(n.inputs[1]);
            bool qa = is_op(a, "DequantizeLinear") && !g.is_initializer(a->inputs[0]);
            bool qb = is_op(b, "DequantizeLinear") && !g.is_initializer(b->inputs[0]);
            if (qa && qb)
                add(n, "add-both-quantized",
                    "both Add inputs are quantized; TensorRT can then not fuse the Add into the Conv that produces one "
                    "of them",
                    "keep Q/DQ on the residual input only");
        }
    }
    return v;
}

}  // namespace yoloc
