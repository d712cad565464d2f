// GPU pre- and post-processing, one element at a time, as plain functions that nvcc
// compiles for the device and any C++ compiler for the host (like element_ops.h).
// The CUDA kernels (prepost.cu) call them; tests/test_prepost_emulate.cpp runs them
// on the CPU against the CPU letterbox (yolo/letterbox.cpp) and post-processing
// (yolo/postprocess.cpp), which they must reproduce exactly:
//  - letterbox: OpenCV's fixed-point INTER_LINEAR from the same coefficient tables
//    (resize_taps), integer arithmetic only, then v / 255.0f: bit-exact;
//  - decode: candidates keyed so that one descending sort gives the CPU order
//    (score, then anchor, then class);
//  - box and IoU arithmetic in float, in the CPU's operation order. prepost.cu is
//    compiled with -fmad=false so nvcc does not contract a*b+c into an FMA (which
//    rounds once instead of twice and would let a box sit on the other side of an
//    IoU threshold).
// C++14, no CUDA headers needed on the host.
#pragma once

#include <cstdint>

#ifdef __CUDACC__
#define YOLOC_PP_HD __host__ __device__ __forceinline__
#else
#define YOLOC_PP_HD inline
#endif

namespace yoloc {
namespace cuda {

// ------------------------------------------------------------------ letterbox

struct LetterboxArgs {
    const uint8_t* src = nullptr;  // BGR, rows packed (stride 3 * sw)
    int sw = 0, sh = 0;
    int size = 0;                  // square canvas
    int new_w = 0, new_h = 0, left = 0, top = 0;
    int mode = 0;                  // ResizeTaps::Mode: 0 copy, 1 exact 2x area, 2 linear
    const int* tx_src = nullptr;   // linear: per destination column / row (resize_taps)
    const int16_t* tx_w0 = nullptr;
    const int16_t* tx_w1 = nullptr;
    const int* ty_src = nullptr;
    const int16_t* ty_w0 = nullptr;
    const int16_t* ty_w1 = nullptr;
    float* dst = nullptr;          // [3][size][size] RGB in [0,1] (one batch item)
};

YOLOC_PP_HD long long letterbox_items(const LetterboxArgs& a) { return (long long)a.size * a.size; }

YOLOC_PP_HD int pp_clamp(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }

// Horizontally filtered value of source row `sy`, destination column `dx`, channel `ch` (BGR).
YOLOC_PP_HD int hfilter_at(const LetterboxArgs& a, int sy, int dx, int ch) {
    const uint8_t* s = a.src + (long long)sy * a.sw * 3;
    const int sx = a.tx_src[dx];
    if (sx >= a.sw - 1) return s[sx * 3 + ch] * 2048;
    return s[sx * 3 + ch] * a.tx_w0[dx] + s[sx * 3 + 3 + ch] * a.tx_w1[dx];
}

// The resized image's pixel (dx, dy), channel ch (BGR), as cv::resize computes it.
YOLOC_PP_HD int resized_at(const LetterboxArgs& a, int dy, int dx, int ch) {
    if (a.mode == 0) return a.src[((long long)dy * a.sw + dx) * 3 + ch];
    if (a.mode == 1) {
        const uint8_t* s0 = a.src + (long long)(2 * dy) * a.sw * 3;
        const uint8_t* s1 = s0 + (long long)a.sw * 3;
        const int i = 6 * dx + ch;
        return (s0[i] + s0[i + 3] + s1[i] + s1[i + 3] + 2) >> 2;
    }
    const int sy = a.ty_src[dy];
    const int r0 = pp_clamp(sy, 0, a.sh - 1), r1 = pp_clamp(sy + 1, 0, a.sh - 1);
    const int S0 = hfilter_at(a, r0, dx, ch);
    const int S1 = r1 == r0 ? S0 : hfilter_at(a, r1, dx, ch);
    const int b0 = a.ty_w0[dy], b1 = a.ty_w1[dy];
    const int v = (((b0 * (S0 >> 4)) >> 16) + ((b1 * (S1 >> 4)) >> 16) + 2) >> 2;
    return pp_clamp(v, 0, 255);
}

// Canvas pixel i (row-major over size x size): pad 114 outside the resized image.
YOLOC_PP_HD void letterbox_at(const LetterboxArgs& a, long long i) {
    const int y = int(i / a.size), x = int(i % a.size);
    const long long plane = (long long)a.size * a.size;
    const int dy = y - a.top, dx = x - a.left;
    const bool inside = dy >= 0 && dy < a.new_h && dx >= 0 && dx < a.new_w;
    for (int c = 0; c < 3; ++c) {  // RGB planes from BGR pixels
        const int v = inside ? resized_at(a, dy, dx, 2 - c) : 114;
        a.dst[c * plane + i] = float(v) / 255.0f;
    }
}

// ------------------------------------------------------------------ decode

// A candidate's sort key: the score's bits made order-preserving in the high word,
// the inverted candidate index (anchor * nc + class) in the low word, so sorting keys
// in descending order gives descending score, then ascending anchor, then class.
YOLOC_PP_HD unsigned long long candidate_key(float score, unsigned idx) {
    union {
        float f;
        unsigned u;
    } b;
    b.f = score;
    const unsigned ordered = (b.u & 0x80000000u) ? ~b.u : (b.u | 0x80000000u);
    return ((unsigned long long)ordered << 32) | (unsigned long long)(0xFFFFFFFFu - idx);
}
YOLOC_PP_HD unsigned key_index(unsigned long long key) { return 0xFFFFFFFFu - unsigned(key & 0xFFFFFFFFull); }
YOLOC_PP_HD float key_score(unsigned long long key) {
    const unsigned ordered = unsigned(key >> 32);
    union {
        unsigned u;
        float f;
    } b;
    b.u = (ordered & 0x80000000u) ? (ordered & 0x7FFFFFFFu) : ~ordered;
    return b.f;
}

struct DecodeArgs {
    const float* pred = nullptr;  // one batch item of output0: (4 + nc) rows of `anchors`
    int nc = 0, anchors = 0;
    float conf = 0.25f;
    int multi_label = 0;
};

YOLOC_PP_HD long long decode_items(const DecodeArgs& a) {
    return a.multi_label ? (long long)a.anchors * a.nc : (long long)a.anchors;
}

// Work item i: returns true and the key when it is a candidate (score > conf).
// Single label: item = anchor, its best class (the first maximal one, like argmax).
// Multi label: item = anchor * nc + class.
YOLOC_PP_HD bool decode_at(const DecodeArgs& a, long long i, unsigned long long* key) {
    const float* scores = a.pred + 4LL * a.anchors;
    if (a.multi_label) {
        const int anchor = int(i / a.nc), c = int(i % a.nc);
        const float s = scores[(long long)c * a.anchors + anchor];
        if (!(s > a.conf)) return false;
        *key = candidate_key(s, unsigned(i));
        return true;
    }
    const int anchor = int(i);
    union {
        unsigned u;
        float f;
    } ninf;
    ninf.u = 0xFF800000u;  // -infinity, the CPU's starting value
    float best = ninf.f;
    int best_c = 0;
    for (int c = 0; c < a.nc; ++c) {
        const float s = scores[(long long)c * a.anchors + anchor];
        if (s > best) {  // strict: the first maximal class wins
            best = s;
            best_c = c;
        }
    }
    if (!(best > a.conf)) return false;
    *key = candidate_key(best, unsigned(anchor) * unsigned(a.nc) + unsigned(best_c));
    return true;
}

struct PpBox {
    float x1, y1, x2, y2;
};

// xywh (letterbox pixels) -> xyxy, as decode_candidates computes it.
YOLOC_PP_HD PpBox candidate_box(const float* pred, int anchors, int anchor) {
    const float cx = pred[anchor], cy = pred[anchors + anchor];
    const float w = pred[2LL * anchors + anchor], h = pred[3LL * anchors + anchor];
    PpBox b;
    b.x1 = cx - w / 2;
    b.y1 = cy - h / 2;
    b.x2 = cx + w / 2;
    b.y2 = cy + h / 2;
    return b;
}

YOLOC_PP_HD float pp_minf(float a, float b) { return b < a ? b : a; }
YOLOC_PP_HD float pp_maxf(float a, float b) { return a < b ? b : a; }

// box_iou of yolo/postprocess.cpp, same operations in the same order.
YOLOC_PP_HD float pp_iou(const PpBox& a, const PpBox& b) {
    const float iw = pp_minf(a.x2, b.x2) - pp_maxf(a.x1, b.x1);
    const float ih = pp_minf(a.y2, b.y2) - pp_maxf(a.y1, b.y1);
    if (iw <= 0.f || ih <= 0.f) return 0.f;
    const float inter = iw * ih;
    const float area_a = pp_maxf(0.f, a.x2 - a.x1) * pp_maxf(0.f, a.y2 - a.y1);
    const float area_b = pp_maxf(0.f, b.x2 - b.x1) * pp_maxf(0.f, b.y2 - b.y1);
    const float uni = area_a + area_b - inter;
    return uni > 0.f ? inter / uni : 0.f;
}

// Letterbox pixels -> original pixels (map_to_original), in double like the CPU.
struct MapArgs {
    double r = 1.0;
    int left = 0, top = 0, src_w = 0, src_h = 0;
};
YOLOC_PP_HD float map_x(const MapArgs& m, float v) {
    double d = (double(v) - m.left) / m.r;
    d = d < 0.0 ? 0.0 : (d > double(m.src_w) ? double(m.src_w) : d);
    return float(d);
}
YOLOC_PP_HD float map_y(const MapArgs& m, float v) {
    double d = (double(v) - m.top) / m.r;
    d = d < 0.0 ? 0.0 : (d > double(m.src_h) ? double(m.src_h) : d);
    return float(d);
}

// One detection as the GPU returns it (original-image pixels).
struct PpDetection {
    int class_id;
    float conf;
    float x1, y1, x2, y2;
};

}  // namespace cuda
}  // namespace yoloc
