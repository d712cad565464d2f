#include "eval/evaluate.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "core/file.h"

namespace yoloc {

namespace {

// Decodes and letterboxes images on worker threads, at most `depth` ahead of the
// consumer so memory stays bounded (one 640x640 input is 4.9 MB).
class Prefetcher {
public:
    struct Item {
        Tensor input;  // [1,3,S,S]
        LetterboxInfo info;
        std::string error;
    };

    Prefetcher(const std::vector<std::string>& paths, int size, int threads, int depth)
        : paths_(paths), size_(size), depth_(size_t(std::max(1, depth))), items_(paths.size()),
          ready_(paths.size(), 0) {
        threads = std::max(1, std::min(threads, int(paths.size())));
        for (int t = 0; t < threads; ++t) workers_.emplace_back([this] { work(); });
    }

    ~Prefetcher() {
        {
            std::lock_guard<std::mutex> lk(mu_);
            stop_ = true;
        }
        cv_.notify_all();
        for (auto& w : workers_) w.join();
    }

    // Blocks until image i (taken in order) is ready; throws its load error.
    Item take(size_t i) {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return ready_[i] != 0; });
        Item it = std::move(items_[i]);
        items_[i] = Item();
        consumed_ = std::max(consumed_, i + 1);
        lk.unlock();
        cv_.notify_all();
        if (!it.error.empty()) throw Error(it.error);
        return it;
    }

private:
    void work() {
        while (true) {
            size_t i;
            {
                std::unique_lock<std::mutex> lk(mu_);
                cv_.wait(lk, [&] { return stop_ || next_ >= paths_.size() || next_ < consumed_ + depth_; });
                if (stop_ || next_ >= paths_.size()) return;
                i = next_++;
            }
            Item it;
            try {
                Image img = load_image(paths_[i]);
                it.input = preprocess(img, size_, &it.info);
            } catch (const std::exception& e) {
                it.error = e.what();
            }
            {
                std::lock_guard<std::mutex> lk(mu_);
                items_[i] = std::move(it);
                ready_[i] = 1;
            }
            cv_.notify_all();
        }
    }

    const std::vector<std::string>& paths_;
    int size_;
    size_t depth_;
    std::vector<Item> items_;
    std::vector<char> ready_;
    size_t next_ = 0, consumed_ = 0;
    bool stop_ = false;
    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<std::thread> workers_;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Output0 for a single image on a model of any fixed batch (other slots left zero).
Tensor infer_single(Detector& det, const Tensor& input) {
    if (det.batch() == 1) return det.infer(input);
    const int s = det.imgsz();
    Tensor x(DType::Float32, {det.batch(), 3, s, s});
    std::memcpy(x.raw(), input.raw(), input.nbytes());
    return det.infer(x);
}

void check_classes(const Detector& det, const Tensor& y, size_t dataset_classes) {
    const int64_t nc = y.dim(1) - 4;
    YOLOC_CHECK(size_t(nc) == dataset_classes, "the model predicts ", nc, " classes but the dataset has ",
                dataset_classes, " names; evaluate a model trained on this dataset's classes");
    (void)det;
}

}  // namespace

std::vector<Detection> labels_to_pixels(const std::vector<LabelBox>& labels, int width, int height) {
    std::vector<Detection> out;
    out.reserve(labels.size());
    const float W = float(width), H = float(height);
    auto clip = [](float v, float hi) { return std::min(std::max(v, 0.f), hi); };
    for (const LabelBox& b : labels) {
        Detection d;
        d.class_id = b.class_id;
        d.conf = 1.f;
        d.x1 = clip((b.cx - b.w / 2) * W, W);
        d.y1 = clip((b.cy - b.h / 2) * H, H);
        d.x2 = clip((b.cx + b.w / 2) * W, W);
        d.y2 = clip((b.cy + b.h / 2) * H, H);
        out.push_back(d);
    }
    return out;
}

