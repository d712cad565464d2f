#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "core/file.h"
#include "eval/dataset.h"
#include "eval/evaluate.h"
#include "eval/map.h"
#include "eval/yaml_lite.h"
#include "onnx/onnx_io.h"
#include "test_util.h"
#include "yolo/detector.h"

using namespace yoloc;

namespace {

Detection box(int cls, float conf, float x1, float y1, float x2, float y2) {
    Detection d;
    d.class_id = cls;
    d.conf = conf;
    d.x1 = x1;
    d.y1 = y1;
    d.x2 = x2;
    d.y2 = y2;
    return d;
}

void write(const std::string& path, const std::string& text) {
    make_dirs(path_dirname(path));
    std::ofstream f(path, std::ios::binary);
    f << text;
}

void copy_file(const std::string& from, const std::string& to) {
    make_dirs(path_dirname(to));
    write_file_atomic(to, read_file(from));
}

template <typename F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

std::string run_capture(const std::string& cmd, int* rc) {
    std::string out;
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) return out;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    *rc = ::pclose(p);
    return out;
}

}  // namespace

// ---------------------------------------------------------------- YAML reader

TEST(EvalYaml, MapNamesCommentsAndQuotes) {
    YamlNode y = parse_yaml(
        "# a comment\n"
        "path: ../datasets/coco128  # trailing comment\n"
        "train: images/train2017\n"
        "val: 'images/val #1'\n"
        "nc: 3\n"
        "names:\n"
        "  0: person\n"
        "  1: \"traffic light\"\n"
        "\n"
        "  # between entries\n"
        "  2: teddy bear's\n"
        "download: |\n"
        "  from pathlib import Path  # a script\n"
        "  for x in ['a', 'b']: print(x)\n"
        "    # deeper\n"
        "test: after\n",
        "t.yaml");
    ASSERT_TRUE(y.is_map());
    EXPECT_EQ(y.get("path")->scalar, "../datasets/coco128");
    EXPECT_EQ(y.get("val")->scalar, "images/val #1");
    const YamlNode* names = y.get("names");
    ASSERT_TRUE(names && names->is_map());
    ASSERT_EQ(names->map.size(), 3u);
    EXPECT_EQ(names->map[0].first, "0");
    EXPECT_EQ(names->map[1].second.scalar, "traffic light");
    EXPECT_EQ(names->map[2].second.scalar, "teddy bear's");
    EXPECT_NE(y.get("download")->scalar.find("from pathlib import Path"), std::string::npos);
    EXPECT_EQ(y.get("test")->scalar, "after");
}

TEST(EvalYaml, ListsFlowAndBlock) {
    YamlNode y = parse_yaml(
        "names: ['a', b, \"c, d\"]\n"
        "train:\n"
        "  - images/one\n"
        "  - images/two  # second\n"
        "val:\n"
        "- x.txt\n"
        "test: [t1,\n"
        "       t2]\n"
        "m: {0: cat, 1: 'dog'}\n"
        "empty:\n"
        "nested:\n"
        "  inner:\n"
        "    - k: v\n"
        "      k2: v2\n",
        "t.yaml");
    const YamlNode* names = y.get("names");
    ASSERT_TRUE(names && names->is_list());
    ASSERT_EQ(names->list.size(), 3u);
    EXPECT_EQ(names->list[0].scalar, "a");
    EXPECT_EQ(names->list[1].scalar, "b");
    EXPECT_EQ(names->list[2].scalar, "c, d");
    ASSERT_TRUE(y.get("train")->is_list());
    EXPECT_EQ(y.get("train")->list[1].scalar, "images/two");
    ASSERT_TRUE(y.get("val")->is_list());
    EXPECT_EQ(y.get("val")->list[0].scalar, "x.txt");
    ASSERT_TRUE(y.get("test")->is_list());
    EXPECT_EQ(y.get("test")->list[1].scalar, "t2");
    ASSERT_TRUE(y.get("m")->is_map());
    EXPECT_EQ(y.get("m")->map[1].second.scalar, "dog");
    EXPECT_TRUE(y.get("empty")->is_null());
    const YamlNode* inner = y.get("nested")->get("inner");
    ASSERT_TRUE(inner && inner->is_list() && inner->list.size() == 1u);
    EXPECT_EQ(inner->list[0].get("k2")->scalar, "v2");
}

