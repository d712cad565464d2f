#include "commands.h"
#include "onnx/onnx_io.h"
#include "yolo/generate.h"

namespace yoloc_cli {
namespace {

Registrar reg("generate", "write a YOLOv8 ONNX model (Ultralytics export layout, deterministic weights)", [](CLI::App& app) {
    auto o = std::make_shared<yoloc::GenerateOptions>();
    auto out = std::make_shared<std::string>();
    app.add_option("--scale", o->scale, "model scale: n, s, m, l or x")->check(CLI::IsMember({"n", "s", "m", "l", "x"}))
        ->capture_default_str();
    app.add_option("--nc", o->nc, "number of classes")->check(CLI::Range(1, 100000))->capture_default_str();
    app.add_option("--imgsz", o->imgsz, "square input size (multiple of 32)")->capture_default_str();
    app.add_option("--seed", o->seed, "weight seed (same seed, same bytes)")->capture_default_str();
    app.add_option("-o,--output", *out, "output .onnx file")->required();
    return [o, out]() {
        YOLOC_CHECK(o->imgsz >= 32 && o->imgsz % 32 == 0, "--imgsz ", o->imgsz, " must be a positive multiple of 32");
        yoloc::Model m = yoloc::generate_yolov8(*o);
        yoloc::save_onnx(m, *out);
        info("wrote " + *out + ": YOLOv8" + o->scale + ", " + std::to_string(o->nc) + " classes, " +
             std::to_string(m.graph.parameter_count()) + " parameters, input [1,3," + std::to_string(o->imgsz) + "," +
             std::to_string(o->imgsz) + "]");
        return 0;
    };
});

}  // namespace
}  // namespace yoloc_cli
