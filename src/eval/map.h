// Detection metrics exactly as Ultralytics' val computes them
// (ultralytics/engine/validator.py match_predictions, utils/metrics.py ap_per_class
// and compute_ap), so the figures are comparable with `yolo val`:
//  - 10 IoU thresholds 0.50:0.05:0.95;
//  - per threshold, same-class label/prediction pairs with IoU >= t, sorted by IoU
//    descending, made unique per prediction, then per label;
//  - AP = 101-point interpolation (np.interp + trapezoid) of the precision envelope,
//    so perfect predictions score 0.995, not 1 (the envelope is 0 at recall 1);
//  - means over the classes present in the labels (a class with labels and no
//    predictions counts as AP 0; a class with neither is left out);
//  - precision/recall at the confidence of the maximal (smoothed) mean F1.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "yolo/postprocess.h"

namespace yoloc {

constexpr int kNumIouThresholds = 10;
using CorrectRow = std::array<bool, kNumIouThresholds>;

// 0.50, 0.55, ..., 0.95 (float32, like torch.linspace).
const std::array<float, kNumIouThresholds>& iou_thresholds();

// Ultralytics' box_iou: inter / (area_a + area_b - inter + 1e-7), in float32.
float box_iou_eps(const Detection& a, const Detection& b);

// Which predictions are true positives at each IoU threshold (one row per prediction).
// `labels` use Detection too (conf ignored).
std::vector<CorrectRow> match_predictions(const std::vector<Detection>& preds, const std::vector<Detection>& labels);

// numpy.interp for one point (xp non-decreasing; with repeated xp the last wins, as numpy).
double np_interp(double x, const std::vector<double>& xp, const std::vector<double>& fp, double left, double right);

// Ultralytics' compute_ap: recall ascending, precision per detection (cumulative).
double compute_ap(const std::vector<double>& recall, const std::vector<double>& precision);

struct ClassMetrics {
    int class_id = 0;
    int images = 0;     // images with at least one label of this class
    int instances = 0;  // labels of this class
    double precision = 0, recall = 0, ap50 = 0, ap50_95 = 0;
};

struct MapResult {
    double precision = 0, recall = 0, map50 = 0, map50_95 = 0;
    int images = 0;
    int64_t instances = 0;
    int64_t predictions = 0;
    std::vector<ClassMetrics> per_class;  // classes present in the labels, ascending id
};

// Collects per-image matches; compute() runs ap_per_class over everything added.
class MapAccumulator {
public:
    // preds: after NMS, any order; labels: ground truth boxes in the same coordinates.
    void add_image(const std::vector<Detection>& preds, const std::vector<Detection>& labels);
    // Raw form: one (conf, class, correct row) per prediction.
    void add(const std::vector<float>& conf, const std::vector<int>& pred_cls, const std::vector<CorrectRow>& tp,
             const std::vector<int>& target_cls);
    MapResult compute() const;

private:
    std::vector<float> conf_;
    std::vector<int> pred_cls_;
    std::vector<CorrectRow> tp_;
    std::vector<int> target_cls_;
    std::vector<int> images_per_class_;  // indexed by class id
    int images_ = 0;
};

}  // namespace yoloc
