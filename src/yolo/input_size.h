// Re-targets a static Ultralytics export to another batch size or input size.
// torch.onnx bakes the export's batch (Reshape [1, C, -1]) and anchor count
// (anchors [1,2,8400], strides [1,8400]) into constants; this rewrites those so
// the same weights run at any batch and any input size divisible by 32.
#pragma once

#include "ir/graph.h"

namespace yoloc {

// Sets the input to [batch, 3, imgsz, imgsz] and rewrites the shape constants and
// the Detect decode's anchor/stride tables to match. Throws when the model's input
// is not [N,3,H,W] or imgsz is not a multiple of 32.
void set_input_size(Model& model, int64_t batch, int64_t imgsz);

}  // namespace yoloc
