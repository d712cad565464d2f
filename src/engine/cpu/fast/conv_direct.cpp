// Direct convolution on the blocked layout: for each 16-channel output block and
// a tile of T output pixels along a row, T 16-wide accumulators; every input
// value is broadcast and multiplied with a 16-wide weight vector. GCC vector
// extensions keep it portable (AVX-512/AVX2 clones on x86, NEON elsewhere).
// a*b+c in the vector code becomes one FMA (ISO C++ mode turns contraction off).
#pragma GCC optimize("fp-contract=fast")

#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/cpu/fast/conv.h"
#include "engine/cpu/fast/vec.h"

namespace yoloc {
namespace fast {

namespace {

template <typename V>
YOLOC_INLINE void silu_span(float* x, int64_t n) {
    constexpr int64_t L = sizeof(V) / sizeof(float);
    int64_t i = 0;
    for (; i + L <= n; i += L) storev(x + i, siluv(loadv<V>(x + i)));
    for (; i < n; ++i) x[i] = x[i] / (1.f + std::exp(-x[i]));
}

#if defined(YOLOC_HAVE_X86_TARGETS)
YOLOC_TARGET_AVX512 void silu_avx512(float* x, int64_t n) { silu_span<v16>(x, n); }
YOLOC_TARGET_AVX2 void silu_avx2(float* x, int64_t n) { silu_span<v8>(x, n); }
#endif

}  // namespace

void silu_inplace(float* x, int64_t n) {
#if defined(YOLOC_HAVE_X86_TARGETS)
    switch (vec_isa()) {
        case VecIsa::Avx512: return silu_avx512(x, n);
        case VecIsa::Avx2: return silu_avx2(x, n);
        case VecIsa::Generic: break;
    }
#endif
    silu_span<v16>(x, n);
}

namespace {

// Output blocks that one work item computes together (see plan_groups).
struct Group {
    int64_t ocb;  // first output block
    int nb;       // blocks: 1, 2 or 3
};

struct Geometry {
    ConvSpec s;
    int64_t ic, cb;     // input channels, input channel block (1 plain, 16 blocked)
    int64_t cbs;        // floats between input channel blocks
    int64_t in_img;     // floats per input image
    int64_t out_img;    // floats per output image
    std::vector<Group> groups;
};

// One tile: T output pixels (ow0 .. ow0+T-1) of one output row, OB 16-channel
// output blocks. T*OB accumulators stay in registers (AVX-512: 24 of 32 zmm);
// each input value is broadcast once and multiplied with OB weight vectors.
template <int T, int OB, bool CHECK, int CB, int K>
YOLOC_INLINE void conv_tile(const Geometry& g, const float* x, const float* wp, const float* bias, float* out,
                            const float* res, int64_t oh, int64_t ow0, int64_t nvalid) {
    const ConvSpec& s = g.s;
    // K > 0: a square kernel size known at compile time (1x1 and 3x3 loops unroll).
    const int64_t kh = K ? K : s.kh, kw = K ? K : s.kw;
    const int64_t wstride = g.ic * kh * kw * 16;  // between output blocks in the packed weights
    const int64_t ostride = s.out.h * s.out.w * 16;   // between output blocks in dst
    // Fully unrolled loops over o and t keep acc in registers.
    v16 acc[OB][T];
#pragma GCC unroll 4
    for (int o = 0; o < OB; ++o) {
        v16 b = load16(bias + o * 16);
#pragma GCC unroll 16
        for (int t = 0; t < T; ++t) acc[o][t] = b;
    }
    const int64_t W = s.in.w, H = s.in.h;
    for (int64_t c = 0; c < g.ic; ++c) {
        const float* xc = x + (c / CB) * g.cbs + (c % CB);
        const float* wc = wp + c * kh * kw * 16;
        for (int64_t ky = 0; ky < kh; ++ky) {
            int64_t iy = oh * s.sh - s.pt + ky * s.dh;
            if (iy < 0 || iy >= H) continue;
            const float* row = xc + iy * W * CB;
            for (int64_t kx = 0; kx < kw; ++kx) {
                v16 wv[OB];
#pragma GCC unroll 4
                for (int o = 0; o < OB; ++o) wv[o] = load16(wc + o * wstride + (ky * kw + kx) * 16);
                int64_t ix0 = ow0 * s.sw - s.pl + kx * s.dw;
#pragma GCC unroll 16
                for (int t = 0; t < T; ++t) {
                    int64_t ix = ix0 + t * s.sw;
                    if (CHECK && (t >= nvalid || ix < 0 || ix >= W)) continue;
                    float xv = row[ix * CB];
#pragma GCC unroll 4
                    for (int o = 0; o < OB; ++o) acc[o][t] += wv[o] * xv;
                }
            }
        }
    }
#pragma GCC unroll 4
    for (int o = 0; o < OB; ++o)
#pragma GCC unroll 16
        for (int t = 0; t < T; ++t) {
            if (CHECK && t >= nvalid) break;
            v16 v = acc[o][t];
            if (s.silu) v = silu16(v);
            if (res) v += load16(res + o * ostride + t * 16);
            store16(out + o * ostride + t * 16, v);
        }
}

template <int T, int OB, int CB, int K>
YOLOC_INLINE void conv_row(const Geometry& g, const float* x, const float* wp, const float* bs, float* out,
                           const float* res, int64_t oh) {
    const ConvSpec& s = g.s;
    // Tiles whose whole input span lies inside the row need no bounds checks.
    for (int64_t ow0 = 0; ow0 < s.out.w; ow0 += T) {
        int64_t nvalid = std::min<int64_t>(T, s.out.w - ow0);
        int64_t lo = ow0 * s.sw - s.pl, hi = (ow0 + T - 1) * s.sw - s.pl + (s.kw - 1) * s.dw;
        float* o = out + ow0 * 16;
        const float* r = res ? res + ow0 * 16 : nullptr;
        if (nvalid == T && lo >= 0 && hi < s.in.w)
            conv_tile<T, OB, false, CB, K>(g, x, wp, bs, o, r, oh, ow0, T);
        else
            conv_tile<T, OB, true, CB, K>(g, x, wp, bs, o, r, oh, ow0, nvalid);
    }
}

// Register tile per ISA. AVX-512 has 32 zmm: 2 output blocks x 12 pixels = 24
// accumulators, and 3 blocks x 8 pixels (also 24) for the last group of an odd block
// count. That group used to be one block alone at 12 pixels (12 accumulators), which
// ran at about half the FMA rate of a pair: a 128 -> 112 conv (7 blocks; a C2f
// bottleneck pruned 128 -> 112) took as long as 128 -> 128 (0.74 ms at 20x20, now
// 0.57), and YOLOv8's 80-channel class head (5 blocks) paid it too (64 -> 80 at 80x80:
// 3.2 ms, now 2.5). With AVX2 (16 ymm) or NEON (32 q) a 16-float vector takes 2 or 4
// registers: 2 blocks x 3 pixels, and a block alone.
template <bool WIDE, int CB, int K>
YOLOC_INLINE void conv_group(const Geometry& g, int nb, const float* x, const float* wp, const float* bs, float* out,
                             const float* res, int64_t oh) {
    if (WIDE) {
        if (nb == 2)
            conv_row<12, 2, CB, K>(g, x, wp, bs, out, res, oh);
        else if (nb == 3)
            conv_row<8, 3, CB, K>(g, x, wp, bs, out, res, oh);
        else
            conv_row<12, 1, CB, K>(g, x, wp, bs, out, res, oh);
    } else {
        if (nb == 2)
            conv_row<3, 2, CB, K>(g, x, wp, bs, out, res, oh);
        else
            conv_row<3, 1, CB, K>(g, x, wp, bs, out, res, oh);
    }
}

// Output blocks -> work groups: pairs; with AVX-512 the last three together when the
// count is odd (a block alone only when there is one), else a block alone.
static std::vector<Group> plan_groups(int64_t oc, bool wide) {
    const int64_t nb = padded_channels(oc) / 16;
    std::vector<Group> gs;
    for (int64_t b = 0; b < nb;) {
        const int64_t left = nb - b;
        const int n = left == 3 && wide ? 3 : left >= 2 ? 2 : 1;
        gs.push_back({b, n});
        b += n;
    }
    return gs;
}

// Work items: (image, group of output blocks, output row).
template <bool WIDE, int CB, int K>
YOLOC_INLINE void conv_rows_k(const Geometry& g, const float* src, const float* wpack, const float* bias,
                              float* dst, const float* residual, int64_t begin, int64_t end) {
    const ConvSpec& s = g.s;
    const int64_t groups = int64_t(g.groups.size());
    for (int64_t i = begin; i < end; ++i) {
        int64_t oh = i % s.out.h, rest = i / s.out.h, gi = rest % groups, n = rest / groups;
        const Group& gr = g.groups[size_t(gi)];
        const int64_t ocb = gr.ocb;
        const float* x = src + n * g.in_img;
        const float* wp = wpack + ocb * g.ic * s.kh * s.kw * 16;
        const float* bs = bias + ocb * 16;
        int64_t off = n * g.out_img + ((ocb * s.out.h + oh) * s.out.w) * 16;
        const float* res = residual ? residual + off : nullptr;
        conv_group<WIDE, CB, K>(g, gr.nb, x, wp, bs, dst + off, res, oh);
    }
}

template <bool WIDE, int CB>
YOLOC_INLINE void conv_rows_impl(const Geometry& g, const float* src, const float* wpack, const float* bias,
                                 float* dst, const float* residual, int64_t begin, int64_t end) {
    if (g.s.kh == 1 && g.s.kw == 1)
        conv_rows_k<WIDE, CB, 1>(g, src, wpack, bias, dst, residual, begin, end);
    else if (g.s.kh == 3 && g.s.kw == 3)
        conv_rows_k<WIDE, CB, 3>(g, src, wpack, bias, dst, residual, begin, end);
    else
        conv_rows_k<WIDE, CB, 0>(g, src, wpack, bias, dst, residual, begin, end);
}

static bool wide_registers() {
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
#else
    return false;
#endif
}

#if defined(__x86_64__) && defined(__GNUC__)
#define YOLOC_CONV_TARGETS 1
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")))
void conv_rows_avx512(const Geometry& g, const float* src, const float* wpack, const float* bias, float* dst,
                      const float* residual, int64_t begin, int64_t end) {
    if (g.cb == 1)
        conv_rows_impl<true, 1>(g, src, wpack, bias, dst, residual, begin, end);
    else
        conv_rows_impl<true, 16>(g, src, wpack, bias, dst, residual, begin, end);
}
__attribute__((target("avx2,fma")))
void conv_rows_avx2(const Geometry& g, const float* src, const float* wpack, const float* bias, float* dst,
                    const float* residual, int64_t begin, int64_t end) {
    if (g.cb == 1)
        conv_rows_impl<false, 1>(g, src, wpack, bias, dst, residual, begin, end);
    else
        conv_rows_impl<false, 16>(g, src, wpack, bias, dst, residual, begin, end);
}
static bool has_avx2() {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#endif

void conv_rows(const Geometry& g, bool wide, const float* src, const float* wpack, const float* bias, float* dst,
               const float* residual, int64_t begin, int64_t end) {
#if defined(YOLOC_CONV_TARGETS)
    static const bool avx2 = has_avx2();
    if (wide) return conv_rows_avx512(g, src, wpack, bias, dst, residual, begin, end);
    if (avx2) return conv_rows_avx2(g, src, wpack, bias, dst, residual, begin, end);
#endif
    if (wide) {
        if (g.cb == 1)
            conv_rows_impl<true, 1>(g, src, wpack, bias, dst, residual, begin, end);
        else
            conv_rows_impl<true, 16>(g, src, wpack, bias, dst, residual, begin, end);
    } else {
        if (g.cb == 1)
            conv_rows_impl<false, 1>(g, src, wpack, bias, dst, residual, begin, end);
        else
            conv_rows_impl<false, 16>(g, src, wpack, bias, dst, residual, begin, end);
    }
}

class DirectConv : public ConvKernel {
public:
    DirectConv(const ConvSpec& s, const Tensor& w, const Tensor& b, ThreadPool* pool) : pool_(pool) {
        g_.s = s;
        g_.ic = s.in.c;
        g_.cb = s.src_plain ? 1 : 16;
        g_.cbs = s.src_plain ? s.in.h * s.in.w : s.in.h * s.in.w * 16;
        g_.in_img = s.src_plain ? s.in.c * s.in.h * s.in.w : s.in.image_floats();
        g_.out_img = s.out.image_floats();
        const int64_t oc = s.out.c, ocp = s.out.cp(), k = s.kh * s.kw;
        YOLOC_CHECK(w.shape() == Shape({oc, s.in.c, s.kh, s.kw}), "direct conv: weight shape ",
                    shape_str(w.shape()), " does not fit the spec");
        // Packed weights: [OC/16][IC][KH][KW][16], zero for padding channels.
        wpack_.assign(size_t(ocp * s.in.c * k), 0.f);
        const float* wsrc = w.data<float>();
        for (int64_t o = 0; o < oc; ++o)
            for (int64_t c = 0; c < s.in.c; ++c)
                for (int64_t j = 0; j < k; ++j)
                    wpack_[size_t((((o / 16) * s.in.c + c) * k + j) * 16 + o % 16)] = wsrc[(o * s.in.c + c) * k + j];
        bias_.assign(size_t(ocp), 0.f);
        if (!b.empty())
            for (int64_t o = 0; o < oc; ++o) bias_[size_t(o)] = b.data<float>()[o];
        wide_ = wide_registers();
        g_.groups = plan_groups(oc, wide_);
    }

    void run(const float* src, float* dst, const float* residual) override {
        const ConvSpec& s = g_.s;
        const int64_t items = s.out.n * int64_t(g_.groups.size()) * s.out.h;
        pool_->parallel_for(items, [&](int64_t b, int64_t e) {
            conv_rows(g_, wide_, src, wpack_.data(), bias_.data(), dst, residual, b, e);
        });
    }
    const char* name() const override { return "direct"; }

private:
    Geometry g_;
    bool wide_ = false;  // AVX-512 register tile (plan_groups depends on it)
    std::vector<float> wpack_, bias_;
    ThreadPool* pool_;
};

}  // namespace

bool direct_conv_wide() {
    static const bool wide = wide_registers();
    return wide;
}

std::unique_ptr<ConvKernel> make_direct_conv(const ConvSpec& s, const Tensor& w, const Tensor& b, ThreadPool* pool) {
    static const bool avx2 = !direct_conv_wide() && direct_conv_avx2();
    if (avx2) return make_direct_conv_avx2(s, w, b, pool);
    return std::unique_ptr<ConvKernel>(new DirectConv(s, w, b, pool));
}

}  // namespace fast
}  // namespace yoloc
