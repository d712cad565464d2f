#include "commands.h"
#include "option_rules.h"
#include "onnx/onnx_io.h"
#include "yolo/generate.h"
#include "yolo/image.h"

namespace yoloc_cli {
namespace {

Registrar reg("generate", "write a YOLOv8 ONNX model (Ultralytics export layout, deterministic weights)", [](CLI::App& app) {
    auto o = std::make_shared<yoloc::GenerateOptions>();
    auto out = std::make_shared<std::string>();
    app.add_option("--scale", o->scale, "model scale: n, s, m, l or x")->check(CLI::IsMember({"n", "s", "m", "l", "x"}))
        ->capture_default_str();
    app.add_option("--nc", o->nc, "number of classes")->check(CLI::Range(1, 100000))->capture_default_str();
    app.add_option("--imgsz", o->imgsz, "square input size")->check(rules::imgsz())->capture_default_str();
    app.add_option("--seed", o->seed, "weight seed (same seed, same bytes)")->capture_default_str();
    auto image = std::make_shared<std::string>();
    app.add_option("-o,--output", *out, "output .onnx file")->required();
    app.add_option("--sample-image", *image, "also write a synthetic test photo (PNG) for machines without ../shared");
    return [o, out, image]() {
        yoloc::Model m = yoloc::generate_yolov8(*o);
        yoloc::save_onnx(m, *out);
        info("wrote " + *out + ": YOLOv8" + o->scale + ", " + std::to_string(o->nc) + " classes, " +
             std::to_string(m.graph.parameter_count()) + " parameters, input [1,3," + std::to_string(o->imgsz) + "," +
             std::to_string(o->imgsz) + "]");
        if (!image->empty()) {
            // Gradient background with a few solid blocks: deterministic, decodable input.
            yoloc::Image img;
            img.width = 640;
            img.height = 480;
            img.pixels.resize(size_t(img.width) * size_t(img.height) * 3);
            for (int y = 0; y < img.height; ++y)
                for (int x = 0; x < img.width; ++x) {
                    uint8_t* p = &img.pixels[(size_t(y) * size_t(img.width) + size_t(x)) * 3];
                    bool block = (x > 80 && x < 240 && y > 120 && y < 400) || (x > 360 && x < 600 && y > 60 && y < 220);
                    p[0] = block ? 40 : uint8_t(x * 255 / img.width);
                    p[1] = block ? 160 : uint8_t(y * 255 / img.height);
                    p[2] = block ? 220 : 128;
                }
            yoloc::save_png(*image, img);
            info("wrote " + *image);
        }
        return 0;
    };
});

}  // namespace
}  // namespace yoloc_cli
