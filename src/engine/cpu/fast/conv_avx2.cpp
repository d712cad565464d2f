// Direct convolution on the blocked layout for CPUs with AVX2 + FMA but no AVX-512
// (16 ymm registers). The register tile is one 16-channel output block (2 ymm) x 6
// output pixels of a row = 12 accumulators, plus 2 for the weights and 1 for the
// broadcast input value: every register used, none spilled. Per input channel and
// kernel tap: 2 weight loads and 6 broadcasts feed 12 FMAs (ONNX Runtime's MLAS uses
// the same 6 x 16 tile on AVX2). Rows narrower than a multiple of 6 end with a
// 1..5-pixel tile; tiles that reach into the padding read a zero vector there.
//
// Compiled with target("avx2,fma") on x86-64 only; make_direct_conv picks it with
// __builtin_cpu_supports, so the binary stays baseline x86-64.
// a*b+c in the vector code (SiLU's exp) becomes one FMA (ISO C++ mode turns contraction off).
#pragma GCC optimize("fp-contract=fast")

#include "engine/cpu/fast/conv.h"

#if defined(__x86_64__) && defined(__GNUC__)

#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "engine/cpu/fast/vec.h"

#define YOLOC_AVX2 __attribute__((target("avx2,fma")))
#define YOLOC_AVX2_INLINE inline __attribute__((always_inline, target("avx2,fma")))

