// `yoloc export MODEL --target PROFILE -o BUNDLE/`: the folder that goes to the device
// (src/deploy/bundle.h). Engines are built there, from this bundle.
#include <cstdio>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "deploy/bundle.h"
#include "deploy/profiles.h"

namespace yoloc_cli {
namespace {

std::string profiles_help() {
    std::string s = "target profile, one of:";
    for (const auto& p : yoloc::deploy::target_profiles())
        s += "\n  " + p.name + ": " + p.device + (p.software.empty() ? "" : " (" + p.software + ")");
    return s;
}

Registrar reg("export", "write a deployment bundle for a target device: model, calibration cache, build commands, README",
              [](CLI::App& app) {
    auto o = std::make_shared<yoloc::deploy::ExportOptions>();
    auto json = std::make_shared<bool>(false);
    app.description(
        "Write BUNDLE/ with everything the device needs to build its engine there (engines are tied to the GPU and the "
        "CUDA/TensorRT versions they are built with): model.onnx (float, pruned or Q/DQ, byte for byte), model.cache "
        "(the TensorRT calibration cache, header set to the profile's TensorRT version), build.sh (the exact `yoloc "
        "build` command), trtexec.sh and trtexec.txt (the TensorRT command for the profile's TensorRT version: "
        "--workspace before 8.4, --memPoolSize after; --int8 --calib for a float model with a cache, --int8 alone for a "
        "Q/DQ model), README.md, SHA256SUMS and bundle.json. Nothing is written unless everything is valid; the bundle "
        "appears at once (written beside it, then renamed). See docs/DEPLOY.md.");
    app.add_option("model", o->model, "ONNX model to deploy (float, pruned, or Q/DQ from `yoloc quantize`)")->required();
    app.add_option("--target", o->target, profiles_help())->required();
    app.add_option("-o,--output", o->out_dir, "bundle folder to create (must not exist or be empty, unless --force)")
        ->required();
    app.add_option("--calib-cache", o->calib_cache,
                   "TensorRT calibration cache to include (default: MODEL with .onnx replaced by .cache, if it exists)");
    app.add_flag("--force", o->force, "replace an existing non-empty bundle folder");
    app.add_flag("--json", *json, "print what was written as JSON");
    return [o, json]() {
        yoloc::deploy::ExportResult r = yoloc::deploy::export_bundle(*o);
        const yoloc::deploy::TargetProfile& p = yoloc::deploy::find_profile(o->target);
        if (*json) {
            nlohmann::json j = {{"bundle", r.out_dir},
                                {"target", p.name},
                                {"device", p.device},
                                {"software", p.software},
                                {"files", r.files},
                                {"precision", r.precision},
                                {"model",
                                 {{"source", o->model},
                                  {"sha256", r.model_sha256},
                                  {"qdq", r.model.qdq},
                                  {"pruned", r.model.pruned},
                                  {"architecture", r.model.architecture}}},
                                {"calibration_cache", r.calib_cache},
                                {"build_command", r.build_command},
                                {"trtexec_command", r.trtexec_command},
                                {"trtexec_alternatives", r.trtexec_alternatives},
                                {"notes", r.notes}};
            std::printf("%s\n", j.dump(1).c_str());
            return 0;
        }
        std::string files;
        for (const auto& f : r.files) files += (files.empty() ? "" : ", ") + f;
        std::printf("bundle     %s for %s (%s; %s)\n", r.out_dir.c_str(), p.name.c_str(), p.device.c_str(),
                    p.software.c_str());
        std::printf("model      %s: %s, %s%s\n", o->model.c_str(), r.model.architecture.c_str(),
                    r.model.qdq ? "Q/DQ INT8" : "float", r.calib_cache ? ", with a calibration cache" : "");
        std::printf("files      %s\n", files.c_str());
        std::printf("yoloc      %s\n", r.build_command.c_str());
        std::printf("trtexec    %s\n", r.trtexec_command.c_str());
        for (const auto& a : r.trtexec_alternatives) std::printf("  or       %s\n", a.c_str());
        for (const auto& n : r.notes) std::printf("note       %s\n", n.c_str());
        info("wrote " + r.out_dir + ": copy it to the device and run build.sh (yoloc) or trtexec.sh (TensorRT) there");
        return 0;
    };
});

}  // namespace
}  // namespace yoloc_cli
