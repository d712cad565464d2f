#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "core/sha256.h"
#include "test_util.h"
#include "yolo/image.h"
#include "yolo/letterbox.h"

using namespace yoloc;

namespace {

const char* const kSamples[] = {"dog", "eagle", "giraffe", "horses", "kite", "person", "scream"};

nlohmann::json reference_json(const std::string& name) {
    std::ifstream f(yoloc_test::shared_dir() + "/data/reference/" + name + ".json");
    return nlohmann::json::parse(f);
}

// Deterministic noise (the same LCG was used to compute the expected hashes with OpenCV).
Image lcg_image(int w, int h, uint32_t seed) {
    Image img(w, h);
    uint64_t x = seed;
    for (uint8_t& p : img.pixels) {
        x = (x * 1103515245u + 12345u) & 0x7fffffffu;
        p = uint8_t((x >> 16) & 255);
    }
    return img;
}

}  // namespace

TEST(Letterbox, TensorMatchesReferenceSha256ForAllSamples) {
    REQUIRE_SHARED();
    for (const char* name : kSamples) {
        SCOPED_TRACE(name);
        Image img = load_image(yoloc_test::shared_dir() + "/data/samples/" + name + ".jpg");
        Tensor t = preprocess(img, 640);
        ASSERT_EQ(t.shape(), (Shape{1, 3, 640, 640}));
        EXPECT_EQ(sha256_hex(t.raw(), t.nbytes()),
                  reference_json(name)["input_tensor_sha256_f32le"].get<std::string>());
    }
}

TEST(Letterbox, GeometryMatchesReferenceForAllSamples) {
    REQUIRE_SHARED();
    for (const char* name : kSamples) {
        SCOPED_TRACE(name);
        const nlohmann::json ref = reference_json(name);
        const int h = ref["orig_hw"][0], w = ref["orig_hw"][1];
        LetterboxInfo info = letterbox_geometry(w, h, 640);
        EXPECT_DOUBLE_EQ(info.r, ref["letterbox"]["scale"].get<double>());
        EXPECT_EQ(info.new_w, ref["letterbox"]["resized_wh"][0].get<int>());
        EXPECT_EQ(info.new_h, ref["letterbox"]["resized_wh"][1].get<int>());
        EXPECT_EQ(info.left, ref["letterbox"]["pad_left_top"][0].get<int>());
        EXPECT_EQ(info.top, ref["letterbox"]["pad_left_top"][1].get<int>());
    }
}

TEST(Letterbox, OddPaddingPutsTheExtraPixelAfterTheImage) {
    // 352x448 -> 503x640: 137 columns of padding, 68 left and 69 right (Ultralytics' +-0.1 rounding).
    LetterboxInfo info = letterbox_geometry(352, 448, 640);
    EXPECT_EQ(info.new_w, 503);
    EXPECT_EQ(info.left, 68);
    EXPECT_EQ(info.top, 0);
}

TEST(Letterbox, PaddingIsGray114AndChannelsAreRgb) {
    Image img(4, 2);
    for (int i = 0; i < 8; ++i) {
        img.pixels[3 * i] = 10;       // B
        img.pixels[3 * i + 1] = 20;   // G
        img.pixels[3 * i + 2] = 250;  // R
    }
    LetterboxInfo info;
    Tensor t = preprocess(img, 8, &info);
    EXPECT_EQ(info.new_w, 8);
    EXPECT_EQ(info.new_h, 4);
    EXPECT_EQ(info.top, 2);
    const float* p = t.data<float>();
    EXPECT_EQ(p[0], 114.f / 255.f);                  // top-left pad, R plane
    EXPECT_EQ(p[3 * 8 + 0], 250.f / 255.f);          // row 3 is image: R plane holds R
    EXPECT_EQ(p[64 + 3 * 8 + 0], 20.f / 255.f);      // G plane
    EXPECT_EQ(p[128 + 3 * 8 + 0], 10.f / 255.f);     // B plane
    EXPECT_EQ(p[128 + 7 * 8 + 7], 114.f / 255.f);    // bottom-right pad, B plane
}

TEST(Letterbox, ResizeToSameSizeIsACopy) {
    Image img = lcg_image(13, 7, 9);
    EXPECT_EQ(resize_linear(img, 13, 7).pixels, img.pixels);
}

TEST(Letterbox, ExactHalvingAveragesEach2x2Block) {
    Image img(4, 2);
    const uint8_t v[8] = {0, 1, 2, 3, 4, 5, 6, 8};  // block sums 0+1+4+5=10 -> 3, 2+3+6+8=19 -> 5
    for (int i = 0; i < 8; ++i) img.pixels[3 * i] = img.pixels[3 * i + 1] = img.pixels[3 * i + 2] = v[i];
    Image out = resize_linear(img, 2, 1);
    EXPECT_EQ(out.pixels[0], 3);
    EXPECT_EQ(out.pixels[3], 5);
}

TEST(Letterbox, ResizeIsBitExactWithOpenCvLinear) {
    // sha256 of cv2.resize(img, (dw, dh), interpolation=cv2.INTER_LINEAR) on lcg_image(w, h, seed).
    struct Case {
        int w, h, dw, dh;
        uint32_t seed;
        const char* sha;
    };
    const Case cases[] = {
        {37, 23, 64, 48, 1u, "972a899cd3b3d0b1bfd5a72da75304ef960465af288f54f1625d9d462221224e"},
        {64, 48, 37, 23, 2u, "eb4a8788d2fc3e9856409bb3fe492f840dfdaf41e45c426e8613880148cd6d4e"},
        {100, 60, 50, 30, 3u, "67d74497d909b52bc3b75233c782103f0abef6cc81a12cf3d271537b8b12f665"},
        {41, 17, 300, 200, 4u, "6b89bdd82907d20c91b433f5ac67f7765467fef143ee17b9482a764d877bf42f"},
        {300, 200, 41, 17, 5u, "4d6ce55a756be245c596bac14ee9e9cd9056f505f950ec6fb882591493259eee"},
        {17, 9, 640, 427, 6u, "ca62689aa15a7dbec89f261138ef622eb9dfb7a42d0b9c01ef43984e5246bf08"},
        {773, 512, 640, 424, 7u, "d5f35a1a721a08638e60c30af97eb1e7ce01c52fc20b9f3c8e61b83ece14cd94"},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(std::to_string(c.w) + "x" + std::to_string(c.h) + " -> " + std::to_string(c.dw) + "x" +
                     std::to_string(c.dh));
        Image out = resize_linear(lcg_image(c.w, c.h, c.seed), c.dw, c.dh);
        EXPECT_EQ(sha256_hex(out.pixels.data(), out.pixels.size()), c.sha);
    }
}

TEST(Letterbox, RejectsInvalidSize) {
    Image img(4, 4);
    EXPECT_THROW(preprocess(img, 0), Error);
}
