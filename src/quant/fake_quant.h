// Running Q/DQ models on float kernels ("fake quantization", exactly what the
// Q/DQ graph means): a DequantizeLinear of a constant int8 tensor is folded into
// a float initializer (the same arithmetic as the reference kernel, so results are
// bit-identical), which lets the fast executor use its fused conv kernels on the
// int8-grid weights. Activation Quantize -> Dequantize pairs stay and run as
// element-wise steps. No integer kernels: see docs/QUANTIZATION.md.
#pragma once

#include "ir/graph.h"

namespace yoloc {

// True when the graph holds any QuantizeLinear/DequantizeLinear node.
bool has_qdq(const Model& model);

// A copy of `model` where every DequantizeLinear whose inputs are all initializers
// is replaced by a float32 initializer of its result. Returns `model` unchanged
// (a copy) when there is nothing to fold.
Model prepare_qdq_for_float(const Model& model);

// For the fast executor: when node `q` of `g` is a QuantizeLinear with a scalar
// scale and an int8 zero point of 0, read only by one DequantizeLinear with the same
// scale and zero point, returns that DequantizeLinear's index and sets *scale; else -1.
int qdq_pair(const Graph& g, int q, float* scale);

// y = clamp(round_half_even(x / scale), -128, 127) * scale: QuantizeLinear then
// DequantizeLinear with the reference kernels' arithmetic, in one pass.
void fake_quant_int8(const float* x, float* y, int64_t n, float scale);

}  // namespace yoloc
