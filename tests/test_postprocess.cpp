#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "core/npy.h"
#include "test_util.h"
#include "yolo/postprocess.h"

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

struct RefDetection {
    int class_id;
    float conf;
    double box[4];
};

// ../shared/data/reference/README.md's post-processing, written from its text in double
// precision (not yoloc's code): best class per anchor, score > 0.25, cx,cy,w,h -> corners,
// class-wise greedy NMS (IoU > 0.45 suppressed, by descending score), at most 300, then
// minus the padding, divided by the letterbox scale, clipped to the image.
std::vector<RefDetection> decode_as_documented(const float* y, int rows, int anchors, double scale, double left,
                                               double top, double w, double h) {
    std::vector<RefDetection> cand;
    for (int a = 0; a < anchors; ++a) {
        int best = 0;
        for (int c = 1; c < rows - 4; ++c)
            if (y[size_t(4 + c) * anchors + a] > y[size_t(4 + best) * anchors + a]) best = c;
        const float score = y[size_t(4 + best) * anchors + a];
        if (!(score > 0.25f)) continue;
        const double cx = y[a], cy = y[anchors + a], bw = y[2 * anchors + a], bh = y[3 * anchors + a];
        cand.push_back({best, score, {cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2}});
    }
    std::stable_sort(cand.begin(), cand.end(),
                     [](const RefDetection& p, const RefDetection& q) { return p.conf > q.conf; });
    auto iou = [](const RefDetection& p, const RefDetection& q) {
        const double iw = std::max(0.0, std::min(p.box[2], q.box[2]) - std::max(p.box[0], q.box[0]));
        const double ih = std::max(0.0, std::min(p.box[3], q.box[3]) - std::max(p.box[1], q.box[1]));
        const double inter = iw * ih;
        const double area_p = (p.box[2] - p.box[0]) * (p.box[3] - p.box[1]);
        const double area_q = (q.box[2] - q.box[0]) * (q.box[3] - q.box[1]);
        const double uni = area_p + area_q - inter;
        return uni > 0 ? inter / uni : 0.0;
    };
    std::vector<RefDetection> kept;
    for (const auto& d : cand) {
        bool suppressed = false;
        for (const auto& k : kept) suppressed = suppressed || (k.class_id == d.class_id && iou(k, d) > 0.45);
        if (!suppressed && kept.size() < 300) kept.push_back(d);
    }
    for (auto& d : kept) {
        const double pad[4] = {left, top, left, top}, lim[4] = {w, h, w, h};
        for (int k = 0; k < 4; ++k) d.box[k] = std::min(std::max((d.box[k] - pad[k]) / scale, 0.0), lim[k]);
    }
    return kept;
}

// Our decode + NMS of the reference raw output against (1) the same raw output decoded as the
// README documents it: the same numbers decoded twice, so boxes agree to 1e-3 px and scores
// exactly; (2) the reference detections, whose boxes are rounded to 0.1 px (so 0.05 px + 1e-3)
// and scores to 4 decimals.
void expect_matches_reference(const std::string& name) {
    const std::string ref_dir = yoloc_test::shared_dir() + "/data/reference/";
    std::ifstream f(ref_dir + name + ".json");
    const nlohmann::json ref = nlohmann::json::parse(f);
    Tensor out = load_npy(ref_dir + name + ".npy").reshaped({1, 84, 8400});

    const int h = ref["orig_hw"][0], w = ref["orig_hw"][1];
    const LetterboxInfo info = letterbox_geometry(w, h, 640);
    PostprocessOptions opt;
    opt.conf_threshold = 0.25f;
    opt.iou_threshold = 0.45f;
    opt.multi_label = false;
    const std::vector<Detection> dets = postprocess(out, 0, info, opt);

    const std::vector<RefDetection> twice =
        decode_as_documented(out.data<float>(), 84, 8400, ref["letterbox"]["scale"].get<double>(),
                             ref["letterbox"]["pad_left_top"][0].get<double>(),
                             ref["letterbox"]["pad_left_top"][1].get<double>(), w, h);
    const nlohmann::json& expected = ref["detections"];
    ASSERT_EQ(dets.size(), expected.size());
    ASSERT_EQ(dets.size(), twice.size());
    double worst = 0;
    for (size_t i = 0; i < dets.size(); ++i) {
        SCOPED_TRACE(name + " detection " + std::to_string(i));
        EXPECT_EQ(dets[i].class_id, twice[i].class_id);
        EXPECT_EQ(dets[i].conf, twice[i].conf);
        EXPECT_EQ(dets[i].class_id, expected[i]["class_id"].get<int>());
        EXPECT_NEAR(dets[i].conf, expected[i]["conf"].get<double>(), 0.5e-4 + 1e-6);
        const float got[4] = {dets[i].x1, dets[i].y1, dets[i].x2, dets[i].y2};
        for (int k = 0; k < 4; ++k) {
            EXPECT_NEAR(got[k], twice[i].box[k], 1e-3);
            EXPECT_NEAR(got[k], expected[i]["box_xyxy"][k].get<double>(), 0.05 + 1e-3);
            worst = std::max(worst, std::fabs(got[k] - twice[i].box[k]));
        }
    }
    std::printf("%s: %zu detections, largest box difference to the documented decode %.2e px\n", name.c_str(),
                dets.size(), worst);
}

