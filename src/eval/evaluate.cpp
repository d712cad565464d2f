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
        Item it = take_or_error(i);
        if (!it.error.empty()) throw Error(it.error);
        return it;
    }

    // The same, but a load error comes back in Item::error (input left empty).
    Item take_or_error(size_t i) {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return ready_[i] != 0; });
        Item it = std::move(items_[i]);
        items_[i] = Item();
        consumed_ = std::max(consumed_, i + 1);
        lk.unlock();
        cv_.notify_all();
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
    // End-to-end rows carry class ids: the recognised head says how many classes.
    const int64_t nc = det.end2end() ? det.num_classes() : y.dim(1) - 4;
    YOLOC_CHECK(nc <= 0 || size_t(nc) == dataset_classes, "the model predicts ", nc, " classes but the dataset has ",
                dataset_classes, " names; evaluate a model trained on this dataset's classes");
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
    return evaluate(std::vector<Detector*>{&det}, ds, opt, progress);
}

EvalResult evaluate(const std::vector<Detector*>& workers, const Dataset& ds, const EvalOptions& opt,
                    const EvalProgress& progress) {
    YOLOC_CHECK(!ds.images.empty(), "evaluate: the dataset has no images");
    YOLOC_CHECK(!workers.empty(), "evaluate: no detector");
    workers[0]->require_detection("eval");
    for (const Detector* w : workers)
        YOLOC_CHECK(w && w->imgsz() == workers[0]->imgsz() && w->batch() == workers[0]->batch(),
                    "evaluate: the workers' detectors must share input size and batch");
    const auto t0 = std::chrono::steady_clock::now();
    EvalResult res;
    res.names = ds.names;
    res.skipped_label_lines = ds.skipped_label_lines;
    res.warnings = ds.warnings;

    std::vector<std::string> paths;
    paths.reserve(ds.images.size());
    for (const auto& im : ds.images) paths.push_back(im.image_path);
    const size_t n = paths.size();
    const int B = std::max(1, workers[0]->batch());
    const int W = int(std::min(workers.size(), (n + size_t(B) - 1) / size_t(B)));
    const int s = workers[0]->imgsz();
    Prefetcher pf(paths, s, opt.loader_threads, std::max(2, 2 * W * std::max(B, opt.batch)));

    PostprocessOptions pp;
    pp.conf_threshold = opt.conf;
    pp.iou_threshold = opt.iou;
    pp.max_det = opt.max_det;
    pp.multi_label = true;  // Ultralytics val: every class above conf is a candidate

    // Per-image outcome, accumulated in dataset order afterwards so that the result
    // does not depend on which worker finished first.
    struct Scored {
        std::vector<Detection> dets;
        std::vector<CorrectRow> correct;
        int width = 0, height = 0;
        std::string error;  // the image could not be read: left out of the metrics
    };
    std::vector<Scored> scored(n);
    std::mutex mu;
    size_t next_chunk = 0, done = 0;
    std::string error;
    bool failed = false;

    auto work = [&](Detector& det) {
        while (true) {
            size_t i;
            {
                std::lock_guard<std::mutex> lk(mu);
                if (failed || next_chunk >= n) return;
                i = next_chunk;
                next_chunk += size_t(B);
            }
            try {
                const size_t m = std::min(size_t(B), n - i);
                std::vector<LetterboxInfo> infos;
                // An unreadable image (missing, not an image, corrupt) is recorded and
                // left out; the others of its batch still run (its slot stays zero).
                size_t readable = 0;
                Tensor x;
                if (B == 1) {
                    Prefetcher::Item it = pf.take_or_error(i);
                    if (it.error.empty()) {
                        x = it.input;
                        ++readable;
                    } else {
                        scored[i].error = it.error;
                    }
                    infos.push_back(it.info);
                } else {
                    x = Tensor(DType::Float32, {B, 3, s, s});
                    std::memset(x.raw(), 0, x.nbytes());
                    const size_t per = size_t(3) * size_t(s) * size_t(s);
                    for (size_t k = 0; k < m; ++k) {
                        Prefetcher::Item it = pf.take_or_error(i + k);
                        if (it.error.empty()) {
                            std::memcpy(x.data<float>() + k * per, it.input.data<float>(), per * sizeof(float));
                            ++readable;
                        } else {
                            scored[i + k].error = it.error;
                        }
                        infos.push_back(it.info);
                    }
                }
                if (readable == 0) {
                    std::lock_guard<std::mutex> lk(mu);
                    done += m;
                    if (progress) progress(int(done), int(n));
                    continue;
                }
                Tensor y = det.infer(x);
                check_classes(det, y, ds.names.size());
                for (size_t k = 0; k < m; ++k) {
                    Scored& sc = scored[i + k];
                    if (!sc.error.empty()) continue;
                    sc.dets = postprocess(y, int(k), infos[k], pp);
                    sc.width = infos[k].src_w;
                    sc.height = infos[k].src_h;
                    sc.correct = match_predictions(sc.dets, labels_to_pixels(ds.images[i + k].labels, sc.width, sc.height));
                }
                std::lock_guard<std::mutex> lk(mu);
                done += m;
                if (progress) progress(int(done), int(n));
            } catch (const std::exception& e) {
                std::lock_guard<std::mutex> lk(mu);
                if (!failed) error = e.what();
                failed = true;
                return;
            }
        }
    };
    // Workers run on their own threads, never the caller's: measured on the 2-core
    // machine, oneDNN (OpenMP) runs its convolutions ~10x slower on the process's
    // initial thread than on others while the cores are busy (its team spins).
    std::vector<std::thread> threads;
    for (int w = 0; w < W; ++w) threads.emplace_back(work, std::ref(*workers[size_t(w)]));
    for (auto& t : threads) t.join();
    if (failed) throw Error(error);

    MapAccumulator acc;
    for (size_t i = 0; i < n; ++i) {
        Scored& sc = scored[i];
        if (!sc.error.empty()) {
            res.image_errors.push_back(sc.error);
            continue;
        }
        std::vector<float> conf;
        std::vector<int> cls, target;
        for (const Detection& d : sc.dets) {
            conf.push_back(d.conf);
            cls.push_back(d.class_id);
        }
        for (const LabelBox& l : ds.images[i].labels) target.push_back(l.class_id);
        acc.add(conf, cls, sc.correct, target);
        if (opt.keep_predictions)
            res.predictions.push_back({ds.images[i].image_path, sc.width, sc.height, std::move(sc.dets)});
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
    j["failed_images"] = r.image_errors;
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
    return compare_models(std::vector<std::pair<Detector*, Detector*>>{{&candidate, &reference}}, images, opt,
                          progress);
}

CompareResult compare_models(const std::vector<std::pair<Detector*, Detector*>>& workers,
                             const std::vector<std::string>& images, const CompareOptions& opt,
                             const EvalProgress& progress) {
    YOLOC_CHECK(!images.empty(), "compare: no images");
    YOLOC_CHECK(!workers.empty(), "compare: no detectors");
    workers[0].first->require_detection("eval --compare");
    workers[0].second->require_detection("eval --compare");
    const int size = workers[0].first->imgsz();
    for (const auto& w : workers)
        YOLOC_CHECK(w.first->imgsz() == size && w.second->imgsz() == size, "compare: the candidate takes ",
                    w.first->imgsz(), " px input but the reference ", w.second->imgsz(),
                    " px; export them at the same size");
    const auto t0 = std::chrono::steady_clock::now();
    const size_t n = images.size();
    const int W = int(std::min(workers.size(), n));
    Prefetcher pf(images, size, opt.loader_threads, std::max(4, 2 * W));
    PostprocessOptions ref_pp, cand_pp;
    ref_pp.conf_threshold = opt.ref_conf;
    ref_pp.iou_threshold = opt.iou;
    ref_pp.max_det = opt.max_det;
    cand_pp = ref_pp;
    cand_pp.conf_threshold = opt.conf;

    struct PerImage {
        std::vector<Detection> truth, dets;
        double max_diff = 0, sum_diff = 0;
        int64_t values = 0;
        std::string error;  // unreadable image: left out, reported
    };
    std::vector<PerImage> per_image(n);
    std::mutex mu;
    size_t next = 0, done = 0;
    std::string error;
    bool failed = false;
    auto work = [&](Detector& cand, Detector& ref) {
        while (true) {
            size_t i;
            {
                std::lock_guard<std::mutex> lk(mu);
                if (failed || next >= n) return;
                i = next++;
            }
            try {
                Prefetcher::Item it = pf.take_or_error(i);
                if (!it.error.empty()) {
                    std::lock_guard<std::mutex> lk(mu);
                    per_image[i].error = it.error;
                    ++done;
                    if (progress) progress(int(done), int(n));
                    continue;
                }
                Tensor yr = infer_single(ref, it.input);
                Tensor yc = infer_single(cand, it.input);
                YOLOC_CHECK(yr.shape() == yc.shape(), "compare: output0 shapes differ: candidate ",
                            shape_str(yc.shape()), ", reference ", shape_str(yr.shape()));
                PerImage& r = per_image[i];
                // Batch item 0 only: other slots of a fixed-batch model hold padding.
                const int64_t per = yr.numel() / yr.dim(0);
                const float* a = yr.data<float>();
                const float* b = yc.data<float>();
                for (int64_t k = 0; k < per; ++k) {
                    const double d = std::fabs(double(a[k]) - double(b[k]));
                    if (!(d <= r.max_diff)) r.max_diff = d;  // also catches NaN
                    r.sum_diff += d;
                }
                r.values = per;
                r.truth = postprocess(yr, 0, it.info, ref_pp);
                r.dets = postprocess(yc, 0, it.info, cand_pp);
                std::lock_guard<std::mutex> lk(mu);
                ++done;
                if (progress) progress(int(done), int(n));
            } catch (const std::exception& e) {
                std::lock_guard<std::mutex> lk(mu);
                if (!failed) error = e.what();
                failed = true;
                return;
            }
        }
    };
    std::vector<std::thread> threads;  // never the caller's thread: see evaluate()
    for (int w = 0; w < W; ++w)
        threads.emplace_back(work, std::ref(*workers[size_t(w)].first), std::ref(*workers[size_t(w)].second));
    for (auto& t : threads) t.join();
    if (failed) throw Error(error);

    CompareResult res;
    MapAccumulator acc;
    double sum = 0;
    for (const PerImage& r : per_image) {
        if (!r.error.empty()) {
            res.image_errors.push_back(r.error);
            continue;
        }
        if (!(r.max_diff <= res.max_abs_diff)) res.max_abs_diff = r.max_diff;
        sum += r.sum_diff;
        res.compared_values += r.values;
        res.ref_detections += int64_t(r.truth.size());
        acc.add_image(r.dets, r.truth);
    }
    res.mean_abs_diff = res.compared_values > 0 ? sum / double(res.compared_values) : 0.0;
    res.metrics = acc.compute();
    res.seconds = seconds_since(t0);
    return res;
}

}  // namespace yoloc
