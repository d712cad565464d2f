// YOLOv8 detect models built directly as IR, in Ultralytics' ONNX export layout
// (node and tensor names, op pattern, decode in graph), with deterministic weights.
// Used for tests, benchmarks of every scale, and `yoloc generate`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace yoloc {

struct GenerateOptions {
    std::string scale = "n";  // n, s, m, l, x
    int nc = 80;
    int imgsz = 640;          // square input, multiple of 32
    uint64_t seed = 0;
    // Fold a probe-batch BatchNorm into every conv so activations keep a sane range
    // through the depth of the net (see generate.cpp). Off: plain fan-in scaled
    // weights, faster (seconds for l/x) when only structure or shapes matter.
    bool calibrate = true;
};

// Ultralytics' yolov8.yaml scale constants.
struct YoloV8Scale {
    double depth = 0.33;
    double width = 0.25;
    int max_channels = 1024;
};
// Throws yoloc::Error for an unknown scale name.
YoloV8Scale yolov8_scale(const std::string& scale);

// The 8 C2f blocks of yolov8.yaml at a scale, in layer order (2, 4, 6, 8, 12, 15, 18, 21).
struct C2fSpec {
    int layer = 0;
    int64_t c_in = 0, c_out = 0;
    int n = 0;
    bool shortcut = false;
};
std::vector<C2fSpec> yolov8_c2f_specs(const std::string& scale);

// Builds the model. Throws yoloc::Error on bad options (scale, nc < 1, imgsz not a multiple of 32).
Model generate_yolov8(const GenerateOptions& opts);

}  // namespace yoloc
