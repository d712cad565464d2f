#include <cstdio>

#include "commands.h"
#include "option_rules.h"
#include "core/file.h"
#include "core/progress.h"
#include "yolo/detector.h"
#include "yolo/draw.h"

namespace yoloc_cli {
namespace {

bool looks_like_image(const std::string& p) {
    std::string e = yoloc::path_ext_lower(p);
    return e == ".jpg" || e == ".jpeg" || e == ".png";
}

Registrar reg("detect", "detect objects in images: JSON per image + annotated copies", [](CLI::App& app) {
    auto model = std::make_shared<std::string>();
    auto inputs = std::make_shared<std::vector<std::string>>();
    auto out = std::make_shared<std::string>("detections");
    auto names_file = std::make_shared<std::string>();
    auto no_draw = std::make_shared<bool>(false);
    auto pp = std::make_shared<yoloc::PostprocessOptions>();
    auto opts = std::make_shared<yoloc::DetectorOptions>();
    app.add_option("model", *model, "ONNX model, or a GPU engine from yoloc build (*.engine: letterbox, decode and NMS run on the GPU)")->required();
    app.add_option("images", *inputs, "image files or folders (JPEG, PNG)")->required();
    app.add_option("--out", *out, "output folder: <stem>.json and <stem>.jpg per image")->capture_default_str();
    app.add_option("--conf", pp->conf_threshold, "score threshold")->check(rules::probability())->capture_default_str();
    app.add_option("--iou", pp->iou_threshold, "NMS IoU threshold")->check(rules::probability())->capture_default_str();
    app.add_option("--max-det", pp->max_det, "detections kept per image")->check(rules::at_least(1))->capture_default_str();
    app.add_option("--names", *names_file, "class names: a text file (one per line) or a data.yaml");
    app.add_flag("--no-draw", *no_draw, "skip the annotated images");
    app.add_option("--backend", opts->backend, "CPU executor: fast or reference")
        ->check(CLI::IsMember({"fast", "reference"}))->capture_default_str();
    app.add_option("--threads", opts->threads, "CPU threads (0 = all cores)")->check(rules::threads())->capture_default_str();
    return [=]() {
        std::vector<std::string> files;
        for (const auto& p : *inputs) {
            if (yoloc::is_directory(p)) {
                for (const auto& f : yoloc::list_dir(p))
                    if (looks_like_image(f)) files.push_back(f);
            } else {
                files.push_back(p);
            }
        }
        if (files.empty()) {
            std::string given;
            for (const auto& p : *inputs) given += (given.empty() ? "" : ", ") + p;
            yoloc::fail(given, ": no images (.jpg, .jpeg, .png) there");
        }
        yoloc::Detector det(*model, *opts);
        det.require_detection("detect");
        std::vector<std::string> names = det.names();
        if (!names_file->empty()) names = yoloc::load_names_file(*names_file);
        for (int i = int(names.size()); i < det.num_classes(); ++i) names.push_back("class" + std::to_string(i));
        // The output folder appears with the first result: a run where every image fails
        // leaves nothing behind. A path that cannot be a folder is refused before any work.
        YOLOC_CHECK(!yoloc::file_exists(*out), "--out ", *out, ": is a file; give a folder for the results");
        bool out_ready = false;
        std::vector<std::pair<std::string, std::string>> failures;
        yoloc::Progress bar("detect", int64_t(files.size()));
        int total = 0;
        for (const auto& f : files) {
            yoloc::Image img;
            std::vector<yoloc::Detection> dets;
            try {
                img = yoloc::load_image(f);
                dets = det.detect(img, *pp);
            } catch (const yoloc::Error& e) {
                failures.emplace_back(f, e.what());
                bar.step();
                continue;
            }
            if (!out_ready) {
                yoloc::make_dirs(*out);
                out_ready = true;
            }
            total += int(dets.size());
            std::string stem = yoloc::path_stem(f);
            std::string base = f.substr(f.find_last_of('/') == std::string::npos ? 0 : f.find_last_of('/') + 1);
            yoloc::write_file_atomic(yoloc::path_join(*out, stem + ".json"),
                                     yoloc::detections_to_json(base, dets, names).dump(1) + "\n");
            if (!*no_draw) {
                yoloc::draw_detections(img, dets, names);
                yoloc::save_jpeg(yoloc::path_join(*out, stem + ".jpg"), img);
            }
            if (!yoloc::Progress::enabled()) std::fprintf(stderr, "%s: %zu detections\n", f.c_str(), dets.size());
            bar.step();
        }
        bar.finish();
        const size_t written = files.size() - failures.size();
        if (written > 0)
            info("wrote " + std::to_string(written) + (written == 1 ? " result (" : " results (") +
                 std::to_string(total) + " detections) to " + *out +
                 (failures.empty() ? std::string()
                                   : "; " + std::to_string(failures.size()) + " of " + std::to_string(files.size()) +
                                         " images failed:"));
        // One line per failed image, and nothing else: a lone failure is one error line.
        for (const auto& fl : failures) std::fprintf(stderr, "error: %s\n", fl.second.c_str());
        if (!failures.empty()) return 1;
        return 0;
    };
});

}  // namespace
}  // namespace yoloc_cli
