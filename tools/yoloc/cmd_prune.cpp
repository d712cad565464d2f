#include <cstdio>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "core/error.h"
#include "core/file.h"
#include "onnx/onnx_io.h"
#include "prune/prune.h"

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
    app.add_option("-o,--output", *out, "pruned .onnx file")->required();
    app.add_option("--scope", *scope, "which channel groups may shrink: c2f, backbone, neck or all")
        ->capture_default_str();
    auto* r = app.add_option("--ratio", o->ratio, "fraction of each group's channels to remove, in (0,1)");
    auto* tp = app.add_option("--target-params", o->target_params, "search the ratio that leaves at most P parameters");
    auto* tf = app.add_option("--target-flops", o->target_flops, "search the ratio that leaves at most F FLOPs");
    r->excludes(tp)->excludes(tf);
    tp->excludes(tf);
    app.add_option("--criterion", *crit, "channel importance: l1, l2, activation (output contribution on --calib images) or recon-error (greedy by least-squares error after refit)")->capture_default_str();
    app.add_option("--calib", o->calib_dir, "folder of calibration images (activation criterion, --reconstruct)");
    app.add_option("--calib-count", o->calib_count, "calibration images used (first N by path)")->capture_default_str();
    app.add_flag("--reconstruct", o->reconstruct, "refit the convs reading pruned channels by least squares");
    app.add_option("--recon-iterations", o->recon.iterations,
                   "1: fit on the unpruned model's activations; 2+: refit on the pruned model's")
        ->capture_default_str();
    app.add_flag("--recon-refit-next", o->recon.refit_next,
                 "from pass 2, also refit the convs that read a refitted conv's output");
    app.add_option("--recon-samples", o->recon.samples_per_image, "positions sampled per conv per image")
        ->capture_default_str();
    app.add_option("--round-to", o->round_to, "kept channels per group: a multiple of this")->capture_default_str();
    app.add_option("--threads", o->threads, "CPU threads (0 = all cores)")->capture_default_str();
    app.add_option("--report", *report, "write every channel group with its size before and after to FILE");
    app.add_flag("--json", *json, "print a JSON summary on stdout");
    return [=]() {
        o->scope = yoloc::parse_scope(*scope);
        o->criterion = yoloc::parse_criterion(*crit);
        YOLOC_CHECK(o->ratio != 0 || o->target_params != 0 || o->target_flops != 0,
                    "give one of --ratio, --target-params or --target-flops");
        yoloc::Model m = yoloc::load_onnx(*model);
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
                            rep.recon.mse_after));
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
                                       {"mse_after", rep.recon.mse_after}};
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
