// The CLI as a user runs it: real model, real photos, reference outputs, bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/file.h"
#include "core/npy.h"
#include "test_util.h"

using namespace yoloc;

namespace {

using Result = yoloc_test::CliResult;
Result yoloc_cmd(const std::string& args) { return yoloc_test::run_cli(args); }

std::string shared(const std::string& rel) { return yoloc_test::shared_dir() + "/" + rel; }

}  // namespace

TEST(Cli, DetectOnSamplePhotosEqualsReference) {
    REQUIRE_SHARED();
    std::string out = yoloc_test::scratch_dir("cli_detect");
    Result r = yoloc_cmd("detect " + shared("models/yolov8n_coco.onnx") + " " + shared("data/samples") + " --out " + out);
    ASSERT_EQ(r.code, 0) << r.out;
    for (const char* name : {"dog", "eagle", "giraffe", "horses", "kite", "person", "scream"}) {
        auto ref = nlohmann::json::parse(read_file(shared(std::string("data/reference/") + name + ".json")));
        auto got = nlohmann::json::parse(read_file(out + "/" + name + ".json"));
        EXPECT_TRUE(file_exists(out + "/" + name + ".jpg")) << name;
        const auto& rd = ref["detections"];
        const auto& gd = got["detections"];
        // Match each reference detection to one of ours (same class, box within 1 px).
        std::vector<bool> used(gd.size(), false);
        for (const auto& d : rd) {
            float conf = d["conf"].get<float>();
            bool near_threshold = std::fabs(conf - 0.25f) < 1e-3f;
            bool found = false;
            for (size_t k = 0; k < gd.size() && !found; ++k) {
                if (used[k] || gd[k]["class_id"] != d["class_id"]) continue;
                bool close = std::fabs(gd[k]["conf"].get<float>() - conf) <= 1e-3f;
                for (int c = 0; c < 4; ++c)
                    close = close && std::fabs(gd[k]["box_xyxy"][c].get<float>() - d["box_xyxy"][c].get<float>()) <= 1.0f;
                if (close) used[k] = found = true;
            }
            EXPECT_TRUE(found || near_threshold) << name << ": reference detection " << d.dump() << " not found";
        }
        for (size_t k = 0; k < gd.size(); ++k)
            EXPECT_TRUE(used[k] || std::fabs(gd[k]["conf"].get<float>() - 0.25f) < 1e-3f)
                << name << ": extra detection " << gd[k].dump();
    }
}

TEST(Cli, RunSavesRawOutputMatchingReferenceForBothExecutors) {
    REQUIRE_SHARED();
    std::string out = yoloc_test::scratch_dir("cli_run");
    for (const char* img : {"dog", "person"}) {
        Tensor ref = load_npy(shared(std::string("data/reference/") + img + ".npy"));
        for (const char* backend : {"fast", "reference"}) {
            std::string npy = out + "/" + img + "_" + backend + ".npy";
            Result r = yoloc_cmd("run " + shared("models/yolov8n_coco.onnx") + " --image " +
                                 shared(std::string("data/samples/") + img + ".jpg") + " --backend " + backend +
                                 " --save " + npy);
            ASSERT_EQ(r.code, 0) << r.out;
            Tensor y = load_npy(npy);
            ASSERT_EQ(y.numel(), ref.numel());
            double box = 0, score = 0;
            for (int64_t i = 0; i < ref.numel(); ++i) {
                double d = std::fabs(double(y.data<float>()[i]) - double(ref.data<float>()[i]));
                (i < 4 * 8400 ? box : score) = std::max(i < 4 * 8400 ? box : score, d);
            }
            EXPECT_LE(box, 1e-2) << img << " " << backend;
            EXPECT_LE(score, 1e-4) << img << " " << backend;
        }
    }
}

