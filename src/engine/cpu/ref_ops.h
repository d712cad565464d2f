// Reference kernels: one function per ONNX op, plain loops, no tricks.
// Used by the reference executor, by constant folding and as the oracle in
// parity tests of every fast kernel.
#pragma once

#include <string>
#include <vector>

#include "ir/graph.h"

namespace yoloc {

// Evaluates `node` on concrete inputs (an empty Tensor for an omitted optional
// input). Throws yoloc::Error for unsupported ops/attributes with the node's name.
std::vector<Tensor> ref_eval(const Node& node, const std::vector<Tensor>& inputs, int64_t opset);

// The op types ref_eval implements (for `check` and for clear errors).
bool ref_supports(const std::string& op_type);

// Individual kernels other modules reuse.
// Conv2D, NCHW, float32: x [N,C,H,W], w [M,C/group,kh,kw], b [M] or empty.
Tensor ref_conv2d(const Tensor& x, const Tensor& w, const Tensor& b, const std::vector<int64_t>& strides,
                  const std::vector<int64_t>& pads /*t,l,b,r*/, const std::vector<int64_t>& dilations,
                  int64_t group);

}  // namespace yoloc
