#include <gtest/gtest.h>

#include "test_util.h"
#include "yolo/draw.h"
#include "yolo/image.h"
#include "yolo/letterbox.h"
#include "core/npy.h"

using namespace yoloc;

namespace {

bool pixel_is(const Image& img, int x, int y, Color c) {
    const uint8_t* p = img.row(y) + 3 * x;
    return p[0] == c.b && p[1] == c.g && p[2] == c.r;
}

}  // namespace

TEST(Draw, BoxEdgesUseTheClassColour) {
    Image img(100, 100, 0);
    Detection d;
    d.class_id = 3;
    d.conf = 0.5f;
    d.x1 = 20; d.y1 = 40; d.x2 = 80; d.y2 = 90;
    DrawOptions opt;
    opt.font_scale = 1;
    draw_detections(img, {d}, {"a", "b", "c", "d"}, opt);
    const Color c = class_color(3);
    EXPECT_TRUE(pixel_is(img, 50, 40, c));  // top edge
    EXPECT_TRUE(pixel_is(img, 50, 41, c));  // 2 px thick
    EXPECT_TRUE(pixel_is(img, 20, 60, c));  // left edge
    EXPECT_TRUE(pixel_is(img, 80, 60, c));  // right edge
    EXPECT_TRUE(pixel_is(img, 50, 90, c));  // bottom edge
    EXPECT_TRUE(pixel_is(img, 50, 60, Color{0, 0, 0}));  // inside untouched
}

TEST(Draw, LabelIsFilledAboveTheBoxWithInk) {
    Image img(200, 100, 0);
    Detection d;
    d.class_id = 0;
    d.conf = 0.87f;
    d.x1 = 10; d.y1 = 50; d.x2 = 150; d.y2 = 90;
    DrawOptions opt;
    opt.font_scale = 1;
    draw_detections(img, {d}, {"dog"}, opt);
    // The label band (above y1) holds both the class colour and the text colour.
    int background = 0, ink = 0;
    const Color c = class_color(0);
    for (int y = 50 - 9; y < 50; ++y)
        for (int x = 10; x < 10 + text_width("dog 0.87", 1); ++x) {
            if (pixel_is(img, x, y, c)) ++background;
            else ++ink;
        }
    EXPECT_GT(background, 100);
    EXPECT_GT(ink, 30);
}

TEST(Draw, ShapesAreClippedToTheImage) {
    Image img(10, 10, 0);
    draw_rect(img, -5, -5, 20, 20, Color{1, 2, 3}, 2);
    draw_text(img, 8, 8, "WWW", Color{1, 2, 3}, 3);
    fill_rect(img, -100, -100, 100, 100, Color{4, 5, 6});
    EXPECT_TRUE(pixel_is(img, 9, 9, Color{4, 5, 6}));
}

TEST(Draw, AnnotatedSampleIsWritten) {
    REQUIRE_SHARED();
    const std::string dir = yoloc_test::scratch_dir("draw_sample");
    Image img = load_image(yoloc_test::shared_dir() + "/data/samples/dog.jpg");
    Tensor out = load_npy(yoloc_test::shared_dir() + "/data/reference/dog.npy").reshaped({1, 84, 8400});
    auto dets = postprocess(out, 0, letterbox_geometry(img.width, img.height, 640));
    draw_detections(img, dets, coco80_names());
    save_jpeg(dir + "/dog_annotated.jpg", img);
    save_png(dir + "/dog_annotated.png", img);
    EXPECT_TRUE(yoloc_test::path_exists(dir + "/dog_annotated.jpg"));
    EXPECT_TRUE(yoloc_test::path_exists(dir + "/dog_annotated.png"));
}