TEST(Cli, InspectReportsParametersFlopsAndC2fBlocks) {
    REQUIRE_SHARED();
    Result r = yoloc_cmd("inspect --json " + shared("models/yolov8n_coco.onnx"));
    ASSERT_EQ(r.code, 0) << r.out;
    auto j = nlohmann::json::parse(r.out.substr(r.out.find('{')));
    EXPECT_EQ(j["parameters"], 3151904);
    EXPECT_NEAR(j["gflops"].get<double>(), 8.7, 0.05);
    EXPECT_EQ(j["architecture"]["scale"], "n");
    EXPECT_EQ(j["architecture"]["c2f"].size(), 8u);
    EXPECT_EQ(j["ops"]["Conv"], 64);
}

TEST(Cli, GeneratedSevenClassModelHasUltralyticsParameterCount) {
    std::string out = yoloc_test::scratch_dir("cli_generate");
    Result g = yoloc_cmd("generate --scale n --nc 7 -o " + out + "/n7.onnx");
    ASSERT_EQ(g.code, 0) << g.out;
    Result r = yoloc_cmd("inspect --json " + out + "/n7.onnx");
    ASSERT_EQ(r.code, 0) << r.out;
    auto j = nlohmann::json::parse(r.out.substr(r.out.find('{')));
    EXPECT_EQ(j["parameters"], 3007013);
    EXPECT_EQ(j["architecture"]["nc"], 7);
}

TEST(Cli, BenchJsonHasMedian) {
    std::string out = yoloc_test::scratch_dir("cli_bench");
    ASSERT_EQ(yoloc_cmd("generate --scale n --imgsz 320 -o " + out + "/m.onnx").code, 0);
    Result r = yoloc_cmd("bench " + out + "/m.onnx --backend cpu --threads 1 --iters 3 --warmup 1 --json");
    ASSERT_EQ(r.code, 0) << r.out;
    auto j = nlohmann::json::parse(r.out.substr(r.out.find('{')));
    EXPECT_GT(j["median_ms"].get<double>(), 0.0);
    EXPECT_LE(j["min_ms"].get<double>(), j["median_ms"].get<double>());
    EXPECT_LE(j["median_ms"].get<double>(), j["p99_ms"].get<double>());
}