// A raw output [4+nc, anchors] from per-anchor boxes and scores.
std::vector<float> raw_output(int nc, const std::vector<std::array<float, 4>>& boxes_cxcywh,
                              const std::vector<std::vector<float>>& scores) {
    const size_t A = boxes_cxcywh.size();
    std::vector<float> out((4 + nc) * A, 0.f);
    for (size_t a = 0; a < A; ++a) {
        for (int k = 0; k < 4; ++k) out[k * A + a] = boxes_cxcywh[a][k];
        for (int c = 0; c < nc; ++c) out[(4 + c) * A + a] = scores[a][c];
    }
    return out;
}

}  // namespace

TEST(Postprocess, DogOutputGivesReferenceDetections) {
    REQUIRE_SHARED();
    expect_matches_reference("dog");
}

TEST(Postprocess, PersonOutputGivesReferenceDetections) {
    REQUIRE_SHARED();
    expect_matches_reference("person");
}

TEST(Postprocess, MultiLabelAtLowConfidenceMatchesGreedyNms) {
    REQUIRE_SHARED();
    Tensor out = load_npy(yoloc_test::shared_dir() + "/data/reference/dog.npy").reshaped({1, 84, 8400});
    PostprocessOptions opt;
    opt.conf_threshold = 0.001f;
    opt.iou_threshold = 0.7f;
    opt.multi_label = true;
    std::vector<Detection> dets = postprocess(out, 0, letterbox_geometry(768, 576, 640), opt);
    // 549 (anchor, class) pairs above 0.001; a NumPy greedy NMS with class offsets keeps 197.
    EXPECT_EQ(dets.size(), 197u);
}

TEST(Postprocess, WorstCaseMultiLabelIsFast) {
    // Every one of 8400 x 80 scores above the threshold: capped at max_nms, then NMS.
    const int A = 8400, nc = 80;
    std::vector<float> raw(size_t(4 + nc) * A);
    uint32_t x = 1;
    auto rnd = [&] {
        x = x * 1664525u + 1013904223u;
        return float(x >> 8) / float(1 << 24);
    };
    for (int a = 0; a < A; ++a) {
        raw[size_t(a)] = rnd() * 640;
        raw[size_t(A) + a] = rnd() * 640;
        raw[size_t(2 * A) + a] = 5 + rnd() * 100;
        raw[size_t(3 * A) + a] = 5 + rnd() * 100;
    }
    for (size_t i = size_t(4) * A; i < raw.size(); ++i) raw[i] = 0.002f + 0.99f * rnd();
    Tensor out = Tensor::from_floats({1, 4 + nc, A}, raw);
    PostprocessOptions opt;
    opt.conf_threshold = 0.001f;
    opt.iou_threshold = 0.7f;
    opt.multi_label = true;
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<Detection> dets = postprocess(out, 0, letterbox_geometry(640, 640, 640), opt);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_EQ(dets.size(), 300u);
    EXPECT_LT(ms, 2000.0);  // typically well under 100 ms; generous for a loaded shared machine
}

