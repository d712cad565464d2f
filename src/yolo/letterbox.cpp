#include "yolo/letterbox.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <limits>
#include <vector>

#include "core/error.h"

namespace yoloc {

namespace {

// OpenCV's INTER_RESIZE_COEF_BITS: interpolation weights are 11-bit fixed point.
constexpr int kCoefBits = 11;
constexpr int kCoefScale = 1 << kCoefBits;
constexpr uint8_t kPadValue = 114;

// saturate_cast<short>(float): round half to even (cvRound), then clamp.
inline int16_t round_to_short(float v) {
    float r = std::nearbyint(v);
    r = std::min(std::max(r, -32768.f), 32767.f);
    return int16_t(r);
}

// saturate_cast<int>(double).
inline int round_to_int(double v) {
    double r = std::nearbyint(v);
    if (r > double(std::numeric_limits<int>::max())) return std::numeric_limits<int>::max();
    if (r < double(std::numeric_limits<int>::min())) return std::numeric_limits<int>::min();
    return int(r);
}

// cv::hal::resize's coefficient tables for INTER_LINEAR (not area mode).
// Horizontally OpenCV clamps the tap and zeroes the fraction at the borders;
// vertically it keeps the fraction and clamps only the row indices.
AxisTaps linear_taps_impl(int src_len, int dst_len, double scale, bool clamp_fraction) {
    AxisTaps t;
    t.src.resize(dst_len);
    t.w0.resize(dst_len);
    t.w1.resize(dst_len);
    for (int d = 0; d < dst_len; ++d) {
        float f = float((d + 0.5) * scale - 0.5);
        int s = int(std::floor(f));
        f -= float(s);
        if (clamp_fraction) {
            if (s < 0) { f = 0.f; s = 0; }
            if (s >= src_len - 1) { f = 0.f; s = src_len - 1; }
        }
        t.src[d] = s;
        t.w0[d] = round_to_short((1.f - f) * kCoefScale);
        t.w1[d] = round_to_short(f * kCoefScale);
    }
    return t;
}

// cv::resize turns INTER_LINEAR with an exact 2x reduction on both axes into its
// fast area path: the rounded mean of each 2x2 block.
Image resize_half_area(const Image& src, int dst_w, int dst_h) {
    Image dst(dst_w, dst_h);
    for (int y = 0; y < dst_h; ++y) {
        const uint8_t* s0 = src.row(2 * y);
        const uint8_t* s1 = src.row(2 * y + 1);
        uint8_t* d = dst.row(y);
        for (int x = 0; x < dst_w; ++x)
            for (int c = 0; c < 3; ++c) {
                int i = 6 * x + c;
                d[3 * x + c] = uint8_t((s0[i] + s0[i + 3] + s1[i] + s1[i + 3] + 2) >> 2);
            }
    }
    return dst;
}

}  // namespace

ResizeTaps resize_taps(int src_w, int src_h, int dst_w, int dst_h) {
    YOLOC_CHECK(src_w > 0 && src_h > 0 && dst_w > 0 && dst_h > 0, "resize: invalid sizes ", src_w, "x", src_h,
                " -> ", dst_w, "x", dst_h);
    ResizeTaps t;
    if (dst_w == src_w && dst_h == src_h) return t;  // Copy
    // cv::resize computes the scales from the inverse ratios, in double.
    const double scale_x = 1. / (double(dst_w) / src_w), scale_y = 1. / (double(dst_h) / src_h);
    const int iscale_x = round_to_int(scale_x), iscale_y = round_to_int(scale_y);
    const bool is_area_fast =
        std::abs(scale_x - iscale_x) < DBL_EPSILON && std::abs(scale_y - iscale_y) < DBL_EPSILON;
    if (is_area_fast && iscale_x == 2 && iscale_y == 2) {
        t.mode = ResizeTaps::HalfArea;
        return t;
    }
    t.mode = ResizeTaps::Linear;
    t.x = linear_taps_impl(src_w, dst_w, scale_x, true);
    t.y = linear_taps_impl(src_h, dst_h, scale_y, false);
    return t;
}

Image resize_linear(const Image& src, int dst_w, int dst_h) {
    YOLOC_CHECK(!src.empty() && src.pixels.size() == size_t(src.width) * size_t(src.height) * 3,
                "resize: invalid source image ", src.width, "x", src.height);
    YOLOC_CHECK(dst_w > 0 && dst_h > 0 && int64_t(dst_w) * dst_h <= kMaxImagePixels,
                "resize: invalid target size ", dst_w, "x", dst_h);
    const ResizeTaps taps = resize_taps(src.width, src.height, dst_w, dst_h);
    if (taps.mode == ResizeTaps::Copy) return src;
    if (taps.mode == ResizeTaps::HalfArea) return resize_half_area(src, dst_w, dst_h);
    const AxisTaps& tx = taps.x;
    const AxisTaps& ty = taps.y;

    const int row_len = dst_w * 3;
    // Horizontally filtered source rows (values up to 255 * 2048), cached by source row.
    std::vector<int32_t> hbuf[2] = {std::vector<int32_t>(row_len), std::vector<int32_t>(row_len)};
    int cached_row[2] = {-1, -1};

    auto hfilter = [&](int sy, std::vector<int32_t>& out) {
        const uint8_t* s = src.row(sy);
        for (int dx = 0; dx < dst_w; ++dx) {
            const int sx = tx.src[dx] * 3;
            const int a0 = tx.w0[dx], a1 = tx.w1[dx];
            int32_t* o = &out[3 * dx];
            if (tx.src[dx] >= src.width - 1) {
                o[0] = s[sx] * kCoefScale;
                o[1] = s[sx + 1] * kCoefScale;
                o[2] = s[sx + 2] * kCoefScale;
            } else {
                o[0] = s[sx] * a0 + s[sx + 3] * a1;
                o[1] = s[sx + 1] * a0 + s[sx + 4] * a1;
                o[2] = s[sx + 2] * a0 + s[sx + 5] * a1;
            }
        }
    };
    Image dst(dst_w, dst_h);
    for (int dy = 0; dy < dst_h; ++dy) {
        const int sy = ty.src[dy];
        const int r0 = std::min(std::max(sy, 0), src.height - 1);
        const int r1 = std::min(std::max(sy + 1, 0), src.height - 1);
        // Slot 0 holds row r0 and slot 1 row r1; moving down one row reuses the old r1.
        if (cached_row[1] == r0 && cached_row[0] != r0) {
            std::swap(hbuf[0], hbuf[1]);
            std::swap(cached_row[0], cached_row[1]);
        }
        if (cached_row[0] != r0) {
            hfilter(r0, hbuf[0]);
            cached_row[0] = r0;
        }
        if (cached_row[1] != r1) {
            if (r1 == r0) hbuf[1] = hbuf[0];
            else hfilter(r1, hbuf[1]);
            cached_row[1] = r1;
        }
        const int32_t* S0 = hbuf[0].data();
        const int32_t* S1 = hbuf[1].data();
        const int b0 = ty.w0[dy], b1 = ty.w1[dy];
        uint8_t* d = dst.row(dy);
        // OpenCV's vertical pass: each product is pre-shifted so it fits 16x16->32-bit
        // multiply-high SIMD; the scalar tail does the same, so all pixels agree.
        for (int x = 0; x < row_len; ++x) {
            int v = (((b0 * (S0[x] >> 4)) >> 16) + ((b1 * (S1[x] >> 4)) >> 16) + 2) >> 2;
            d[x] = uint8_t(std::min(std::max(v, 0), 255));
        }
    }
    return dst;
}

LetterboxInfo letterbox_geometry(int src_w, int src_h, int size) {
    YOLOC_CHECK(src_w > 0 && src_h > 0, "letterbox: invalid image size ", src_w, "x", src_h);
    YOLOC_CHECK(size > 0 && size <= 16384, "letterbox: invalid input size ", size);
    LetterboxInfo info;
    info.src_w = src_w;
    info.src_h = src_h;
    info.r = std::min(double(size) / src_h, double(size) / src_w);
    // Python's round() is half-to-even, as is nearbyint under the default rounding mode.
    info.new_w = int(std::nearbyint(src_w * info.r));
    info.new_h = int(std::nearbyint(src_h * info.r));
    const double dw = (size - info.new_w) / 2.0, dh = (size - info.new_h) / 2.0;
    info.left = int(std::nearbyint(dw - 0.1));
    info.top = int(std::nearbyint(dh - 0.1));
    const int right = int(std::nearbyint(dw + 0.1)), bottom = int(std::nearbyint(dh + 0.1));
    YOLOC_CHECK(info.left + info.new_w + right == size && info.top + info.new_h + bottom == size,
                "letterbox: padding does not fill the canvas for ", src_w, "x", src_h, " -> ", size);
    return info;
}

LetterboxInfo letterbox_into(const Image& img, int size, float* dst_chw) {
    YOLOC_CHECK(img.pixels.size() == size_t(img.width) * size_t(img.height) * 3,
                "letterbox: image buffer does not match its size ", img.width, "x", img.height);
    LetterboxInfo info = letterbox_geometry(img.width, img.height, size);
    const Image resized = resize_linear(img, info.new_w, info.new_h);

    // float32(v) / 255.0f, as numpy computes uint8 -> float32 then / 255.0.
    float lut[256];
    for (int v = 0; v < 256; ++v) lut[v] = float(v) / 255.0f;
    const float pad = lut[kPadValue];
    const size_t plane = size_t(size) * size_t(size);
    for (int c = 0; c < 3; ++c) {
        float* out = dst_chw + plane * size_t(c);
        const int bgr = 2 - c;  // RGB planes from BGR pixels
        for (int y = 0; y < size; ++y) {
            float* o = out + size_t(y) * size;
            const int sy = y - info.top;
            if (sy < 0 || sy >= info.new_h) {
                std::fill(o, o + size, pad);
                continue;
            }
            const uint8_t* s = resized.row(sy);
            std::fill(o, o + info.left, pad);
            for (int x = 0; x < info.new_w; ++x) o[info.left + x] = lut[s[3 * x + bgr]];
            std::fill(o + info.left + info.new_w, o + size, pad);
        }
    }
    return info;
}

Tensor preprocess(const Image& img, int size, LetterboxInfo* info) {
    Tensor t(DType::Float32, Shape{1, 3, size, size});
    LetterboxInfo li = letterbox_into(img, size, t.data<float>());
    if (info) *info = li;
    return t;
}

}  // namespace yoloc
