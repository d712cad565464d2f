#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <string>

#include "core/error.h"
#include "core/sha256.h"
#include "test_util.h"
#include "yolo/image.h"

using namespace yoloc;

namespace {

std::string read_bytes(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const std::string& data) {
    std::ofstream f(path, std::ios::binary);
    f.write(data.data(), std::streamsize(data.size()));
}

template <typename F>
std::string error_of(F f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

Image gradient_image(int w, int h) {
    Image img(w, h);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            uint8_t* p = img.row(y) + 3 * x;
            p[0] = uint8_t(x * 255 / std::max(1, w - 1));
            p[1] = uint8_t(y * 255 / std::max(1, h - 1));
            p[2] = uint8_t((x * 7 + y * 13) & 255);
        }
    return img;
}

}  // namespace

TEST(Image, DecodesSampleJpegSize) {
    REQUIRE_SHARED();
    Image img = load_image(yoloc_test::shared_dir() + "/data/samples/dog.jpg");
    EXPECT_EQ(img.width, 768);
    EXPECT_EQ(img.height, 576);
    EXPECT_EQ(img.pixels.size(), size_t(768 * 576 * 3));
}

TEST(Image, DecodesJpegPixelsLikeOpenCv) {
    REQUIRE_SHARED();
    // sha256 of cv2.imread("person.jpg") (BGR, HWC) computed with OpenCV.
    Image img = load_image(yoloc_test::shared_dir() + "/data/samples/person.jpg");
    EXPECT_EQ(sha256_hex(img.pixels.data(), img.pixels.size()), "0ffd51b1e8901d0a7a95988b9acc5dd8b77daef7adb0a9b3fe7b61071259d1b0");
}

TEST(Image, MissingFileThrowsNamingIt) {
    const std::string path = yoloc_test::scratch_dir("image_missing") + "/nothing.jpg";
    const std::string msg = error_of([&] { load_image(path); });
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find("no such file"), std::string::npos) << msg;
}

TEST(Image, RandomBytesThrowNotAnImage) {
    const std::string path = yoloc_test::scratch_dir("image_random") + "/noise.jpg";
    std::string noise(4096, '\0');
    uint32_t x = 12345;
    for (char& c : noise) {
        x = x * 1103515245u + 12345u;
        c = char(x >> 24);
    }
    noise[0] = 'R';  // never a JPEG/PNG signature
    write_bytes(path, noise);
    const std::string msg = error_of([&] { load_image(path); });
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find("not an image"), std::string::npos) << msg;
}

TEST(Image, EmptyFileThrowsNotAnImage) {
    const std::string path = yoloc_test::scratch_dir("image_empty") + "/empty.png";
    write_bytes(path, "");
    const std::string msg = error_of([&] { load_image(path); });
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
}

TEST(Image, TruncatedJpegThrowsNamingIt) {
    REQUIRE_SHARED();
    const std::string path = yoloc_test::scratch_dir("image_truncated") + "/half.jpg";
    std::string bytes = read_bytes(yoloc_test::shared_dir() + "/data/samples/dog.jpg");
    write_bytes(path, bytes.substr(0, bytes.size() / 2));
    const std::string msg = error_of([&] { load_image(path); });
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find("JPEG"), std::string::npos) << msg;
}

TEST(Image, JpegWithCorruptHeaderThrows) {
    const std::string path = yoloc_test::scratch_dir("image_badheader") + "/bad.jpg";
    write_bytes(path, std::string("\xFF\xD8\xFF\xE0\x00\x10JFIF\x00garbage", 17));
    const std::string msg = error_of([&] { load_image(path); });
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
}

TEST(Image, PngRoundTripIsLossless) {
    const std::string path = yoloc_test::scratch_dir("image_png") + "/g.png";
    Image img = gradient_image(37, 23);
    save_png(path, img);
    Image back = load_image(path);
    ASSERT_EQ(back.width, 37);
    ASSERT_EQ(back.height, 23);
    EXPECT_EQ(back.pixels, img.pixels);
}

TEST(Image, FormatIsDetectedByContentNotExtension) {
    const std::string path = yoloc_test::scratch_dir("image_ext") + "/really_a_png.jpg";
    Image img = gradient_image(8, 5);
    save_png(path, img);
    EXPECT_EQ(load_image(path).pixels, img.pixels);
}

