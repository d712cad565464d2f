// Running a detector over a dataset and scoring it (Ultralytics val protocol, see
// map.h), and comparing a candidate model with a reference without labels.
// Images are decoded and letterboxed by loader threads ahead of inference, so the
// executor never waits for JPEG decoding. Several detectors (one per worker thread,
// each single-threaded) scale better than one detector with intra-op threads: no
// per-layer barriers, which stall badly when the cores are shared.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "eval/dataset.h"
#include "eval/map.h"
#include "yolo/detector.h"

namespace yoloc {

struct EvalOptions {
    float conf = 0.001f;  // Ultralytics val defaults
    float iou = 0.7f;
    int max_det = 300;
    // Images prepared ahead of inference (and the inference batch when the model's
    // batch dimension allows it).
    int batch = 1;
    int loader_threads = 1;         // decode + letterbox threads beside inference
    bool keep_predictions = false;  // fill EvalResult::predictions (for --save-json)
};

struct ImagePredictions {
    std::string image_path;
    int width = 0, height = 0;
    std::vector<Detection> dets;  // original pixels
};

struct EvalResult {
    MapResult metrics;
    std::vector<std::string> names;
    int skipped_label_lines = 0;
    std::vector<std::string> warnings;  // label problems, "file:line: why"
    // Images that could not be read (missing, not an image, corrupt), "file: why" in
    // dataset order. They are left out of the metrics (neither their labels nor
    // predictions count); every other image is evaluated.
    std::vector<std::string> image_errors;
    double seconds = 0;                 // wall time of the image loop (load, infer, score)
    std::vector<ImagePredictions> predictions;
};

// Called after each image with (done, total).
using EvalProgress = std::function<void(int, int)>;

EvalResult evaluate(Detector& det, const Dataset& ds, const EvalOptions& opt, const EvalProgress& progress = {});
// The same on several detectors of the same model, one worker thread each. Results
// do not depend on the number of workers (images are scored in dataset order).
EvalResult evaluate(const std::vector<Detector*>& workers, const Dataset& ds, const EvalOptions& opt,
                    const EvalProgress& progress = {});

// Labels of one image in original pixels (class in Detection::class_id, conf 1).
std::vector<Detection> labels_to_pixels(const std::vector<LabelBox>& labels, int width, int height);

// The file name's digits as a COCO image id ("000000000009.jpg" -> 9); `fallback` when none.
int64_t coco_image_id(const std::string& path, int64_t fallback);
// COCO results: [{"image_id", "category_id", "bbox": [x, y, w, h], "score"}]; category ids
// are COCO's (1..90) when `names` are the 80 COCO names, else class indices.
nlohmann::json coco_results_json(const std::vector<ImagePredictions>& preds, const std::vector<std::string>& names);

// Summary: mAP50, mAP50_95, precision, recall, images, instances, per_class, ...
nlohmann::json eval_result_json(const EvalResult& r);

struct CompareOptions {
    // The reference's detections become ground truth: filtered like `detect` does
    // (best class per anchor, conf and NMS IoU of PostprocessOptions' defaults).
    float ref_conf = 0.25f;
    float iou = 0.45f;
    // The candidate is post-processed the same way but down to this score, for a full PR curve.
    float conf = 0.001f;
    int max_det = 300;
    int loader_threads = 1;
};

struct CompareResult {
    MapResult metrics;          // candidate vs the reference's detections
    int64_t ref_detections = 0;
    double max_abs_diff = 0;    // over every element of output0, all images
    double mean_abs_diff = 0;
    int64_t compared_values = 0;
    double seconds = 0;
    std::vector<std::string> image_errors;  // unreadable images, "file: why", left out
};

// Both detectors must take the same input size. Throws if images is empty.
CompareResult compare_models(Detector& candidate, Detector& reference, const std::vector<std::string>& images,
                             const CompareOptions& opt, const EvalProgress& progress = {});
// The same with one (candidate, reference) pair per worker thread.
CompareResult compare_models(const std::vector<std::pair<Detector*, Detector*>>& workers,
                             const std::vector<std::string>& images, const CompareOptions& opt,
                             const EvalProgress& progress = {});

}  // namespace yoloc