TEST(Postprocess, RejectsOutputWithoutClassRows) {
    Tensor out(DType::Float32, {1, 4, 10});
    EXPECT_THROW(postprocess(out, 0, letterbox_geometry(640, 640, 640)), Error);
}

TEST(Decode, BestClassModeGivesOneLabelPerAnchor) {
    auto raw = raw_output(3, {{{50, 50, 20, 20}}}, {{0.6f, 0.9f, 0.7f}});
    PostprocessOptions opt;
    opt.conf_threshold = 0.25f;
    auto c = decode_candidates(raw.data(), 3, 1, opt);
    ASSERT_EQ(c.size(), 1u);
    EXPECT_EQ(c[0].class_id, 1);
    EXPECT_FLOAT_EQ(c[0].conf, 0.9f);
    EXPECT_FLOAT_EQ(c[0].x1, 40.f);
    EXPECT_FLOAT_EQ(c[0].y2, 60.f);
}

TEST(Decode, MultiLabelModeGivesEveryClassAboveThreshold) {
    auto raw = raw_output(3, {{{50, 50, 20, 20}}}, {{0.6f, 0.9f, 0.1f}});
    PostprocessOptions opt;
    opt.conf_threshold = 0.25f;
    opt.multi_label = true;
    auto c = decode_candidates(raw.data(), 3, 1, opt);
    ASSERT_EQ(c.size(), 2u);
    EXPECT_EQ(c[0].class_id, 1);  // sorted by score
    EXPECT_EQ(c[1].class_id, 0);
}

TEST(Decode, ThresholdIsStrict) {
    auto raw = raw_output(1, {{{5, 5, 2, 2}}, {{9, 9, 2, 2}}}, {{0.25f}, {0.2500001f}});
    PostprocessOptions opt;
    opt.conf_threshold = 0.25f;
    auto c = decode_candidates(raw.data(), 1, 2, opt);
    ASSERT_EQ(c.size(), 1u);
    EXPECT_FLOAT_EQ(c[0].x1, 8.f);
}

TEST(Decode, MaxNmsKeepsOnlyTheBestCandidates) {
    std::vector<std::array<float, 4>> boxes;
    std::vector<std::vector<float>> scores;
    for (int i = 0; i < 10; ++i) {
        boxes.push_back({float(i * 100), 0, 10, 10});
        scores.push_back({0.3f + 0.05f * i});
    }
    auto raw = raw_output(1, boxes, scores);
    PostprocessOptions opt;
    opt.max_nms = 3;
    auto c = decode_candidates(raw.data(), 1, 10, opt);
    ASSERT_EQ(c.size(), 3u);
    EXPECT_FLOAT_EQ(c[0].conf, 0.3f + 0.05f * 9);
    EXPECT_FLOAT_EQ(c[2].conf, 0.3f + 0.05f * 7);
}

TEST(Nms, SuppressesOverlappingBoxOfSameClass) {
    auto out = nms_per_class({box(0, 0.9f, 0, 0, 10, 10), box(0, 0.8f, 1, 1, 11, 11)}, 0.45f, 300);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_FLOAT_EQ(out[0].conf, 0.9f);
}

TEST(Nms, KeepsOverlappingBoxesOfDifferentClasses) {
    auto out = nms_per_class({box(0, 0.9f, 0, 0, 10, 10), box(1, 0.8f, 0, 0, 10, 10)}, 0.45f, 300);
    EXPECT_EQ(out.size(), 2u);
}

TEST(Nms, KeepsBoxWhoseIouEqualsThreshold) {
    // IoU of [0,0,10,10] and [0,0,10,5] is exactly 0.5: only IoU > threshold suppresses.
    auto out = nms_per_class({box(0, 0.9f, 0, 0, 10, 10), box(0, 0.8f, 0, 0, 10, 5)}, 0.5f, 300);
    EXPECT_EQ(out.size(), 2u);
}

TEST(Nms, SuppressedBoxDoesNotSuppressOthers) {
    // B overlaps A and C; A does not overlap C. Greedy NMS keeps A and C.
    auto out = nms_per_class(
        {box(0, 0.9f, 0, 0, 10, 10), box(0, 0.8f, 3, 0, 13, 10), box(0, 0.7f, 7, 0, 17, 10)}, 0.3f, 300);
    ASSERT_EQ(out.size(), 2u);
    EXPECT_FLOAT_EQ(out[0].conf, 0.9f);
    EXPECT_FLOAT_EQ(out[1].conf, 0.7f);
}

