// The GPU side of `yoloc bench` (bench_gpu.cpp).
#pragma once

#include <string>

namespace yoloc_cli {

struct BenchGpuArgs {
    std::string model;      // *.engine, or an ONNX model built in memory first
    std::string precision = "fp16";  // ONNX only
    int batch = 1;                   // ONNX only
    int imgsz = 0;                   // ONNX only; 0 = the model's
    std::string image;               // end-to-end picture; empty = a synthetic one
    int iters = 50, warmup = 5;
    bool json = false;
};

int bench_gpu(const BenchGpuArgs& a);

}  // namespace yoloc_cli
