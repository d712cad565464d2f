// Static cost of a model: FLOPs, parameters, weight bytes and an activation-memory
// estimate. These are counts from the graph and shapes, not measurements; `inspect`
// prints them as such.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "ir/graph.h"
#include "ir/shape_inference.h"

namespace yoloc {

struct ModelCost {
    // 2 FLOPs per multiply-add of Conv, ConvTranspose, Gemm and MatMul (Ultralytics' and
    // thop's convention x2), bias adds excluded: the number papers call "GFLOPs".
    double flops = 0;
    int64_t params = 0;        // elements of Conv/Gemm weights and biases (through DequantizeLinear too)
    int64_t weight_bytes = 0;  // bytes of every initializer and Constant (what a runtime must store)
    // Activations at float32: the largest sum of live values when nodes run in graph
    // order (a value lives from its producer to its last consumer; graph inputs from
    // the start, graph outputs to the end), and the sum over all values.
    int64_t activation_bytes_peak = 0;
    int64_t activation_bytes_total = 0;
    // Per op type: matmul-class ops as above; element-wise, pooling, softmax and
    // resize ops one FLOP per output element (or per window element for pools).
    // Only the matmul-class ops are summed into `flops`.
    std::map<std::string, double> flops_by_op;
};

// `shapes` from infer_shapes(model, ...). Throws yoloc::Error when a value the
// count needs has no inferred shape.
ModelCost count_cost(const Model& model, const ShapeInfo& shapes);

}  // namespace yoloc
