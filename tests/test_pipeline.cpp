// `yoloc pipeline` on the CPU (no GPU here or in CI): every CPU stage runs, the report's
// figures equal what the logged commands give when re-run on their own, the GPU stages
// are reported as skipped with the reason, and a failing stage stops the pipeline and
// keeps the report of the stages before it.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/file.h"
#include "eval/evaluate.h"
#include "onnx/onnx_io.h"
#include "test_util.h"
#include "tiny_yolo_fixture.h"

using yoloc_test::run_cli;
using yoloc_test::slurp;

namespace {

nlohmann::json json_of(const std::string& out) {
    // The CLI prints its JSON last, after the progress lines on stderr (merged by run_cli).
    size_t p = out.find("\n{");
    return nlohmann::json::parse(p == std::string::npos ? out : out.substr(p + 1));
}

}  // namespace

TEST(Pipeline, CpuStagesRunAndTheReportMatchesReRunCommands) {
    yoloc_test::TinyYoloFixture fx("pipeline_cpu");
    const std::string out = fx.dir + "/run";
    auto r = run_cli("pipeline " + fx.model + " --calib " + fx.calib + " --data " + fx.yaml +
                     " --target jetson-nano-2gb --prune 0.5 --calib-count 6 --no-gpu --threads 1 --cpu-iters 3 --out " + out);
    ASSERT_EQ(r.code, 0) << r.out;
    for (const char* f : {"report.md", "report.json", "report.html", "charts/map_vs_latency.svg",
                          "charts/layer_times.svg", "charts/device_memory.svg", "models/pruned.onnx",
                          "models/int8_qdq.onnx", "models/int8_qdq.cache"})
        EXPECT_TRUE(yoloc::file_exists(out + "/" + f)) << f;

    nlohmann::json j = nlohmann::json::parse(slurp(out + "/report.json"));
    EXPECT_EQ(j["target_profile"]["name"], "jetson-nano-2gb");
    EXPECT_FALSE(j["gpu_stages_ran"].get<bool>());
    ASSERT_EQ(j["skipped"].size(), 1u);
    EXPECT_NE(j["skipped"][0].get<std::string>().find("--no-gpu"), std::string::npos);
    EXPECT_EQ(j["failed_stage"], "");
    ASSERT_EQ(j["variants"].size(), 3u);
    EXPECT_EQ(j["variants"][0]["name"], "FP32");
    EXPECT_EQ(j["variants"][1]["name"], "pruned");
    EXPECT_EQ(j["variants"][2]["name"], "INT8 Q/DQ");
    for (const auto& v : j["variants"]) {
        EXPECT_EQ(v["backend"], "cpu");
        EXPECT_GT(v["latency_median_ms"].get<double>(), 0.0);
        EXPECT_GE(v["latency_p99_ms"].get<double>(), v["latency_median_ms"].get<double>());
        EXPECT_TRUE(v["peak_device_bytes"].is_null());  // not measured on the CPU: no made-up figure
        EXPECT_FALSE(v["latency_method"].get<std::string>().empty());
        EXPECT_FALSE(v["map_method"].get<std::string>().empty());
    }

    // FP32 row: the library's evaluate on the input model gives the same mAP.
    {
        yoloc::DetectorOptions o;
        o.threads = 1;
        yoloc::Detector det(fx.m, o);
        auto e = yoloc::evaluate(det, yoloc::load_dataset(fx.yaml, "val"), yoloc::EvalOptions{});
        EXPECT_NEAR(j["variants"][0]["mAP50_95"].get<double>(), e.metrics.map50_95, 1e-9);
        EXPECT_GT(e.metrics.map50_95, 0.3);
    }
    // Pruned row: fewer parameters than FP32, and its eval command re-run alone gives the
    // report's figure.
    EXPECT_LT(j["variants"][1]["parameters"].get<int64_t>(), j["variants"][0]["parameters"].get<int64_t>());
    auto ev = run_cli("eval " + out + "/models/pruned.onnx --data " + fx.yaml + " --threads 1 --json");
    ASSERT_EQ(ev.code, 0) << ev.out;
    EXPECT_NEAR(json_of(ev.out)["mAP50_95"].get<double>(), j["variants"][1]["mAP50_95"].get<double>(), 1e-9);
    // Every logged stage ran and is listed with its command.
    int evals = 0;
    for (const auto& s : j["stages"]) {
        EXPECT_EQ(s["exit_code"], 0) << s["name"];
        EXPECT_TRUE(yoloc::file_exists(s["log"].get<std::string>()));
        evals += s["name"].get<std::string>().rfind("eval_", 0) == 0;
    }
    EXPECT_EQ(evals, 3);

    const std::string md = slurp(out + "/report.md");
    EXPECT_NE(md.find("| FP32 | CPU |"), std::string::npos) << md;
    EXPECT_NE(md.find("| pruned | CPU |"), std::string::npos);
    EXPECT_NE(md.find("skipped: GPU stages"), std::string::npos);
    EXPECT_NE(md.find("How each figure was measured"), std::string::npos);
    const std::string html = slurp(out + "/report.html");
    EXPECT_NE(html.find("<svg"), std::string::npos);
    EXPECT_NE(slurp(out + "/charts/map_vs_latency.svg").find("<circle"), std::string::npos);

    // --render rebuilds the same report from report.json alone.
    const std::string again = fx.dir + "/rendered";
    yoloc::make_dirs(again);
    yoloc_test::put(again + "/report.json", slurp(out + "/report.json"));
    auto rr = run_cli("pipeline --render " + again);
    ASSERT_EQ(rr.code, 0) << rr.out;
    EXPECT_EQ(slurp(again + "/report.md"), md);
    EXPECT_EQ(nlohmann::json::parse(slurp(again + "/report.json")), j);
    EXPECT_EQ(slurp(again + "/charts/map_vs_latency.svg"), slurp(out + "/charts/map_vs_latency.svg"));
}

