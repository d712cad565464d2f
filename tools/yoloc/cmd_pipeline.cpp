// `yoloc pipeline`: the whole path (inspect, prune, quantize, build, eval, bench) in one
// command, with one report. The stages run as child processes of this binary.
#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "option_rules.h"
#include "core/error.h"
#include "core/file.h"
#include "pipeline/pipeline.h"
#include "quant/calibrate.h"

namespace yoloc_cli {

int calib_count_to_use(const std::string& calib, int count, bool given) {
    const int found = int(yoloc::calibration_images(calib, 0).size());
    if (found >= count) return count;
    YOLOC_CHECK(!given, "--calib-count ", count, ": only ", found, " calibration images in ", calib, " (use at most ",
                found, ", or add images)");
    info("--calib " + calib + ": " + std::to_string(found) + " calibration images, fewer than the default " +
         "--calib-count " + std::to_string(count) + ": using all " + std::to_string(found));
    return found;
}

namespace {

// The binary that runs the stages: this one, unless YOLOC_PIPELINE_EXE names another
// (a wrapper, e.g. the qemu-user launcher of the aarch64 test build, where the host
// cannot exec an aarch64 binary directly).
std::string self_exe() {
    if (const char* e = std::getenv("YOLOC_PIPELINE_EXE"))
        if (*e) return e;
    char buf[4096];
    ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    YOLOC_CHECK(n > 0, "pipeline: cannot find the yoloc binary (/proc/self/exe)");
    return std::string(buf, size_t(n));
}

std::vector<std::string> split_list(const std::string& s) {
    std::vector<std::string> out;
    size_t p = 0;
    while (p <= s.size()) {
        size_t q = s.find(',', p);
        if (q == std::string::npos) q = s.size();
        if (q > p) out.push_back(s.substr(p, q - p));
        p = q + 1;
    }
    return out;
}

Registrar reg("pipeline",
              "inspect -> prune -> quantize -> build -> eval -> bench in one command, with one report "
              "(report.md, report.json, report.html with charts)",
              [](CLI::App& app) {
                  auto o = std::make_shared<yoloc::pipeline::Options>();
                  auto prec = std::make_shared<std::string>("fp32,fp16,int8");
                  auto json = std::make_shared<bool>(false);
                  auto render = std::make_shared<std::string>();
                  app.add_option("model", o->model, "float ONNX model (a YOLOv8 export)");
                  app.add_option("--calib", o->calib, "calibration images: folder or .txt list (prune, quantize)");
                  app.add_option("--data", o->data, "data.yaml whose val split gives mAP50 / mAP50-95");
                  app.add_option("--target", o->target,
                                 "target profile: jetson-nano-2gb, jetson-nano-4gb, orin-nano-8gb, orin-nx-16gb or "
                                 "host (memory budget, workspace, INT8 speed; see docs/DEPLOY.md)")
                      ->capture_default_str();
                  app.add_option("--prune", o->prune,
                                 "also prune the C2f bottlenecks by this ratio with reconstruction (0 = no prune "
                                 "stage; the engines are then built from the pruned model)")
                      ->check(rules::ratio())->capture_default_str();
                  app.add_option("--precision", *prec, "engines to build and measure on the GPU: comma-separated "
                                                       "fp32, fp16, int8 (int8 also runs the quantize stage)")
                      ->capture_default_str();
                  auto* calib_count =
                      app.add_option("--calib-count", o->calib_count,
                                     "calibration images used (default: up to 64, all there are when fewer)")
                          ->check(rules::at_least(1))
                          ->capture_default_str();
                  app.add_option("--threads", o->threads, "CPU threads of the CPU stages (0 = all cores)")
                      ->check(rules::threads())->capture_default_str();
                  app.add_option("--cpu-iters", o->cpu_iters, "timed runs of each CPU bench")->check(rules::at_least(1))
                      ->capture_default_str();
                  app.add_option("--gpu-iters", o->gpu_iters, "timed runs of each GPU bench")->check(rules::at_least(1))
                      ->capture_default_str();
                  app.add_flag("--no-gpu", o->no_gpu, "skip the GPU stages even when a GPU is present");
                  app.add_option("--out", o->out_dir, "folder for models/, engines/, logs/, charts/ and the report");
                  app.add_option("--render", *render,
                                 "only rewrite DIR/report.md, report.html and charts/ from DIR/report.json (the same "
                                 "figures, rendered by this version); runs no stage");
                  app.add_flag("--json", *json, "print report.json on stdout at the end");
                  return [=]() {
                      if (!render->empty()) {
                          const std::string path = *render + "/report.json";
                          YOLOC_CHECK(yoloc::file_exists(path), "--render: ", path, " not found");
                          auto j = nlohmann::json::parse(yoloc::read_file(path), nullptr, false);
                          YOLOC_CHECK(!j.is_discarded(), "--render: ", path, " is not valid JSON");
                          yoloc::pipeline::Report r = yoloc::pipeline::report_from_json(j);
                          r.options.out_dir = *render;
                          yoloc::pipeline::write_reports(r);
                          info("rewrote " + *render + "/report.md, report.json, report.html and charts/");
                          return 0;
                      }
                      YOLOC_CHECK(!o->model.empty(), "give the model to run the pipeline on (or --render DIR)");
                      YOLOC_CHECK(!o->calib.empty(), "give --calib DIR (calibration images for prune and quantize)");
                      YOLOC_CHECK(!o->data.empty(), "give --data DATA.yaml (for mAP)");
                      YOLOC_CHECK(!o->out_dir.empty(), "give --out DIR");
                      o->calib_count = calib_count_to_use(o->calib, o->calib_count, calib_count->count() > 0);
                      o->precisions = split_list(*prec);
                      o->exe = self_exe();
                      yoloc::pipeline::Report r = yoloc::pipeline::run(*o, [](const std::string& s) { info(s); });
                      info("wrote " + o->out_dir + "/report.md, report.json, report.html");
                      if (!r.skipped.empty())
                          for (const auto& k : r.skipped) warn("skipped " + k);
                      if (*json) std::cout << yoloc::pipeline::report_json(r).dump(2) << "\n";
                      return 0;
                  };
              });

}  // namespace
}  // namespace yoloc_cli
