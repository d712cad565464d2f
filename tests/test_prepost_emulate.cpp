// Runs the GPU pre/post-processing element functions (engine/cuda/prepost_ops.h)
// on the CPU, in the order the CUDA kernels use them, and checks that they
// reproduce the CPU letterbox and post-processing exactly. The GPU test
// (tests/gpu) then compares the device results with the same CPU functions.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <vector>

#include "core/npy.h"
#include "engine/cuda/letterbox_args.h"
#include "engine/cuda/prepost_ops.h"
#include "test_util.h"
#include "yolo/image.h"
#include "yolo/letterbox.h"
#include "yolo/postprocess.h"

using namespace yoloc;
using yoloc::cuda::LetterboxArgs;

namespace {

std::vector<float> emulate_letterbox(const Image& img, int size, LetterboxInfo* info_out) {
    const cuda::PackedLetterbox pk = cuda::pack_letterbox(img.width, img.height, size);
    std::vector<float> out(size_t(3) * size * size, -1.f);
    const LetterboxArgs a = cuda::letterbox_args(pk, img.pixels.data(), size, pk.index.data(), pk.weight.data(), out.data());
    for (long long i = 0; i < cuda::letterbox_items(a); ++i) cuda::letterbox_at(a, i);
    if (info_out) *info_out = pk.info;
    return out;
}

void expect_letterbox_exact(const Image& img, int size, const std::string& what) {
    std::vector<float> cpu(size_t(3) * size * size);
    letterbox_into(img, size, cpu.data());
    std::vector<float> emu = emulate_letterbox(img, size, nullptr);
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < cpu.size(); ++i)
        if (std::memcmp(&cpu[i], &emu[i], 4) != 0 && bad++ == 0) first = i;
    EXPECT_EQ(bad, 0u) << what << ": " << bad << " values differ, first at " << first << " (" << cpu[first]
                       << " vs " << emu[first] << ")";
}

Image random_image(int w, int h, unsigned seed) {
    Image img(w, h);
    std::mt19937 rng(seed);
    for (auto& p : img.pixels) p = uint8_t(rng() & 255);
    return img;
}

// The GPU post-processing algorithm, step by step on the host: keys from
// decode_at, one descending sort, the max_nms cap, greedy NMS per class over the
// sorted list, kept ranks in order, the max_det cap, then mapping.
std::vector<Detection> emulate_postprocess(const float* pred, int nc, int anchors, const LetterboxInfo& info,
                                           const PostprocessOptions& opt) {
    cuda::DecodeArgs d;
    d.pred = pred;
    d.nc = nc;
    d.anchors = anchors;
    d.conf = opt.conf_threshold;
    d.multi_label = opt.multi_label ? 1 : 0;
    std::vector<unsigned long long> keys;
    for (long long i = 0; i < cuda::decode_items(d); ++i) {
        unsigned long long k;
        if (cuda::decode_at(d, i, &k)) keys.push_back(k);
    }
    std::sort(keys.begin(), keys.end(), [](unsigned long long a, unsigned long long b) { return a > b; });
    if (opt.max_nms > 0 && keys.size() > size_t(opt.max_nms)) keys.resize(size_t(opt.max_nms));
    std::vector<char> keep(keys.size(), 0);
    for (int c = 0; c < nc; ++c) {
        std::vector<cuda::PpBox> kept;
        for (size_t r = 0; r < keys.size() && int(kept.size()) < opt.max_det; ++r) {
            const unsigned idx = cuda::key_index(keys[r]);
            if (int(idx % unsigned(nc)) != c) continue;
            const cuda::PpBox b = cuda::candidate_box(pred, anchors, int(idx / unsigned(nc)));
            bool suppressed = false;
            for (const auto& k : kept)
                if (cuda::pp_iou(k, b) > opt.iou_threshold) suppressed = true;
            if (suppressed) continue;
            kept.push_back(b);
            keep[r] = 1;
        }
    }
    cuda::MapArgs m;
    m.r = info.r;
    m.left = info.left;
    m.top = info.top;
    m.src_w = info.src_w;
    m.src_h = info.src_h;
    std::vector<Detection> out;
    for (size_t r = 0; r < keys.size() && int(out.size()) < opt.max_det; ++r) {
        if (!keep[r]) continue;
        const unsigned idx = cuda::key_index(keys[r]);
        const cuda::PpBox b = cuda::candidate_box(pred, anchors, int(idx / unsigned(nc)));
        Detection det;
        det.class_id = int(idx % unsigned(nc));
        det.conf = cuda::key_score(keys[r]);
        det.x1 = cuda::map_x(m, b.x1);
        det.y1 = cuda::map_y(m, b.y1);
        det.x2 = cuda::map_x(m, b.x2);
        det.y2 = cuda::map_y(m, b.y2);
        out.push_back(det);
    }
    return out;
}

void expect_same_detections(const std::vector<Detection>& cpu, const std::vector<Detection>& emu,
                            const std::string& what) {
    ASSERT_EQ(cpu.size(), emu.size()) << what;
    for (size_t i = 0; i < cpu.size(); ++i) {
        EXPECT_EQ(cpu[i].class_id, emu[i].class_id) << what << " #" << i;
        EXPECT_EQ(cpu[i].conf, emu[i].conf) << what << " #" << i;
        EXPECT_EQ(cpu[i].x1, emu[i].x1) << what << " #" << i;
        EXPECT_EQ(cpu[i].y1, emu[i].y1) << what << " #" << i;
        EXPECT_EQ(cpu[i].x2, emu[i].x2) << what << " #" << i;
        EXPECT_EQ(cpu[i].y2, emu[i].y2) << what << " #" << i;
    }
}

}  // namespace

