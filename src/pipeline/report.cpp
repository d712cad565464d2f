// The pipeline's report: Markdown, JSON and HTML (with inline SVG charts) from the same
// Report, so the three never disagree.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "core/error.h"
#include "core/xml.h"
#include "engine/memory_plan.h"
#include "pipeline/pipeline.h"

namespace yoloc::pipeline {
namespace {

std::string fmt(double v, int digits) {
    if (v < 0) return "-";
    char b[64];
    std::snprintf(b, sizeof b, "%.*f", digits, v);
    return b;
}

std::string bytes(int64_t b) { return b < 0 ? "-" : engine::format_bytes(b); }

std::string params(int64_t p) {
    if (p < 0) return "-";
    std::string s = std::to_string(p), o;
    for (size_t i = 0; i < s.size(); ++i) {
        if (i && (s.size() - i) % 3 == 0) o += ',';
        o += s[i];
    }
    return o;
}

std::string esc(const std::string& s) { return xml_escape(s); }

// Methods are long: the table cites them by number, listed under it.
struct Methods {
    std::vector<std::string> list;
    int id(const std::string& m) {
        if (m.empty()) return 0;
        auto it = std::find(list.begin(), list.end(), m);
        if (it != list.end()) return int(it - list.begin()) + 1;
        list.push_back(m);
        return int(list.size());
    }
    std::string ref(const std::string& m) {
        int i = id(m);
        return i ? cat(" [", i, "]") : "";
    }
};

struct Table {
    std::vector<std::string> head;
    std::vector<std::vector<std::string>> rows;
    std::vector<std::string> notes;
    Methods methods;
};

Table make_table(const Report& r) {
    Table t;
    t.head = {"variant", "backend", "parameters", "model file", "engine file", "latency median (ms)", "latency p99 (ms)",
              "FPS", "peak device memory", "mAP50", "mAP50-95"};
    for (const auto& v : r.variants) {
        std::string lat = fmt(v.latency_median_ms, v.backend == "gpu" ? 3 : 1);
        std::string mem = v.peak_device_bytes >= 0
                              ? cat(bytes(v.peak_device_bytes), " (planned ", bytes(v.planned_device_bytes), ")")
                              : "-";
        t.rows.push_back({v.name, v.backend == "gpu" ? "GPU" : "CPU", params(v.params), bytes(v.model_bytes),
                          bytes(v.engine_bytes), lat + t.methods.ref(v.latency_how),
                          fmt(v.latency_p99_ms, v.backend == "gpu" ? 3 : 1), fmt(v.fps, 1),
                          mem + (v.peak_device_bytes >= 0 ? t.methods.ref(v.memory_how) : ""),
                          fmt(v.map50, 3), fmt(v.map50_95, 3) + t.methods.ref(v.map_how)});
        for (const auto& n : v.notes) t.notes.push_back(v.name + ": " + n);
    }
    return t;
}

// ---- SVG ----------------------------------------------------------------------------

const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"};

std::string svg_open(int w, int h, const std::string& title) {
    return cat("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"", w, "\" height=\"", h, "\" viewBox=\"0 0 ", w, " ",
               h, "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
               "<text x=\"", w / 2, "\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">", esc(title), "</text>\n");
}

std::string svg_empty(const std::string& title, const std::string& why) {
    return svg_open(640, 120, title) + cat("<text x=\"320\" y=\"70\" text-anchor=\"middle\" fill=\"#555\">", esc(why),
                                           "</text>\n</svg>\n");
}

}  // namespace

std::string chart_map_vs_latency(const Report& r) {
    const std::string title = "mAP50-95 against median latency (log scale), per variant";
    std::vector<const Variant*> pts;
    for (const auto& v : r.variants)
        if (v.latency_median_ms > 0 && v.map50_95 >= 0) pts.push_back(&v);
    if (pts.empty()) return svg_empty(title, "no variant measured yet");
    const int W = 820, H = 420, L = 70, R = 300, T = 40, B = 50;
    double lo = 1e300, hi = 0, mlo = 1, mhi = 0;
    for (auto* v : pts) {
        lo = std::min(lo, v->latency_median_ms), hi = std::max(hi, v->latency_median_ms);
        mlo = std::min(mlo, v->map50_95), mhi = std::max(mhi, v->map50_95);
    }
    double llo = std::floor(std::log10(lo)), lhi = std::ceil(std::log10(hi));
    if (lhi <= llo) lhi = llo + 1;
    mlo = std::max(0.0, std::floor(mlo * 20 - 1) / 20), mhi = std::min(1.0, std::ceil(mhi * 20 + 1) / 20);
    auto X = [&](double ms) { return L + (std::log10(ms) - llo) / (lhi - llo) * (W - L - R); };
    auto Y = [&](double m) { return H - B - (m - mlo) / (mhi - mlo) * (H - T - B); };
    std::string s = svg_open(W, H, title);
    s += cat("<line x1=\"", L, "\" y1=\"", H - B, "\" x2=\"", W - R, "\" y2=\"", H - B, "\" stroke=\"black\"/>\n");
    s += cat("<line x1=\"", L, "\" y1=\"", T, "\" x2=\"", L, "\" y2=\"", H - B, "\" stroke=\"black\"/>\n");
    for (double e = llo; e <= lhi; e += 1) {
        double x = X(std::pow(10.0, e));
        s += cat("<line x1=\"", x, "\" y1=\"", T, "\" x2=\"", x, "\" y2=\"", H - B, "\" stroke=\"#ddd\"/>\n");
        s += cat("<text x=\"", x, "\" y=\"", H - B + 16, "\" text-anchor=\"middle\">", fmt(std::pow(10.0, e), e < 0 ? int(-e) : 0),
                 "</text>\n");
    }
    for (double m = mlo; m <= mhi + 1e-9; m += 0.05) {
        double y = Y(m);
        s += cat("<line x1=\"", L, "\" y1=\"", y, "\" x2=\"", W - R, "\" y2=\"", y, "\" stroke=\"#eee\"/>\n");
        s += cat("<text x=\"", L - 6, "\" y=\"", y + 4, "\" text-anchor=\"end\">", fmt(m, 2), "</text>\n");
    }
    s += cat("<text x=\"", (L + W - R) / 2, "\" y=\"", H - 12, "\" text-anchor=\"middle\">median latency (ms)</text>\n");
    s += cat("<text x=\"16\" y=\"", (T + H - B) / 2, "\" transform=\"rotate(-90 16 ", (T + H - B) / 2,
             ")\" text-anchor=\"middle\">mAP50-95</text>\n");
    int i = 0;
    for (auto* v : pts) {
        const char* c = kColors[i % 7];
        double x = X(v->latency_median_ms), y = Y(v->map50_95);
        if (v->backend == "gpu")
            s += cat("<rect x=\"", x - 5, "\" y=\"", y - 5, "\" width=\"10\" height=\"10\" fill=\"", c, "\"/>\n");
        else
            s += cat("<circle cx=\"", x, "\" cy=\"", y, "\" r=\"5\" fill=\"", c, "\"/>\n");
        int ly = T + 14 + 18 * i;
        s += cat("<text x=\"", W - R + 12, "\" y=\"", ly, "\" fill=\"", c, "\">", esc(v->name), " (",
                 v->backend == "gpu" ? "GPU" : "CPU", "): ", fmt(v->map50_95, 3), ", ",
                 fmt(v->latency_median_ms, v->backend == "gpu" ? 3 : 1), " ms</text>\n");
        ++i;
    }
    s += cat("<text x=\"", W - R + 12, "\" y=\"", H - B, "\" fill=\"#555\">circle: CPU, square: GPU</text>\n");
    return s + "</svg>\n";
}

std::string chart_layer_times(const Report& r) {
    const std::string& e = r.layer_profile_engine;
    const std::string title =
        "Per-op GPU time of " + (e.empty() ? std::string("the chosen engine") : e.substr(e.find_last_of('/') + 1)) +
        " (25 slowest)";
    if (!r.layer_profile.is_object() || !r.layer_profile.contains("ops") || r.layer_profile["ops"].empty())
        return svg_empty(title, r.gpu_ran ? "not profiled yet" : "no GPU stage ran: " + r.gpu);
    struct Op {
        std::string label;
        double us;
    };
    std::vector<Op> ops;
    for (const auto& o : r.layer_profile["ops"])
        ops.push_back({cat(o.value("kind", std::string()), " ", o.value("name", std::string())), o.value("us", 0.0)});
    std::stable_sort(ops.begin(), ops.end(), [](const Op& a, const Op& b) { return a.us > b.us; });
    const size_t shown = std::min<size_t>(ops.size(), 25);
    double rest = 0, total = 0, mx = 0;
    for (size_t i = 0; i < ops.size(); ++i) {
        total += ops[i].us;
        if (i >= shown) rest += ops[i].us;
        mx = std::max(mx, ops[i].us);
    }
    const int W = 860, row = 18, L = 340, T = 40;
    const int H = T + int(shown + 3) * row + 20;
    std::string s = svg_open(W, H, title);
    for (size_t i = 0; i < shown; ++i) {
        double w = ops[i].us / mx * (W - L - 90);
        int y = T + int(i) * row;
        s += cat("<text x=\"", L - 6, "\" y=\"", y + 13, "\" text-anchor=\"end\">", esc(ops[i].label.size() > 48 ? ops[i].label.substr(0, 47) + "..." : ops[i].label),
                 "</text>\n");
        s += cat("<rect x=\"", L, "\" y=\"", y + 2, "\" width=\"", w, "\" height=\"", row - 4, "\" fill=\"#1f77b4\"/>\n");
        s += cat("<text x=\"", L + w + 4, "\" y=\"", y + 13, "\">", fmt(ops[i].us, 1), " us</text>\n");
    }
    s += cat("<text x=\"", L, "\" y=\"", T + int(shown) * row + 14, "\" fill=\"#555\">", ops.size() - shown,
             " more ops: ", fmt(rest, 1), " us; sum of all ", ops.size(), " ops alone: ", fmt(total, 1), " us</text>\n");
    s += cat("<text x=\"", L, "\" y=\"", T + int(shown + 1) * row + 14,
             "\" fill=\"#555\">(each op timed alone; the CUDA graph overlaps independent branches)</text>\n");
    return s + "</svg>\n";
}

std::string chart_device_memory(const Report& r) {
    const std::string title = "Peak device memory per GPU variant (cudaMemGetInfo drop; planned in light)";
    std::vector<const Variant*> vs;
    for (const auto& v : r.variants)
        if (v.peak_device_bytes >= 0) vs.push_back(&v);
    if (vs.empty()) return svg_empty(title, r.gpu_ran ? "no GPU variant measured yet" : "no GPU stage ran: " + r.gpu);
    double mx = 0;
    for (auto* v : vs) mx = std::max({mx, double(v->peak_device_bytes), double(v->planned_device_bytes)});
    // The profile's budget is printed under the bars, not drawn: it dwarfs them.
    const int W = 820, row = 26, L = 160, T = 40;
    const int H = T + int(vs.size()) * row + 40;
    std::string s = svg_open(W, H, title);
    for (size_t i = 0; i < vs.size(); ++i) {
        int y = T + int(i) * row;
        double wp = double(vs[i]->planned_device_bytes) / mx * (W - L - 240);
        double w = double(vs[i]->peak_device_bytes) / mx * (W - L - 240);
        s += cat("<text x=\"", L - 6, "\" y=\"", y + 16, "\" text-anchor=\"end\">", esc(vs[i]->name), "</text>\n");
        s += cat("<rect x=\"", L, "\" y=\"", y + 3, "\" width=\"", w, "\" height=\"", row - 6, "\" fill=\"#ff7f0e\"/>\n");
        if (wp > 0)
            s += cat("<rect x=\"", L, "\" y=\"", y + 3, "\" width=\"", wp, "\" height=\"", row - 6,
                     "\" fill=\"#ffd8b0\" fill-opacity=\"0.7\"/>\n");
        s += cat("<text x=\"", L + std::max(w, wp) + 4, "\" y=\"", y + 16, "\">", bytes(vs[i]->peak_device_bytes),
                 " (planned ", bytes(vs[i]->planned_device_bytes), ")</text>\n");
    }
    int64_t budget = r.profile.value("memory_budget_bytes", int64_t(0));
    s += cat("<text x=\"", L, "\" y=\"", H - 12, "\" fill=\"#555\">target ", esc(r.profile.value("name", std::string())),
             ": device-memory budget ", budget > 0 ? bytes(budget) : std::string("none (host)"), "</text>\n");
    return s + "</svg>\n";
}

nlohmann::json report_json(const Report& r) {
    nlohmann::json j;
    const Options& o = r.options;
    j["started"] = r.started;
    j["yoloc_version"] = r.yoloc_version;
    j["host"] = r.host;
    j["gpu"] = r.gpu;
    j["gpu_stages_ran"] = r.gpu_ran;
    j["options"] = {{"model", o.model}, {"calib", o.calib},   {"data", o.data},       {"target", o.target},
                    {"prune", o.prune}, {"precisions", o.precisions}, {"calib_count", o.calib_count},
                    {"threads", o.threads}, {"cpu_iters", o.cpu_iters}, {"gpu_iters", o.gpu_iters}};
    j["target_profile"] = r.profile;
    j["skipped"] = r.skipped;
    j["failed_stage"] = r.failed;
    j["stages"] = nlohmann::json::array();
    for (const auto& s : r.stages)
        j["stages"].push_back({{"name", s.name}, {"command", s.command}, {"exit_code", s.exit_code},
                               {"seconds", s.seconds}, {"log", s.log}});
    j["variants"] = nlohmann::json::array();
    auto opt = [](double v) { return v < 0 ? nlohmann::json() : nlohmann::json(v); };
    auto opti = [](int64_t v) { return v < 0 ? nlohmann::json() : nlohmann::json(v); };
    for (const auto& v : r.variants)
        j["variants"].push_back({{"name", v.name},
                                 {"backend", v.backend},
                                 {"precision", v.precision},
                                 {"model", v.model},
                                 {"engine", v.engine},
                                 {"parameters", opti(v.params)},
                                 {"model_bytes", opti(v.model_bytes)},
                                 {"engine_bytes", opti(v.engine_bytes)},
                                 {"latency_median_ms", opt(v.latency_median_ms)},
                                 {"latency_p99_ms", opt(v.latency_p99_ms)},
                                 {"fps", opt(v.fps)},
                                 {"peak_device_bytes", opti(v.peak_device_bytes)},
                                 {"planned_device_bytes", opti(v.planned_device_bytes)},
                                 {"mAP50", opt(v.map50)},
                                 {"mAP50_95", opt(v.map50_95)},
                                 {"latency_method", v.latency_how},
                                 {"memory_method", v.memory_how},
                                 {"map_method", v.map_how},
                                 {"notes", v.notes}});
    j["layer_profile_engine"] = r.layer_profile_engine;
    j["layer_profile"] = r.layer_profile;
    return j;
}

Report report_from_json(const nlohmann::json& j) {
    Report r;
    auto str = [](const nlohmann::json& o, const char* k) {
        return o.contains(k) && o[k].is_string() ? o[k].get<std::string>() : std::string();
    };
    auto dbl = [](const nlohmann::json& o, const char* k) {
        return o.contains(k) && o[k].is_number() ? o[k].get<double>() : -1.0;
    };
    auto i64 = [](const nlohmann::json& o, const char* k) {
        return o.contains(k) && o[k].is_number() ? o[k].get<int64_t>() : int64_t(-1);
    };
    YOLOC_CHECK(j.is_object() && j.contains("variants") && j["variants"].is_array(),
                "not a yoloc pipeline report.json (no variants)");
    r.started = str(j, "started");
    r.yoloc_version = str(j, "yoloc_version");
    r.host = str(j, "host");
    r.gpu = str(j, "gpu");
    r.gpu_ran = j.value("gpu_stages_ran", false);
    r.profile = j.value("target_profile", nlohmann::json::object());
    r.failed = str(j, "failed_stage");
    if (j.contains("skipped")) r.skipped = j["skipped"].get<std::vector<std::string>>();
    const nlohmann::json o = j.value("options", nlohmann::json::object());
    r.options.model = str(o, "model");
    r.options.calib = str(o, "calib");
    r.options.data = str(o, "data");
    r.options.target = str(o, "target");
    r.options.prune = std::max(0.0, dbl(o, "prune"));
    if (o.contains("precisions")) r.options.precisions = o["precisions"].get<std::vector<std::string>>();
    r.options.calib_count = int(i64(o, "calib_count"));
    r.options.threads = int(i64(o, "threads"));
    r.options.cpu_iters = int(i64(o, "cpu_iters"));
    r.options.gpu_iters = int(i64(o, "gpu_iters"));
    for (const auto& s : j.value("stages", nlohmann::json::array())) {
        StageRecord st;
        st.name = str(s, "name");
        st.command = str(s, "command");
        st.log = str(s, "log");
        st.exit_code = int(i64(s, "exit_code"));
        st.seconds = dbl(s, "seconds");
        st.ok = st.exit_code == 0;
        r.stages.push_back(st);
    }
    for (const auto& x : j["variants"]) {
        Variant v;
        v.name = str(x, "name");
        v.backend = str(x, "backend");
        v.precision = str(x, "precision");
        v.model = str(x, "model");
        v.engine = str(x, "engine");
        v.params = i64(x, "parameters");
        v.model_bytes = i64(x, "model_bytes");
        v.engine_bytes = i64(x, "engine_bytes");
        v.latency_median_ms = dbl(x, "latency_median_ms");
        v.latency_p99_ms = dbl(x, "latency_p99_ms");
        v.fps = dbl(x, "fps");
        v.peak_device_bytes = i64(x, "peak_device_bytes");
        v.planned_device_bytes = i64(x, "planned_device_bytes");
        v.map50 = dbl(x, "mAP50");
        v.map50_95 = dbl(x, "mAP50_95");
        v.latency_how = str(x, "latency_method");
        v.memory_how = str(x, "memory_method");
        v.map_how = str(x, "map_method");
        if (x.contains("notes")) v.notes = x["notes"].get<std::vector<std::string>>();
        r.variants.push_back(v);
    }
    r.layer_profile_engine = str(j, "layer_profile_engine");
    r.layer_profile = j.value("layer_profile", nlohmann::json());
    return r;
}

std::string report_markdown(const Report& r) {
    const Options& o = r.options;
    Table t = make_table(r);
    std::string s = "# yoloc pipeline report\n\n";
    s += cat("- model: `", o.model, "`; calibration: `", o.calib, "` (first ", o.calib_count, "); data: `", o.data, "`\n");
    s += cat("- target profile: `", r.profile.value("name", std::string()), "` (", r.profile.value("device", std::string()),
             "; ", r.profile.value("software", std::string()), ")\n");
    s += cat("- ran on: ", r.host, "; GPU: ", r.gpu, "; yoloc ", r.yoloc_version, "; started ", r.started, "\n");
    if (!r.failed.empty())
        s += cat("- **stopped: stage `", r.failed, "` failed** (its log is listed below); the rows are the stages "
                 "before it\n");
    for (const auto& k : r.skipped) s += "- skipped: " + k + "\n";
    s += "\n| " ;
    for (const auto& h : t.head) s += h + " | ";
    s += "\n|";
    for (size_t i = 0; i < t.head.size(); ++i) s += i < 2 ? " --- |" : " ---: |";
    s += "\n";
    for (const auto& row : t.rows) {
        s += "| ";
        for (const auto& c : row) s += c + " | ";
        s += "\n";
    }
    s += "\nHow each figure was measured:\n\n";
    for (size_t i = 0; i < t.methods.list.size(); ++i) s += cat(i + 1, ". ", t.methods.list[i], "\n");
    s += "- parameters: `yoloc inspect --json` (weights + biases of the ONNX file, BatchNorm folded); model and "
         "engine file: bytes on disk; FPS: batch / median latency.\n";
    if (!t.notes.empty()) {
        s += "\nNotes:\n\n";
        for (const auto& n : t.notes) s += "- " + n + "\n";
    }
    s += "\nCharts: [mAP50-95 vs latency](charts/map_vs_latency.svg), [per-op time of the chosen engine]"
         "(charts/layer_times.svg), [device memory](charts/device_memory.svg).\n\n";
    s += "![mAP50-95 vs latency](charts/map_vs_latency.svg)\n\n";
    s += "## Stages (each re-runnable as logged)\n\n| # | stage | seconds | exit | command |\n| ---: | --- | ---: | ---: | --- |\n";
    for (size_t i = 0; i < r.stages.size(); ++i) {
        const auto& st = r.stages[i];
        s += cat("| ", i + 1, " | ", st.name, " | ", fmt(st.seconds, 1), " | ", st.exit_code, " | `", st.command, "` |\n");
    }
    return s;
}

std::string report_html(const Report& r) {
    const Options& o = r.options;
    Table t = make_table(r);
    std::string s = "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>yoloc pipeline report</title>\n"
                    "<style>body{font-family:sans-serif;max-width:1200px;margin:2em auto}table{border-collapse:collapse}"
                    "td,th{border:1px solid #ccc;padding:3px 6px;font-size:13px}td.n{text-align:right}"
                    "code{font-size:12px}</style></head><body>\n<h1>yoloc pipeline report</h1>\n<ul>\n";
    s += cat("<li>model <code>", esc(o.model), "</code>, calibration <code>", esc(o.calib), "</code> (first ",
             o.calib_count, "), data <code>", esc(o.data), "</code></li>\n");
    s += cat("<li>target profile <code>", esc(r.profile.value("name", std::string())), "</code>: ",
             esc(r.profile.value("device", std::string())), "; ", esc(r.profile.value("software", std::string())),
             "</li>\n");
    s += cat("<li>ran on ", esc(r.host), "; GPU: ", esc(r.gpu), "; yoloc ", esc(r.yoloc_version), "; started ",
             esc(r.started), "</li>\n");
    if (!r.failed.empty()) s += cat("<li><b>stopped: stage ", esc(r.failed), " failed</b></li>\n");
    for (const auto& k : r.skipped) s += "<li>skipped: " + esc(k) + "</li>\n";
    s += "</ul>\n<table><tr>";
    for (const auto& h : t.head) s += "<th>" + esc(h) + "</th>";
    s += "</tr>\n";
    for (const auto& row : t.rows) {
        s += "<tr>";
        for (size_t i = 0; i < row.size(); ++i) s += (i < 2 ? "<td>" : "<td class=\"n\">") + esc(row[i]) + "</td>";
        s += "</tr>\n";
    }
    s += "</table>\n<ol>\n";
    for (const auto& m : t.methods.list) s += "<li>" + esc(m) + "</li>\n";
    s += "</ol>\n";
    if (!t.notes.empty()) {
        s += "<ul>\n";
        for (const auto& n : t.notes) s += "<li>" + esc(n) + "</li>\n";
        s += "</ul>\n";
    }
    s += chart_map_vs_latency(r) + "<br>\n" + chart_layer_times(r) + "<br>\n" + chart_device_memory(r);
    s += "<h2>Stages</h2>\n<table><tr><th>#</th><th>stage</th><th>seconds</th><th>exit</th><th>command</th></tr>\n";
    for (size_t i = 0; i < r.stages.size(); ++i) {
        const auto& st = r.stages[i];
        s += cat("<tr><td>", i + 1, "</td><td>", esc(st.name), "</td><td class=\"n\">", fmt(st.seconds, 1),
                 "</td><td class=\"n\">", st.exit_code, "</td><td><code>", esc(st.command), "</code></td></tr>\n");
    }
    return s + "</table>\n</body></html>\n";
}

}  // namespace yoloc::pipeline
