#include "eval/map.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"

namespace yoloc {

const std::array<float, kNumIouThresholds>& iou_thresholds() {
    static const std::array<float, kNumIouThresholds> t = [] {
        std::array<float, kNumIouThresholds> v{};
        for (int i = 0; i < kNumIouThresholds; ++i) v[size_t(i)] = float(0.5 + 0.05 * i);
        return v;
    }();
    return t;
}

float box_iou_eps(const Detection& a, const Detection& b) {
    const float iw = std::max(0.f, std::min(a.x2, b.x2) - std::max(a.x1, b.x1));
    const float ih = std::max(0.f, std::min(a.y2, b.y2) - std::max(a.y1, b.y1));
    const float inter = iw * ih;
    const float area_a = (a.x2 - a.x1) * (a.y2 - a.y1);
    const float area_b = (b.x2 - b.x1) * (b.y2 - b.y1);
    return inter / (area_a + area_b - inter + 1e-7f);
}

std::vector<CorrectRow> match_predictions(const std::vector<Detection>& preds, const std::vector<Detection>& labels) {
    const size_t P = preds.size(), L = labels.size();
    std::vector<CorrectRow> correct(P);
    for (auto& r : correct) r.fill(false);
    if (P == 0 || L == 0) return correct;
    // iou[l][p], zero across classes (Ultralytics multiplies by the class-match mask).
    std::vector<float> iou(L * P, 0.f);
    for (size_t l = 0; l < L; ++l)
        for (size_t p = 0; p < P; ++p)
            if (labels[l].class_id == preds[p].class_id) iou[l * P + p] = box_iou_eps(labels[l], preds[p]);

    struct Pair {
        int l, p;
        float iou;
    };
    std::vector<Pair> pairs, by_pred;
    std::vector<char> pred_taken(P), label_taken(L);
    for (int t = 0; t < kNumIouThresholds; ++t) {
        const float thr = iou_thresholds()[size_t(t)];
        pairs.clear();
        // np.nonzero order: label-major.
        for (size_t l = 0; l < L; ++l)
            for (size_t p = 0; p < P; ++p)
                if (iou[l * P + p] >= thr) pairs.push_back({int(l), int(p), iou[l * P + p]});
        if (pairs.empty()) continue;
        if (pairs.size() > 1) {
            // argsort()[::-1]: descending IoU; among equal IoUs the later pair first.
            std::stable_sort(pairs.begin(), pairs.end(), [](const Pair& a, const Pair& b) { return a.iou < b.iou; });
            std::reverse(pairs.begin(), pairs.end());
            // np.unique(pred, return_index): each prediction keeps its best pair; result ordered by prediction.
            std::fill(pred_taken.begin(), pred_taken.end(), 0);
            by_pred.assign(P, Pair{-1, -1, 0.f});
            for (const Pair& q : pairs)
                if (!pred_taken[size_t(q.p)]) {
                    pred_taken[size_t(q.p)] = 1;
                    by_pred[size_t(q.p)] = q;
                }
            pairs.clear();
            for (const Pair& q : by_pred)
                if (q.p >= 0) pairs.push_back(q);
            // np.unique(label, return_index): first occurrence in prediction order, i.e. the
            // lowest-index (highest-confidence) prediction per label, not the highest IoU.
            std::fill(label_taken.begin(), label_taken.end(), 0);
            std::vector<Pair> kept;
            for (const Pair& q : pairs)
                if (!label_taken[size_t(q.l)]) {
                    label_taken[size_t(q.l)] = 1;
                    kept.push_back(q);
                }
            pairs.swap(kept);
        }
        for (const Pair& q : pairs) correct[size_t(q.p)][size_t(t)] = true;
    }
    return correct;
}

double np_interp(double x, const std::vector<double>& xp, const std::vector<double>& fp, double left, double right) {
    const size_t n = xp.size();
    YOLOC_CHECK(n > 0 && fp.size() == n, "np_interp: xp and fp must be non-empty and of equal length");
    if (x > xp[n - 1]) return right;
    if (x < xp[0]) return left;
    // Last index with xp[j] <= x (numpy's binary_search_with_guess on sorted xp).
    const size_t j = size_t(std::upper_bound(xp.begin(), xp.end(), x) - xp.begin()) - 1;
    if (j == n - 1 || xp[j] == x) return fp[j];
    const double slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j]);
    double r = slope * (x - xp[j]) + fp[j];
    if (std::isnan(r)) {
        r = slope * (x - xp[j + 1]) + fp[j + 1];
        if (std::isnan(r) && fp[j] == fp[j + 1]) r = fp[j];
    }
    return r;
}