TEST(EvalYaml, ErrorsNameTheLine) {
    std::string e = error_of([] { parse_yaml("a: 1\nb: [x, y\n", "bad.yaml"); });
    EXPECT_NE(e.find("bad.yaml:2"), std::string::npos) << e;
    e = error_of([] { parse_yaml("a: 1\n   b: 2\n", "bad.yaml"); });
    EXPECT_NE(e.find("bad.yaml:2"), std::string::npos) << e;
}

// ---------------------------------------------------------------- datasets

TEST(EvalDataset, LabelPathLikeUltralytics) {
    EXPECT_EQ(label_path_for("/d/images/train/a.jpg"), "/d/labels/train/a.txt");
    EXPECT_EQ(label_path_for("/images/d/images/x.y.png"), "/images/d/labels/x.y.txt");
    EXPECT_EQ(label_path_for("/d/pics/a.jpeg"), "/d/pics/a.txt");
}

TEST(EvalDataset, BadLabelLinesWarnWithFileAndLine) {
    std::vector<std::string> warnings;
    int skipped = 0;
    auto boxes = parse_labels(
        "0 0.5 0.5 0.2 0.2\n"
        "\n"
        "3 0.5 0.5 0.2 0.2\n"         // class out of range (nc 3)
        "1 0.5 1.5 0.2 0.2\n"         // outside [0,1]
        "1 0.5 0.5 0.2\n"             // 4 columns
        "1 0.5 abc 0.2 0.2\n"         // not a number
        "2 0.1 0.1 0.05 0.05\n"
        "0 0.5 0.5 0.2 0.2\n"         // duplicate of line 1
        "-1 0.5 0.5 0.2 0.2\n",       // negative class
        "lab/a.txt", 3, &warnings, &skipped);
    ASSERT_EQ(boxes.size(), 2u);
    EXPECT_EQ(boxes[1].class_id, 2);
    EXPECT_FLOAT_EQ(boxes[1].w, 0.05f);
    EXPECT_EQ(skipped, 6);
    ASSERT_EQ(warnings.size(), 6u);
    EXPECT_EQ(warnings[0].rfind("lab/a.txt:3: ", 0), 0u) << warnings[0];
    EXPECT_EQ(warnings[1].rfind("lab/a.txt:4: ", 0), 0u) << warnings[1];
    EXPECT_EQ(warnings[2].rfind("lab/a.txt:5: ", 0), 0u) << warnings[2];
    EXPECT_EQ(warnings[3].rfind("lab/a.txt:6: ", 0), 0u) << warnings[3];
    EXPECT_EQ(warnings[4].rfind("lab/a.txt:8: ", 0), 0u) << warnings[4];
    EXPECT_EQ(warnings[5].rfind("lab/a.txt:9: ", 0), 0u) << warnings[5];
}

TEST(EvalDataset, LoadsFoldersListsAndMissingLabels) {
    REQUIRE_SHARED();
    const std::string d = yoloc_test::scratch_dir("eval_dataset");
    const std::string img = yoloc_test::shared_dir() + "/data/samples/dog.jpg";
    copy_file(img, d + "/ds/images/val/a.jpg");
    copy_file(img, d + "/ds/images/val/sub/b.jpg");
    copy_file(img, d + "/ds/images/val/c.jpg");  // no label file: no objects
    write(d + "/ds/images/val/notes.md", "not an image");
    write(d + "/ds/labels/val/a.txt", "1 0.5 0.5 0.2 0.2\n0 0.1 0.1 0.1 0.1\n");
    write(d + "/ds/labels/val/sub/b.txt", "");  // empty: no objects
    write(d + "/ds/list.txt", "./images/val/a.jpg\n" + d + "/ds/images/val/c.jpg\n");
    write(d + "/ds/data.yaml",
          "path: .\ntrain: list.txt\nval: images/val\nnames: [cat, dog]\n");
    Dataset ds = load_dataset(d + "/ds/data.yaml", "val");
    ASSERT_EQ(ds.images.size(), 3u);
    EXPECT_EQ(ds.images[0].image_path, d + "/ds/images/val/a.jpg");
    EXPECT_EQ(ds.images[1].image_path, d + "/ds/images/val/c.jpg");
    EXPECT_EQ(ds.images[2].image_path, d + "/ds/images/val/sub/b.jpg");
    EXPECT_EQ(ds.images[0].labels.size(), 2u);
    EXPECT_TRUE(ds.images[1].labels.empty());
    EXPECT_TRUE(ds.images[2].labels.empty());
    EXPECT_EQ(ds.instances(), 2);
    EXPECT_EQ(ds.names, (std::vector<std::string>{"cat", "dog"}));
    Dataset tr = load_dataset(d + "/ds/data.yaml", "train");
    ASSERT_EQ(tr.images.size(), 2u);
    EXPECT_EQ(tr.images[0].labels.size(), 2u);

    // Yaml in another folder: `path` is resolved against the yaml's folder.
    write(d + "/cfg/data.yaml",
          "path: ../ds\nval: images/val\nnc: 2\nnames:\n  0: cat\n  1: dog\n");
    EXPECT_EQ(load_dataset(d + "/cfg/data.yaml", "val").images.size(), 3u);
}

