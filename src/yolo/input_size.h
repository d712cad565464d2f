// Re-targets a static Ultralytics export to another batch size or input size.
// torch.onnx bakes the export's batch (Reshape [1, C, -1]) and anchor count
// (anchors [1,2,8400], strides [1,8400]) into constants; this rewrites those so
// the same weights run at any batch and any input size divisible by 32.
#pragma once

#include <string>
#include <vector>

#include "ir/graph.h"

namespace yoloc {

// The input one forward pass of `model` takes, [batch, C, H, W]: the declared dims,
// with `batch` and `imgsz` (when > 0) in place of the declared batch and H, W (unknown
// dims: batch 1, 3 channels, 640). Checked against core/limits.h before anything is
// allocated for it: H and W a multiple of 32 up to limits::kMaxImgsz, and the float32
// tensor within limits::kMaxInputBytes. Errors start with `source` (the model's file)
// and the input's name, and say how many bytes it would take.
std::vector<int64_t> checked_input_dims(const Model& model, const std::string& source, int64_t batch = 0,
                                        int64_t imgsz = 0);
// Only the input budget, for any graph (prune and quantize also take graphs other than
// YOLOv8's): every input's declared dims (unknown ones: 1) as float32 within
// limits::kMaxInputBytes. Errors name `source` and the input.
void check_declared_inputs(const Model& model, const std::string& source);

// Sets the input to [batch, 3, imgsz, imgsz] and rewrites the shape constants and
// the Detect decode's anchor/stride tables to match. Throws when the model's input
// is not [N,3,H,W] or imgsz is not a multiple of 32.
void set_input_size(Model& model, int64_t batch, int64_t imgsz);

}  // namespace yoloc