double compute_ap(const std::vector<double>& recall, const std::vector<double>& precision) {
    std::vector<double> mrec, mpre;
    mrec.reserve(recall.size() + 2);
    mpre.reserve(precision.size() + 2);
    mrec.push_back(0.0);
    mrec.insert(mrec.end(), recall.begin(), recall.end());
    mrec.push_back(1.0);
    mpre.push_back(1.0);
    mpre.insert(mpre.end(), precision.begin(), precision.end());
    mpre.push_back(0.0);
    // Precision envelope: running maximum from the right.
    for (size_t i = mpre.size() - 1; i-- > 0;) mpre[i] = std::max(mpre[i], mpre[i + 1]);
    // 101-point interpolation (COCO), integrated with the trapezoid rule like np.trapezoid.
    constexpr int kPoints = 101;
    double prev_x = 0, prev_y = 0, area = 0;
    for (int i = 0; i < kPoints; ++i) {
        const double x = i == kPoints - 1 ? 1.0 : double(i) * (1.0 / (kPoints - 1));
        const double y = np_interp(x, mrec, mpre, mpre.front(), mpre.back());
        if (i > 0) area += (x - prev_x) * (y + prev_y) / 2.0;
        prev_x = x;
        prev_y = y;
    }
    return area;
}

void MapAccumulator::add(const std::vector<float>& conf, const std::vector<int>& pred_cls,
                         const std::vector<CorrectRow>& tp, const std::vector<int>& target_cls) {
    YOLOC_CHECK(conf.size() == pred_cls.size() && conf.size() == tp.size(),
                "MapAccumulator::add: conf, classes and matches differ in length");
    conf_.insert(conf_.end(), conf.begin(), conf.end());
    pred_cls_.insert(pred_cls_.end(), pred_cls.begin(), pred_cls.end());
    tp_.insert(tp_.end(), tp.begin(), tp.end());
    target_cls_.insert(target_cls_.end(), target_cls.begin(), target_cls.end());
    std::vector<int> seen;
    for (int c : target_cls) {
        YOLOC_CHECK(c >= 0, "MapAccumulator: negative class id ", c);
        if (std::find(seen.begin(), seen.end(), c) != seen.end()) continue;
        seen.push_back(c);
        if (size_t(c) >= images_per_class_.size()) images_per_class_.resize(size_t(c) + 1, 0);
        ++images_per_class_[size_t(c)];
    }
    ++images_;
}

void MapAccumulator::add_image(const std::vector<Detection>& preds, const std::vector<Detection>& labels) {
    std::vector<float> conf;
    std::vector<int> cls, target;
    for (const Detection& d : preds) {
        conf.push_back(d.conf);
        cls.push_back(d.class_id);
    }
    for (const Detection& l : labels) target.push_back(l.class_id);
    add(conf, cls, match_predictions(preds, labels), target);
}