TEST(EvalDataset, ClearErrors) {
    const std::string d = yoloc_test::scratch_dir("eval_dataset_errors");
    write(d + "/a.yaml", "path: .\ntrain: images/train\nnames: [x]\n");
    std::string e = error_of([&] { load_dataset(d + "/a.yaml", "val"); });
    EXPECT_NE(e.find("no 'val' split"), std::string::npos) << e;
    EXPECT_NE(e.find("train"), std::string::npos) << e;
    e = error_of([&] { load_dataset(d + "/a.yaml", "train"); });
    EXPECT_NE(e.find("images/train"), std::string::npos) << e;
    EXPECT_NE(e.find("not an existing folder"), std::string::npos) << e;
    e = error_of([&] { load_dataset(d + "/missing.yaml", "val"); });
    EXPECT_NE(e.find("not found"), std::string::npos) << e;
    write(d + "/b.yaml", "val: x\nnc: 3\nnames: [a, b]\n");
    e = error_of([&] { load_data_config(d + "/b.yaml"); });
    EXPECT_NE(e.find("nc is 3"), std::string::npos) << e;
    write(d + "/c.yaml", "val: x\nnames:\n  0: a\n  2: c\n");
    e = error_of([&] { load_data_config(d + "/c.yaml"); });
    EXPECT_NE(e.find("missing 1"), std::string::npos) << e;
}

// ---------------------------------------------------------------- AP math

TEST(EvalMap, NpInterpLikeNumpy) {
    // np.interp([0, .5, 1, 2, -1], [0, 1, 1, 2], [5, 6, 7, 8], left=-1, right=-2) == [5, 5.5, 7, 8, -1]
    const std::vector<double> xp{0, 1, 1, 2}, fp{5, 6, 7, 8};
    EXPECT_DOUBLE_EQ(np_interp(0, xp, fp, -1, -2), 5);
    EXPECT_DOUBLE_EQ(np_interp(0.5, xp, fp, -1, -2), 5.5);
    EXPECT_DOUBLE_EQ(np_interp(1, xp, fp, -1, -2), 7);
    EXPECT_DOUBLE_EQ(np_interp(2, xp, fp, -1, -2), 8);
    EXPECT_DOUBLE_EQ(np_interp(-1, xp, fp, -1, -2), -1);
    EXPECT_DOUBLE_EQ(np_interp(3, xp, fp, -1, -2), -2);
}

TEST(EvalMap, ComputeApByHand) {
    // Values checked with Ultralytics' compute_ap in numpy. A perfect detector scores
    // 0.995, not 1: the envelope ends at precision 0 at recall 1, and the last
    // trapezoid (0.99..1.0) averages 1 and 0.
    EXPECT_NEAR(compute_ap({1.0}, {1.0}), 0.995, 1e-12);
    // One false positive ranked before the only true positive: precision 0.5 everywhere.
    EXPECT_NEAR(compute_ap({0.0, 1.0}, {0.0, 0.5}), 0.4975, 1e-12);
    // TP, FP, TP with 2 labels.
    EXPECT_NEAR(compute_ap({0.5, 0.5, 1.0}, {1.0, 0.5, 2.0 / 3}), 0.8283333333333331, 1e-12);
}