TEST(PrepostEmulate, KeysSortByScoreThenAnchorThenClass) {
    using cuda::candidate_key;
    EXPECT_GT(candidate_key(0.5f, 7), candidate_key(0.25f, 1));
    EXPECT_GT(candidate_key(0.5f, 1), candidate_key(0.5f, 2));  // equal score: lower index first
    EXPECT_GT(candidate_key(0.0f, 0), candidate_key(-0.5f, 0));
    EXPECT_GT(candidate_key(-0.25f, 0), candidate_key(-0.5f, 0));
    for (float s : {0.f, 1e-30f, 0.001f, 0.37f, 1.f, -2.f})
        for (unsigned idx : {0u, 5u, 671999u}) {
            EXPECT_EQ(cuda::key_score(candidate_key(s, idx)), s);
            EXPECT_EQ(cuda::key_index(candidate_key(s, idx)), idx);
        }
}

TEST(PrepostEmulate, LetterboxIsBitExactOnSyntheticSizes) {
    // Down- and up-scaling, odd sizes, the exact 2x area path, no resize at all.
    const int sizes[][2] = {{1280, 1280}, {640, 640}, {100, 50}, {37, 500}, {1281, 719}, {640, 480}, {3, 3}};
    unsigned seed = 1;
    for (const auto& s : sizes) {
        Image img = random_image(s[0], s[1], seed++);
        expect_letterbox_exact(img, 640, std::to_string(s[0]) + "x" + std::to_string(s[1]) + " -> 640");
        expect_letterbox_exact(img, 320, std::to_string(s[0]) + "x" + std::to_string(s[1]) + " -> 320");
    }
    // The 2x area path really is taken for 1280x1280 -> 640.
    EXPECT_EQ(resize_taps(1280, 1280, 640, 640).mode, ResizeTaps::HalfArea);
    EXPECT_EQ(resize_taps(640, 640, 640, 640).mode, ResizeTaps::Copy);
    EXPECT_EQ(resize_taps(100, 50, 640, 320).mode, ResizeTaps::Linear);
}

TEST(PrepostEmulate, LetterboxIsBitExactOnThePhotos) {
    REQUIRE_SHARED();
    for (const char* name : {"dog", "eagle", "giraffe", "horses", "kite", "person", "scream"}) {
        Image img = load_image(yoloc_test::shared_dir() + "/data/samples/" + name + ".jpg");
        expect_letterbox_exact(img, 640, name);
    }
}

TEST(PrepostEmulate, PostprocessEqualsCpuOnReferenceOutputs) {
    REQUIRE_SHARED();
    for (const char* name : {"dog", "person"}) {
        Tensor y = load_npy(yoloc_test::shared_dir() + "/data/reference/" + name + ".npy");
        ASSERT_TRUE(y.rank() == 2 || y.rank() == 3);  // [84, 8400] or [1, 84, 8400]
        Image img = load_image(yoloc_test::shared_dir() + "/data/samples/" + name + ".jpg");
        const LetterboxInfo info = letterbox_geometry(img.width, img.height, 640);
        const int nc = int(y.dim(y.rank() - 2)) - 4, anchors = int(y.dim(y.rank() - 1));
        PostprocessOptions predict;  // conf 0.25, IoU 0.45, one label per anchor
        PostprocessOptions val;      // what eval uses
        val.conf_threshold = 0.001f;
        val.iou_threshold = 0.7f;
        val.multi_label = true;
        PostprocessOptions capped = val;
        capped.max_nms = 50;
        capped.max_det = 7;
        for (const auto& o : {predict, val, capped}) {
            auto cpu = postprocess(y, 0, info, o);
            auto emu = emulate_postprocess(y.data<float>(), nc, anchors, info, o);
            EXPECT_FALSE(cpu.empty()) << name;
            expect_same_detections(cpu, emu, std::string(name) + " conf " + std::to_string(o.conf_threshold));
        }
    }
}

TEST(PrepostEmulate, PostprocessEqualsCpuWithTiesAndHeavyOverlap) {
    // Scores quantized to a few values (many ties) and boxes on a coarse grid (many
    // overlaps near the threshold): the order rules and IoU arithmetic must match.
    const int nc = 5, anchors = 400;
    std::mt19937 rng(42);
    std::vector<float> pred(size_t(4 + nc) * anchors);
    for (int a = 0; a < anchors; ++a) {
        pred[size_t(a)] = float(100 + 4 * int(rng() % 20));
        pred[size_t(anchors + a)] = float(100 + 4 * int(rng() % 20));
        pred[size_t(2 * anchors + a)] = float(20 + 2 * int(rng() % 10));
        pred[size_t(3 * anchors + a)] = float(20 + 2 * int(rng() % 10));
        for (int c = 0; c < nc; ++c) pred[size_t((4 + c) * anchors + a)] = float(rng() % 8) / 8.f;
    }
    Tensor y(DType::Float32, {1, 4 + nc, anchors});
    std::memcpy(y.data<float>(), pred.data(), pred.size() * 4);
    const LetterboxInfo info = letterbox_geometry(1000, 700, 640);
    for (bool multi : {false, true})
        for (float iou : {0.3f, 0.45f, 0.7f}) {
            PostprocessOptions o;
            o.conf_threshold = 0.1f;
            o.iou_threshold = iou;
            o.multi_label = multi;
            o.max_det = 40;
            auto cpu = postprocess(y, 0, info, o);
            auto emu = emulate_postprocess(pred.data(), nc, anchors, info, o);
            EXPECT_FALSE(cpu.empty());
            expect_same_detections(cpu, emu, std::string(multi ? "multi" : "single") + " iou " + std::to_string(iou));
        }
}
