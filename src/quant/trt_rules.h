// A linter for TensorRT's explicit-quantization rules (TensorRT developer guide,
// "Working with Quantized Types": Q/DQ layers, int8 only, zero point 0, per-channel
// only for weights on the output-channel axis, Q/DQ placement it can fuse) and for
// ops its ONNX parser does not take. Each violation names the node, the rule and the fix.
#pragma once

#include <string>
#include <vector>

#include "ir/graph.h"

namespace yoloc {

struct Violation {
    std::string node;  // node name (or value/initializer name when no node applies)
    std::string rule;  // short id, e.g. "zero-point", "dynamic-quantization"
    std::string message;
    std::string fix;
    std::string line() const;  // "node: [rule] message; fix: ..."
};

// target "tensorrt": the rules above; target "yoloc": ops yoloc's executors lack.
std::vector<Violation> check_model(const Model& model, const std::string& target = "tensorrt");

}  // namespace yoloc