TEST(EvalMap, PerfectPredictions) {
    MapAccumulator acc;
    acc.add_image({box(0, 0.9f, 10, 10, 50, 50), box(1, 0.8f, 60, 60, 90, 90)},
                  {box(0, 1, 10, 10, 50, 50), box(1, 1, 60, 60, 90, 90)});
    acc.add_image({box(0, 0.7f, 0, 0, 20, 30)}, {box(0, 1, 0, 0, 20, 30)});
    MapResult r = acc.compute();
    EXPECT_EQ(r.images, 2);
    EXPECT_EQ(r.instances, 3);
    ASSERT_EQ(r.per_class.size(), 2u);
    EXPECT_EQ(r.per_class[0].images, 2);
    EXPECT_EQ(r.per_class[0].instances, 2);
    EXPECT_NEAR(r.map50, 0.995, 1e-9);
    EXPECT_NEAR(r.map50_95, 0.995, 1e-9);
    EXPECT_NEAR(r.precision, 1.0, 1e-9);
    EXPECT_NEAR(r.recall, 1.0, 1e-6);
}

TEST(EvalMap, FalsePositiveRankedFirst) {
    MapAccumulator acc;
    acc.add_image({box(0, 0.9f, 200, 200, 240, 240), box(0, 0.8f, 10, 10, 50, 50)}, {box(0, 1, 10, 10, 50, 50)});
    MapResult r = acc.compute();
    EXPECT_NEAR(r.map50, 0.4975, 1e-9);
    EXPECT_NEAR(r.map50_95, 0.4975, 1e-9);
}

TEST(EvalMap, IouThresholdsSplitMap50From5095) {
    // IoU of the prediction with the label is 0.78: a TP at 0.50..0.75 (6 thresholds), FP above.
    MapAccumulator acc;
    acc.add_image({box(0, 0.9f, 0, 0, 100, 78)}, {box(0, 1, 0, 0, 100, 100)});
    MapResult r = acc.compute();
    EXPECT_NEAR(r.map50, 0.995, 1e-9);
    EXPECT_NEAR(r.map50_95, 0.995 * 6 / 10, 1e-9);
}

TEST(EvalMap, MissingClassesAndUnlabelledClasses) {
    MapAccumulator acc;
    // Class 0 perfect; class 1 predicted but never labelled (left out of the mean);
    // class 2 labelled but never predicted (AP 0, counted).
    acc.add_image({box(0, 0.9f, 10, 10, 50, 50), box(1, 0.95f, 100, 100, 150, 150)},
                  {box(0, 1, 10, 10, 50, 50), box(2, 1, 200, 200, 220, 220)});
    MapResult r = acc.compute();
    ASSERT_EQ(r.per_class.size(), 2u);
    EXPECT_EQ(r.per_class[0].class_id, 0);
    EXPECT_EQ(r.per_class[1].class_id, 2);
    EXPECT_NEAR(r.per_class[1].ap50, 0.0, 1e-12);
    EXPECT_NEAR(r.map50, 0.995 / 2, 1e-9);
}

TEST(EvalMap, MatchingUniquePerPredictionThenPerLabel) {
    // Two predictions on one label: the first (higher confidence) wins even with the
    // lower IoU, as in Ultralytics (unique per prediction, then first per label in
    // prediction order).
    const Detection label = box(0, 1, 0, 0, 100, 100);
    std::vector<Detection> preds{box(0, 0.9f, 0, 0, 100, 70), box(0, 0.8f, 0, 0, 100, 95)};
    auto c = match_predictions(preds, {label});
    EXPECT_TRUE(c[0][0]);
    EXPECT_FALSE(c[1][0]);
    // At IoU 0.75 only the second one overlaps enough.
    EXPECT_FALSE(c[0][5]);
    EXPECT_TRUE(c[1][5]);
    // Other classes never match.
    auto c2 = match_predictions({box(1, 0.9f, 0, 0, 100, 100)}, {label});
    EXPECT_FALSE(c2[0][0]);
    // One prediction, two labels: it matches one of them only.
    auto c3 = match_predictions({box(0, 0.9f, 0, 0, 100, 100)}, {label, box(0, 1, 0, 0, 100, 90)});
    EXPECT_TRUE(c3[0][0]);
}

TEST(EvalMap, CocoImageIdsAndCategories) {
    EXPECT_EQ(coco_image_id("/a/000000000009.jpg", 7), 9);
    EXPECT_EQ(coco_image_id("/a/img_12.png", 7), 12);
    EXPECT_EQ(coco_image_id("/a/dog.jpg", 7), 7);
    ImagePredictions p;
    p.image_path = "/x/000000000042.jpg";
    p.dets = {box(79, 0.5f, 1, 2, 11, 22)};
    nlohmann::json j = coco_results_json({p}, coco80_names());
    ASSERT_EQ(j.size(), 1u);
    EXPECT_EQ(j[0]["image_id"], 42);
    EXPECT_EQ(j[0]["category_id"], 90);  // toothbrush
    EXPECT_DOUBLE_EQ(j[0]["bbox"][2].get<double>(), 10.0);
    EXPECT_DOUBLE_EQ(j[0]["bbox"][3].get<double>(), 20.0);
    j = coco_results_json({p}, {"a", "b"});
    EXPECT_EQ(j[0]["category_id"], 79);
}

