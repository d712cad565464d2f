#include "prune/sweep.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/limits.h"
#include "core/stats.h"
#include "core/xml.h"
#include "eval/evaluate.h"
#include "ir/cost.h"
#include "ir/shape_inference.h"
#include "prune/prune_internal.h"
#include "yolo/detector.h"

namespace yoloc {

std::vector<double> parse_ratio_list(const std::string& s) {
    std::vector<double> out;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ',')) {
        if (item.empty()) continue;
        char* end = nullptr;
        double v = std::strtod(item.c_str(), &end);
        YOLOC_CHECK(end && *end == 0, "--sweep: '", item, "' is not a number");
        YOLOC_CHECK(v > 0 && v < 1, "--sweep: ratio ", v, " is outside (0, 1)");
        out.push_back(v);
    }
    YOLOC_CHECK(!out.empty(), "--sweep needs at least one ratio (e.g. 0.1,0.2,0.3)");
    return out;
}

namespace {

void measure(const Model& m, const SweepOptions& opt, const Dataset& ds, SweepRow& row) {
    ModelCost c = count_cost(m, infer_shapes(m, prune_detail::concrete_input_shapes(m)));
    row.params = c.params;
    row.flops = c.flops;
    // Latency exactly as `yoloc bench --backend cpu` takes it: fixed input, warm-up, median.
    DetectorOptions bo;
    bo.threads = opt.bench_threads;
    Detector det(m, bo);
    Tensor x(DType::Float32, {det.batch(), 3, det.imgsz(), det.imgsz()});
    for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = 0.5f;
    for (int i = 0; i < opt.bench_warmup; ++i) det.infer(x);
    std::vector<double> ms;
    for (int i = 0; i < std::max(1, opt.bench_iters); ++i) {
        auto t0 = std::chrono::steady_clock::now();
        det.infer(x);
        ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    LatencyStats s = latency_stats(ms);
    row.latency_ms = s.median;
    row.latency_min_ms = s.min;
    // mAP as `yoloc eval` takes it: one single-threaded detector per worker.
    int cores = opt.eval_workers > 0 ? opt.eval_workers : int(std::max(1u, std::thread::hardware_concurrency()));
    int workers = std::max(1, std::min({cores, 8, int(ds.images.size())}));
    DetectorOptions eo;
    eo.threads = 1;
    std::vector<std::unique_ptr<Detector>> dets;
    dets.emplace_back(new Detector(m, eo));
    for (int w = 1; w < workers; ++w) dets.push_back(dets[0]->clone());
    std::vector<Detector*> pool;
    for (auto& d : dets) pool.push_back(d.get());
    EvalResult r = evaluate(pool, ds, EvalOptions{});
    row.map50 = r.metrics.map50;
    row.map50_95 = r.metrics.map50_95;
}

std::string fmt(const char* f, double v) {
    char b[64];
    std::snprintf(b, sizeof b, f, v);
    return b;
}


// Round tick step (1, 2 or 5 times a power of ten) giving about n ticks over span.
double nice_step(double span, int n) {
    double raw = span / std::max(1, n);
    double p = std::pow(10.0, std::floor(std::log10(raw)));
    for (double m : {1.0, 2.0, 5.0, 10.0})
        if (m * p >= raw) return m * p;
    return 10 * p;
}

}  // namespace

SweepResult prune_sweep(const Model& model, const SweepOptions& opt) {
    YOLOC_CHECK(!opt.ratios.empty(), "--sweep needs at least one ratio");
    for (double r : opt.ratios) YOLOC_CHECK(r > 0 && r < 1, "--sweep: ratio ", r, " is outside (0, 1)");
    YOLOC_CHECK(!opt.prune.calib_dir.empty(), "--sweep needs calibration images (--calib DIR) for the reconstruction");
    YOLOC_CHECK(!opt.data.empty(), "--sweep needs a dataset (--data DATA.yaml) for mAP");
    const PruneOptions& po = opt.prune;
    YOLOC_CHECK(po.round_to >= 1, "--round-to must be at least 1");
    limits::check("--bench-threads", limits::threads_problem(opt.bench_threads));
    limits::check("--threads", limits::threads_problem(opt.eval_workers));
    limits::check("--threads", limits::threads_problem(po.threads));
    limits::check("--bench-iters", limits::at_least_problem(opt.bench_iters, 1));
    limits::check("--bench-warmup", limits::at_least_problem(opt.bench_warmup, 0));
    Dataset ds = load_dataset(opt.data, opt.split);
    YOLOC_CHECK(!ds.images.empty(), "--sweep: split '", opt.split, "' of ", opt.data, " has no images");

    ChannelAnalysis an = analyze_channels(model);
    if (po.scope != PruneScope::All)
        YOLOC_CHECK(an.recognised, "--scope ", scope_name(po.scope),
                    " needs a graph recognised as YOLOv8 (use --scope all for other graphs)");
    if (po.scope == PruneScope::C2f) YOLOC_CHECK(an.num_c2f > 0, "--scope c2f: the graph has no C2f block");
    int imgsz = 640;
    for (const auto& in : model.graph.inputs)
        if (!model.graph.is_initializer(in.name) && in.shape.size() == 4 && in.shape[2].known())
            imgsz = int(in.shape[2].value);
    CalibSource calib = calib_from_dir(po.calib_dir, po.calib_count, imgsz);

    SweepResult res;
    res.data = opt.data;
    res.scope = scope_name(po.scope);
    res.criterion = criterion_name(po.criterion);
    res.round_to = po.round_to;
    res.bench_threads = opt.bench_threads > 0 ? opt.bench_threads : int(std::max(1u, std::thread::hardware_concurrency()));
    res.bench_iters = opt.bench_iters;
    res.eval_images = int(ds.images.size());

    if (opt.stage) opt.stage("baseline");
    SweepRow base;
    measure(model, opt, ds, base);
    res.rows.push_back(base);

    if (opt.stage) opt.stage("importance");
    Importance imp = channel_importance(model, an, po.criterion, &calib, po.threads, po.scope);
    for (double ratio : opt.ratios) {
        KeepPlan plan = plan_ratio(an, imp, po.scope, ratio, po.round_to);
        auto t0 = std::chrono::steady_clock::now();
        Model plain = plan.empty() ? model : apply_pruning(model, an, plan);
        double t_plain = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (opt.stage) opt.stage(cat("ratio ", ratio, ": measuring the pruned model"));
        SweepRow a;
        a.ratio = ratio;
        a.seconds = t_plain;
        measure(plain, opt, ds, a);
        res.rows.push_back(a);

        if (opt.stage) opt.stage(cat("ratio ", ratio, ": reconstruction"));
        Model rec = plain;
        if (!plan.empty()) {
            ReconstructOptions ro = po.recon;
            if (ro.threads == 0) ro.threads = po.threads;
            reconstruct(model, rec, an, plan, calib, ro);
            if (ro.correct) correct_downstream(model, rec, an, plan, calib, ro);
        }
        SweepRow b;
        b.ratio = ratio;
        b.reconstructed = true;
        b.seconds = t_plain + std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (opt.stage) opt.stage(cat("ratio ", ratio, ": measuring the reconstructed model"));
        measure(rec, opt, ds, b);
        res.rows.push_back(b);
    }
    return res;
}

std::string sweep_markdown(const SweepResult& r) {
    std::string s = cat("Scope `", r.scope, "`, criterion `", r.criterion, "`, round-to ", r.round_to, "; mAP on ",
                        r.eval_images, " images of ", r.data, "; CPU latency: median of ", r.bench_iters,
                        " runs (and the fastest), fast executor, ", r.bench_threads, " thread(s), as `yoloc bench` takes it.\n\n");
    s += "| ratio | reconstruction | parameters | GFLOPs | CPU latency median (ms) | min (ms) | mAP50 | mAP50-95 |\n";
    s += "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n";
    for (const auto& w : r.rows) {
        s += cat("| ", w.ratio == 0 ? std::string("0 (unpruned)") : fmt("%.3g", w.ratio), " | ",
                 w.ratio == 0 ? "-" : w.reconstructed ? "yes" : "no", " | ", w.params, " | ", fmt("%.3f", w.flops / 1e9),
                 " | ", fmt("%.1f", w.latency_ms), " | ", fmt("%.1f", w.latency_min_ms), " | ", fmt("%.3f", w.map50), " | ", fmt("%.3f", w.map50_95), " |\n");
    }
    return s;
}

std::string sweep_csv(const SweepResult& r) {
    std::string s = "ratio,reconstructed,params,flops,latency_median_ms,latency_min_ms,map50,map50_95\n";
    for (const auto& w : r.rows)
        s += cat(fmt("%.6g", w.ratio), ",", w.reconstructed ? 1 : 0, ",", w.params, ",", fmt("%.6g", w.flops), ",",
                 fmt("%.4f", w.latency_ms), ",", fmt("%.4f", w.latency_min_ms), ",", fmt("%.6f", w.map50), ",",
                 fmt("%.6f", w.map50_95), "\n");
    return s;
}

std::string sweep_json(const SweepResult& r) {
    nlohmann::json j;
    j["model"] = r.model;
    j["data"] = r.data;
    j["scope"] = r.scope;
    j["criterion"] = r.criterion;
    j["round_to"] = r.round_to;
    j["bench_threads"] = r.bench_threads;
    j["bench_iters"] = r.bench_iters;
    j["eval_images"] = r.eval_images;
    j["rows"] = nlohmann::json::array();
    for (const auto& w : r.rows)
        j["rows"].push_back({{"ratio", w.ratio},
                             {"reconstructed", w.reconstructed},
                             {"params", w.params},
                             {"flops", w.flops},
                             {"latency_median_ms", w.latency_ms},
                             {"latency_min_ms", w.latency_min_ms},
                             {"map50", w.map50},
                             {"map50_95", w.map50_95},
                             {"seconds", w.seconds}});
    return j.dump(2) + "\n";
}

std::string sweep_svg(const SweepResult& r) {
    const double W = 720, H = 460, L = 70, R = 190, T = 40, B = 60;  // plot area margins
    double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
    for (const auto& w : r.rows) {
        x0 = std::min(x0, w.latency_ms);
        x1 = std::max(x1, w.latency_ms);
        y0 = std::min(y0, w.map50_95);
        y1 = std::max(y1, w.map50_95);
    }
    if (r.rows.empty()) x0 = y0 = 0, x1 = y1 = 1;
    double xs = std::max(x1 - x0, 1e-3 * std::max(1.0, std::fabs(x1))), ys = std::max(y1 - y0, 1e-3);
    x0 -= 0.08 * xs, x1 += 0.08 * xs, y0 -= 0.08 * ys, y1 += 0.08 * ys;
    double dx = nice_step(x1 - x0, 6), dy = nice_step(y1 - y0, 6);
    x0 = std::floor(x0 / dx) * dx, x1 = std::ceil(x1 / dx) * dx;
    y0 = std::floor(y0 / dy) * dy, y1 = std::ceil(y1 / dy) * dy;
    auto px = [&](double v) { return L + (v - x0) / (x1 - x0) * (W - L - R); };
    auto py = [&](double v) { return H - B - (v - y0) / (y1 - y0) * (H - T - B); };
    std::string s = cat("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"", W, "\" height=\"", H,
                        "\" viewBox=\"0 0 ", W, " ", H, "\" font-family=\"sans-serif\" font-size=\"12\">\n");
    s += cat("<rect width=\"", W, "\" height=\"", H, "\" fill=\"white\"/>\n");
    s += cat("<text x=\"", L, "\" y=\"22\" font-size=\"14\">", xml_escape(cat("yoloc prune --sweep: scope ", r.scope,
                                                                              ", criterion ", r.criterion)),
             "</text>\n");
    // Grid, ticks, axes.
    for (double v = x0; v <= x1 + 1e-9 * dx; v += dx)
        s += cat("<line x1=\"", fmt("%.1f", px(v)), "\" y1=\"", T, "\" x2=\"", fmt("%.1f", px(v)), "\" y2=\"", H - B,
                 "\" stroke=\"#e5e5e5\"/><text x=\"", fmt("%.1f", px(v)), "\" y=\"", H - B + 16,
                 "\" text-anchor=\"middle\">", fmt("%g", std::round(v / dx) * dx), "</text>\n");
    for (double v = y0; v <= y1 + 1e-9 * dy; v += dy)
        s += cat("<line x1=\"", L, "\" y1=\"", fmt("%.1f", py(v)), "\" x2=\"", W - R, "\" y2=\"", fmt("%.1f", py(v)),
                 "\" stroke=\"#e5e5e5\"/><text x=\"", L - 6, "\" y=\"", fmt("%.1f", py(v) + 4),
                 "\" text-anchor=\"end\">", fmt("%g", std::round(v / dy) * dy), "</text>\n");
    s += cat("<rect x=\"", L, "\" y=\"", T, "\" width=\"", W - L - R, "\" height=\"", H - T - B,
             "\" fill=\"none\" stroke=\"#333\"/>\n");
    s += cat("<text x=\"", (L + W - R) / 2, "\" y=\"", H - 18, "\" text-anchor=\"middle\">CPU latency, median (ms, ",
             r.bench_threads, " thread", r.bench_threads == 1 ? "" : "s", ")</text>\n");
    s += cat("<text transform=\"translate(18,", (T + H - B) / 2, ") rotate(-90)\" text-anchor=\"middle\">mAP50-95</text>\n");
    struct Series {
        bool rec;
        const char* color;
        const char* name;
    };
    int legend = 0;
    for (const Series& se : {Series{false, "#d62728", "pruned"}, Series{true, "#1f77b4", "pruned + reconstruction"}}) {
        std::vector<const SweepRow*> pts;
        for (const auto& w : r.rows)
            if (w.ratio > 0 && w.reconstructed == se.rec) pts.push_back(&w);
        std::sort(pts.begin(), pts.end(), [](const SweepRow* a, const SweepRow* b) { return a->ratio < b->ratio; });
        if (pts.size() > 1) {
            s += "<polyline fill=\"none\" stroke=\"" + std::string(se.color) + "\" stroke-width=\"1.5\" points=\"";
            for (const auto* p : pts) s += cat(fmt("%.1f", px(p->latency_ms)), ",", fmt("%.1f", py(p->map50_95)), " ");
            s += "\"/>\n";
        }
        for (const auto* p : pts)
            s += cat("<circle cx=\"", fmt("%.1f", px(p->latency_ms)), "\" cy=\"", fmt("%.1f", py(p->map50_95)),
                     "\" r=\"4\" fill=\"", se.color, "\"><title>ratio ", fmt("%g", p->ratio), ": ",
                     fmt("%.1f", p->latency_ms), " ms, mAP50-95 ", fmt("%.3f", p->map50_95),
                     "</title></circle><text x=\"", fmt("%.1f", px(p->latency_ms) + 6), "\" y=\"",
                     fmt("%.1f", py(p->map50_95) - 6), "\" font-size=\"10\" fill=\"", se.color, "\">",
                     fmt("%g", p->ratio), "</text>\n");
        double ly = T + 10 + 20 * legend++;
        s += cat("<circle cx=\"", W - R + 16, "\" cy=\"", ly, "\" r=\"4\" fill=\"", se.color, "\"/><text x=\"",
                 W - R + 26, "\" y=\"", ly + 4, "\">", se.name, "</text>\n");
    }
    for (const auto& w : r.rows)
        if (w.ratio == 0) {
            s += cat("<rect x=\"", fmt("%.1f", px(w.latency_ms) - 5), "\" y=\"", fmt("%.1f", py(w.map50_95) - 5),
                     "\" width=\"10\" height=\"10\" fill=\"#222\"><title>unpruned: ", fmt("%.1f", w.latency_ms),
                     " ms, mAP50-95 ", fmt("%.3f", w.map50_95), "</title></rect>\n");
            double ly = T + 10 + 20 * legend++;
            s += cat("<rect x=\"", W - R + 11, "\" y=\"", ly - 5, "\" width=\"10\" height=\"10\" fill=\"#222\"/><text x=\"",
                     W - R + 26, "\" y=\"", ly + 4, "\">unpruned</text>\n");
        }
    s += cat("<text x=\"", W - R + 11, "\" y=\"", T + 80, "\" font-size=\"10\" fill=\"#555\">labels: pruning ratio</text>\n");
    s += "</svg>\n";
    return s;
}

}  // namespace yoloc
