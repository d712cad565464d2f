#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <sstream>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "option_rules.h"
#include "core/file.h"
#include "core/progress.h"
#include "onnx/onnx_io.h"
#include "quant/quantize.h"
#include "quant/trt_rules.h"
#include "yolo/input_size.h"

namespace yoloc_cli {
namespace {

struct QuantArgs {
    std::string model, calib, out, method = "percentile", exclude, concat_scales = "shared";
    int calib_count = 0, keep_fp = 2, trt_version = 8205, threads = 0, sens_images = 4;
    double percentile = 99.99;
    bool per_channel = false, per_tensor = false, quantize_dfl = false, json = false, sensitivity = false;
};

// "OUT.onnx" -> "OUT.cache" (beside it).
std::string cache_path(const std::string& onnx) {
    std::string ext = yoloc::path_ext_lower(onnx);
    return (ext == ".onnx" ? onnx.substr(0, onnx.size() - 5) : onnx) + ".cache";
}

std::vector<std::string> split_list(const std::string& s) {
    std::vector<std::string> r;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ','))
        if (!item.empty()) r.push_back(item);
    return r;
}

nlohmann::json num(double v) {
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
    return v;
}

int run_quantize(const QuantArgs& a) {
    // Everything that can be checked cheaply is checked before any work.
    yoloc::QuantizeOptions opt;
    opt.method = yoloc::parse_calib_method(a.method);
    YOLOC_CHECK(!(a.per_channel && a.per_tensor), "--per-channel and --per-tensor exclude each other");
    YOLOC_CHECK(yoloc::path_ext_lower(a.out) == ".onnx", "-o ", a.out, ": the output must be a .onnx file");
    std::string out_dir = yoloc::path_dirname(a.out);
    YOLOC_CHECK(yoloc::is_directory(out_dir), "-o ", a.out, ": folder ", out_dir, " does not exist");
    opt.percentile = a.percentile;
    opt.per_channel = !a.per_tensor;
    opt.exclude = split_list(a.exclude);
    opt.keep_fp = a.keep_fp;
    YOLOC_CHECK(a.concat_scales == "shared" || a.concat_scales == "own", "--concat-scales must be shared or own, got '",
                a.concat_scales, "'");
    opt.share_concat_scales = a.concat_scales == "shared";
    opt.quantize_dfl = a.quantize_dfl;
    opt.sensitivity = a.sensitivity;
    opt.sensitivity_images = a.sens_images;
    opt.threads = a.threads;
    opt.trt_version = a.trt_version;

    yoloc::Model model = yoloc::load_onnx(a.model);
    yoloc::check_declared_inputs(model, a.model);  // calibration allocates inputs of this size
    yoloc::check_float_model(model);
    std::vector<std::string> images = yoloc::calibration_images(a.calib, a.calib_count);

    std::unique_ptr<yoloc::Progress> bar;
    std::string stage;
    yoloc::QuantizeResult r = yoloc::quantize_model(model, images, opt, [&](const std::string& s, int d, int t) {
        if (s != stage) {
            if (bar) bar->finish();
            bar.reset(new yoloc::Progress(s, t));
            stage = s;
        }
        bar->set(d);
    });
    if (bar) bar->finish();

    // The written model must pass our own TensorRT rules; a failure here is a bug.
    std::vector<yoloc::Violation> v = yoloc::check_model(r.model, "tensorrt");
    YOLOC_CHECK(v.empty(), "internal error: the quantized model breaks a TensorRT rule: ", v[0].line());
    // Both files or neither: each is written atomically; if the cache cannot be
    // written, the model written just before it is removed again.
    std::string cache = cache_path(a.out);
    yoloc::save_onnx(r.model, a.out);
    try {
        yoloc::write_file_atomic(cache, r.cache_text);
    } catch (...) {
        std::remove(a.out.c_str());
        throw;
    }

    int quantized = 0;
    for (const auto& l : r.layers) quantized += l.kept_fp ? 0 : 1;
    if (a.json) {
        nlohmann::json j;
        j["model"] = a.model;
        j["output"] = a.out;
        j["cache"] = cache;
        j["method"] = a.method;
        j["per_channel"] = opt.per_channel;
        j["concat_scales"] = a.concat_scales;
        j["calib_images"] = r.calib_images;
        j["calib_seconds"] = r.calib_seconds;
        j["sensitivity_seconds"] = r.sensitivity_seconds;
        j["kept_fp"] = r.kept_fp;
        j["cache_tensors"] = r.cache_amax.size();
        nlohmann::json layers = nlohmann::json::array();
        for (const auto& l : r.layers) {
            nlohmann::json lj = {{"node", l.node},          {"op", l.op},
                                 {"input", l.input},        {"amax", l.amax},
                                 {"scale", l.scale},        {"clip_ratio", l.clip_ratio},
                                 {"output_sqnr_db", num(l.output_sqnr_db)}, {"kept_fp", l.kept_fp}};
            if (l.op == "Conv") lj["weight_sqnr_db"] = num(l.weight_sqnr_db);
            if (l.sensitivity_measured) lj["sensitivity_sqnr_db"] = num(l.sensitivity_db);
            layers.push_back(lj);
        }
        j["layers"] = layers;
        std::printf("%s\n", j.dump(1).c_str());
    } else {
        std::printf("%-34s %-4s %10s %10s %9s %9s %9s %s\n", "layer", "op", "amax", "scale", "clip%", "w SQNR", "out SQNR",
                    r.layers.empty() || !r.layers[0].sensitivity_measured ? "" : "sens(out0 SQNR)");
        for (const auto& l : r.layers) {
            char w[32] = "", s[32] = "";
            if (l.op == "Conv") std::snprintf(w, sizeof w, "%.1f", l.weight_sqnr_db);
            if (l.sensitivity_measured) std::snprintf(s, sizeof s, "%.1f", l.sensitivity_db);
            std::printf("%-34s %-4s %10.4g %10.4g %9.4f %9s %9.1f %s%s\n", l.node.c_str(), l.op.c_str(), l.amax, l.scale,
                        100 * l.clip_ratio, w, l.output_sqnr_db, s, l.kept_fp ? " (kept fp32)" : "");
        }
        if (a.sensitivity) {
            std::vector<const yoloc::LayerReport*> rank;
            for (const auto& l : r.layers) rank.push_back(&l);
            std::sort(rank.begin(), rank.end(),
                      [](const yoloc::LayerReport* x, const yoloc::LayerReport* y) { return x->sensitivity_db < y->sensitivity_db; });
            std::printf("\nsensitivity ranking (output0 SQNR with only that layer quantized, lowest = most sensitive):\n");
            for (size_t i = 0; i < rank.size(); ++i)
                std::printf("%3zu  %-34s %.1f dB\n", i + 1, rank[i]->node.c_str(), rank[i]->sensitivity_db);
        }
    }
    info("quantized " + std::to_string(quantized) + " layers (" + a.method + ", " +
         (opt.per_channel ? "per-channel" : "per-tensor") + " weights) on " + std::to_string(r.calib_images) +
         " calibration images in " + std::to_string(int(r.calib_seconds + 0.5)) + " s");
    info("wrote " + a.out + " and " + cache + " (" + std::to_string(r.cache_amax.size()) + " tensors)");
    return 0;
}