namespace yoloc {
namespace fast {

namespace {

constexpr int kTile = 6;  // output pixels per register tile

YOLOC_AVX2_INLINE __m256 silu8(__m256 v) {
    v8 t = v;
    return siluv(t);
}

struct Geometry {
    ConvSpec s;
    int64_t ic;       // real input channels (the padding lanes of the last block are not read)
    int64_t nfull;    // input channel groups read whole: blocks of 16 (blocked) or channels (plain)
    int64_t rem;      // channels of the partial last block (blocked input only)
    int64_t cbs;      // floats between input channel groups
    int64_t in_img;   // floats per input image
    int64_t out_img;  // floats per output image
    int64_t wblock;   // floats of packed weights per output block
    int64_t blocks;   // output blocks
};

// acc[t] += x(pixel t, channel ci) * w(channel ci): the input of pixel t at
// px(t) + off, the 16 weights of the channel at w.
template <int T, typename Px>
YOLOC_AVX2_INLINE void fma_tile(__m256 (&acc)[T][2], const float* w, Px px, int64_t off) {
    const __m256 w0 = _mm256_load_ps(w), w1 = _mm256_load_ps(w + 8);
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) {
        const __m256 v = _mm256_broadcast_ss(px(t) + off);
        acc[t][0] = _mm256_fmadd_ps(v, w0, acc[t][0]);
        acc[t][1] = _mm256_fmadd_ps(v, w1, acc[t][1]);
    }
}

// One tile: T output pixels (ow0 ..) of output row oh for one output block.
// CHECK: some pixel's input lies (partly) in the padding; those pixels read zeros.
// CB: input channels per group (16 blocked, 1 plain). K, S: kernel size and stride
// when known at compile time (0: read from the spec).
template <int T, bool CHECK, int CB, int K, int S>
YOLOC_AVX2_INLINE void conv_tile(const Geometry& g, const float* x, const float* wp, const float* bias, float* out,
                                 const float* res, int64_t oh, int64_t ow0) {
    alignas(64) static const float zeros[16] = {};
    const ConvSpec& s = g.s;
    const int64_t kh = K ? K : s.kh, kw = K ? K : s.kw, sw = S ? S : s.sw;
    const int64_t W = s.in.w, H = s.in.h;
    __m256 acc[T][2];
    {
        const __m256 b0 = _mm256_load_ps(bias), b1 = _mm256_load_ps(bias + 8);
#pragma GCC unroll 8
        for (int t = 0; t < T; ++t) {
            acc[t][0] = b0;
            acc[t][1] = b1;
        }
    }
    for (int64_t ky = 0; ky < kh; ++ky) {
        const int64_t iy = oh * s.sh - s.pt + ky * s.dh;
        if (iy < 0 || iy >= H) continue;
        const float* row = x + iy * W * CB;
#pragma GCC unroll 1
        for (int64_t kx = 0; kx < kw; ++kx) {
            const int64_t ix0 = ow0 * sw - s.pl + kx * s.dw;
            const float* wk = wp + (ky * kw + kx) * g.ic * 16;
            if (!CHECK) {
                // Every pixel inside the row: one pointer, the pixels at fixed offsets.
                const float* base = row + ix0 * CB;
                const int64_t pstep = sw * CB;
                auto px = [&](int t) { return base + t * pstep; };
                for (int64_t c = 0; c < g.nfull; ++c) {
#pragma GCC unroll 16
                    for (int ci = 0; ci < CB; ++ci) fma_tile<T>(acc, wk + ci * 16, px, ci);
                    wk += CB * 16;
                    base += g.cbs;
                }
                for (int64_t ci = 0; ci < g.rem; ++ci) fma_tile<T>(acc, wk + ci * 16, px, ci);
                continue;
            }
            // Pixel t reads from p[t]; a padding pixel reads the zero vector and does
            // not advance with the channel groups.
            const float* p[T];
            int64_t step[T];
#pragma GCC unroll 8
            for (int t = 0; t < T; ++t) {
                const int64_t ix = ix0 + t * sw;
                const bool in = ix >= 0 && ix < W;
                p[t] = in ? row + ix * CB : zeros;
                step[t] = in ? g.cbs : 0;
            }
            auto px = [&](int t) { return p[t]; };
            for (int64_t c = 0; c < g.nfull; ++c) {
#pragma GCC unroll 16
                for (int ci = 0; ci < CB; ++ci) fma_tile<T>(acc, wk + ci * 16, px, ci);
                wk += CB * 16;
#pragma GCC unroll 8
                for (int t = 0; t < T; ++t) p[t] += step[t];
            }
            for (int64_t ci = 0; ci < g.rem; ++ci) fma_tile<T>(acc, wk + ci * 16, px, ci);
        }
    }
    // Unaligned forms: callers' buffers need not be 32-byte aligned (the executor's are).
    const int64_t ostride = 16;
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) {
        __m256 v0 = acc[t][0], v1 = acc[t][1];
        if (s.silu) {
            v0 = silu8(v0);
            v1 = silu8(v1);
        }
        if (res) {
            v0 = _mm256_add_ps(v0, _mm256_loadu_ps(res + t * ostride));
            v1 = _mm256_add_ps(v1, _mm256_loadu_ps(res + t * ostride + 8));
        }
        _mm256_storeu_ps(out + t * ostride, v0);
        _mm256_storeu_ps(out + t * ostride + 8, v1);
    }
}

// One output row of one output block: full tiles (unchecked where their input span
// lies inside the row), then the 1..5 pixels left as one narrower tile.
template <int CB, int K, int S>
YOLOC_AVX2_INLINE void conv_row(const Geometry& g, const float* x, const float* wp, const float* bias, float* out,
                                const float* res, int64_t oh) {
    const ConvSpec& s = g.s;
    const int64_t sw = S ? S : s.sw, kw = K ? K : s.kw;
    int64_t ow0 = 0;
    for (; ow0 + kTile <= s.out.w; ow0 += kTile) {
        const int64_t lo = ow0 * sw - s.pl, hi = (ow0 + kTile - 1) * sw - s.pl + (kw - 1) * s.dw;
        float* o = out + ow0 * 16;
        const float* r = res ? res + ow0 * 16 : nullptr;
        if (lo >= 0 && hi < s.in.w)
            conv_tile<kTile, false, CB, K, S>(g, x, wp, bias, o, r, oh, ow0);
        else
            conv_tile<kTile, true, CB, K, S>(g, x, wp, bias, o, r, oh, ow0);
    }
    float* o = out + ow0 * 16;
    const float* r = res ? res + ow0 * 16 : nullptr;
    switch (s.out.w - ow0) {
        case 0: break;
        case 1: conv_tile<1, true, CB, K, S>(g, x, wp, bias, o, r, oh, ow0); break;
        case 2: conv_tile<2, true, CB, K, S>(g, x, wp, bias, o, r, oh, ow0); break;
        case 3: conv_tile<3, true, CB, K, S>(g, x, wp, bias, o, r, oh, ow0); break;
        case 4: conv_tile<4, true, CB, K, S>(g, x, wp, bias, o, r, oh, ow0); break;
        default: conv_tile<5, true, CB, K, S>(g, x, wp, bias, o, r, oh, ow0); break;
    }
}

// Work items: (image, output block, output row), consecutive rows of one block
// together so that the block's weights stay in cache.
template <int CB, int K, int S>
YOLOC_AVX2 void conv_rows(const Geometry& g, const float* src, const float* wpack, const float* bias, float* dst,
                          const float* residual, int64_t begin, int64_t end) {
    const ConvSpec& s = g.s;
    for (int64_t i = begin; i < end; ++i) {
        const int64_t oh = i % s.out.h, rest = i / s.out.h, ocb = rest % g.blocks, n = rest / g.blocks;
        const int64_t off = n * g.out_img + (ocb * s.out.h + oh) * s.out.w * 16;
        conv_row<CB, K, S>(g, src + n * g.in_img, wpack + ocb * g.wblock, bias + ocb * 16, dst + off,
                           residual ? residual + off : nullptr, oh);
    }
}

using RowsFn = void (*)(const Geometry&, const float*, const float*, const float*, float*, const float*, int64_t,
                        int64_t);

// Compile-time kernel size and stride for YOLO's shapes (1x1 s1, 3x3 s1 and s2 on
// blocked input); everything else, the plain-input stem included, reads them at run time.
RowsFn pick_rows(const ConvSpec& s) {
    if (s.src_plain) return conv_rows<1, 0, 0>;
    if (s.kh == 1 && s.kw == 1 && s.sw == 1) return conv_rows<16, 1, 1>;
    if (s.kh == 3 && s.kw == 3 && s.sw == 1) return conv_rows<16, 3, 1>;
    if (s.kh == 3 && s.kw == 3 && s.sw == 2) return conv_rows<16, 3, 2>;
    return conv_rows<16, 0, 0>;
}

class DirectConvAvx2 : public ConvKernel {
public:
    DirectConvAvx2(const ConvSpec& s, const Tensor& w, const Tensor& b, ThreadPool* pool) : pool_(pool) {
        g_.s = s;
        g_.ic = s.in.c;
        g_.nfull = s.src_plain ? s.in.c : s.in.c / 16;
        g_.rem = s.src_plain ? 0 : s.in.c % 16;
        g_.cbs = s.src_plain ? s.in.h * s.in.w : s.in.h * s.in.w * 16;
        g_.in_img = s.src_plain ? s.in.c * s.in.h * s.in.w : s.in.image_floats();
        g_.out_img = s.out.image_floats();
        g_.blocks = s.out.cp() / 16;
        const int64_t oc = s.out.c, k = s.kh * s.kw;
        YOLOC_CHECK(w.shape() == Shape({oc, s.in.c, s.kh, s.kw}), "direct conv: weight shape ",
                    shape_str(w.shape()), " does not fit the spec");
        g_.wblock = k * s.in.c * 16;
        // Packed weights: [OC/16][KH*KW][IC][16], zero for padding output channels, so
        // that the 16 channels of an input block are 16 consecutive weight vectors.
        wbuf_ = alloc_aligned(size_t(g_.blocks * g_.wblock) * sizeof(float));
        float* wp = reinterpret_cast<float*>(wbuf_.get());
        const float* wsrc = w.data<float>();
        for (int64_t o = 0; o < oc; ++o)
            for (int64_t c = 0; c < s.in.c; ++c)
                for (int64_t j = 0; j < k; ++j)
                    wp[(o / 16) * g_.wblock + (j * s.in.c + c) * 16 + o % 16] = wsrc[(o * s.in.c + c) * k + j];
        bbuf_ = alloc_aligned(size_t(s.out.cp()) * sizeof(float));
        float* bp = reinterpret_cast<float*>(bbuf_.get());
        if (!b.empty())
            for (int64_t o = 0; o < oc; ++o) bp[o] = b.data<float>()[o];
        rows_ = pick_rows(s);
    }

