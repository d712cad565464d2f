// The op table: one record per ONNX operator with everything the stages need to know
// about it, in one place. Shape inference, constant folding, the reference executor,
// cost counting, prune's channel analysis and quantize read these records instead of
// keeping their own lists of op names.
//
// Adding an operator: write its reference kernel (and shape rule, when running the
// kernel on placeholders is not enough) in the family file under ir/ops/ and list it
// in that file's add_*_ops(). An element-wise unary float op is one line in
// ir/unary_ops.h instead, which also gives it to the fast CPU executor and the GPU.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace yoloc {

// Concrete type of a value once input shapes are fixed.
struct ValueType {
    DType dtype = DType::Undefined;
    Shape shape;
};

// Evaluates a node on concrete inputs (an empty Tensor for an omitted optional input).
using RefKernel = std::vector<Tensor> (*)(const Node& n, const std::vector<Tensor>& inputs, int64_t opset);

// What shape inference knows about each input: its type, and its value when constant
// (null otherwise, or for an omitted input).
struct ShapeInputs {
    std::vector<const ValueType*> types;  // null for an omitted optional input
    std::vector<const Tensor*> values;    // constant inputs (initializers, folded values)
};
using ShapeRule = std::vector<ValueType> (*)(const Node& n, const ShapeInputs& in, int64_t opset);

// How the channels (axis 1) of 4-D activations flow through the op: prune's channel
// dependency analysis follows this.
enum class ChannelFlow {
    Pin,          // channel meaning is lost (Reshape, Transpose, Softmax...): inputs become unprunable
    PassThrough,  // output channel c comes from input 0's channel c alone (unary, pools, nearest Resize)
    Elementwise,  // output channel c combines channel c of every input: ties the inputs together
    Conv,         // consumes input channels (weight axis 1), produces new ones (weight axis 0)
    Split,        // channel ranges of input 0 (when the axis is 1)
    Concat,       // inputs side by side (when the axis is 1)
};

// The op's place in TensorRT-style explicit quantization.
enum class QuantRole {
    None,      // runs in float; a Q/DQ before it would only cost time
    Compute,   // TensorRT runs it in INT8 when its inputs are quantized (Conv, MatMul, ...)
    Commutes,  // moves values without arithmetic (MaxPool, nearest Resize, Concat, Reshape...):
               // quantization commutes with it, so a scale may pass through
};

// How its arithmetic is counted (ir/cost.h).
enum class CostKind {
    Movement,   // moves or relabels data: not counted
    PerOutput,  // one FLOP per output element
    PerWindow,  // one per output element and window element (pools)
    Conv,       // 2 per multiply-add of a convolution
    ConvTranspose,
    MatMul,     // 2 per multiply-add of a (batched) matrix product
    Gemm,
};

struct OpSchema {
    std::string name;
    std::string domain;     // "" = ai.onnx; "yoloc" for fused nodes the passes write
    RefKernel ref = nullptr;
    ShapeRule shape = nullptr;  // null: evaluate `ref` on zero-filled placeholders
    ChannelFlow channels = ChannelFlow::Pin;
    QuantRole quant = QuantRole::None;
    CostKind cost = CostKind::PerOutput;
    std::vector<int> weight_inputs;  // inputs counted as parameters when constant
};

// The record of a node's op, or null when yoloc does not implement it.
const OpSchema* find_op(const std::string& op_type, const std::string& domain = "");
// The record, or an error naming the node, its op and where the supported ops are listed.
const OpSchema& op_schema(const Node& n);
// Names of the implemented ai.onnx operators, sorted.
const std::vector<std::string>& supported_ops();

// Reference kernels: plain loops, obviously correct. Used by the reference executor,
// by constant folding and as the oracle of every fast and GPU kernel.
std::vector<Tensor> ref_eval(const Node& node, const std::vector<Tensor>& inputs, int64_t opset);
bool ref_supports(const std::string& op_type);

// Conv2D, NCHW, float32: x [N,C,H,W], w [M,C/group,kh,kw], b [M] or empty.
Tensor ref_conv2d(const Tensor& x, const Tensor& w, const Tensor& b, const std::vector<int64_t>& strides,
                  const std::vector<int64_t>& pads /*t,l,b,r*/, const std::vector<int64_t>& dilations,
                  int64_t group);

}  // namespace yoloc