Registrar reg("quantize", "INT8 post-training quantization: TensorRT Q/DQ ONNX + calibration cache + report",
              [](CLI::App& app) {
    auto a = std::make_shared<QuantArgs>();
    app.add_option("model", a->model, "float ONNX model")->required();
    app.add_option("--calib", a->calib, "folder of calibration images (or a .txt list of them)")->required();
    app.add_option("--calib-count", a->calib_count, "use the first N images (0 = all; error when fewer)")
        ->check(rules::at_least(0))->capture_default_str();
    app.add_option("--method", a->method, "calibration: percentile, entropy, mse or minmax (see docs/QUANTIZATION.md for the default)")->capture_default_str();
    app.add_option("--percentile", a->percentile, "percentile for --method percentile")->check(rules::percent())
        ->capture_default_str();
    app.add_flag("--per-channel", a->per_channel, "per-output-channel weight scales (default)");
    app.add_flag("--per-tensor", a->per_tensor, "one weight scale per Conv");
    app.add_option("--exclude", a->exclude, "comma-separated Conv/Add node names to leave in float");
    app.add_flag("--quantize-dfl", a->quantize_dfl,
                 "also quantize the DFL conv of the box decode (float by default: it costs accuracy)");
    app.add_option("--concat-scales", a->concat_scales,
                   "shared: one scale for all tensors a Concat joins (int8 stays int8 through the concat, in "
                   "TensorRT and in yoloc build); own: each tensor its own range")
        ->capture_default_str();
    app.add_option("--keep-fp", a->keep_fp, "leave the N most sensitive layers in float (runs the sensitivity analysis; 0 = all INT8)")
        ->check(rules::at_least(0))->capture_default_str();
    app.add_flag("--sensitivity", a->sensitivity, "quantize one layer at a time and rank the layers by output error");
    app.add_option("--sensitivity-images", a->sens_images, "calibration images used by the sensitivity analysis")
        ->check(rules::at_least(1))->capture_default_str();
    app.add_option("--trt-version", a->trt_version, "TensorRT version in the calibration cache header")
        ->check(rules::at_least(1))->capture_default_str();
    app.add_option("--threads", a->threads, "CPU threads (0 = all cores)")->check(rules::threads())->capture_default_str();
    app.add_option("-o,--output", a->out, "output .onnx (the cache is written beside it as .cache)")->required();
    app.add_flag("--json", a->json, "print the report as JSON");
    return [a]() { return run_quantize(*a); };
});

}  // namespace
}  // namespace yoloc_cli