EvalResult evaluate(Detector& det, const Dataset& ds, const EvalOptions& opt, const EvalProgress& progress) {
    YOLOC_CHECK(!ds.images.empty(), "evaluate: the dataset has no images");
    const auto t0 = std::chrono::steady_clock::now();
    EvalResult res;
    res.names = ds.names;
    res.skipped_label_lines = ds.skipped_label_lines;
    res.warnings = ds.warnings;

    std::vector<std::string> paths;
    paths.reserve(ds.images.size());
    for (const auto& im : ds.images) paths.push_back(im.image_path);
    const int B = std::max(1, det.batch());
    Prefetcher pf(paths, det.imgsz(), opt.loader_threads, std::max(2, 2 * std::max(B, opt.batch)));

    PostprocessOptions pp;
    pp.conf_threshold = opt.conf;
    pp.iou_threshold = opt.iou;
    pp.max_det = opt.max_det;
    pp.multi_label = true;  // Ultralytics val: every class above conf is a candidate

    MapAccumulator acc;
    const size_t n = paths.size();
    const int s = det.imgsz();
    bool checked = false;
    for (size_t i = 0; i < n; i += size_t(B)) {
        const size_t m = std::min(size_t(B), n - i);
        std::vector<LetterboxInfo> infos;
        Tensor x;
        if (B == 1) {
            Prefetcher::Item it = pf.take(i);
            x = it.input;
            infos.push_back(it.info);
        } else {
            x = Tensor(DType::Float32, {B, 3, s, s});
            const size_t per = size_t(3) * size_t(s) * size_t(s);
            for (size_t k = 0; k < m; ++k) {
                Prefetcher::Item it = pf.take(i + k);
                std::memcpy(x.data<float>() + k * per, it.input.data<float>(), per * sizeof(float));
                infos.push_back(it.info);
            }
        }
        Tensor y = det.infer(x);
        if (!checked) {
            check_classes(det, y, ds.names.size());
            checked = true;
        }
        for (size_t k = 0; k < m; ++k) {
            const DatasetImage& im = ds.images[i + k];
            std::vector<Detection> dets = postprocess(y, int(k), infos[k], pp);
            acc.add_image(dets, labels_to_pixels(im.labels, infos[k].src_w, infos[k].src_h));
            if (opt.keep_predictions)
                res.predictions.push_back({im.image_path, infos[k].src_w, infos[k].src_h, std::move(dets)});
            if (progress) progress(int(i + k + 1), int(n));
        }
    }
    res.metrics = acc.compute();
    res.seconds = seconds_since(t0);
    return res;
}

int64_t coco_image_id(const std::string& path, int64_t fallback) {
    std::string digits;
    for (char c : path_stem(path))
        if (c >= '0' && c <= '9') digits += c;
    while (digits.size() > 1 && digits[0] == '0') digits.erase(0, 1);
    if (digits.empty() || digits.size() > 18) return fallback;
    return std::stoll(digits);
}

nlohmann::json coco_results_json(const std::vector<ImagePredictions>& preds, const std::vector<std::string>& names) {
    const bool coco = names == coco80_names();
    auto round_to = [](double v, double scale) { return std::round(v * scale) / scale; };
    nlohmann::json out = nlohmann::json::array();
    for (size_t i = 0; i < preds.size(); ++i) {
        const int64_t id = coco_image_id(preds[i].image_path, int64_t(i));
        for (const Detection& d : preds[i].dets) {
            nlohmann::json j;
            j["image_id"] = id;
            j["category_id"] = coco ? coco80_to_coco91(d.class_id) : d.class_id;
            // Like Ultralytics' pred_to_json: top-left x, y, width, height; 3 decimals; score 5.
            j["bbox"] = {round_to(d.x1, 1e3), round_to(d.y1, 1e3), round_to(double(d.x2) - d.x1, 1e3),
                         round_to(double(d.y2) - d.y1, 1e3)};
            j["score"] = round_to(d.conf, 1e5);
            out.push_back(std::move(j));
        }
    }
    return out;
}

