#include <algorithm>
#include <cstdio>
#include <memory>
#include <thread>

#include "commands.h"
#include "option_rules.h"
#include "core/file.h"
#include "core/limits.h"
#include "core/progress.h"
#include "eval/dataset.h"
#include "eval/evaluate.h"
#include "yolo/detector.h"

namespace yoloc_cli {
namespace {

struct EvalArgs {
    std::string model, data, split = "val", save_json, compare, images, backend = "fast";
    int imgsz = 0, max_det = 300, batch = 1, threads = 0;
    float conf = 0.001f, iou = 0.7f, ref_conf = 0.25f;
    bool json = false, verbose = false;
};

void print_row(const std::string& name, int images, int64_t instances, double p, double r, double m50, double m) {
    std::printf("%22s %10d %10lld %10.3f %10.3f %10.3f %10.3f\n", name.c_str(), images, (long long)instances, p, r,
                m50, m);
}

// Images that could not be read were left out of the metrics: each is listed as
// `error: FILE: why` after the results, and the exit code is 1 (like `detect`).
int report_image_errors(const std::vector<std::string>& errors, int evaluated) {
    if (errors.empty()) return 0;
    for (const auto& e : errors) std::fprintf(stderr, "error: %s\n", e.c_str());
    std::fprintf(stderr, "error: %zu of %d images could not be read (listed above); the metrics cover the other %d\n",
                 errors.size(), evaluated + int(errors.size()), evaluated);
    return 1;
}

int run_eval(const EvalArgs& a) {
    yoloc::Dataset ds = yoloc::load_dataset(a.data, a.split);
    // Label problems are the user's to fix: show a few, count all.
    const size_t shown = a.verbose ? ds.warnings.size() : std::min<size_t>(ds.warnings.size(), 10);
    for (size_t i = 0; i < shown; ++i) warn(ds.warnings[i]);
    if (shown < ds.warnings.size())
        warn(std::to_string(ds.warnings.size() - shown) + " more label warnings (--verbose lists them all)");

    // One single-threaded detector per core, each on its own images: no per-layer
    // barriers between threads, which stall when the cores are shared (measured
    // ~10x faster than one 2-thread detector on a loaded 2-core machine).
    const int cores = a.threads > 0 ? a.threads : int(std::max(1u, std::thread::hardware_concurrency()));
    const int workers = std::max(1, std::min({cores, 8, int(ds.images.size())}));
    yoloc::DetectorOptions dopt;
    dopt.backend = a.backend;
    dopt.threads = std::max(1, cores / workers);
    dopt.imgsz = a.imgsz;
    dopt.batch = a.batch;
    std::vector<std::unique_ptr<yoloc::Detector>> dets;
    dets.emplace_back(new yoloc::Detector(a.model, dopt));
    // evaluate() letterboxes up to 2 images per batch slot of every worker ahead of the
    // detectors (src/eval/evaluate.cpp), float32 [3,S,S] each: what --batch costs.
    const int64_t s = dets[0]->imgsz();
    const int64_t ahead = 2 * int64_t(workers) * std::max(a.batch, dets[0]->batch());
    yoloc::limits::check(yoloc::cat("--batch ", a.batch, " (", ahead, " images prepared ahead for ", workers,
                                    " workers)"),
                         yoloc::limits::input_problem({ahead, 3, s, s}));
    for (int w = 1; w < workers; ++w) dets.push_back(dets[0]->clone());  // engines: one context each
    std::vector<yoloc::Detector*> pool;
    for (auto& d : dets) pool.push_back(d.get());
    yoloc::Detector& det = *dets[0];

    yoloc::EvalOptions eo;
    eo.conf = a.conf;
    eo.iou = a.iou;
    eo.max_det = a.max_det;
    eo.batch = a.batch;
    eo.keep_predictions = !a.save_json.empty();
    yoloc::Progress bar("eval", int64_t(ds.images.size()));
    yoloc::EvalResult r = yoloc::evaluate(pool, ds, eo, [&](int done, int) { bar.set(done); });
    bar.finish();

    if (!a.save_json.empty()) {
        yoloc::write_file_atomic(a.save_json, yoloc::coco_results_json(r.predictions, r.names).dump() + "\n");
        info("wrote COCO results JSON to " + a.save_json);
    }
    const yoloc::MapResult& m = r.metrics;
    const double ms = m.images > 0 ? 1000.0 * r.seconds / m.images : 0.0;
    if (a.json) {
        nlohmann::json j = yoloc::eval_result_json(r);
        j["model"] = a.model;
        j["data"] = a.data;
        j["split"] = a.split;
        j["imgsz"] = det.imgsz();
        j["backend"] = yoloc::is_engine_path(a.model) ? std::string("gpu-engine") : a.backend;
        std::printf("%s\n", j.dump(2).c_str());
        return report_image_errors(r.image_errors, r.metrics.images);
    }
    std::printf("%22s %10s %10s %10s %10s %10s %10s\n", "Class", "Images", "Instances", "P", "R", "mAP50",
                "mAP50-95");
    print_row("all", m.images, m.instances, m.precision, m.recall, m.map50, m.map50_95);
    if (a.verbose)
        for (const auto& c : m.per_class)
            print_row(size_t(c.class_id) < r.names.size() ? r.names[size_t(c.class_id)] : std::to_string(c.class_id),
                      c.images, c.instances, c.precision, c.recall, c.ap50, c.ap50_95);
    // An engine runs on the GPU whatever --backend says: name what actually ran.
    const std::string runner =
        yoloc::is_engine_path(a.model) ? "GPU engine, " + std::to_string(workers) + " contexts"
                                       : a.backend + " executor x " + std::to_string(workers) + " workers";
    std::printf("%d images in %.1f s (%.1f ms/image, %s, %dx%d letterbox); %d label lines skipped\n", m.images,
                r.seconds, ms, runner.c_str(), det.imgsz(), det.imgsz(), r.skipped_label_lines);
    return report_image_errors(r.image_errors, r.metrics.images);
}

int run_compare(const EvalArgs& a) {
    std::vector<std::string> files;
    if (yoloc::is_directory(a.images)) files = yoloc::list_images(a.images);
    else if (yoloc::file_exists(a.images)) files.push_back(a.images);
    else yoloc::fail(a.images, ": no such folder or image");
    YOLOC_CHECK(!files.empty(), a.images, ": no images (JPEG, PNG)");
    const int cores = a.threads > 0 ? a.threads : int(std::max(1u, std::thread::hardware_concurrency()));
    const int workers = std::max(1, std::min({cores, 8, int(files.size())}));
    yoloc::DetectorOptions dopt;
    dopt.backend = a.backend;
    dopt.threads = std::max(1, cores / workers);
    dopt.imgsz = a.imgsz;
    std::vector<std::unique_ptr<yoloc::Detector>> dets;
    std::vector<std::pair<yoloc::Detector*, yoloc::Detector*>> pool;
    for (int w = 0; w < workers; ++w) {
        dets.push_back(w == 0 ? std::make_unique<yoloc::Detector>(a.model, dopt) : dets[0]->clone());
        dets.push_back(w == 0 ? std::make_unique<yoloc::Detector>(a.compare, dopt) : dets[1]->clone());
        pool.emplace_back(dets[dets.size() - 2].get(), dets.back().get());
    }
    yoloc::CompareOptions co;
    co.ref_conf = a.ref_conf;
    co.iou = a.iou;
    co.conf = a.conf;
    co.max_det = a.max_det;
    yoloc::Progress bar("compare", int64_t(files.size()));
    yoloc::CompareResult r = yoloc::compare_models(pool, files, co, [&](int done, int) { bar.set(done); });
    bar.finish();
    const yoloc::MapResult& m = r.metrics;
    if (a.json) {
        nlohmann::json j;
        j["candidate"] = a.model;
        j["reference"] = a.compare;
        j["images"] = m.images;
        j["reference_detections"] = r.ref_detections;
        j["mAP50"] = m.map50;
        j["mAP50_95"] = m.map50_95;
        j["precision"] = m.precision;
        j["recall"] = m.recall;
        j["max_abs_diff"] = r.max_abs_diff;
        j["mean_abs_diff"] = r.mean_abs_diff;
        j["seconds"] = r.seconds;
        j["failed_images"] = r.image_errors;
        std::printf("%s\n", j.dump(2).c_str());
        return report_image_errors(r.image_errors, m.images);
    }
    std::printf("candidate %s vs reference %s on %d images (%lld reference detections, conf %.2f, NMS IoU %.2f)\n",
                a.model.c_str(), a.compare.c_str(), m.images, (long long)r.ref_detections, co.ref_conf, co.iou);
    std::printf("mAP50-95 %.4f  mAP50 %.4f  P %.4f  R %.4f  (0.995 = identical under the 101-point protocol)\n",
                m.map50_95, m.map50, m.precision, m.recall);
    std::printf("output0 |diff|: max %.6g, mean %.6g over %lld values; %.1f s\n", r.max_abs_diff, r.mean_abs_diff,
                (long long)r.compared_values, r.seconds);
    return report_image_errors(r.image_errors, m.images);
}

Registrar reg("eval", "measure mAP on a labelled dataset (Ultralytics val protocol), or compare two models",
              [](CLI::App& app) {
    auto a = std::make_shared<EvalArgs>();
    app.add_option("model", a->model, "ONNX model or GPU engine (*.engine) to evaluate (the candidate with --compare)")->required();
    auto data = app.add_option("--data", a->data, "Ultralytics data.yaml");
    app.add_option("--split", a->split, "split of the data.yaml: train, val or test")->capture_default_str();
    app.add_option("--imgsz", a->imgsz, "square letterbox size (0 = the model's input size)")
        ->check(rules::imgsz(true))->capture_default_str();
    app.add_option("--conf", a->conf, "score threshold of the candidates")->check(rules::probability())->capture_default_str();
    auto iou = app.add_option("--iou", a->iou, "class-wise NMS IoU threshold (0.45 with --compare)")
                   ->check(rules::probability())->capture_default_str();
    app.add_option("--max-det", a->max_det, "detections kept per image")->check(rules::at_least(1))->capture_default_str();
    app.add_option("--batch", a->batch, "images prepared ahead / inference batch of dynamic-batch models")
        ->check(rules::batch())->capture_default_str();
    app.add_option("--threads", a->threads, "CPU threads (0 = all cores): images run in parallel, one per thread")
        ->check(rules::threads())->capture_default_str();
    app.add_option("--backend", a->backend, "CPU executor: fast or reference")
        ->check(CLI::IsMember({"fast", "reference"}))->capture_default_str();
    app.add_flag("--json", a->json, "print one JSON object on stdout instead of the table");
    app.add_option("--save-json", a->save_json, "write COCO results JSON (image_id, category_id, bbox, score)");
    app.add_flag("--verbose", a->verbose, "per-class metrics and every label warning");
    auto cmp = app.add_option("--compare", a->compare,
                              "reference ONNX model: score the candidate against its detections (no labels)");
    app.add_option("--images", a->images, "images for --compare (folder or file)");
    app.add_option("--ref-conf", a->ref_conf, "score threshold of the reference's detections with --compare")
        ->check(rules::probability())->capture_default_str();
    return [a, data, iou, cmp]() {
        if (cmp->count() > 0) {
            YOLOC_CHECK(!a->images.empty(), "--compare needs --images DIR");
            if (iou->count() == 0) a->iou = 0.45f;  // the reference is filtered like `detect` does
            return run_compare(*a);
        }
        YOLOC_CHECK(data->count() > 0, "eval needs --data DATA.yaml (or --compare REFERENCE --images DIR)");
        return run_eval(*a);
    };
});

}  // namespace
}  // namespace yoloc_cli
