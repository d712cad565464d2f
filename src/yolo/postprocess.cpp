#include "yolo/postprocess.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"

namespace yoloc {

std::vector<Detection> decode_candidates(const float* pred, int num_classes, int anchors,
                                         const PostprocessOptions& opt) {
    YOLOC_CHECK(num_classes > 0 && anchors >= 0, "decode: invalid output layout (", num_classes,
                " classes, ", anchors, " anchors)");
    const size_t A = size_t(anchors);
    const float* cx = pred;
    const float* cy = pred + A;
    const float* w = pred + 2 * A;
    const float* h = pred + 3 * A;
    const float* scores = pred + 4 * A;
    const float conf = opt.conf_threshold;

    struct Candidate {
        float score;
        int anchor;
        int class_id;
    };
    std::vector<Candidate> found;
    // Rows are class-major, so scan one class row at a time (contiguous reads).
    if (opt.multi_label) {
        for (int c = 0; c < num_classes; ++c) {
            const float* row = scores + size_t(c) * A;
            for (size_t a = 0; a < A; ++a)
                if (row[a] > conf) found.push_back({row[a], int(a), c});
        }
    } else {
        std::vector<float> best(A, -std::numeric_limits<float>::infinity());
        std::vector<int> best_class(A, 0);
        for (int c = 0; c < num_classes; ++c) {
            const float* row = scores + size_t(c) * A;
            for (size_t a = 0; a < A; ++a)
                if (row[a] > best[a]) {  // strict: the first maximal class wins, like argmax
                    best[a] = row[a];
                    best_class[a] = c;
                }
        }
        for (size_t a = 0; a < A; ++a)
            if (best[a] > conf) found.push_back({best[a], int(a), best_class[a]});
    }
    // Descending score; ties in Ultralytics' (anchor-major) candidate order.
    std::sort(found.begin(), found.end(), [](const Candidate& p, const Candidate& q) {
        if (p.score != q.score) return p.score > q.score;
        if (p.anchor != q.anchor) return p.anchor < q.anchor;
        return p.class_id < q.class_id;
    });
    if (opt.max_nms > 0 && found.size() > size_t(opt.max_nms)) found.resize(size_t(opt.max_nms));

    std::vector<Detection> cands;
    cands.reserve(found.size());
    for (const Candidate& f : found) {
        const size_t a = size_t(f.anchor);
        Detection d;
        d.class_id = f.class_id;
        d.conf = f.score;
        d.x1 = cx[a] - w[a] / 2;
        d.y1 = cy[a] - h[a] / 2;
        d.x2 = cx[a] + w[a] / 2;
        d.y2 = cy[a] + h[a] / 2;
        cands.push_back(d);
    }
    return cands;
}

float box_iou(const Detection& a, const Detection& b) {
    const float iw = std::min(a.x2, b.x2) - std::max(a.x1, b.x1);
    const float ih = std::min(a.y2, b.y2) - std::max(a.y1, b.y1);
    if (iw <= 0.f || ih <= 0.f) return 0.f;
    const float inter = iw * ih;
    const float area_a = std::max(0.f, a.x2 - a.x1) * std::max(0.f, a.y2 - a.y1);
    const float area_b = std::max(0.f, b.x2 - b.x1) * std::max(0.f, b.y2 - b.y1);
    const float uni = area_a + area_b - inter;
    return uni > 0.f ? inter / uni : 0.f;
}

std::vector<Detection> nms_per_class(const std::vector<Detection>& cands, float iou, int max_det) {
    if (cands.empty() || max_det <= 0) return {};
    int max_class = 0;
    for (const Detection& d : cands) {
        YOLOC_CHECK(d.class_id >= 0, "nms: negative class id ", d.class_id);
        max_class = std::max(max_class, d.class_id);
    }
    // Descending score; equal scores keep their input order.
    std::vector<int> order(cands.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = int(i);
    std::stable_sort(order.begin(), order.end(),
                     [&](int a, int b) { return cands[size_t(a)].conf > cands[size_t(b)].conf; });

    // Classes never suppress each other, so run greedy NMS per class; within a class a
    // candidate survives iff it overlaps no already kept box, which costs O(n * kept)
    // instead of O(n^2) over all classes at once.
    std::vector<std::vector<int>> by_class(size_t(max_class) + 1);
    for (int i : order) by_class[size_t(cands[size_t(i)].class_id)].push_back(i);

    std::vector<int> kept_all;  // ranks in `order`
    std::vector<int> rank(cands.size());
    for (size_t r = 0; r < order.size(); ++r) rank[size_t(order[r])] = int(r);
    std::vector<const Detection*> kept;
    for (const std::vector<int>& idx : by_class) {
        kept.clear();
        for (int i : idx) {
            const Detection& d = cands[size_t(i)];
            bool suppressed = false;
            for (const Detection* k : kept)
                if (box_iou(*k, d) > iou) {
                    suppressed = true;
                    break;
                }
            if (suppressed) continue;
            kept.push_back(&d);
            kept_all.push_back(rank[size_t(i)]);
            // Later boxes of this class score lower than max_det kept ones: they cannot make the cut.
            if (int(kept.size()) >= max_det) break;
        }
    }
    std::sort(kept_all.begin(), kept_all.end());
    if (kept_all.size() > size_t(max_det)) kept_all.resize(size_t(max_det));
    std::vector<Detection> out;
    out.reserve(kept_all.size());
    for (int r : kept_all) out.push_back(cands[size_t(order[size_t(r)])]);
    return out;
}

void map_to_original(std::vector<Detection>& dets, const LetterboxInfo& info) {
    YOLOC_CHECK(info.r > 0, "map_to_original: invalid letterbox scale ", info.r);
    const double W = info.src_w, H = info.src_h;
    auto fx = [&](float v) { return float(std::min(std::max((double(v) - info.left) / info.r, 0.0), W)); };
    auto fy = [&](float v) { return float(std::min(std::max((double(v) - info.top) / info.r, 0.0), H)); };
    for (Detection& d : dets) {
        d.x1 = fx(d.x1);
        d.x2 = fx(d.x2);
        d.y1 = fy(d.y1);
        d.y2 = fy(d.y2);
    }
}

bool is_end2end_output(const Shape& s) {
    // [N, 4+nc, anchors] has thousands of anchors; [N, K, 6] six values per row.
    return s.size() == 3 && s[2] == 6 && s[1] != 6;
}

std::vector<Detection> postprocess_end2end(const Tensor& output0, int batch_index, const LetterboxInfo& info,
                                           const PostprocessOptions& opt) {
    YOLOC_CHECK(output0.dtype() == DType::Float32 && is_end2end_output(output0.shape()), "postprocess: ",
                shape_str(output0.shape()), " is not an end-to-end output [N, K, 6]");
    YOLOC_CHECK(batch_index >= 0 && batch_index < output0.dim(0), "postprocess: batch index ", batch_index,
                " out of range for ", shape_str(output0.shape()));
    const int64_t K = output0.dim(1);
    const float* rows = output0.data<float>() + size_t(batch_index) * size_t(K) * 6;
    std::vector<Detection> dets;
    for (int64_t k = 0; k < K && int(dets.size()) < opt.max_det; ++k) {
        const float* r = rows + k * 6;
        if (!(r[4] > opt.conf_threshold)) continue;
        Detection d;
        d.x1 = r[0];
        d.y1 = r[1];
        d.x2 = r[2];
        d.y2 = r[3];
        d.conf = r[4];
        d.class_id = int(r[5]);
        dets.push_back(d);
    }
    // The model's top-k is sorted; a stable sort keeps its order among equal scores.
    std::stable_sort(dets.begin(), dets.end(), [](const Detection& a, const Detection& b) { return a.conf > b.conf; });
    map_to_original(dets, info);
    return dets;
}

std::vector<Detection> postprocess(const Tensor& output0, int batch_index, const LetterboxInfo& info,
                                   const PostprocessOptions& opt) {
    if (is_end2end_output(output0.shape())) return postprocess_end2end(output0, batch_index, info, opt);
    YOLOC_CHECK(output0.dtype() == DType::Float32, "postprocess: output0 must be float32, got ",
                dtype_name(output0.dtype()));
    int64_t batch = 1, channels = 0, anchors = 0;
    if (output0.rank() == 3) {
        batch = output0.dim(0);
        channels = output0.dim(1);
        anchors = output0.dim(2);
    } else if (output0.rank() == 2) {
        channels = output0.dim(0);
        anchors = output0.dim(1);
    } else {
        fail("postprocess: output0 must be [N, 4+nc, A], got ", shape_str(output0.shape()));
    }
    YOLOC_CHECK(channels > 4, "postprocess: output0 has ", channels, " rows; expected 4 box rows + classes");
    YOLOC_CHECK(batch_index >= 0 && batch_index < batch, "postprocess: batch index ", batch_index,
                " out of range for ", shape_str(output0.shape()));
    const float* pred = output0.data<float>() + size_t(batch_index) * size_t(channels) * size_t(anchors);
    std::vector<Detection> dets =
        nms_per_class(decode_candidates(pred, int(channels - 4), int(anchors), opt), opt.iou_threshold, opt.max_det);
    map_to_original(dets, info);
    return dets;
}

nlohmann::json detections_to_json(const std::string& image_name, const std::vector<Detection>& dets,
                                  const std::vector<std::string>& names) {
    auto round_to = [](double v, double scale) { return std::round(v * scale) / scale; };
    nlohmann::json arr = nlohmann::json::array();
    for (const Detection& d : dets) {
        const std::string name = (d.class_id >= 0 && size_t(d.class_id) < names.size())
                                     ? names[size_t(d.class_id)]
                                     : "class" + std::to_string(d.class_id);
        arr.push_back({{"class_id", d.class_id},
                       {"name", name},
                       {"conf", round_to(d.conf, 1e5)},
                       {"box_xyxy",
                        {round_to(d.x1, 100), round_to(d.y1, 100), round_to(d.x2, 100), round_to(d.y2, 100)}}});
    }
    return {{"image", image_name}, {"detections", arr}};
}

const std::vector<std::string>& coco80_names() {
    static const std::vector<std::string> names = {
        "person",        "bicycle",      "car",           "motorcycle",    "airplane",     "bus",
        "train",         "truck",        "boat",          "traffic light", "fire hydrant", "stop sign",
        "parking meter", "bench",        "bird",          "cat",           "dog",          "horse",
        "sheep",         "cow",          "elephant",      "bear",          "zebra",        "giraffe",
        "backpack",      "umbrella",     "handbag",       "tie",           "suitcase",     "frisbee",
        "skis",          "snowboard",    "sports ball",   "kite",          "baseball bat", "baseball glove",
        "skateboard",    "surfboard",    "tennis racket", "bottle",        "wine glass",   "cup",
        "fork",          "knife",        "spoon",         "bowl",          "banana",       "apple",
        "sandwich",      "orange",       "broccoli",      "carrot",        "hot dog",      "pizza",
        "donut",         "cake",         "chair",         "couch",         "potted plant", "bed",
        "dining table",  "toilet",       "tv",            "laptop",        "mouse",        "remote",
        "keyboard",      "cell phone",   "microwave",     "oven",          "toaster",      "sink",
        "refrigerator",  "book",         "clock",         "vase",          "scissors",     "teddy bear",
        "hair drier",    "toothbrush"};
    return names;
}

int coco80_to_coco91(int class_id) {
    // COCO category ids skip 12, 26, 29, 30, 45, 66, 68, 69, 71, 83 (unused in the 2017 release).
    static const int ids[80] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 13, 14, 15, 16, 17,
                                18, 19, 20, 21, 22, 23, 24, 25, 27, 28, 31, 32, 33, 34, 35, 36,
                                37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53,
                                54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 67, 70, 72, 73,
                                74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90};
    YOLOC_CHECK(class_id >= 0 && class_id < 80, "coco80_to_coco91: class id ", class_id, " is not in 0..79");
    return ids[class_id];
}

}  // namespace yoloc