nlohmann::json eval_result_json(const EvalResult& r) {
    const MapResult& m = r.metrics;
    nlohmann::json j;
    j["mAP50"] = m.map50;
    j["mAP50_95"] = m.map50_95;
    j["precision"] = m.precision;
    j["recall"] = m.recall;
    j["images"] = m.images;
    j["instances"] = m.instances;
    j["predictions"] = m.predictions;
    j["skipped_label_lines"] = r.skipped_label_lines;
    j["seconds"] = r.seconds;
    j["ms_per_image"] = m.images > 0 ? 1000.0 * r.seconds / m.images : 0.0;
    nlohmann::json pc = nlohmann::json::array();
    for (const ClassMetrics& c : m.per_class) {
        nlohmann::json e;
        e["class_id"] = c.class_id;
        e["name"] = size_t(c.class_id) < r.names.size() ? r.names[size_t(c.class_id)] : std::to_string(c.class_id);
        e["images"] = c.images;
        e["instances"] = c.instances;
        e["precision"] = c.precision;
        e["recall"] = c.recall;
        e["mAP50"] = c.ap50;
        e["mAP50_95"] = c.ap50_95;
        pc.push_back(std::move(e));
    }
    j["per_class"] = std::move(pc);
    return j;
}

CompareResult compare_models(Detector& candidate, Detector& reference, const std::vector<std::string>& images,
                             const CompareOptions& opt, const EvalProgress& progress) {
    YOLOC_CHECK(!images.empty(), "compare: no images");
    YOLOC_CHECK(candidate.imgsz() == reference.imgsz(), "compare: the candidate takes ", candidate.imgsz(),
                " px input but the reference ", reference.imgsz(), " px; export them at the same size");
    const auto t0 = std::chrono::steady_clock::now();
    Prefetcher pf(images, candidate.imgsz(), opt.loader_threads, 4);
    PostprocessOptions ref_pp, cand_pp;
    ref_pp.conf_threshold = opt.ref_conf;
    ref_pp.iou_threshold = opt.iou;
    ref_pp.max_det = opt.max_det;
    cand_pp = ref_pp;
    cand_pp.conf_threshold = opt.conf;

    CompareResult res;
    MapAccumulator acc;
    double sum = 0;
    for (size_t i = 0; i < images.size(); ++i) {
        Prefetcher::Item it = pf.take(i);
        Tensor yr = infer_single(reference, it.input);
        Tensor yc = infer_single(candidate, it.input);
        YOLOC_CHECK(yr.shape() == yc.shape(), "compare: output0 shapes differ: candidate ", shape_str(yc.shape()),
                    ", reference ", shape_str(yr.shape()));
        // Batch item 0 only: other slots of a fixed-batch model hold padding.
        const int64_t per = yr.numel() / yr.dim(0);
        const float* a = yr.data<float>();
        const float* b = yc.data<float>();
        for (int64_t k = 0; k < per; ++k) {
            const double d = std::fabs(double(a[k]) - double(b[k]));
            if (!(d <= res.max_abs_diff)) res.max_abs_diff = d;  // also catches NaN
            sum += d;
        }
        res.compared_values += per;
        std::vector<Detection> truth = postprocess(yr, 0, it.info, ref_pp);
        std::vector<Detection> dets = postprocess(yc, 0, it.info, cand_pp);
        res.ref_detections += int64_t(truth.size());
        acc.add_image(dets, truth);
        if (progress) progress(int(i + 1), int(images.size()));
    }
    res.mean_abs_diff = res.compared_values > 0 ? sum / double(res.compared_values) : 0.0;
    res.metrics = acc.compute();
    res.seconds = seconds_since(t0);
    return res;
}

}  // namespace yoloc
