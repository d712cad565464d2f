#include <cmath>
#include <cstdio>

#include "commands.h"
#include "option_rules.h"
#include "core/npy.h"
#include "yolo/detector.h"

namespace yoloc_cli {
namespace {

Registrar reg("run", "run a model on one image and print or save the raw output (.npy)", [](CLI::App& app) {
    auto model = std::make_shared<std::string>();
    auto image = std::make_shared<std::string>();
    auto save = std::make_shared<std::string>();
    auto opts = std::make_shared<yoloc::DetectorOptions>();
    app.add_option("model", *model, "ONNX model")->required();
    app.add_option("--image", *image, "input image (JPEG or PNG), letterboxed like Ultralytics")->required();
    app.add_option("--save", *save, "write output0 of batch item 0 as .npy (float32, the output's shape)");
    app.add_option("--backend", opts->backend, "CPU executor: fast or reference")
        ->check(CLI::IsMember({"fast", "reference"}))->capture_default_str();
    app.add_option("--threads", opts->threads, "CPU threads (0 = all cores)")->check(rules::threads())->capture_default_str();
    return [=]() {
        yoloc::Image img = yoloc::load_image(*image);
        yoloc::Detector det(*model, *opts);
        yoloc::LetterboxInfo lb;
        yoloc::Tensor x = yoloc::preprocess(img, det.imgsz(), &lb);
        yoloc::Tensor y = det.infer(x);
        double mn = INFINITY, mx = -INFINITY;
        for (int64_t i = 0; i < y.numel(); ++i) {
            mn = std::min(mn, double(y.data<float>()[i]));
            mx = std::max(mx, double(y.data<float>()[i]));
        }
        std::printf("%s %s float32 min %.6g max %.6g (backend %s)\n", det.output_name().c_str(),
                    yoloc::shape_str(y.shape()).c_str(), mn, mx, opts->backend.c_str());
        if (!save->empty()) {
            yoloc::save_npy(*save, y);
            info("wrote " + *save);
        }
        return 0;
    };
});

}  // namespace
}  // namespace yoloc_cli