// ---------------------------------------------------------------- the real model

TEST(EvalReference, Coco128MatchesUltralytics) {
    REQUIRE_SHARED();
    const std::string sh = yoloc_test::shared_dir();
    Dataset ds = load_dataset(sh + "/data/coco128/data.yaml", "val");
    EXPECT_EQ(ds.images.size(), 128u);
    EXPECT_EQ(ds.instances(), 929);
    EXPECT_EQ(ds.skipped_label_lines, 0);
    DetectorOptions dopt;  // fast executor, batch 1
    dopt.threads = 1;      // two single-threaded workers, as the CLI runs on 2 cores
    Detector det(sh + "/models/yolov8n_coco.onnx", dopt), det2(det.model(), dopt);
    EvalOptions eo;  // conf 0.001, NMS IoU 0.7, max 300 detections
    EvalResult r = evaluate({&det, &det2}, ds, eo);
    std::printf("coco128: mAP50 %.4f mAP50-95 %.4f P %.4f R %.4f in %.1f s\n", r.metrics.map50, r.metrics.map50_95,
                r.metrics.precision, r.metrics.recall, r.seconds);
    // External reference figures (Ultralytics val of this model on coco128).
    EXPECT_NEAR(r.metrics.map50, 0.612, 0.003);
    EXPECT_NEAR(r.metrics.map50_95, 0.459, 0.003);
    EXPECT_EQ(r.metrics.instances, 929);
    EXPECT_EQ(r.metrics.per_class.size(), 71u);
}

// YOLO11n (C2PSA attention, C3k2 blocks) against Ultralytics' own `val` of the same ONNX
// file on coco128, whose figures ../shared/models/yolo11n_coco.json records with the call.
TEST(EvalReference, Yolo11nCoco128MatchesUltralytics) {
    REQUIRE_SHARED();
    const std::string sh = yoloc_test::shared_dir();
    const auto meta = nlohmann::json::parse(read_file(sh + "/models/yolo11n_coco.json"));
    const auto& want = meta.at("ultralytics_val").at("coco128");
    Dataset ds = load_dataset(sh + "/data/coco128/data.yaml", "val");
    DetectorOptions dopt;
    dopt.threads = 1;
    Detector det(sh + "/models/yolo11n_coco.onnx", dopt), det2(det.model(), dopt);
    EvalResult r = evaluate({&det, &det2}, ds, EvalOptions{});
    std::printf("yolo11n coco128: mAP50 %.4f (Ultralytics %.4f) mAP50-95 %.4f (Ultralytics %.4f) in %.1f s\n",
                r.metrics.map50, want.at("mAP50").get<double>(), r.metrics.map50_95,
                want.at("mAP50_95").get<double>(), r.seconds);
    EXPECT_NEAR(r.metrics.map50, want.at("mAP50").get<double>(), 0.003);
    EXPECT_NEAR(r.metrics.map50_95, want.at("mAP50_95").get<double>(), 0.003);
}

