// Shape inference and constant folding, done together: a value whose inputs are all
// known constants is evaluated with the reference kernels (so Shape -> Gather ->
// Concat -> Reshape chains of dynamic exports fold away once the input shape is
// fixed); every other value gets its dtype and shape from its op's record in the op
// table (ir/op_table.h): the op's shape rule, or its kernel run on placeholders.
#pragma once

#include <map>
#include <string>

#include "ir/graph.h"
#include "ir/op_table.h"

namespace yoloc {

struct ShapeInfo {
    std::map<std::string, ValueType> values;  // every value in the graph
    const ValueType& at(const std::string& name) const;
};

// Infers the concrete type of every value, given concrete input shapes
// (`input_shapes` overrides the declared ones, e.g. another batch or image size).
// Throws yoloc::Error naming the node when shapes do not fit (wrong input size,
// channel mismatch).
ShapeInfo infer_shapes(const Model& model, const std::map<std::string, Shape>& input_shapes = {});

// Folds every node whose inputs are all constant into an initializer, and
// removes dead nodes. Returns how many nodes were folded. Needs concrete input
// shapes when Shape ops are present (else those stay).
int fold_constants(Model& model, const std::map<std::string, Shape>& input_shapes = {});

}  // namespace yoloc