// Every bad input: one `error:` line naming the thing, exit code 1 (not a signal).
void expect_clean_error(const Result& r, const std::string& must_mention) {
    EXPECT_FALSE(r.signaled) << r.out;
    EXPECT_EQ(r.code, 1) << r.out;
    EXPECT_NE(r.out.find("error: "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(must_mention), std::string::npos) << r.out;
}

TEST(Cli, TruncatedModelFailsCleanlyAndWritesNothing) {
    REQUIRE_SHARED();
    std::string dir = yoloc_test::scratch_dir("cli_truncated");
    std::string bytes = read_file(shared("models/yolov8n_coco.onnx"));
    write_file_atomic(dir + "/cut.onnx", bytes.substr(0, 100000));
    Result r = yoloc_cmd("detect " + dir + "/cut.onnx " + shared("data/samples/dog.jpg") + " --out " + dir + "/out");
    expect_clean_error(r, "cut.onnx");
    EXPECT_FALSE(file_exists(dir + "/out/dog.json"));
}

TEST(Cli, RandomBytesModelFailsCleanly) {
    std::string dir = yoloc_test::scratch_dir("cli_random");
    std::string junk;
    for (int i = 0; i < 1000; ++i) junk.push_back(char((i * 7919) & 0xff));
    write_file_atomic(dir + "/junk.onnx", junk);
    expect_clean_error(yoloc_cmd("inspect " + dir + "/junk.onnx"), "junk.onnx");
    expect_clean_error(yoloc_cmd("run " + dir + "/missing.onnx --image x.jpg"), "x.jpg");
}

TEST(Cli, MissingAndNonImageFilesAreReportedAndTheRestIsWritten) {
    REQUIRE_SHARED();
    std::string dir = yoloc_test::scratch_dir("cli_badimages");
    write_file_atomic(dir + "/notes.jpg", "this is not a jpeg");
    Result r = yoloc_cmd("detect " + shared("models/yolov8n_coco.onnx") + " " + shared("data/samples/dog.jpg") + " " +
                         dir + "/notes.jpg " + dir + "/absent.png --out " + dir + "/out");
    expect_clean_error(r, "notes.jpg");
    EXPECT_NE(r.out.find("absent.png"), std::string::npos) << r.out;
    EXPECT_TRUE(file_exists(dir + "/out/dog.json"));
    EXPECT_FALSE(file_exists(dir + "/out/notes.json"));
}

TEST(Cli, UnsupportedOpIsNamed) {
    std::string dir = yoloc_test::scratch_dir("cli_badop");
    ASSERT_EQ(yoloc_cmd("generate --scale n --imgsz 64 -o " + dir + "/m.onnx").code, 0);
    // Rename the first Sigmoid op_type (NodeProto field 4: tag 0x22, length 7) to an
    // unknown op of the same length, so the file stays valid protobuf.
    std::string bytes = read_file(dir + "/m.onnx");
    size_t at = bytes.find(std::string("\x22\x07Sigmoid"));
    ASSERT_NE(at, std::string::npos);
    bytes.replace(at + 2, 7, "Sigmaid");
    write_file_atomic(dir + "/bad.onnx", bytes);
    expect_clean_error(yoloc_cmd("bench " + dir + "/bad.onnx --iters 1"), "Sigmaid");
}

TEST(Cli, HelpWorksForEverySubcommand) {
    // The subcommands `yoloc --help` lists, so that a new one is covered without editing this test.
    Result top = yoloc_cmd("--help");
    ASSERT_EQ(top.code, 0) << top.out;
    std::vector<std::string> subs;
    {
        std::istringstream is(top.out);
        std::string line;
        bool in_list = false;
        while (std::getline(is, line)) {
            if (line.rfind("Subcommands:", 0) == 0) in_list = true;
            else if (in_list && line.size() > 2 && line[0] == ' ' && line[2] != ' ')
                subs.push_back(line.substr(2, line.find(' ', 2) - 2));
        }
    }
    EXPECT_GE(subs.size(), 12u) << top.out;
    // Numeric options show their range beside them (tools/yoloc/option_rules.h), in every command.
    const std::map<std::string, std::string> ranges = {
        {"--threads", "0 (all cores) or 1.."}, {"--bench-threads", "0 (all cores) or 1.."},
        {"--batch", "1..4096"},                {"--imgsz", "multiple of 32 in 32..4096"},
        {"--conf", "in [0, 1]"},               {"--iou", "in [0, 1]"},
        {"--ref-conf", "in [0, 1]"},           {"--max-det", "1 or more"},
        {"--calib-count", " or more"},              {"--prune", "in [0, 1)"},
        {"--ratio", "in [0, 1)"},              {"--iters", "1 - "}};
    int ranged = 0;
    for (const auto& c : subs) {
        Result r = yoloc_cmd(c + " --help");
        EXPECT_EQ(r.code, 0) << c << r.out;
        EXPECT_NE(r.out.find("Usage:"), std::string::npos) << c << r.out;
        std::istringstream is(r.out);
        std::string line;
        int options = 0;
        while (std::getline(is, line)) {
            if (line.rfind("  -", 0) != 0) continue;
            std::string names = line.substr(2, line.find(' ', 2) - 2);
            if (names == "-h,--help") continue;
            ++options;
            std::istringstream ns(names);
            std::string name;
            while (std::getline(ns, name, ',')) {
                auto it = ranges.find(name);
                if (it == ranges.end()) continue;
                ++ranged;
                EXPECT_NE(line.find(it->second), std::string::npos) << c << ": " << line;
            }
        }
        EXPECT_GT(options, 0) << c << " --help lists no option:\n" << r.out;
    }
    EXPECT_GE(ranged, 20) << "numeric options found in the help texts";
}
