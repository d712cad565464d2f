// Ultralytics YOLOv8 post-processing: decode output0 [N, 4+nc, A] (cx, cy, w, h in
// letterbox pixels, then sigmoid class scores), class-wise NMS, and mapping back
// to original-image pixels.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/tensor.h"
#include "yolo/letterbox.h"

namespace yoloc {

struct Detection {
    int class_id = 0;
    float conf = 0.f;
    float x1 = 0.f, y1 = 0.f, x2 = 0.f, y2 = 0.f;
};

struct PostprocessOptions {
    float conf_threshold = 0.25f;  // keep scores strictly above this
    float iou_threshold = 0.45f;   // suppress same-class boxes with IoU strictly above this
    int max_det = 300;             // detections kept after NMS
    int max_nms = 30000;           // highest-scoring candidates kept before NMS (0: no cap)
    // false: one label per anchor (its best class), as in prediction.
    // true: every class above the threshold is a candidate, as in Ultralytics val (mAP).
    bool multi_label = false;
};

// Candidates above the threshold, in letterbox pixels, sorted by descending score
// (ties: anchor, then class), capped at max_nms. `pred` is one batch item: (4+nc) rows of `anchors` floats.
std::vector<Detection> decode_candidates(const float* pred, int num_classes, int anchors,
                                         const PostprocessOptions& opt);

// IoU of two boxes (x1,y1,x2,y2); 0 when both are empty.
float box_iou(const Detection& a, const Detection& b);

// Greedy class-wise NMS, highest score first (candidates in any order; equal scores
// keep their order): a box is dropped when it overlaps a kept box of the same class
// with IoU > iou. Returns at most max_det detections, sorted by descending score.
std::vector<Detection> nms_per_class(const std::vector<Detection>& sorted_candidates, float iou, int max_det);

// Letterbox pixels -> original pixels: subtract padding, divide by r, clip to the image.
void map_to_original(std::vector<Detection>& dets, const LetterboxInfo& info);

// The whole chain for batch item `batch_index` of output0 [N, 4+nc, A]
// (a [4+nc, A] tensor is accepted as one item).
std::vector<Detection> postprocess(const Tensor& output0, int batch_index, const LetterboxInfo& info,
                                   const PostprocessOptions& opt = PostprocessOptions());

// End-to-end heads (YOLO26, YOLOv10: top-k inside the model, no NMS): output [N, K, 6]
// rows (x1, y1, x2, y2, score, class) in letterbox pixels, best first. Keeps the rows
// scoring above the threshold (at most max_det), maps them to original pixels.
std::vector<Detection> postprocess_end2end(const Tensor& output0, int batch_index, const LetterboxInfo& info,
                                           const PostprocessOptions& opt = PostprocessOptions());

// Whether an output shape is an end-to-end head's [N, K, 6] rather than [N, 4+nc, anchors].
bool is_end2end_output(const Shape& s);

// {"image": name, "detections": [{"class_id", "name", "conf", "box_xyxy": [x1,y1,x2,y2]}]}
// (conf rounded to 5 decimals, boxes to 0.01 px).
nlohmann::json detections_to_json(const std::string& image_name, const std::vector<Detection>& dets,
                                  const std::vector<std::string>& names);

// The 80 COCO class names in Ultralytics' order.
const std::vector<std::string>& coco80_names();
// Ultralytics/Darknet 80-class index -> COCO category id (1..90), for results JSON.
int coco80_to_coco91(int class_id);

}  // namespace yoloc