TEST(Image, JpegRoundTripIsClose) {
    const std::string path = yoloc_test::scratch_dir("image_jpeg") + "/g.jpg";
    Image img = gradient_image(64, 48);
    for (size_t i = 2; i < img.pixels.size(); i += 3) img.pixels[i] = 128;  // smooth, like a photo
    save_jpeg(path, img, 95);
    Image back = load_image(path);
    ASSERT_EQ(back.width, 64);
    ASSERT_EQ(back.height, 48);
    double sum = 0;
    for (size_t i = 0; i < img.pixels.size(); ++i) sum += std::abs(int(img.pixels[i]) - int(back.pixels[i]));
    EXPECT_LT(sum / img.pixels.size(), 4.0);
}

TEST(Image, SaveLeavesNoTemporaryFile) {
    const std::string dir = yoloc_test::scratch_dir("image_atomic");
    save_jpeg(dir + "/a.jpg", gradient_image(4, 4));
    EXPECT_TRUE(yoloc_test::path_exists(dir + "/a.jpg"));
    EXPECT_FALSE(yoloc_test::path_exists(dir + "/a.jpg.tmp"));
}

TEST(Image, SaveRejectsInconsistentImage) {
    const std::string dir = yoloc_test::scratch_dir("image_bad_save");
    Image img;
    img.width = 10;
    img.height = 10;
    EXPECT_THROW(save_png(dir + "/x.png", img), Error);
}

namespace {

// A JPEG of `img` with an EXIF APP1 segment (little-endian TIFF, IFD0 = {Orientation}) after SOI.
std::string jpeg_with_orientation(const Image& img, int orientation, const std::string& dir) {
    save_jpeg(dir + "/plain.jpg", img, 95);
    const std::string jpg = read_bytes(dir + "/plain.jpg");
    std::string tiff("II*\0\x08\0\0\0\x01\0", 10);
    const unsigned char entry[12] = {0x12, 0x01, 3, 0, 1, 0, 0, 0, (unsigned char)orientation, 0, 0, 0};
    tiff += std::string(reinterpret_cast<const char*>(entry), 12);
    tiff += std::string(4, '\0');
    const std::string payload = std::string("Exif\0\0", 6) + tiff;
    const size_t len = payload.size() + 2;
    std::string app1 = "\xFF\xE1";
    app1 += char(len >> 8);
    app1 += char(len & 0xff);
    return jpg.substr(0, 2) + app1 + payload + jpg.substr(2);
}

}  // namespace

TEST(Image, ExifOrientation6IsRotatedClockwiseLikeImread) {
    const std::string dir = yoloc_test::scratch_dir("image_exif");
    Image src = gradient_image(12, 7);
    write_bytes(dir + "/o1.jpg", jpeg_with_orientation(src, 1, dir));
    write_bytes(dir + "/o6.jpg", jpeg_with_orientation(src, 6, dir));
    Image plain = load_image(dir + "/o1.jpg");
    Image rotated = load_image(dir + "/o6.jpg");
    ASSERT_EQ(rotated.width, plain.height);
    ASSERT_EQ(rotated.height, plain.width);
    for (int y = 0; y < rotated.height; ++y)
        for (int x = 0; x < rotated.width; ++x)
            for (int c = 0; c < 3; ++c)
                ASSERT_EQ(rotated.row(y)[3 * x + c], plain.row(plain.height - 1 - x)[3 * y + c]);
}

TEST(Image, TruncatedPngThrowsNamingIt) {
    const std::string dir = yoloc_test::scratch_dir("image_png_truncated");
    save_png(dir + "/full.png", gradient_image(40, 30));
    const std::string bytes = read_bytes(dir + "/full.png");
    write_bytes(dir + "/half.png", bytes.substr(0, bytes.size() / 2));
    const std::string msg = error_of([&] { load_image(dir + "/half.png"); });
    EXPECT_NE(msg.find(dir + "/half.png"), std::string::npos) << msg;
    EXPECT_NE(msg.find("PNG"), std::string::npos) << msg;
}
