// The engine's kernels, one output element at a time, as plain functions that
// nvcc compiles for the device and any C++ compiler for the host. The CUDA
// kernels (kernels.cu) call them from grid-stride loops; the CPU tests run them in
// loops over a host arena (tests/test_engine_emulate.cpp) so that indexing,
// views and the memory plan are checked on machines without a GPU.
// Activations are NHWC; a tensor is a channel slice of a buffer: `x` points at the
// slice's first channel and `xs` is the buffer's channel stride (free Split/Concat).
// C++14, no CUDA headers needed for the float path.
#pragma once

#include <cfloat>
#include <cmath>
#include <cstddef>

#ifdef __CUDACC__
#include <cuda_fp16.h>
#define YOLOC_HD __host__ __device__ __forceinline__
#else
#define YOLOC_HD inline
#endif

namespace yoloc {
namespace cuda {

struct DnnPlan;  // a finalized cuDNN execution plan (conv_cudnn.h); host-side only

struct ConvArgs {
    const void* x = nullptr;
    int n = 0, h = 0, w = 0, xs = 0, c = 0;  // input view
    void* y = nullptr;
    int oh = 0, ow = 0, ys = 0, m = 0;        // output view
    const void* res = nullptr;                // residual added after the activation, or null
    int rs = 0;
    const void* wt = nullptr;                 // [kh][kw][c/group][m]
    const float* bias = nullptr;              // [m]
    int kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0, group = 1;
    int silu = 0;
    int kernel = 0;  // a ConvTactic (conv_mma.h): 0 auto, 1 direct, 2 wmma, 3 SIMT gemm, 16+i mma tile i
    // The stem: x is the graph input itself, NCHW float32 (xs unused); any precision's
    // weights and output. Launched on its own kernel whatever `kernel` says.
    int nchw = 0;
    // INT8 conv (qscale != null): wt is int8 [m][wk] (row m: the K = kh*kw*c weights in
    // [kh][kw][c] order, zero-padded to wk, a multiple of 16); the input is quantized with
    // in_scale when loaded (round half to even, saturate to [-128, 127]); the int32 sum
    // is scaled by qscale[m] = in_scale * weight_scale[m]. res_scale > 0: the residual
    // is fake-quantized with it (a Q -> DQ on the Add's residual input).
    const float* qscale = nullptr;
    float in_scale = 0.f, res_scale = 0.f;
    int wk = 0;
    // INT8 storage (engine/plan.h): x_i8: the input view holds int8 values already
    // quantized with in_scale; res_i8: the residual holds int8 values of res_scale;
    // ysc != null: the output is stored as int8, QuantizeLinear(y, ysc[m]).
    int x_i8 = 0, res_i8 = 0;
    const float* ysc = nullptr;
    // Set by the GPU launcher, not the plan: where the tensor-core kernels let the next
    // kernel launch under programmatic dependent launch (engine/cuda/launch.h).
    int pdl_early = 0;
    // Set by the launcher too: the tensor-core kernels load their activation tiles
    // through L1 (cp.async.ca: a 3x3 conv's neighbouring taps re-read the same pixels)
    // instead of L2 only (cp.async.cg; YOLOC_A_L1=0).
    int a_l1 = 0;
    // Set by the launcher too: the implicit-GEMM tensor-core kernel stores its output tile
    // through shared memory, 16 bytes per thread (YOLOC_STAGE_OUT=0: from the fragments).
    int stage_out = 0;
    // Set by the runtime for cuDNN tactics (kConvCudnnBase + i): the layer's finalized
    // plan, whose weights are [m][kh][kw][c] (cuDNN's NHWC filter layout), not wt's above.
    const DnnPlan* dnn = nullptr;
};

struct PoolArgs {
    const void* x = nullptr;
    int n = 0, h = 0, w = 0, xs = 0, c = 0;
    int i8 = 0;  // int8 buffers in and out (INT8 storage): the values move unchanged
    void* y = nullptr;
    int oh = 0, ow = 0, ys = 0;
    int kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0;
    // Chain of `chain` stride-1 "same" pools (SPPF): output j (0 = y) is the max over
    // a window of radius (j+1)*kh/2, which is what pooling the previous output gives.
    int chain = 1;
    void* ym[3] = {nullptr, nullptr, nullptr};
    int yms[3] = {0, 0, 0};
};

// Nearest up-sampling by integer factors (output y reads input y / fy).
struct ResizeArgs {
    const void* x = nullptr;
    int n = 0, h = 0, w = 0, xs = 0, c = 0;
    int i8 = 0;  // int8 buffers in and out (INT8 storage): the values move unchanged
    void* y = nullptr;
    int ys = 0, fy = 1, fx = 1;
};

// Channel-slice copy (a Concat input that is not written in place).
struct CopyArgs {
    const void* x = nullptr;
    int n = 0, h = 0, w = 0, xs = 0, c = 0;
    int i8 = 0;  // int8 buffers in and out (INT8 storage): the values move unchanged
    void* y = nullptr;
    int ys = 0;
    float scale = 0.f;  // > 0: fake-quantize while copying (a FakeQuant op)
};

// NCHW float32 <-> NHWC view.
struct PackArgs {
    const float* x = nullptr;
    int n = 0, c = 0, h = 0, w = 0;
    void* y = nullptr;
    int ys = 0;
};
struct UnpackArgs {
    const void* x = nullptr;
    int n = 0, h = 0, w = 0, xs = 0, c = 0;
    float* y = nullptr;
};

constexpr int kMaxDetectLevels = 8;
struct DetectArgs {
    int levels = 0;
    const void* x[kMaxDetectLevels] = {};  // per level: Concat(box, cls) view
    int h[kMaxDetectLevels] = {}, w[kMaxDetectLevels] = {}, xs[kMaxDetectLevels] = {};
    int stride[kMaxDetectLevels] = {};
    int n = 0, reg_max = 16, nc = 80, anchors = 0;
    // Boxes as corners x1 y1 x2 y2 (end-to-end heads) instead of cx cy w h. reg_max 1:
    // the box channels are the distances themselves (no DFL: YOLO26).
    int xyxy = 0;
    float* out = nullptr;  // [n, 4 + nc, anchors], float32
};

YOLOC_HD float ld(const float* p) { return *p; }
YOLOC_HD void st(float* p, float v) { *p = v; }
#ifdef __CUDACC__
YOLOC_HD float ld(const __half* p) { return __half2float(*p); }
YOLOC_HD void st(__half* p, float v) { *p = __float2half(v); }
#endif
// int8 storage: the integer itself (its scale is applied by whoever dequantizes).
YOLOC_HD float ld(const signed char* p) { return float(*p); }
YOLOC_HD void st(signed char* p, float v) { *p = static_cast<signed char>(int(v)); }

// QuantizeLinear's arithmetic: float division, round half to even (rintf in the default
// rounding mode), saturate to int8.
YOLOC_HD float quant_i8(float x, float s) {
    float q = rintf(x / s);
    return q < -128.f ? -128.f : (q > 127.f ? 127.f : q);
}
// QuantizeLinear -> DequantizeLinear.
YOLOC_HD float fake_quant(float x, float s) { return quant_i8(x, s) * s; }

YOLOC_HD long long conv_items(const ConvArgs& a) { return (long long)a.n * a.oh * a.ow * a.m; }
YOLOC_HD long long pool_items(const PoolArgs& a) { return (long long)a.n * a.oh * a.ow * a.c; }
YOLOC_HD long long resize_items(const ResizeArgs& a) { return (long long)a.n * a.h * a.fy * a.w * a.fx * a.c; }
YOLOC_HD long long copy_items(const CopyArgs& a) { return (long long)a.n * a.h * a.w * a.c; }
YOLOC_HD long long pack_items(const PackArgs& a) { return (long long)a.n * a.c * a.h * a.w; }
YOLOC_HD long long unpack_items(const UnpackArgs& a) { return (long long)a.n * a.c * a.h * a.w; }
YOLOC_HD long long detect_items(const DetectArgs& a) { return (long long)a.n * a.anchors; }

// Output channel fastest: a warp reads neighbouring weights and shares input reads.
template <typename T>
YOLOC_HD void conv_at(const ConvArgs& a, long long i) {
    const T* x = static_cast<const T*>(a.x);
    const T* wt = static_cast<const T*>(a.wt);
    const int cg = a.c / a.group, mg = a.m / a.group;
    const int m = int(i % a.m);
    long long p = i / a.m;
    const int ox = int(p % a.ow);
    p /= a.ow;
    const int oy = int(p % a.oh);
    const int n = int(p / a.oh);
    const int g = m / mg;
    float acc = a.bias[m];
    for (int ky = 0; ky < a.kh; ++ky) {
        const int iy = oy * a.sh - a.ph + ky;
        if (iy < 0 || iy >= a.h) continue;
        for (int kx = 0; kx < a.kw; ++kx) {
            const int ix = ox * a.sw - a.pw + kx;
            if (ix < 0 || ix >= a.w) continue;
            const T* wp = wt + (size_t(ky) * a.kw + kx) * cg * a.m + m;
            if (a.nchw) {
                const float* xf = static_cast<const float*>(a.x) + (size_t(n) * a.c * a.h + iy) * a.w + ix;
                for (int ci = 0; ci < cg; ++ci) acc += xf[size_t(ci) * a.h * a.w] * ld(wp + size_t(ci) * a.m);
                continue;
            }
            const T* xp = x + ((size_t(n) * a.h + iy) * a.w + ix) * a.xs + size_t(g) * cg;
            for (int ci = 0; ci < cg; ++ci) acc += ld(xp + ci) * ld(wp + size_t(ci) * a.m);
        }
    }
    if (a.silu) acc = acc / (1.0f + expf(-acc));
    const size_t pix = (size_t(n) * a.oh + oy) * a.ow + ox;
    if (a.res) acc += ld(static_cast<const T*>(a.res) + pix * a.rs + m);
    st(static_cast<T*>(a.y) + pix * a.ys + m, acc);
}

// INT8 conv, one output per thread (groups 1): the fallback where the tensor-core
// kernel cannot run (below sm_80) and the reference for its tests.
template <typename T>
YOLOC_HD void conv_int8_at(const ConvArgs& a, long long i) {
    const T* x = static_cast<const T*>(a.x);
    const signed char* wt = static_cast<const signed char*>(a.wt);
    const int m = int(i % a.m);
    long long p = i / a.m;
    const int ox = int(p % a.ow);
    p /= a.ow;
    const int oy = int(p % a.oh);
    const int n = int(p / a.oh);
    int acc = 0;
    for (int ky = 0; ky < a.kh; ++ky) {
        const int iy = oy * a.sh - a.ph + ky;
        if (iy < 0 || iy >= a.h) continue;
        for (int kx = 0; kx < a.kw; ++kx) {
            const int ix = ox * a.sw - a.pw + kx;
            if (ix < 0 || ix >= a.w) continue;
            const signed char* wp = wt + size_t(m) * a.wk + (size_t(ky) * a.kw + kx) * a.c;
            if (a.nchw) {
                const float* xf = static_cast<const float*>(a.x) + (size_t(n) * a.c * a.h + iy) * a.w + ix;
                for (int ci = 0; ci < a.c; ++ci)
                    acc += int(quant_i8(xf[size_t(ci) * a.h * a.w], a.in_scale)) * int(wp[ci]);
                continue;
            }
            const size_t xo = ((size_t(n) * a.h + iy) * a.w + ix) * a.xs;
            if (a.x_i8) {
                const signed char* xq = static_cast<const signed char*>(a.x) + xo;
                for (int ci = 0; ci < a.c; ++ci) acc += int(xq[ci]) * int(wp[ci]);
                continue;
            }
            const T* xp = x + xo;
            for (int ci = 0; ci < a.c; ++ci) acc += int(quant_i8(ld(xp + ci), a.in_scale)) * int(wp[ci]);
        }
    }
    float v = float(acc) * a.qscale[m] + a.bias[m];
    if (a.silu) v = v / (1.0f + expf(-v));
    const size_t pix = (size_t(n) * a.oh + oy) * a.ow + ox;
    if (a.res) {
        float r;
        if (a.res_i8) {
            r = float(static_cast<const signed char*>(a.res)[pix * a.rs + m]) * a.res_scale;
        } else {
            r = ld(static_cast<const T*>(a.res) + pix * a.rs + m);
            if (a.res_scale > 0.f) r = fake_quant(r, a.res_scale);
        }
        v += r;
    }
    if (a.ysc)
        static_cast<signed char*>(a.y)[pix * a.ys + m] = static_cast<signed char>(int(quant_i8(v, a.ysc[m])));
    else
        st(static_cast<T*>(a.y) + pix * a.ys + m, v);
}

template <typename T>
YOLOC_HD void maxpool_at(const PoolArgs& a, long long i) {
    const T* x = static_cast<const T*>(a.x);
    const int c = int(i % a.c);
    long long p = i / a.c;
    const int ox = int(p % a.ow);
    p /= a.ow;
    const int oy = int(p % a.oh);
    const int n = int(p / a.oh);
    if (a.chain > 1) {
        const int ry = a.kh / 2, rx = a.kw / 2;
        float m[4] = {-FLT_MAX, -FLT_MAX, -FLT_MAX, -FLT_MAX};
        for (int dy = -a.chain * ry; dy <= a.chain * ry; ++dy) {
            const int iy = oy + dy;
            if (iy < 0 || iy >= a.h) continue;
            const int ady = dy < 0 ? -dy : dy;
            for (int dx = -a.chain * rx; dx <= a.chain * rx; ++dx) {
                const int ix = ox + dx;
                if (ix < 0 || ix >= a.w) continue;
                const int adx = dx < 0 ? -dx : dx;
                const float u = ld(x + ((size_t(n) * a.h + iy) * a.w + ix) * a.xs + c);
                for (int j = 0; j < a.chain; ++j)
                    if (ady <= (j + 1) * ry && adx <= (j + 1) * rx && u > m[j]) m[j] = u;
            }
        }
        const size_t pix = (size_t(n) * a.oh + oy) * a.ow + ox;
        st(static_cast<T*>(a.y) + pix * a.ys + c, m[0]);
        for (int j = 1; j < a.chain; ++j) st(static_cast<T*>(a.ym[j - 1]) + pix * a.yms[j - 1] + c, m[j]);
        return;
    }
    float v = -FLT_MAX;
    for (int ky = 0; ky < a.kh; ++ky) {
        const int iy = oy * a.sh - a.ph + ky;
        if (iy < 0 || iy >= a.h) continue;
        for (int kx = 0; kx < a.kw; ++kx) {
            const int ix = ox * a.sw - a.pw + kx;
            if (ix < 0 || ix >= a.w) continue;
            const float u = ld(x + ((size_t(n) * a.h + iy) * a.w + ix) * a.xs + c);
            v = u > v ? u : v;
        }
    }
    st(static_cast<T*>(a.y) + ((size_t(n) * a.oh + oy) * a.ow + ox) * a.ys + c, v);
}

template <typename T>
YOLOC_HD void resize_at(const ResizeArgs& a, long long i) {
    const int oh = a.h * a.fy, ow = a.w * a.fx;
    const int ch = int(i % a.c);
    long long p = i / a.c;
    const int ox = int(p % ow);
    p /= ow;
    const int oy = int(p % oh);
    const int b = int(p / oh);
    static_cast<T*>(a.y)[((size_t(b) * oh + oy) * ow + ox) * a.ys + ch] =
        static_cast<const T*>(a.x)[((size_t(b) * a.h + oy / a.fy) * a.w + ox / a.fx) * a.xs + ch];
}

template <typename T>
YOLOC_HD void copy_at(const CopyArgs& a, long long i) {
    const long long p = i / a.c;
    const int ch = int(i % a.c);
    if (a.scale > 0.f)
        st(static_cast<T*>(a.y) + p * a.ys + ch, fake_quant(ld(static_cast<const T*>(a.x) + p * a.xs + ch), a.scale));
    else
        static_cast<T*>(a.y)[p * a.ys + ch] = static_cast<const T*>(a.x)[p * a.xs + ch];
}

// Index in NCHW order: the reads are coalesced, the (3-channel) writes are not.
template <typename T>
YOLOC_HD void pack_at(const PackArgs& a, long long i) {
    const int ix = int(i % a.w);
    long long p = i / a.w;
    const int iy = int(p % a.h);
    p /= a.h;
    const int ch = int(p % a.c);
    const int b = int(p / a.c);
    st(static_cast<T*>(a.y) + ((size_t(b) * a.h + iy) * a.w + ix) * a.ys + ch, a.x[i]);
}

template <typename T>
YOLOC_HD void unpack_at(const UnpackArgs& a, long long i) {
    const int ix = int(i % a.w);
    long long p = i / a.w;
    const int iy = int(p % a.h);
    p /= a.h;
    const int ch = int(p % a.c);
    const int b = int(p / a.c);
    a.y[i] = ld(static_cast<const T*>(a.x) + ((size_t(b) * a.h + iy) * a.w + ix) * a.xs + ch);
}

// Where anchor `anchor` of image n lives: its level l, grid cell (gx, gy), and the
// pointer to that cell's box + class channels (shared by every Detect kernel).
template <typename T>
YOLOC_HD const T* detect_cell(const DetectArgs& a, int n, int anchor, int& l, int& gx, int& gy) {
    int base = 0;
    l = 0;
    while (l + 1 < a.levels && anchor >= base + a.h[l] * a.w[l]) {
        base += a.h[l] * a.w[l];
        ++l;
    }
    const int k = anchor - base;
    gy = k / a.w[l];
    gx = k % a.w[l];
    return static_cast<const T*>(a.x[l]) + ((size_t(n) * a.h[l] + gy) * a.w[l] + gx) * a.xs[l];
}

// One anchor: DFL softmax + expectation per side (reg_max 1: the value itself), dist2bbox
// (xywh, or xyxy), stride, and the class sigmoids, written to [n, 4 + nc, anchors]
// (anchor fastest: coalesced).
template <typename T>
YOLOC_HD void detect_at(const DetectArgs& a, long long i) {
    const int n = int(i / a.anchors);
    const int anchor = int(i % a.anchors);
    int l = 0, gx = 0, gy = 0;
    const T* p = detect_cell<T>(a, n, anchor, l, gx, gy);
    float d[4];
    for (int s = 0; s < 4; ++s) {
        const T* q = p + s * a.reg_max;
        if (a.reg_max == 1) {
            d[s] = ld(q);
            continue;
        }
        float mx = -FLT_MAX;
        for (int j = 0; j < a.reg_max; ++j) {
            const float u = ld(q + j);
            mx = u > mx ? u : mx;
        }
        float sum = 0.f, e = 0.f;
        for (int j = 0; j < a.reg_max; ++j) {
            const float v = expf(ld(q + j) - mx);
            sum += v;
            e += v * float(j);
        }
        d[s] = e / sum;
    }
    const float ax = gx + 0.5f, ay = gy + 0.5f, sf = float(a.stride[l]);
    const float x1 = ax - d[0], y1 = ay - d[1], x2 = ax + d[2], y2 = ay + d[3];
    const size_t plane = size_t(a.anchors);
    float* o = a.out + size_t(n) * (4 + a.nc) * plane + anchor;
    if (a.xyxy) {
        o[0] = x1 * sf;
        o[plane] = y1 * sf;
        o[2 * plane] = x2 * sf;
        o[3 * plane] = y2 * sf;
    } else {
        o[0] = (x1 + x2) * 0.5f * sf;
        o[plane] = (y1 + y2) * 0.5f * sf;
        o[2 * plane] = (x2 - x1) * sf;
        o[3 * plane] = (y2 - y1) * sf;
    }
    const T* cls = p + 4 * a.reg_max;
    for (int c = 0; c < a.nc; ++c) o[(4 + c) * plane] = 1.0f / (1.0f + expf(-ld(cls + c)));
}

}  // namespace cuda
}  // namespace yoloc