MapResult MapAccumulator::compute() const {
    MapResult res;
    res.images = images_;
    res.instances = int64_t(target_cls_.size());
    res.predictions = int64_t(conf_.size());

    // np.argsort(-conf); stable so ties keep insertion order.
    std::vector<size_t> order(conf_.size());
    std::iota(order.begin(), order.end(), size_t(0));
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return conf_[a] > conf_[b]; });

    std::vector<int> classes = target_cls_;
    std::sort(classes.begin(), classes.end());
    classes.erase(std::unique(classes.begin(), classes.end()), classes.end());
    if (classes.empty()) return res;  // nothing labelled: every metric is 0 (as Ultralytics)

    constexpr int kCurve = 1000;
    std::vector<double> xs(kCurve);
    for (int i = 0; i < kCurve; ++i) xs[size_t(i)] = i == kCurve - 1 ? 1.0 : double(i) * (1.0 / (kCurve - 1));

    const size_t nc = classes.size();
    std::vector<std::vector<double>> p_curve(nc, std::vector<double>(kCurve, 0.0)), r_curve = p_curve;
    std::vector<std::array<double, kNumIouThresholds>> ap(nc);
    const double eps = 1e-16;
    for (size_t ci = 0; ci < nc; ++ci) {
        const int c = classes[ci];
        ap[ci].fill(0.0);
        const int64_t n_l = std::count(target_cls_.begin(), target_cls_.end(), c);
        std::vector<size_t> mine;
        for (size_t k : order)
            if (pred_cls_[k] == c) mine.push_back(k);
        if (mine.empty() || n_l == 0) continue;
        const size_t n_p = mine.size();
        std::vector<double> neg_conf(n_p);
        for (size_t k = 0; k < n_p; ++k) neg_conf[k] = -double(conf_[mine[k]]);
        std::vector<std::vector<double>> recall(kNumIouThresholds, std::vector<double>(n_p)),
            precision = recall;
        for (int j = 0; j < kNumIouThresholds; ++j) {
            double tpc = 0, fpc = 0;
            for (size_t k = 0; k < n_p; ++k) {
                if (tp_[mine[k]][size_t(j)]) tpc += 1;
                else fpc += 1;
                recall[size_t(j)][k] = tpc / (double(n_l) + eps);
                precision[size_t(j)][k] = tpc / (tpc + fpc);
            }
        }
        // Curves over confidence at IoU 0.5, for the max-F1 operating point.
        for (int q = 0; q < kCurve; ++q) {
            r_curve[ci][size_t(q)] = np_interp(-xs[size_t(q)], neg_conf, recall[0], 0.0, recall[0].back());
            p_curve[ci][size_t(q)] = np_interp(-xs[size_t(q)], neg_conf, precision[0], 1.0, precision[0].back());
        }
        for (int j = 0; j < kNumIouThresholds; ++j) ap[ci][size_t(j)] = compute_ap(recall[size_t(j)], precision[size_t(j)]);
    }

    // Mean F1 over classes, box-filtered (Ultralytics' smooth(y, 0.1)), then its argmax.
    std::vector<double> f1_mean(kCurve, 0.0);
    for (size_t ci = 0; ci < nc; ++ci)
        for (int q = 0; q < kCurve; ++q) {
            const double p = p_curve[ci][size_t(q)], r = r_curve[ci][size_t(q)];
            f1_mean[size_t(q)] += 2 * p * r / (p + r + eps);
        }
    for (double& v : f1_mean) v /= double(nc);
    const int nf = int(std::lround(kCurve * 0.1 * 2)) / 2 + 1;  // odd filter length (101)
    std::vector<double> padded;
    padded.insert(padded.end(), size_t(nf / 2), f1_mean.front());
    padded.insert(padded.end(), f1_mean.begin(), f1_mean.end());
    padded.insert(padded.end(), size_t(nf / 2), f1_mean.back());
    int best = 0;
    double best_v = -1;
    for (int q = 0; q < kCurve; ++q) {
        double s = 0;
        for (int m = 0; m < nf; ++m) s += padded[size_t(q + m)] * (1.0 / nf);
        if (s > best_v) {
            best_v = s;
            best = q;
        }
    }

    for (size_t ci = 0; ci < nc; ++ci) {
        ClassMetrics m;
        m.class_id = classes[ci];
        m.instances = int(std::count(target_cls_.begin(), target_cls_.end(), m.class_id));
        m.images = size_t(m.class_id) < images_per_class_.size() ? images_per_class_[size_t(m.class_id)] : 0;
        m.precision = p_curve[ci][size_t(best)];
        m.recall = r_curve[ci][size_t(best)];
        m.ap50 = ap[ci][0];
        double s = 0;
        for (double v : ap[ci]) s += v;
        m.ap50_95 = s / kNumIouThresholds;
        res.precision += m.precision;
        res.recall += m.recall;
        res.map50 += m.ap50;
        res.map50_95 += m.ap50_95;
        res.per_class.push_back(m);
    }
    res.precision /= double(nc);
    res.recall /= double(nc);
    res.map50 /= double(nc);
    res.map50_95 /= double(nc);
    return res;
}

}  // namespace yoloc
