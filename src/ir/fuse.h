// Fusion passes over the IR, run once on the folded graph and consumed by every backend
// that executes it (the fast CPU executor, the GPU plan): the patterns are matched here
// and nowhere else, so the backends cannot disagree about what a fused node means.
#pragma once

#include <map>

#include "ir/graph.h"

namespace yoloc {

struct FusionStats {
    int convs = 0;      // FusedConv nodes written
    int silu = 0;       // ... with a SiLU (Sigmoid + Mul) folded in
    int residual = 0;   // ... with a residual Add folded in
};

// Conv (+ Sigmoid + Mul = SiLU) (+ Add of a residual) -> FusedConv (domain "yoloc"; see
// ir/ops/fused.cpp for its meaning), at the Conv's place in the node order. Rules:
//  - SiLU: the Conv output y is read by exactly Sigmoid(y) and Mul(y, Sigmoid(y)), and
//    the Sigmoid output by that Mul alone; neither is a graph output.
//  - Residual: the (activated) output is read by one Add alone and is not a graph output;
//    the Add's other input r has the output's shape, is 4-D float32, and is produced
//    before the Conv (a graph input, or an earlier node's output), so that the fused node
//    can read it where the Conv stood.
// Every Conv becomes a FusedConv, with or without an epilogue. Shapes are needed for the
// residual rule: pass the graph's concrete input shapes (as for fold_constants).
FusionStats fuse_conv_activation(Model& model, const std::map<std::string, Shape>& input_shapes = {});

}  // namespace yoloc
