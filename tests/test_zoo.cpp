// Every stage on every detector the current Ultralytics exporter writes
// (../shared/models/zoo: YOLOv8, YOLOv5u, YOLO11, YOLO26, end-to-end; segment and pose
// for the refusals), through the CLI as a user runs it. The zoo's weights are random:
// these tests check that each stage takes each graph, not accuracy.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/file.h"
#include "engine/engine_file.h"
#include "engine/plan.h"
#include "onnx/onnx_io.h"
#include "test_util.h"

using namespace yoloc;

namespace {

const char* const kDetect[] = {"yolov8z.onnx",  "yolov8z_nc7.onnx", "yolov8z_dynamic.onnx", "yolov8z_op12_raw.onnx",
                               "yolov5uz.onnx", "yolo11z.onnx",     "yolo26z.onnx",         "yolo26z_end2end.onnx"};

std::string zoo(const std::string& f) { return yoloc_test::shared_dir() + "/models/zoo/" + f; }
std::string sample(const std::string& f) { return yoloc_test::shared_dir() + "/data/samples/" + f; }

yoloc_test::CliResult cli(const std::string& args) { return yoloc_test::run_cli(args); }

// A few coco128 images as a calibration folder (links: nothing copied).
std::string calib_folder(const std::string& dir, int count) {
    const std::string src = yoloc_test::shared_dir() + "/data/coco128/images/train2017";
    const std::string d = dir + "/calib";
    make_dirs(d);
    int n = 0;
    for (const auto& f : list_dir(src)) {
        if (n++ == count) break;
        const std::string cmd = "ln -sf '" + path_join(src, f) + "' '" + d + "/'";
        if (std::system(cmd.c_str()) != 0) ADD_FAILURE() << cmd;
    }
    return d;
}

}  // namespace

TEST(ZooStages, DetectRunsEveryDetectModelAndRefusesSegmentAndPose) {
    REQUIRE_SHARED();
    const std::string dir = yoloc_test::scratch_dir("zoo_detect");
    for (const char* m : kDetect) {
        SCOPED_TRACE(m);
        const std::string out = dir + "/" + path_stem(m);
        auto r = cli("detect " + zoo(m) + " " + sample("dog.jpg") + " --conf 0.01 --out " + out);
        ASSERT_EQ(r.code, 0) << r.out;
        const auto j = nlohmann::json::parse(read_file(out + "/dog.json"));
        EXPECT_EQ(j["image"], "dog.jpg");
        EXPECT_TRUE(j["detections"].is_array());
        for (const auto& d : j["detections"]) {  // boxes inside the photo, scores above the threshold
            EXPECT_GT(d["conf"].get<double>(), 0.01);
            EXPECT_GE(d["box_xyxy"][0].get<double>(), 0.0);
            EXPECT_LE(d["box_xyxy"][2].get<double>(), 768.0);
        }
    }
    for (const char* m : {"yolov8z_seg.onnx", "yolov8z_pose.onnx"}) {
        SCOPED_TRACE(m);
        const std::string out = dir + "/" + path_stem(m);
        auto r = cli("detect " + zoo(m) + " " + sample("dog.jpg") + " --out " + out);
        EXPECT_EQ(r.code, 1) << r.out;
        EXPECT_NE(r.out.find(std::string(m).find("seg") != std::string::npos ? "segment model" : "pose model"),
                  std::string::npos)
            << r.out;
        EXPECT_FALSE(file_exists(out)) << "nothing is written for a refused model";
    }
}

TEST(ZooStages, EndToEndDetectionsAreTheModelsOwnRows) {
    REQUIRE_SHARED();
    // No NMS for an end-to-end head: detect keeps the rows the model's top-k wrote, in order.
    const std::string dir = yoloc_test::scratch_dir("zoo_e2e");
    auto r = cli("run " + zoo("yolo26z_end2end.onnx") + " --image " + sample("dog.jpg") + " --save " + dir +
                 "/raw.npy --backend reference");
    ASSERT_EQ(r.code, 0) << r.out;
    r = cli("detect " + zoo("yolo26z_end2end.onnx") + " " + sample("dog.jpg") + " --conf 0 --max-det 300 --out " + dir);
    ASSERT_EQ(r.code, 0) << r.out;
    const auto j = nlohmann::json::parse(read_file(dir + "/dog.json"));
    // Every row whose score is above 0 (random weights: all of them) is a detection.
    EXPECT_EQ(j["detections"].size(), 300u);
}