TEST(Nms, OutputIsSortedByScoreAcrossClasses) {
    auto out = nms_per_class({box(2, 0.95f, 0, 0, 5, 5), box(0, 0.9f, 20, 20, 30, 30), box(2, 0.5f, 40, 40, 50, 50),
                              box(1, 0.7f, 60, 60, 70, 70)},
                             0.45f, 300);
    ASSERT_EQ(out.size(), 4u);
    for (size_t i = 1; i < out.size(); ++i) EXPECT_GE(out[i - 1].conf, out[i].conf);
}

TEST(Nms, KeepsAtMostMaxDet) {
    std::vector<Detection> c;
    for (int i = 0; i < 50; ++i) c.push_back(box(i % 3, 1.f - i * 0.01f, i * 20.f, 0, i * 20.f + 10, 10));
    auto out = nms_per_class(c, 0.45f, 7);
    ASSERT_EQ(out.size(), 7u);
    EXPECT_FLOAT_EQ(out[6].conf, 1.f - 6 * 0.01f);
}

TEST(Nms, IouOfDisjointAndIdenticalBoxes) {
    EXPECT_FLOAT_EQ(box_iou(box(0, 1, 0, 0, 10, 10), box(0, 1, 20, 20, 30, 30)), 0.f);
    EXPECT_FLOAT_EQ(box_iou(box(0, 1, 0, 0, 10, 10), box(0, 1, 0, 0, 10, 10)), 1.f);
}

TEST(MapToOriginal, SubtractsPaddingDividesByScaleAndClips) {
    LetterboxInfo info = letterbox_geometry(768, 576, 640);  // r = 5/6, top = 80
    std::vector<Detection> d = {box(0, 1, -10, 80, 320, 560)};
    map_to_original(d, info);
    EXPECT_FLOAT_EQ(d[0].x1, 0.f);  // clipped
    EXPECT_NEAR(d[0].y1, 0.f, 1e-4);
    EXPECT_NEAR(d[0].x2, 384.f, 1e-3);
    EXPECT_NEAR(d[0].y2, 576.f, 1e-3);
}

TEST(PostprocessJson, UsesReferenceSchema) {
    auto j = detections_to_json("dog.jpg", {box(16, 0.96f, 131.5f, 218.2f, 307.9f, 540.3f)}, coco80_names());
    EXPECT_EQ(j["image"], "dog.jpg");
    ASSERT_EQ(j["detections"].size(), 1u);
    EXPECT_EQ(j["detections"][0]["class_id"], 16);
    EXPECT_EQ(j["detections"][0]["name"], "dog");
    EXPECT_NEAR(j["detections"][0]["conf"].get<double>(), 0.96, 1e-6);
    EXPECT_NEAR(j["detections"][0]["box_xyxy"][3].get<double>(), 540.3, 1e-3);
}

TEST(PostprocessJson, UnknownClassGetsGenericName) {
    auto j = detections_to_json("x", {box(5, 0.5f, 0, 0, 1, 1)}, {"a"});
    EXPECT_EQ(j["detections"][0]["name"], "class5");
}

TEST(Coco, NamesMatchTheModelCard) {
    REQUIRE_SHARED();
    std::ifstream f(yoloc_test::shared_dir() + "/models/yolov8n_coco.json");
    const nlohmann::json card = nlohmann::json::parse(f);
    EXPECT_EQ(card["names"].get<std::vector<std::string>>(), coco80_names());
}

TEST(Coco, Coco80MapsToCategoryIds) {
    EXPECT_EQ(coco80_to_coco91(0), 1);    // person
    EXPECT_EQ(coco80_to_coco91(11), 13);  // stop sign (12 is unused)
    EXPECT_EQ(coco80_to_coco91(79), 90);  // toothbrush
    EXPECT_THROW(coco80_to_coco91(80), Error);
    for (int i = 1; i < 80; ++i) EXPECT_LT(coco80_to_coco91(i - 1), coco80_to_coco91(i));
}
