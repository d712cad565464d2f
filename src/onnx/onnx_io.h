// ONNX model file <-> IR. The protobuf wire format is decoded by our own small
// codec (onnx/wire.h); see docs/DECISIONS.md for why not libprotobuf.
#pragma once

#include <string>

#include "ir/graph.h"

namespace yoloc {

struct OnnxReadOptions {
    // Directory for external-data tensors; defaults to the model file's folder.
    std::string external_data_dir;
    // Validate graph structure (cycles, missing inputs) after reading.
    bool validate = true;
};

// Reads an ONNX model from a file. Throws yoloc::Error naming the file and the
// problem (truncated, not ONNX, unsupported opset, missing initializer, ...).
Model load_onnx(const std::string& path, const OnnxReadOptions& opts = {});
// Same from bytes in memory (`origin` names the source in messages).
Model parse_onnx(const std::string& bytes, const std::string& origin, const OnnxReadOptions& opts = {});

// Serializes the model. Tensors are written as raw_data (little endian).
std::string serialize_onnx(const Model& model);
// Writes atomically (temporary file + rename): nothing partial is left on failure.
void save_onnx(const Model& model, const std::string& path);

}  // namespace yoloc