TEST(EvalCompare, SelfIsPerfectPerturbedIsNot) {
    REQUIRE_SHARED();
    const std::string sh = yoloc_test::shared_dir();
    const std::vector<std::string> images{sh + "/data/samples/dog.jpg", sh + "/data/samples/horses.jpg"};
    Model m = load_onnx(sh + "/models/yolov8n_coco.onnx");
    Detector ref(m);
    CompareOptions co;
    CompareResult same = compare_models(ref, ref, images, co);
    EXPECT_GT(same.ref_detections, 0);
    EXPECT_NEAR(same.metrics.map50_95, 0.995, 1e-9);  // the protocol's maximum
    EXPECT_EQ(same.max_abs_diff, 0.0);
    EXPECT_EQ(same.mean_abs_diff, 0.0);

    // A separately loaded copy (own buffers) with one conv's weights scaled.
    Model p = load_onnx(sh + "/models/yolov8n_coco.onnx");
    int scaled = 0;
    for (const Node& n : p.graph.nodes) {
        if (n.op_type != "Conv" || n.inputs.size() < 2 || !p.graph.is_initializer(n.inputs[1])) continue;
        if (++scaled < 10) continue;  // a conv in the backbone, past the stem
        Tensor w = p.graph.initializers.at(n.inputs[1]).clone();
        for (int64_t i = 0; i < w.numel(); ++i) w.data<float>()[i] *= 0.7f;
        p.graph.initializers[n.inputs[1]] = w;
        break;
    }
    ASSERT_GE(scaled, 10);
    Detector cand(p);
    CompareResult diff = compare_models(cand, ref, images, co);
    std::printf("perturbed: mAP50-95 %.4f, max |diff| %.4g, mean %.4g\n", diff.metrics.map50_95, diff.max_abs_diff,
                diff.mean_abs_diff);
    EXPECT_LT(diff.metrics.map50_95, 0.99);
    EXPECT_GT(diff.max_abs_diff, 0.0);
    EXPECT_GT(diff.mean_abs_diff, 0.0);
}

TEST(EvalCli, JsonAndSaveJson) {
    REQUIRE_SHARED();
    const std::string sh = yoloc_test::shared_dir();
    const std::string d = yoloc_test::scratch_dir("eval_cli");
    // Two coco128 images with their labels, one bad label line added.
    for (const char* id : {"000000000009", "000000000025"}) {
        copy_file(sh + "/data/coco128/images/train2017/" + std::string(id) + ".jpg",
                  d + "/ds/images/val/" + id + ".jpg");
        copy_file(sh + "/data/coco128/labels/train2017/" + std::string(id) + ".txt",
                  d + "/ds/labels/val/" + id + ".txt");
    }
    write(d + "/ds/labels/val/000000000025.txt",
          read_file(d + "/ds/labels/val/000000000025.txt") + "99 0.5 0.5 0.1 0.1\n");
    std::string yaml = "path: .\nval: images/val\nnames:\n";
    for (size_t i = 0; i < coco80_names().size(); ++i)
        yaml += "  " + std::to_string(i) + ": " + coco80_names()[i] + "\n";
    write(d + "/ds/data.yaml", yaml);
    int rc = -1;
    std::string out = run_capture(std::string(YOLOC_BINARY) + " eval " + sh + "/models/yolov8n_coco.onnx --data " + d +
                                      "/ds/data.yaml --json --save-json " + d + "/preds.json 2>" + d + "/err.txt",
                                  &rc);
    ASSERT_EQ(rc, 0) << out << read_file(d + "/err.txt");
    nlohmann::json j = nlohmann::json::parse(out);
    for (const char* k : {"mAP50", "mAP50_95", "precision", "recall", "images", "instances", "per_class",
                          "skipped_label_lines", "seconds", "ms_per_image"})
        EXPECT_TRUE(j.contains(k)) << k;
    EXPECT_EQ(j["images"], 2);
    EXPECT_EQ(j["skipped_label_lines"], 1);
    EXPECT_TRUE(j["per_class"].is_array());
    EXPECT_GT(j["mAP50"].get<double>(), 0.3);
    EXPECT_NE(read_file(d + "/err.txt").find("000000000025.txt:"), std::string::npos);
    nlohmann::json preds = nlohmann::json::parse(read_file(d + "/preds.json"));
    ASSERT_TRUE(preds.is_array());
    ASSERT_FALSE(preds.empty());
    EXPECT_TRUE(preds[0]["image_id"] == 9 || preds[0]["image_id"] == 25);
    EXPECT_EQ(preds[0]["bbox"].size(), 4u);

    // --compare of a model with itself on the same images.
    out = run_capture(std::string(YOLOC_BINARY) + " eval " + sh + "/models/yolov8n_coco.onnx --compare " + sh +
                          "/models/yolov8n_coco.onnx --images " + d + "/ds/images/val --json 2>/dev/null",
                      &rc);
    ASSERT_EQ(rc, 0) << out;
    j = nlohmann::json::parse(out);
    EXPECT_NEAR(j["mAP50_95"].get<double>(), 0.995, 1e-9);
    EXPECT_EQ(j["max_abs_diff"].get<double>(), 0.0);

    // Missing --data is a usage error.
    run_capture(std::string(YOLOC_BINARY) + " eval " + sh + "/models/yolov8n_coco.onnx 2>/dev/null", &rc);
    EXPECT_NE(rc, 0);
}