TEST(Pipeline, FailingStageStopsAndKeepsTheEarlierReport) {
    yoloc_test::TinyYoloFixture fx("pipeline_fail");
    const std::string bad = fx.dir + "/bad_calib";
    yoloc::make_dirs(bad);
    yoloc_test::put(bad + "/broken.png", "not a picture");
    const std::string out = fx.dir + "/run";
    // The calibration "image" cannot be decoded (only a stage reads it): the FP32 stages
    // run, then prune fails.
    auto r = run_cli("pipeline " + fx.model + " --calib " + bad + " --data " + fx.yaml +
                     " --prune 0.3 --no-gpu --threads 1 --cpu-iters 2 --out " + out);
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.out.find("stage 'prune' failed"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("broken.png"), std::string::npos) << r.out;
    nlohmann::json j = nlohmann::json::parse(slurp(out + "/report.json"));
    EXPECT_EQ(j["failed_stage"], "prune");
    ASSERT_EQ(j["variants"].size(), 1u);
    EXPECT_EQ(j["variants"][0]["name"], "FP32");
    EXPECT_NE(slurp(out + "/report.md").find("stopped: stage `prune` failed"), std::string::npos);
}

TEST(Pipeline, BadRequestsFailBeforeAnyStage) {
    yoloc_test::TinyYoloFixture fx("pipeline_bad");
    const std::string base = " --calib " + fx.calib + " --data " + fx.yaml + " --no-gpu --out " + fx.dir + "/run";
    struct Case {
        std::string args, message;
    };
    for (const Case& c : std::vector<Case>{
             {fx.model + base + " --target jetson-tx9", "jetson-nano-2gb"},
             {fx.model + base + " --precision fp8", "unknown precision 'fp8'"},
             {fx.model + base + " --prune 1.5", "outside [0, 1)"},
             {fx.dir + "/missing.onnx" + base, "missing.onnx: no such file"},
         }) {
        auto r = run_cli("pipeline " + c.args);
        EXPECT_NE(r.code, 0) << c.args;
        EXPECT_NE(r.out.find(c.message), std::string::npos) << c.args << "\n" << r.out;
        EXPECT_FALSE(yoloc::file_exists(fx.dir + "/run")) << c.args;
    }
}
