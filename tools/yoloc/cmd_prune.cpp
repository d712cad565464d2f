#include <cstdio>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "option_rules.h"
#include "core/error.h"
#include "core/file.h"
#include "onnx/onnx_io.h"
#include "prune/prune.h"
#include "prune/sweep.h"
#include "yolo/input_size.h"
#include <filesystem>

namespace yoloc_cli {
namespace {

std::string report_text(const yoloc::PruneReport& r, const std::string& model, const yoloc::PruneOptions& o) {
    std::string s = yoloc::cat("# yoloc prune ", model, ": scope ", yoloc::scope_name(o.scope), ", criterion ",
                               yoloc::criterion_name(o.criterion), ", ratio ", r.ratio, ", round-to ", o.round_to,
                               r.reconstructed ? ", reconstructed" : "", "\n");
    s += yoloc::cat("# parameters ", r.params_before, " -> ", r.params_after, ", GFLOPs ", r.flops_before / 1e9, " -> ",
                    r.flops_after / 1e9, ", convs changed ", r.convs_changed, "\n");
    s += "#  group  before  after  status       channels\n";
    for (const auto& g : r.groups) {
        std::string status = !g.prunable ? "fixed" : !g.in_scope ? "out-of-scope" : g.after < g.before ? "pruned" : "kept";
        char line[64];
        std::snprintf(line, sizeof line, "%7d  %6lld  %5lld  %-13s", g.id, (long long)g.before, (long long)g.after,
                      status.c_str());
        s += line + g.label + (g.prunable ? "" : "  (" + g.pinned_reason + ")") + "\n";
    }
    return s;
}

Registrar reg("prune", "remove channels (structured pruning) of a YOLOv8 ONNX model, training-free", [](CLI::App& app) {
    auto model = std::make_shared<std::string>();
    auto out = std::make_shared<std::string>();
    auto scope = std::make_shared<std::string>("c2f");
    auto crit = std::make_shared<std::string>("l1");
    auto report = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    auto o = std::make_shared<yoloc::PruneOptions>();
    app.add_option("model", *model, "ONNX model (FP32)")->required();
    app.add_option("-o,--output", *out, "pruned .onnx file (not with --sweep)");
    auto sweep = std::make_shared<std::string>();
    auto sw = std::make_shared<yoloc::SweepOptions>();
    auto sweep_out = std::make_shared<std::string>();
    app.add_option("--sweep", *sweep,
                   "comma-separated ratios: prune at each, with and without reconstruction, and write a table and "
                   "chart (needs --calib, --data, --out)");
    app.add_option("--data", sw->data, "--sweep: data.yaml whose val split gives mAP50 / mAP50-95");
    app.add_option("--out", *sweep_out, "--sweep: folder for sweep.md, sweep.json, sweep.csv and sweep.svg");
    app.add_option("--bench-threads", sw->bench_threads, "--sweep: executor threads for the latency (0 = all cores)")
        ->check(rules::threads())->capture_default_str();
    app.add_option("--bench-iters", sw->bench_iters, "--sweep: timed runs per model")->check(rules::at_least(1))
        ->capture_default_str();
    app.add_option("--bench-warmup", sw->bench_warmup, "--sweep: untimed runs first")->check(rules::at_least(0))
        ->capture_default_str();
    app.add_option("--scope", *scope, "which channel groups may shrink: c2f, backbone, neck or all")
        ->capture_default_str();
    auto* r = app.add_option("--ratio", o->ratio, "fraction of each group's channels to remove")->check(rules::ratio());
    auto* tp = app.add_option("--target-params", o->target_params, "search the ratio that leaves at most P parameters")
                    ->check(rules::at_least(1));
    auto* tf = app.add_option("--target-flops", o->target_flops, "search the ratio that leaves at most F FLOPs")
                    ->check(CLI::PositiveNumber);
    r->excludes(tp)->excludes(tf);
    tp->excludes(tf);
    app.add_option("--criterion", *crit, "channel importance: l1, l2, activation (output contribution on --calib images) or recon-error (greedy by least-squares error after refit)")->capture_default_str();
    app.add_option("--calib", o->calib_dir, "folder of calibration images (activation criterion, --reconstruct)");
    auto* calib_count = app.add_option("--calib-count", o->calib_count, "calibration images used (first N by path)")
                            ->check(rules::at_least(1))->capture_default_str();
    app.add_flag("--reconstruct", o->reconstruct, "refit the convs reading pruned channels by least squares");
    app.add_option("--recon-iterations", o->recon.iterations,
                   "1: fit on the unpruned model's activations; 2+: refit on the pruned model's")
        ->check(rules::at_least(1))->capture_default_str();
    app.add_flag("--recon-all-at-once", [o](int64_t) { o->recon.sequential = false; },
                 "passes 2+ refit every conv at once on the previous pass's model instead of one at a time in graph "
                 "order on the model carrying the refits before it");
    app.add_option("--recon-refit-depth", o->recon.refit_depth,
                   "from pass 2, also refit the convs this many layers downstream of the convs that lost input "
                   "channels (1: the readers of their outputs; 0: none)")
        ->check(CLI::Range(0, 8))
        ->capture_default_str();
    app.add_option_function<std::string>(
           "--recon-ridge",
           [o](const std::string& v) {
               if (v == "auto") {
                   o->recon.ridge_folds = 4;
                   return;
               }
               double r = -1;
               try {
                   r = std::stod(v);
               } catch (...) {
               }
               if (!(r > 0 && r < 1e6)) throw CLI::ValidationError("--recon-ridge", "expected auto or a positive number");
               o->recon.ridge = r;
               o->recon.ridge_folds = 1;
           },
           "refit ridge relative to the mean diagonal of X^T X, or auto: chosen per output channel by 4-fold "
           "cross-validation over the calibration images (default auto)");
    app.add_option_function<std::string>(
           "--recon-prior",
           [o](const std::string& v) {
               if (v != "original" && v != "zero")
                   throw CLI::ValidationError("--recon-prior", "expected original or zero");
               o->recon.ridge_to_original = v == "original";
           },
           "what the ridge shrinks the refitted weights toward: original (the unpruned weights, default) or zero");
    app.add_option("--recon-samples", o->recon.samples_per_image, "positions sampled per conv per image")
        ->check(rules::at_least(1))->capture_default_str();
    app.add_flag("--recon-correct", o->recon.correct,
                 "after the refit, per-channel affine correction of every downstream conv, level by level");
    app.add_option("--recon-correct-images", o->recon.correct_images, "calibration images for the correction (0 = all)")
        ->check(rules::at_least(0))->capture_default_str();
    app.add_flag("--recon-correct-moments", o->recon.correct_moments, "correction matches mean/std instead of regressing");
    app.add_flag("--recon-correct-shift-only", [o](int64_t) { o->recon.correct_scale = false; },
                 "correction shifts only (bias correction)");
    app.add_flag("--recon-correct-pre-activation", [o](int64_t) { o->recon.correct_post_activation = false; },
                 "correction fits the pre-activation instead of the SiLU output");
    app.add_flag("--recon-correct-head", o->recon.correct_head_outputs, "also correct the Detect head's output convs");
    app.add_option("--round-to", o->round_to, "kept channels per group: a multiple of this")->check(rules::at_least(1))
        ->capture_default_str();
    app.add_option("--threads", o->threads, "CPU threads (0 = all cores)")->check(rules::threads())->capture_default_str();
    app.add_option("--report", *report, "write every channel group with its size before and after to FILE");
    app.add_flag("--json", *json, "print a JSON summary on stdout");
    return [=]() {
        o->scope = yoloc::parse_scope(*scope);
        o->criterion = yoloc::parse_criterion(*crit);
        if (!o->calib_dir.empty())
            o->calib_count = calib_count_to_use(o->calib_dir, o->calib_count, calib_count->count() > 0);
        if (!sweep->empty()) {
            YOLOC_CHECK(o->ratio == 0 && o->target_params == 0 && o->target_flops == 0,
                        "--sweep replaces --ratio, --target-params and --target-flops");
            YOLOC_CHECK(out->empty(), "--sweep writes its results to --out DIR, not -o");
            YOLOC_CHECK(!sweep_out->empty(), "--sweep needs --out DIR");
            YOLOC_CHECK(!o->calib_dir.empty(), "--sweep needs calibration images (--calib DIR) for the reconstruction");
            YOLOC_CHECK(!sw->data.empty(), "--sweep needs --data DATA.yaml");
            sw->ratios = yoloc::parse_ratio_list(*sweep);
            sw->prune = *o;
            sw->eval_workers = o->threads;
            sw->stage = [](const std::string& s) { info(s + "..."); };
            yoloc::Model m = yoloc::load_onnx(*model);
            yoloc::check_declared_inputs(m, *model);  // calibration allocates inputs of this size
            yoloc::SweepResult res = yoloc::prune_sweep(m, *sw);
            res.model = *model;
            std::filesystem::create_directories(*sweep_out);
            const std::string d = *sweep_out + "/";
            yoloc::write_file_atomic(d + "sweep.json", yoloc::sweep_json(res));
            yoloc::write_file_atomic(d + "sweep.csv", yoloc::sweep_csv(res));
            yoloc::write_file_atomic(d + "sweep.svg", yoloc::sweep_svg(res));
            yoloc::write_file_atomic(d + "sweep.md", yoloc::sweep_markdown(res));
            std::cout << yoloc::sweep_markdown(res);
            info("wrote " + d + "sweep.md, sweep.json, sweep.csv, sweep.svg");
            return 0;
        }
        YOLOC_CHECK(!out->empty(), "give -o OUT.onnx (or --sweep with --out DIR)");
        YOLOC_CHECK(o->ratio != 0 || o->target_params != 0 || o->target_flops != 0,
                    "give one of --ratio, --target-params or --target-flops");
        yoloc::Model m = yoloc::load_onnx(*model);
        yoloc::check_declared_inputs(m, *model);  // calibration allocates inputs of this size
        o->stage = [](const std::string& s) { info(s + "..."); };
        yoloc::PruneReport rep;
        yoloc::Model p = yoloc::prune_model(m, *o, &rep);
        yoloc::save_onnx(p, *out);
        if (!report->empty()) yoloc::write_file_atomic(*report, report_text(rep, *model, *o));
        int pruned = 0;
        for (const auto& g : rep.groups) pruned += g.after < g.before;
        info(yoloc::cat("wrote ", *out, ": ", pruned, " of ", rep.groups.size(), " channel groups pruned, parameters ",
                        rep.params_before, " -> ", rep.params_after, ", GFLOPs ", rep.flops_before / 1e9, " -> ",
                        rep.flops_after / 1e9));
        if (rep.reconstructed)
            info(yoloc::cat("reconstruction: ", rep.recon.consumers, " convs in ", rep.recon.systems,
                            " systems, output MSE on calibration samples ", rep.recon.mse_before, " -> ",
                            rep.recon.mse_after,
                            rep.recon.cv_mse > 0 ? yoloc::cat(", held out (cross-validated) ", rep.recon.cv_mse,
                                                              " (fixed ridge ", rep.recon.cv_mse_fixed, ")")
                                                 : std::string()));
        if (rep.correction.convs > 0)
            info(yoloc::cat("correction: ", rep.correction.convs, " downstream convs in ", rep.correction.levels,
                            " levels, relative output MSE on calibration images ", rep.correction.rel_mse_before,
                            " -> ", rep.correction.rel_mse_after));
        if (*json) {
            nlohmann::json j;
            j["output"] = *out;
            j["scope"] = yoloc::scope_name(o->scope);
            j["criterion"] = yoloc::criterion_name(o->criterion);
            j["ratio"] = rep.ratio;
            j["params_before"] = rep.params_before;
            j["params_after"] = rep.params_after;
            j["flops_before"] = rep.flops_before;
            j["flops_after"] = rep.flops_after;
            j["groups_pruned"] = pruned;
            j["convs_changed"] = rep.convs_changed;
            j["reconstructed"] = rep.reconstructed;
            if (rep.reconstructed)
                j["reconstruction"] = {{"convs", rep.recon.consumers},
                                       {"systems", rep.recon.systems},
                                       {"samples", rep.recon.samples},
                                       {"mse_before", rep.recon.mse_before},
                                       {"mse_after", rep.recon.mse_after},
                                       {"cv_mse", rep.recon.cv_mse},
                                       {"cv_mse_fixed_ridge", rep.recon.cv_mse_fixed}};
            for (const auto& g : rep.groups)
                j["groups"].push_back({{"id", g.id}, {"label", g.label}, {"before", g.before}, {"after", g.after},
                                       {"prunable", g.prunable}, {"in_scope", g.in_scope}});
            std::cout << j.dump(2) << "\n";
        }
        return 0;
    };
});

}  // namespace
}  // namespace yoloc_cli