    void run(const float* src, float* dst, const float* residual) override {
        const Geometry& g = g_;
        const float* wp = reinterpret_cast<const float*>(wbuf_.get());
        const float* bp = reinterpret_cast<const float*>(bbuf_.get());
        RowsFn rows = rows_;
        pool_->parallel_for(g.s.out.n * g.blocks * g.s.out.h, [&](int64_t b, int64_t e) {
            rows(g, src, wp, bp, dst, residual, b, e);
        });
    }
    const char* name() const override { return "direct-avx2"; }

private:
    Geometry g_;
    std::shared_ptr<uint8_t> wbuf_, bbuf_;  // 64-byte aligned (alloc_aligned zero-fills)
    RowsFn rows_ = nullptr;
    ThreadPool* pool_;
};

}  // namespace

bool direct_conv_avx2() {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

std::unique_ptr<ConvKernel> make_direct_conv_avx2(const ConvSpec& s, const Tensor& w, const Tensor& b,
                                                  ThreadPool* pool) {
    return std::unique_ptr<ConvKernel>(new DirectConvAvx2(s, w, b, pool));
}

}  // namespace fast
}  // namespace yoloc

#else

namespace yoloc {
namespace fast {

bool direct_conv_avx2() { return false; }

std::unique_ptr<ConvKernel> make_direct_conv_avx2(const ConvSpec&, const Tensor&, const Tensor&, ThreadPool*) {
    return nullptr;
}

}  // namespace fast
}  // namespace yoloc

#endif