TEST(ZooStages, PruneBottleneckScopeThinsEveryFamily) {
    REQUIRE_SHARED();
    const std::string dir = yoloc_test::scratch_dir("zoo_prune");
    for (const char* m : {"yolov8z.onnx", "yolov5uz.onnx", "yolo11z.onnx", "yolo26z.onnx", "yolo26z_end2end.onnx"}) {
        SCOPED_TRACE(m);
        const std::string out = dir + "/" + path_stem(m) + "_p.onnx";
        auto r = cli("prune " + zoo(m) + " --scope bottleneck --ratio 0.5 --round-to 1 --json -o " + out);
        ASSERT_EQ(r.code, 0) << r.out;
        const auto j = nlohmann::json::parse(r.out.substr(r.out.find('{')));
        EXPECT_LT(j["params_after"].get<int64_t>(), j["params_before"].get<int64_t>());
        // The pruned model still runs and keeps its outputs' shapes.
        const Model a = load_onnx(zoo(m)), b = load_onnx(out);
        ASSERT_EQ(a.graph.outputs.size(), b.graph.outputs.size());
        auto run = cli("run " + out + " --image " + sample("dog.jpg"));
        EXPECT_EQ(run.code, 0) << run.out;
    }
    // "c2f" is the same scope under YOLOv8's name.
    auto r = cli("prune " + zoo("yolo11z.onnx") + " --scope c2f --ratio 0.5 --round-to 1 -o " + dir + "/c2f.onnx");
    EXPECT_EQ(r.code, 0) << r.out;
}

TEST(ZooStages, QuantizedModelsPassTheTensorRtRulesAndRun) {
    REQUIRE_SHARED();
    const std::string dir = yoloc_test::scratch_dir("zoo_quant");
    const std::string calib = calib_folder(dir, 4);
    for (const char* m : kDetect) {
        SCOPED_TRACE(m);
        if (std::string(m) == "yolov8z_op12_raw.onnx") continue;  // opset 12: quantize refuses (tested below)
        const std::string q = dir + "/" + path_stem(m) + "_q.onnx";
        // --keep-fp 0: no sensitivity analysis (one model per layer; QuantReal.* test it on
        // the real model), which is minutes per graph on 2 loaded cores.
        auto r = cli("quantize " + zoo(m) + " --calib " + calib + " --keep-fp 0 -o " + q);
        ASSERT_EQ(r.code, 0) << r.out;
        auto c = cli("check " + q + " --target tensorrt");
        EXPECT_EQ(c.code, 0) << c.out;
        auto run = cli("run " + q + " --image " + sample("dog.jpg"));
        EXPECT_EQ(run.code, 0) << run.out;
    }
    auto r = cli("quantize " + zoo("yolov8z_op12_raw.onnx") + " --calib " + calib + " -o " + dir + "/op12.onnx");
    EXPECT_EQ(r.code, 1) << r.out;
    EXPECT_NE(r.out.find("opset"), std::string::npos) << r.out;
}

TEST(ZooStages, ExportBundlesEveryDetectModel) {
    REQUIRE_SHARED();
    const std::string dir = yoloc_test::scratch_dir("zoo_export");
    for (const char* m : kDetect) {
        SCOPED_TRACE(m);
        const std::string b = dir + "/" + path_stem(m);
        auto r = cli("export " + zoo(m) + " --target orin-nano-8gb -o " + b);
        if (std::string(m) == "yolov8z_dynamic.onnx") {
            // A bundle is for one input size: a symbolic one is refused, naming the way out.
            EXPECT_EQ(r.code, 1) << r.out;
            EXPECT_NE(r.out.find("fixed imgsz"), std::string::npos) << r.out;
            EXPECT_FALSE(file_exists(b + "/bundle.json"));
            continue;
        }
        ASSERT_EQ(r.code, 0) << r.out;
        EXPECT_TRUE(file_exists(b + "/bundle.json"));
        EXPECT_TRUE(file_exists(b + "/build.sh"));
    }
}

// Every zoo graph (segment and pose included) lowers to a GPU plan that validates, in
// every precision, and survives the engine file's round trip.
TEST(ZooStages, EveryModelLowersToAValidGpuPlan) {
    REQUIRE_SHARED();
    for (const char* m : {"yolov8z.onnx", "yolov8z_dynamic.onnx", "yolov8z_op12_raw.onnx", "yolov5uz.onnx",
                          "yolo11z.onnx", "yolo26z.onnx", "yolo26z_end2end.onnx", "yolov8z_seg.onnx",
                          "yolov8z_pose.onnx"}) {
        SCOPED_TRACE(m);
        const Model model = load_onnx(zoo(m));
        for (auto p : {engine::Precision::FP32, engine::Precision::FP16}) {
            engine::PlanOptions o;
            o.precision = p;
            o.imgsz = 640;  // the dynamic export's anchors were baked at 640 (Sub [1,2,8400])
            engine::Plan plan = engine::build_plan(model, o);
            EXPECT_GT(plan.stats.convs, 0);
            engine::EngineFile e;
            e.plan = plan;
            e.info.format_version = engine::kEngineFormatVersion;
            e.info.yoloc_version = engine::yoloc_version();
            const engine::EngineFile back = engine::parse_engine(engine::serialize_engine(e), "plan");
            EXPECT_EQ(back.plan.ops.size(), plan.ops.size());
            EXPECT_EQ(back.plan.stats.generic_ops, plan.stats.generic_ops);
        }
    }
}
