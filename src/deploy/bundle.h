// The deployment bundle (`yoloc export MODEL --target PROFILE -o BUNDLE/`): what goes to
// the device, since engines (yoloc's and TensorRT's) are tied to the GPU and library
// versions they were built with and must be built there.
//
//   BUNDLE/model.onnx     the model to build from, byte for byte (float, pruned or Q/DQ)
//   BUNDLE/model.cache    the TensorRT calibration cache, when there is one (header set to
//                         the profile's TensorRT version, which TensorRT checks)
//   BUNDLE/build.sh       the exact `yoloc build` command for the device
//   BUNDLE/trtexec.sh     the equivalent trtexec command for the profile's TensorRT
//   BUNDLE/trtexec.txt    that command, alternatives, and where each flag is documented
//   BUNDLE/README.md      for the person at the device
//   BUNDLE/SHA256SUMS     `sha256sum -c SHA256SUMS` checks the copy on the device
//   BUNDLE/bundle.json    machine-readable: profile, model facts and sha256, files, commands
//
// The bundle is written into a temporary folder beside BUNDLE and renamed into place
// once complete, so a failed export leaves no BUNDLE (and an existing one untouched).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "deploy/profiles.h"
#include "ir/graph.h"

namespace yoloc::deploy {

struct ExportOptions {
    std::string model, target, out_dir;
    // Optional path to an existing TensorRT calibration cache; default: MODEL with .onnx
    // replaced by .cache, when that file exists (what `yoloc quantize` writes).
    std::string calib_cache;
    bool force = false;  // replace an existing non-empty out_dir
};

// What export learned about the model (also in bundle.json).
struct ModelFacts {
    bool qdq = false;               // has QuantizeLinear/DequantizeLinear (explicit INT8)
    int quantize_nodes = 0, dequantize_nodes = 0;
    bool recognised = false;        // a YOLOv8 detect graph (yolo/recognize.h)
    std::string scale;              // n, s, m, l, x, custom ("" when not recognised)
    bool pruned = false;            // convs narrower than Ultralytics' YOLOv8 at its scale
    int narrowed_convs = 0;         // how many
    std::string architecture;       // one line: "YOLOv8n, 80 classes", "YOLOv8 (pruned: 12 convs narrowed)", ...
    std::string input;              // input name
    std::vector<int64_t> input_shape;  // -1 for a symbolic dim
    int64_t opset = 0;
    int64_t parameters = 0;
    std::vector<std::string> trt_violations;  // `yoloc check --target tensorrt` lines
};
ModelFacts inspect_model(const Model& model);

// One trtexec command line. Flags per TensorRT version (sources in bundle.cpp and
// docs/DEPLOY.md): workspace as --workspace=MiB before 8.4, --memPoolSize=workspace:MiB
// from 8.4 (the only form in 10.x); --fp16 always (layers left in float run in FP16);
// --int8 for INT8, with --calib=CACHE for a float model (implicit quantization) and
// without it for a Q/DQ model (explicit quantization).
struct TrtexecLine {
    int trt_version = 0;       // NV_TENSORRT_VERSION; 0: TensorRT 10 syntax
    std::string onnx = "model.onnx", engine = "model.plan";
    int64_t workspace_bytes = 0;  // 0: no workspace flag (TensorRT's default)
    bool int8 = false;
    std::string calib;         // cache file for implicit INT8 ("" for none)
    std::string shapes;        // "images:1x3x640x640" for a model with symbolic dims ("" when static)
};
std::string trtexec_command(const TrtexecLine& line);

struct ExportResult {
    std::vector<std::string> files;  // file names inside the bundle, sorted
    std::string build_command, trtexec_command;
    std::vector<std::string> trtexec_alternatives;  // other useful trtexec lines (e.g. FP16 next to INT8)
    std::string out_dir;
    std::string precision;           // what build.sh builds: fp16 or int8
    ModelFacts model;
    std::string model_sha256;
    bool calib_cache = false;        // a calibration cache is in the bundle
    std::vector<std::string> notes;  // what the README stresses (no fast INT8, deprecated flags, ...)
};

// Checks everything (profile, model, cache, out_dir) before writing anything; throws
// yoloc::Error naming the file or flag at fault.
ExportResult export_bundle(const ExportOptions& opts);

}  // namespace yoloc::deploy
