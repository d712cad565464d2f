// INT8 tensor-core implicit-GEMM convolution (see conv_int8.h). C++14; the sm_80
// instructions (cp.async, ldmatrix, mma.sync m16n8k32 s8) sit behind
// __CUDA_ARCH__ >= 800, so the file compiles for sm_53 / sm_75 too (empty kernels,
// never launched there: conv_int8() takes the direct INT8 kernel instead).
#include "engine/cuda/conv_int8.h"

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "engine/cuda/conv_mma.h"
#include "engine/cuda/splitk.h"

namespace yoloc {
namespace cuda {

namespace {

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
#define YOLOC_I8_ARCH 1
#endif

#ifdef YOLOC_I8_ARCH
__device__ __forceinline__ unsigned i8_smem(const void* p) { return static_cast<unsigned>(__cvta_generic_to_shared(p)); }
__device__ __forceinline__ void i8_cp_async16(unsigned dst, const void* src, int src_bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void i8_commit() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ __forceinline__ void i8_wait_all() { asm volatile("cp.async.wait_group 0;\n" ::); }
__device__ __forceinline__ void i8_ldmatrix_x4(unsigned& r0, unsigned& r1, unsigned& r2, unsigned& r3, unsigned addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
                 : "r"(addr));
}
__device__ __forceinline__ void mma_s8(int* d, const unsigned* a, const unsigned* b) {
    asm volatile(
        "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
// Eight fp16 values -> eight int8 (QuantizeLinear: x / s in float, round half to even,
// saturate), packed little-endian.
// v * (1/s) is within ~1 ulp of the correctly rounded v / s, so it rounds to the same
// integer unless it lies next to a .5 boundary; there the exact division decides
// (rare: keeps QuantizeLinear's result bit for bit without a division per value).
__device__ __forceinline__ unsigned q8(float v, float s, float inv) {
    const float t = v * inv;
    float r = rintf(t);
    if (fabsf(fabsf(t - r) - 0.5f) < 1e-5f * fmaxf(1.f, fabsf(t))) r = rintf(__fdiv_rn(v, s));
    r = fminf(fmaxf(r, -128.f), 127.f);
    return unsigned(int(r)) & 0xffu;
}
__device__ __forceinline__ uint2 quant8(const uint4 raw, float s, float inv) {
    const __half2* h = reinterpret_cast<const __half2*>(&raw);
    unsigned w[2];
#pragma unroll
    for (int j = 0; j < 2; ++j) {
        const float2 f0 = __half22float2(h[2 * j]);
        const float2 f1 = __half22float2(h[2 * j + 1]);
        w[j] = q8(f0.x, s, inv) | (q8(f0.y, s, inv) << 8) | (q8(f1.x, s, inv) << 16) | (q8(f1.y, s, inv) << 24);
    }
    return make_uint2(w[0], w[1]);
}
#endif

#ifdef YOLOC_I8_ARCH
// Epilogue of both INT8 kernels: * (s_in * s_w), bias, SiLU, residual (fp16, fp16
// fake-quantized with res_scale, or int8 of res_scale), then an fp16 store or, with
// a.ysc (int8 storage), QuantizeLinear with the output channel's scale.
__device__ __forceinline__ signed char q8_store(float v, float s) {
    float r = rintf(__fdiv_rn(v, s));
    r = fminf(fmaxf(r, -128.f), 127.f);
    return static_cast<signed char>(int(r));
}
__device__ __forceinline__ float res_value(const ConvArgs& a, size_t idx) {
    if (a.res_i8) return float(static_cast<const signed char*>(a.res)[idx]) * a.res_scale;
    const float r = __half2float(static_cast<const __half*>(a.res)[idx]);
    return a.res_scale > 0.f ? fake_quant(r, a.res_scale) : r;
}
// row_p(r): the output pixel of tile row r (-1: outside the output).
template <int MT, int NT, int WM, int WN, class RowP>
__device__ __forceinline__ void i8_epilogue(const ConvArgs& a, int (&acc)[MT][NT][4], int m0, int wm, int wn, int lane,
                                            RowP row_p) {
    const int M = a.m;
    const bool has_res = a.res != nullptr;
    const int eb = a.ysc ? 1 : 2, rb = a.res_i8 ? 1 : 2;
    // Two neighbouring channels in one store / load where the views allow it.
    const bool pair_ok = ((reinterpret_cast<uintptr_t>(a.y) & (2 * eb - 1)) == 0) && (a.ys % 2 == 0) &&
                         (!has_res || (((reinterpret_cast<uintptr_t>(a.res) & (2 * rb - 1)) == 0) && (a.rs % 2 == 0)));
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
        const int col = m0 + wn * WN + nt * 8 + (lane & 3) * 2;
        if (col >= M) continue;
        const bool two = col + 1 < M;
        const float q0 = a.qscale[col], q1 = two ? a.qscale[col + 1] : 0.f;
        const float b0 = a.bias[col], b1 = two ? a.bias[col + 1] : 0.f;
        const float s0 = a.ysc ? a.ysc[col] : 0.f, s1 = a.ysc && two ? a.ysc[col + 1] : 1.f;
#pragma unroll
        for (int mt = 0; mt < MT; ++mt)
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                const int p = row_p(wm * WM + mt * 16 + (lane >> 2) + h * 8);
                if (p < 0) continue;
                float v0 = float(acc[mt][nt][2 * h]) * q0 + b0, v1 = float(acc[mt][nt][2 * h + 1]) * q1 + b1;
                if (a.silu) {
                    v0 = __fdividef(v0, 1.0f + __expf(-v0));
                    v1 = __fdividef(v1, 1.0f + __expf(-v1));
                }
                const size_t ri = size_t(p) * a.rs + col, yi = size_t(p) * a.ys + col;
                if (two && pair_ok) {
                    if (has_res) {
                        if (a.res_i8) {
                            const char2 r = *reinterpret_cast<const char2*>(static_cast<const signed char*>(a.res) + ri);
                            v0 += float(r.x) * a.res_scale;
                            v1 += float(r.y) * a.res_scale;
                        } else {
                            float2 r = __half22float2(*reinterpret_cast<const __half2*>(static_cast<const __half*>(a.res) + ri));
                            if (a.res_scale > 0.f) {
                                r.x = fake_quant(r.x, a.res_scale);
                                r.y = fake_quant(r.y, a.res_scale);
                            }
                            v0 += r.x;
                            v1 += r.y;
                        }
                    }
                    if (a.ysc) {
                        char2 q;
                        q.x = q8_store(v0, s0);
                        q.y = q8_store(v1, s1);
                        *reinterpret_cast<char2*>(static_cast<signed char*>(a.y) + yi) = q;
                    } else {
                        *reinterpret_cast<__half2*>(static_cast<__half*>(a.y) + yi) = __floats2half2_rn(v0, v1);
                    }
                } else {
                    if (has_res) {
                        v0 += res_value(a, ri);
                        if (two) v1 += res_value(a, ri + 1);
                    }
                    if (a.ysc) {
                        static_cast<signed char*>(a.y)[yi] = q8_store(v0, s0);
                        if (two) static_cast<signed char*>(a.y)[yi + 1] = q8_store(v1, s1);
                    } else {
                        static_cast<__half*>(a.y)[yi] = __float2half(v0);
                        if (two) static_cast<__half*>(a.y)[yi + 1] = __float2half(v1);
                    }
                }
            }
    }
}
#endif

// BM x BN output tile per block, K in steps of BK int8 values through two
// shared-memory stages: weights by cp.async, activations through registers (loaded as
// fp16 one step ahead, quantized and stored after the step's MMAs); warps of WM x WN.
// VEC: 16-byte activation loads (cin and stride multiples of 8, aligned); else element
// loads (the 3-channel stem, odd slices). SK > 1: SK warp groups, each with its own
// stages, take every SK-th K tile (more loads in flight for layers with few pixels and
// a long K) and are summed through shared memory at the end.
template <int BM, int BN, int BK, int WM, int WN, int SK, bool VEC>
struct I8Conv {
    static constexpr int kWarpsM = BM / WM, kWarpsN = BN / WN;
    static constexpr int kGroupThreads = kWarpsM * kWarpsN * 32;
    static constexpr int kThreads = kGroupThreads * SK;
    static constexpr int kMT = WM / 16, kNT = WN / 8;
    static constexpr int kKSteps = BK / 32;
    static constexpr int kRow = BK + 16;  // bytes per shared row: conflict-free ldmatrix
    static constexpr int kAStage = BM * kRow, kBStage = BN * kRow;
    static constexpr int kGroupSmem = 2 * (kAStage + kBStage);
    static constexpr int kPipe = SK * kGroupSmem, kRed = (SK - 1) * BM * BN * 4;
    static constexpr int kSmem = kPipe > kRed ? kPipe : kRed;
    static constexpr int kACpr = BK / 8;  // 8-value activation chunks per row
    static constexpr int kAIters = BM * kACpr / kGroupThreads;
    static constexpr int kBCpr = BK / 16;  // 16-byte weight chunks per row
    static constexpr int kBIters = (BN * kBCpr + kGroupThreads - 1) / kGroupThreads;
    static_assert(BM % WM == 0 && BN % WN == 0 && WM % 16 == 0 && WN % 16 == 0 && BK % 32 == 0, "tile shape");
    static_assert(kGroupThreads % kACpr == 0 && (BM * kACpr) % kGroupThreads == 0, "A loader mapping");
    static_assert(kSmem <= 48 * 1024, "static shared memory limit");
};

template <int BM, int BN, int BK, int WM, int WN, int SK, bool VEC>
__global__ void __launch_bounds__(I8Conv<BM, BN, BK, WM, WN, SK, VEC>::kThreads) conv_i8_kernel(ConvArgs a) {
    using C = I8Conv<BM, BN, BK, WM, WN, SK, VEC>;
#ifdef YOLOC_I8_ARCH
    __shared__ __align__(16) unsigned char smem[C::kSmem];
    const __half* __restrict__ x = static_cast<const __half*>(a.x);
    const signed char* __restrict__ wt = static_cast<const signed char*>(a.wt);
    const int P = a.n * a.oh * a.ow;
    const int K = a.kh * a.kw * a.c;
    const int M = a.m, WK = a.wk;
    const int p0 = blockIdx.x * BM, m0 = blockIdx.y * BN;
    const int lane = threadIdx.x & 31;
    const int kg = int(threadIdx.x) / C::kGroupThreads;  // K group
    const int tid = int(threadIdx.x) % C::kGroupThreads, warp = tid >> 5;
    const int wm = warp / C::kWarpsN, wn = warp % C::kWarpsN;
    unsigned char* As = smem + kg * C::kGroupSmem;
    unsigned char* Bs = As + 2 * C::kAStage;
    const float s_in = a.in_scale;
    const float inv_in = 1.0f / s_in;

    const int a_kc = tid % C::kACpr;
    const int a_r0 = tid / C::kACpr;
    constexpr int kARowStep = C::kGroupThreads / C::kACpr;
    int a_base[C::kAIters], a_iy[C::kAIters], a_ix[C::kAIters];
#pragma unroll
    for (int i = 0; i < C::kAIters; ++i) {
        const int p = p0 + a_r0 + i * kARowStep;
        if (p < P) {
            const int ox = p % a.ow, t = p / a.ow;
            const int oy = t % a.oh, n = t / a.oh;
            a_base[i] = n * a.h;
            a_iy[i] = oy * a.sh - a.ph;
            a_ix[i] = ox * a.sw - a.pw;
        } else {
            a_base[i] = 0;
            a_iy[i] = -(1 << 28);
            a_ix[i] = 0;
        }
    }
    const int ktiles = (K + BK - 1) / BK;
    const int iters = (ktiles + SK - 1) / SK;  // group kg takes tiles kg, kg + SK, ...
    pdl_wait();  // engine/cuda/launch.h

    uint4 areg[C::kAIters];
    auto load_a = [&](int kt) {
        const int k0 = kt * BK;
        if (VEC) {
            const int k = k0 + a_kc * 8;
            const int tap = k / a.c;
            const int ci = k - tap * a.c;
            const int ky = tap / a.kw, kx = tap - ky * a.kw;
            const bool kok = k < K;
#pragma unroll
            for (int i = 0; i < C::kAIters; ++i) {
                const int iy = a_iy[i] + ky, ix = a_ix[i] + kx;
                const bool ok = kok && unsigned(iy) < unsigned(a.h) && unsigned(ix) < unsigned(a.w);
                areg[i] = ok ? *reinterpret_cast<const uint4*>(x + (size_t(a_base[i] + iy) * a.w + ix) * a.xs + ci)
                             : make_uint4(0u, 0u, 0u, 0u);
            }
        } else {
            const __half zero = __float2half(0.f);
#pragma unroll
            for (int i = 0; i < C::kAIters; ++i) {
                __align__(16) __half v[8];
#pragma unroll
                for (int j = 0; j < 8; ++j) {
                    const int k = k0 + a_kc * 8 + j;
                    __half u = zero;
                    if (k < K) {
                        const int tap = k / a.c;
                        const int ci = k - tap * a.c;
                        const int ky = tap / a.kw, kx = tap - ky * a.kw;
                        const int iy = a_iy[i] + ky, ix = a_ix[i] + kx;
                        if (unsigned(iy) < unsigned(a.h) && unsigned(ix) < unsigned(a.w))
                            u = x[(size_t(a_base[i] + iy) * a.w + ix) * a.xs + ci];
                    }
                    v[j] = u;
                }
                areg[i] = *reinterpret_cast<const uint4*>(v);
            }
        }
    };
    auto store_a = [&](int stage) {
        unsigned char* as = As + stage * C::kAStage;
#pragma unroll
        for (int i = 0; i < C::kAIters; ++i) {
            const int r = a_r0 + i * kARowStep;
            *reinterpret_cast<uint2*>(as + r * C::kRow + a_kc * 8) = quant8(areg[i], s_in, inv_in);
        }
    };
    auto load_b = [&](int stage, int kt) {
        unsigned char* bs = Bs + stage * C::kBStage;
        const int k0 = kt * BK;
#pragma unroll
        for (int i = 0; i < C::kBIters; ++i) {
            const int idx = tid + i * C::kGroupThreads;
            if ((BN * C::kBCpr) % C::kGroupThreads != 0 && idx >= BN * C::kBCpr) break;
            const int nr = idx / C::kBCpr, kc = idx % C::kBCpr;
            const int kk = k0 + kc * 16, n = m0 + nr;
            const bool ok = n < M && kk < WK;
            const signed char* src = ok ? wt + size_t(n) * WK + kk : wt;
            i8_cp_async16(i8_smem(bs + nr * C::kRow + kc * 16), src, ok ? 16 : 0);
        }
    };

    int acc[C::kMT][C::kNT][4];
#pragma unroll
    for (int i = 0; i < C::kMT; ++i)
#pragma unroll
        for (int j = 0; j < C::kNT; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e) acc[i][j][e] = 0;

    // Tiles past the end (the last round of a split group) load as zeros.
    load_a(kg);
    load_b(0, kg);
    i8_commit();
    store_a(0);
    for (int it = 0; it < iters; ++it) {
        i8_wait_all();
        __syncthreads();
        const bool more = it + 1 < iters;
        const int nkt = (it + 1) * SK + kg;
        if (more) {
            load_a(nkt);
            load_b((it + 1) & 1, nkt);
        }
        i8_commit();
        const unsigned char* as = As + (it & 1) * C::kAStage;
        const unsigned char* bs = Bs + (it & 1) * C::kBStage;
#pragma unroll
        for (int ks = 0; ks < C::kKSteps; ++ks) {
            unsigned af[C::kMT][4];
            unsigned bf[C::kNT][2];
#pragma unroll
            for (int mt = 0; mt < C::kMT; ++mt) {
                const int row = wm * WM + mt * 16 + (lane & 15);
                const int col = ks * 32 + (lane >> 4) * 16;
                i8_ldmatrix_x4(af[mt][0], af[mt][1], af[mt][2], af[mt][3], i8_smem(as + row * C::kRow + col));
            }
#pragma unroll
            for (int np = 0; np < C::kNT / 2; ++np) {
                const int j = lane >> 3;
                const int row = wn * WN + np * 16 + (j >> 1) * 8 + (lane & 7);
                const int col = ks * 32 + (j & 1) * 16;
                i8_ldmatrix_x4(bf[2 * np][0], bf[2 * np][1], bf[2 * np + 1][0], bf[2 * np + 1][1],
                               i8_smem(bs + row * C::kRow + col));
            }
#pragma unroll
            for (int mt = 0; mt < C::kMT; ++mt)
#pragma unroll
                for (int nt = 0; nt < C::kNT; ++nt) mma_s8(acc[mt][nt], af[mt], bf[nt]);
        }
        if (more) store_a((it + 1) & 1);
    }
    pdl_launch_dependents();
    if (SK > 1) {
        // Sum the K groups' integer sums through shared memory (the stages are free now).
        i8_wait_all();
        __syncthreads();
        splitk_sum<int, C::kMT, C::kNT, WM, WN, BM, BN, SK>(acc, reinterpret_cast<int*>(smem), kg, wm, wn, lane);
        if (kg > 0) return;
    }

    i8_epilogue<C::kMT, C::kNT, WM, WN>(a, acc, m0, wm, wn, lane, [&](int r) { return p0 + r < P ? p0 + r : -1; });
#else
    (void)a;
    (void)C::kMT;
    (void)C::kNT;
    (void)C::kAIters;
    (void)C::kBIters;
#endif
}

// The INT8 kernel for an int8 input buffer (int8 storage, ConvArgs::x_i8): the A tile
// is a cp.async copy of the stored integers (16 channels per 16-byte chunk), so A and B
// both stream through a STAGES-deep shared-memory pipeline as in the fp16 kernel
// (conv_mma.cu), with twice the K per byte. SK warp groups split each BK tile's k32
// steps and are summed through shared memory. VEC: cin and the channel stride multiples
// of 16 and a 16-byte aligned view; else byte loads (odd slices).
template <int BM, int BN, int BK, int WM, int WN, int SK, int STAGES, bool VEC>
struct I8InConv {
    static constexpr int kWarpsM = BM / WM, kWarpsN = BN / WN;
    static constexpr int kGroupThreads = kWarpsM * kWarpsN * 32;
    static constexpr int kThreads = kGroupThreads * SK;
    static constexpr int kMT = WM / 16, kNT = WN / 8;
    static constexpr int kKSteps = BK / 32;
    static constexpr int kRow = BK + 16;  // bytes per shared row: conflict-free ldmatrix
    static constexpr int kAStage = BM * kRow, kBStage = BN * kRow;
    static constexpr int kPipe = STAGES * (kAStage + kBStage), kRed = (SK - 1) * BM * BN * 4;
    static constexpr int kSmem = kPipe > kRed ? kPipe : kRed;
    static constexpr int kCpr = BK / 16;  // 16-byte chunks per row (A and B)
    static constexpr int kAIters = (BM * kCpr + kThreads - 1) / kThreads;
    static constexpr int kBIters = (BN * kCpr + kThreads - 1) / kThreads;
    static_assert(BM % WM == 0 && BN % WN == 0 && WM % 16 == 0 && WN % 16 == 0 && BK % 32 == 0, "tile shape");
    static_assert(kKSteps % SK == 0, "split-K groups must divide the k32 steps");
    static_assert(kThreads % kCpr == 0, "A loader mapping");
    static_assert(kSmem <= 48 * 1024, "static shared memory limit");
};

template <int BM, int BN, int BK, int WM, int WN, int SK, int STAGES, bool VEC>
__global__ void __launch_bounds__(I8InConv<BM, BN, BK, WM, WN, SK, STAGES, VEC>::kThreads)
    conv_i8in_kernel(ConvArgs a) {
    using C = I8InConv<BM, BN, BK, WM, WN, SK, STAGES, VEC>;
#ifdef YOLOC_I8_ARCH
    __shared__ __align__(16) unsigned char smem[C::kSmem];
    unsigned char* As = smem;
    unsigned char* Bs = smem + STAGES * C::kAStage;
    const signed char* __restrict__ x = static_cast<const signed char*>(a.x);
    const signed char* __restrict__ wt = static_cast<const signed char*>(a.wt);
    const int P = a.n * a.oh * a.ow;
    const int K = a.kh * a.kw * a.c;
    const int M = a.m, WK = a.wk;
    const int p0 = blockIdx.x * BM, m0 = blockIdx.y * BN;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int kg = warp / (C::kWarpsM * C::kWarpsN);
    const int wrest = warp % (C::kWarpsM * C::kWarpsN);
    const int wm = wrest / C::kWarpsN, wn = wrest % C::kWarpsN;

    const int a_kc = tid % C::kCpr;
    const int a_r0 = tid / C::kCpr;
    constexpr int kARowStep = C::kThreads / C::kCpr;
    int a_base[C::kAIters], a_iy[C::kAIters], a_ix[C::kAIters];
#pragma unroll
    for (int i = 0; i < C::kAIters; ++i) {
        const int p = p0 + a_r0 + i * kARowStep;
        if (p < P && a_r0 + i * kARowStep < BM) {
            const int ox = p % a.ow, t = p / a.ow;
            const int oy = t % a.oh, n = t / a.oh;
            a_base[i] = n * a.h;
            a_iy[i] = oy * a.sh - a.ph;
            a_ix[i] = ox * a.sw - a.pw;
        } else {
            a_base[i] = 0;
            a_iy[i] = -(1 << 28);  // never inside the image: zero-filled
            a_ix[i] = 0;
        }
    }
    const int ktiles = (K + BK - 1) / BK;

    auto load_a = [&](int stage, int kt) {
        unsigned char* as = As + stage * C::kAStage;
        const int k0 = kt * BK;
        if (VEC) {
            const int k = k0 + a_kc * 16;
            const int tap = k / a.c;
            const int ci = k - tap * a.c;
            const int ky = tap / a.kw, kx = tap - ky * a.kw;
            const bool kok = k < K;
#pragma unroll
            for (int i = 0; i < C::kAIters; ++i) {
                const int r = a_r0 + i * kARowStep;
                if (C::kAIters * kARowStep > BM && r >= BM) break;
                const int iy = a_iy[i] + ky, ix = a_ix[i] + kx;
                const bool ok = kok && unsigned(iy) < unsigned(a.h) && unsigned(ix) < unsigned(a.w);
                const signed char* src = ok ? x + (size_t(a_base[i] + iy) * a.w + ix) * a.xs + ci : x;
                asm volatile("cp.async.ca.shared.global [%0], [%1], 16, %2;\n" ::"r"(i8_smem(as + r * C::kRow + a_kc * 16)),
                             "l"(src), "r"(ok ? 16 : 0));
            }
        } else {
#pragma unroll
            for (int i = 0; i < C::kAIters; ++i) {
                const int r = a_r0 + i * kARowStep;
                if (C::kAIters * kARowStep > BM && r >= BM) break;
                __align__(16) signed char v[16];
#pragma unroll
                for (int j = 0; j < 16; ++j) {
                    const int k = k0 + a_kc * 16 + j;
                    signed char u = 0;
                    if (k < K) {
                        const int tap = k / a.c;
                        const int ci = k - tap * a.c;
                        const int ky = tap / a.kw, kx = tap - ky * a.kw;
                        const int iy = a_iy[i] + ky, ix = a_ix[i] + kx;
                        if (unsigned(iy) < unsigned(a.h) && unsigned(ix) < unsigned(a.w))
                            u = x[(size_t(a_base[i] + iy) * a.w + ix) * a.xs + ci];
                    }
                    v[j] = u;
                }
                *reinterpret_cast<uint4*>(as + r * C::kRow + a_kc * 16) = *reinterpret_cast<const uint4*>(v);
            }
        }
    };
    auto load_b = [&](int stage, int kt) {
        unsigned char* bs = Bs + stage * C::kBStage;
        const int k0 = kt * BK;
#pragma unroll
        for (int i = 0; i < C::kBIters; ++i) {
            const int idx = tid + i * C::kThreads;
            if ((BN * C::kCpr) % C::kThreads != 0 && idx >= BN * C::kCpr) break;
            const int nr = idx / C::kCpr, kc = idx % C::kCpr;
            const int kk = k0 + kc * 16, n = m0 + nr;
            const bool ok = n < M && kk < WK;
            i8_cp_async16(i8_smem(bs + nr * C::kRow + kc * 16), ok ? wt + size_t(n) * WK + kk : wt, ok ? 16 : 0);
        }
    };

    int acc[C::kMT][C::kNT][4];
#pragma unroll
    for (int i = 0; i < C::kMT; ++i)
#pragma unroll
        for (int j = 0; j < C::kNT; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e) acc[i][j][e] = 0;

    // Weights before the PDL wait (they do not depend on the previous kernel), as in
    // the fp16 kernel; the first commit group holds them.
#pragma unroll
    for (int st = 0; st < STAGES - 1; ++st)
        if (st < ktiles) load_b(st, st);
    pdl_wait();
#pragma unroll
    for (int st = 0; st < STAGES - 1; ++st) {
        if (st < ktiles) load_a(st, st);
        i8_commit();
    }
    for (int kt = 0; kt < ktiles; ++kt) {
        asm volatile("cp.async.wait_group %0;\n" ::"n"(STAGES - 2));
        __syncthreads();
        {
            const int nk = kt + STAGES - 1;
            if (nk < ktiles) {
                load_a(nk % STAGES, nk);
                load_b(nk % STAGES, nk);
            }
            i8_commit();
        }
        const unsigned char* as = As + (kt % STAGES) * C::kAStage;
        const unsigned char* bs = Bs + (kt % STAGES) * C::kBStage;
#pragma unroll
        for (int kk = 0; kk < C::kKSteps / SK; ++kk) {
            const int ks = kk * SK + kg;
            unsigned af[C::kMT][4];
            unsigned bf[C::kNT][2];
#pragma unroll
            for (int mt = 0; mt < C::kMT; ++mt) {
                const int row = wm * WM + mt * 16 + (lane & 15);
                const int col = ks * 32 + (lane >> 4) * 16;
                i8_ldmatrix_x4(af[mt][0], af[mt][1], af[mt][2], af[mt][3], i8_smem(as + row * C::kRow + col));
            }
#pragma unroll
            for (int np = 0; np < C::kNT / 2; ++np) {
                const int j = lane >> 3;
                const int row = wn * WN + np * 16 + (j >> 1) * 8 + (lane & 7);
                const int col = ks * 32 + (j & 1) * 16;
                i8_ldmatrix_x4(bf[2 * np][0], bf[2 * np][1], bf[2 * np + 1][0], bf[2 * np + 1][1],
                               i8_smem(bs + row * C::kRow + col));
            }
#pragma unroll
            for (int mt = 0; mt < C::kMT; ++mt)
#pragma unroll
                for (int nt = 0; nt < C::kNT; ++nt) mma_s8(acc[mt][nt], af[mt], bf[nt]);
        }
    }
    pdl_launch_dependents();
    if (SK > 1) {
        i8_wait_all();
        __syncthreads();
        splitk_sum<int, C::kMT, C::kNT, WM, WN, BM, BN, SK>(acc, reinterpret_cast<int*>(smem), kg, wm, wn, lane);
        if (kg > 0) return;
    }
    i8_epilogue<C::kMT, C::kNT, WM, WN>(a, acc, m0, wm, wn, lane, [&](int r) { return p0 + r < P ? p0 + r : -1; });
#else
    (void)a;
    (void)C::kMT;
    (void)C::kNT;
    (void)C::kAIters;
    (void)C::kBIters;
#endif
}

// The halo-tile 3x3 conv (conv_mma.cu's conv_halo_kernel) on an int8 input buffer: the
// patch holds the stored integers (CK channels = CK bytes per pixel), the weights of the
// chunk are [n][9 taps x CK] bytes (the mma "col" operand), m16n8k32 s8 MMAs.
template <int TH, int TW, int BN, int WN, int CK, int S, int ST>
struct I8HaloConv {
    static constexpr int kBM = TH * TW;
    static constexpr int kWarpsM = kBM / 32, kWarpsN = BN / WN;
    static constexpr int kThreads = kWarpsM * kWarpsN * 32;
    static constexpr int kMT = 2, kNT = WN / 8;
    static constexpr int kHH = (TH - 1) * S + 3, kHW = (TW - 1) * S + 3;
    static constexpr int kRow = CK + 16;       // bytes per patch pixel: conflict-free ldmatrix (stride 1)
    static constexpr int kWRow = 9 * CK + 16;  // bytes per weight row (one output channel)
    static constexpr int kPatch = kHH * kHW * kRow, kW = BN * kWRow;
    static constexpr int kSmem = ST * (kPatch + kW);
    static_assert(kBM % 32 == 0 && TW % 8 == 0 && BN % WN == 0 && WN % 16 == 0 && CK % 32 == 0, "tile shape");
    static_assert((S == 1 || S == 2) && (ST == 1 || ST == 2), "stride and stages");
    static_assert(kSmem <= 48 * 1024, "static shared memory limit");
};

template <int TH, int TW, int BN, int WN, int CK, int S, int ST>
__global__ void __launch_bounds__(I8HaloConv<TH, TW, BN, WN, CK, S, ST>::kThreads) conv_i8halo_kernel(ConvArgs a) {
    using C = I8HaloConv<TH, TW, BN, WN, CK, S, ST>;
#ifdef YOLOC_I8_ARCH
    __shared__ __align__(16) unsigned char smem[C::kSmem];
    const signed char* __restrict__ x = static_cast<const signed char*>(a.x);
    const signed char* __restrict__ wt = static_cast<const signed char*>(a.wt);
    const int M = a.m;
    const int tiles_x = (a.ow + TW - 1) / TW, tiles_y = (a.oh + TH - 1) / TH;
    const int tile = blockIdx.x;
    const int n = tile / (tiles_x * tiles_y);
    const int oy0 = (tile / tiles_x) % tiles_y * TH, ox0 = tile % tiles_x * TW;
    const int m0 = blockIdx.y * BN;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wm = warp / C::kWarpsN, wn = warp % C::kWarpsN;

    auto load_w = [&](int c0, int st) {
        constexpr int kCpt = CK / 16;  // 16-byte chunks per tap
        unsigned char* ws = smem + st * (C::kPatch + C::kW) + C::kPatch;
        for (int idx = tid; idx < BN * 9 * kCpt; idx += C::kThreads) {
            const int nr = idx / (9 * kCpt), rest = idx % (9 * kCpt);
            const int tap = rest / kCpt, cc = rest % kCpt;
            const int col = m0 + nr, ci = c0 + cc * 16;
            const bool ok = col < M && ci < a.c;
            const signed char* src = ok ? wt + size_t(col) * a.wk + tap * a.c + ci : wt;
            i8_cp_async16(i8_smem(ws + nr * C::kWRow + tap * CK + cc * 16), src, ok ? 16 : 0);
        }
    };
    auto load_patch = [&](int c0, int st) {
        constexpr int kCpr = CK / 16;
        unsigned char* patch = smem + st * (C::kPatch + C::kW);
        for (int idx = tid; idx < C::kHH * C::kHW * kCpr; idx += C::kThreads) {
            const int pix = idx / kCpr, cc = idx % kCpr;
            const int iy = oy0 * S + pix / C::kHW - 1, ix = ox0 * S + pix % C::kHW - 1, ci = c0 + cc * 16;
            const bool ok = unsigned(iy) < unsigned(a.h) && unsigned(ix) < unsigned(a.w) && ci < a.c;
            const signed char* src = ok ? x + ((size_t(n) * a.h + iy) * a.w + ix) * a.xs + ci : x;
            asm volatile("cp.async.ca.shared.global [%0], [%1], 16, %2;\n" ::"r"(i8_smem(patch + pix * C::kRow + cc * 16)),
                         "l"(src), "r"(ok ? 16 : 0));
        }
    };

    int acc[C::kMT][C::kNT][4];
#pragma unroll
    for (int i = 0; i < C::kMT; ++i)
#pragma unroll
        for (int j = 0; j < C::kNT; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e) acc[i][j][e] = 0;
    int prow[C::kMT];
#pragma unroll
    for (int mt = 0; mt < C::kMT; ++mt) {
        const int r = wm * 32 + mt * 16 + (lane & 15);
        prow[mt] = (r / TW) * S * C::kHW + (r % TW) * S;
    }
    auto compute = [&](int st) {
        const unsigned char* patch = smem + st * (C::kPatch + C::kW);
        const unsigned char* ws = patch + C::kPatch;
#pragma unroll
        for (int tap = 0; tap < 9; ++tap) {
            const int off = (tap / 3) * C::kHW + tap % 3;
#pragma unroll
            for (int ks = 0; ks < CK / 32; ++ks) {
                unsigned af[C::kMT][4];
                unsigned bf[C::kNT][2];
#pragma unroll
                for (int mt = 0; mt < C::kMT; ++mt)
                    i8_ldmatrix_x4(af[mt][0], af[mt][1], af[mt][2], af[mt][3],
                                   i8_smem(patch + (prow[mt] + off) * C::kRow + ks * 32 + (lane >> 4) * 16));
#pragma unroll
                for (int np = 0; np < C::kNT / 2; ++np) {
                    const int j = lane >> 3;
                    const int row = wn * WN + np * 16 + (j >> 1) * 8 + (lane & 7);
                    i8_ldmatrix_x4(bf[2 * np][0], bf[2 * np][1], bf[2 * np + 1][0], bf[2 * np + 1][1],
                                   i8_smem(ws + row * C::kWRow + tap * CK + ks * 32 + (j & 1) * 16));
                }
#pragma unroll
                for (int mt = 0; mt < C::kMT; ++mt)
#pragma unroll
                    for (int nt = 0; nt < C::kNT; ++nt) mma_s8(acc[mt][nt], af[mt], bf[nt]);
            }
        }
    };
    const int chunks = (a.c + CK - 1) / CK;
    load_w(0, 0);  // weights before the PDL wait
    pdl_wait();
    load_patch(0, 0);
    i8_commit();
    for (int i = 0; i < chunks; ++i) {
        const int st = ST == 2 ? (i & 1) : 0;
        if (ST == 2) {
            if (i + 1 < chunks) {
                load_w((i + 1) * CK, st ^ 1);
                load_patch((i + 1) * CK, st ^ 1);
            }
            i8_commit();
            asm volatile("cp.async.wait_group 1;\n" ::);
        } else {
            i8_wait_all();
        }
        __syncthreads();
        compute(st);
        __syncthreads();
        if (ST == 1 && i + 1 < chunks) {
            load_w((i + 1) * CK, 0);
            load_patch((i + 1) * CK, 0);
            i8_commit();
        }
    }
    pdl_launch_dependents();
    i8_epilogue<C::kMT, C::kNT, 32, WN>(a, acc, m0, wm, wn, lane, [&](int r) {
        const int oy = oy0 + r / TW, ox = ox0 + r % TW;
        return oy < a.oh && ox < a.ow ? (n * a.oh + oy) * a.ow + ox : -1;
    });
#else
    (void)a;
    (void)C::kMT;
    (void)C::kNT;
#endif
}

__global__ void conv_i8_direct_kernel(ConvArgs a) {
    const long long total = conv_items(a);
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x)
        conv_int8_at<__half>(a, i);
}

using KernelFn = void (*)(ConvArgs);

struct Entry {
    Int8Config cfg;
    KernelFn vec, gen;
    int threads;
};

#define YOLOC_I8_ENTRY(BM, BN, BK, WM, WN, SK)                                                                 \
    Entry {                                                                                                    \
        Int8Config{BM, BN, BK, WM, WN, SK}, conv_i8_kernel<BM, BN, BK, WM, WN, SK, true>,                      \
            conv_i8_kernel<BM, BN, BK, WM, WN, SK, false>, I8Conv<BM, BN, BK, WM, WN, SK, true>::kThreads      \
    }

// Tile table (tactic ids are kConvInt8MmaBase + index: keep the order stable).
const Entry kI8[] = {
    YOLOC_I8_ENTRY(64, 64, 64, 32, 32, 1),    // 0
    YOLOC_I8_ENTRY(128, 64, 64, 32, 32, 1),   // 1: big layers, 8 warps
    YOLOC_I8_ENTRY(64, 32, 64, 32, 16, 1),    // 2: cout 32
    YOLOC_I8_ENTRY(32, 32, 64, 16, 16, 1),    // 3
    YOLOC_I8_ENTRY(64, 16, 64, 16, 16, 1),    // 4: cout 16
    YOLOC_I8_ENTRY(32, 64, 128, 16, 32, 1),   // 5: few pixels, long K
    YOLOC_I8_ENTRY(32, 16, 128, 16, 16, 1),   // 6: smallest, 2 warps
    YOLOC_I8_ENTRY(128, 32, 64, 32, 16, 1),   // 7: cout 32, many pixels
    YOLOC_I8_ENTRY(16, 32, 128, 16, 16, 1),   // 8: tiny layers
    YOLOC_I8_ENTRY(128, 16, 64, 32, 16, 1),   // 9: stem-like (cout 16, many pixels)
    // In-block split-K: the K loop is a chain of global-load latencies (one tile ahead),
    // so layers with few pixels and a long K need several chains in flight.
    YOLOC_I8_ENTRY(16, 32, 64, 16, 16, 4),    // 10
    YOLOC_I8_ENTRY(32, 32, 64, 16, 16, 4),    // 11
    YOLOC_I8_ENTRY(32, 64, 64, 16, 32, 2),    // 12
    YOLOC_I8_ENTRY(16, 64, 32, 16, 32, 4),    // 13
    YOLOC_I8_ENTRY(32, 16, 64, 16, 16, 4),    // 14
    YOLOC_I8_ENTRY(64, 32, 64, 32, 16, 2),    // 15
    YOLOC_I8_ENTRY(64, 64, 64, 32, 32, 2),    // 16
};
constexpr int kNumI8 = int(sizeof(kI8) / sizeof(kI8[0]));

struct InEntry {
    MmaConfig cfg;
    KernelFn vec, gen;
    int threads;
};

#define YOLOC_I8IN_ENTRY(BM, BN, BK, WM, WN, SK, ST)                                                       \
    InEntry {                                                                                              \
        MmaConfig{BM, BN, BK, WM, WN, SK, ST, 1}, conv_i8in_kernel<BM, BN, BK, WM, WN, SK, ST, true>,         \
            conv_i8in_kernel<BM, BN, BK, WM, WN, SK, ST, false>,                                           \
            I8InConv<BM, BN, BK, WM, WN, SK, ST, true>::kThreads                                           \
    }

// Tile table of the int8-input kernel (tactic ids kConvInt8InMmaBase + index: keep the
// order stable). Row i is the fp16 table's row i (conv_mma.cu) with twice its K per
// stage (the same bytes), so mma_default_config() picks for both.
const InEntry kI8In[] = {
    YOLOC_I8IN_ENTRY(128, 64, 64, 32, 32, 1, 3),   // 0
    YOLOC_I8IN_ENTRY(64, 64, 64, 32, 32, 1, 3),    // 1
    YOLOC_I8IN_ENTRY(64, 32, 64, 32, 16, 1, 3),    // 2
    YOLOC_I8IN_ENTRY(128, 32, 64, 32, 32, 1, 3),   // 3
    YOLOC_I8IN_ENTRY(128, 16, 64, 32, 16, 1, 3),   // 4
    YOLOC_I8IN_ENTRY(64, 16, 64, 16, 16, 1, 3),    // 5
    YOLOC_I8IN_ENTRY(32, 32, 128, 32, 32, 4, 3),   // 6
    YOLOC_I8IN_ENTRY(32, 64, 128, 32, 32, 4, 2),   // 7
    YOLOC_I8IN_ENTRY(64, 64, 128, 32, 32, 2, 2),   // 8
    YOLOC_I8IN_ENTRY(16, 32, 128, 16, 32, 4, 3),   // 9
    YOLOC_I8IN_ENTRY(64, 32, 128, 32, 16, 2, 3),   // 10
    YOLOC_I8IN_ENTRY(32, 16, 128, 16, 16, 2, 3),   // 11
    YOLOC_I8IN_ENTRY(32, 16, 128, 16, 16, 2, 6),   // 12
    YOLOC_I8IN_ENTRY(32, 16, 256, 16, 16, 4, 3),   // 13
    YOLOC_I8IN_ENTRY(64, 32, 64, 32, 16, 1, 5),    // 14
    YOLOC_I8IN_ENTRY(16, 32, 256, 16, 16, 4, 3),   // 15
    YOLOC_I8IN_ENTRY(64, 16, 128, 16, 16, 2, 3),   // 16
    YOLOC_I8IN_ENTRY(128, 16, 64, 32, 16, 1, 4),   // 17
    YOLOC_I8IN_ENTRY(32, 32, 256, 16, 16, 4, 2),   // 18
};
constexpr int kNumI8In = int(sizeof(kI8In) / sizeof(kI8In[0]));

struct HaloEntry {
    HaloConfig cfg;
    KernelFn fn;
    int threads;
};
#define YOLOC_I8HALO_ENTRY(TH, TW, BN, WN, CK, S, ST)                                                    \
    HaloEntry {                                                                                          \
        HaloConfig{TH, TW, BN, WN, CK, S, ST, 0}, conv_i8halo_kernel<TH, TW, BN, WN, CK, S, ST>,         \
            I8HaloConv<TH, TW, BN, WN, CK, S, ST>::kThreads                                              \
    }

// INT8 halo tiles (tactic ids kConvInt8HaloBase + index: keep the order stable).
const HaloEntry kI8Halo[] = {
    YOLOC_I8HALO_ENTRY(8, 16, 16, 16, 32, 1, 1),  // 0
    YOLOC_I8HALO_ENTRY(8, 16, 32, 32, 32, 1, 1),  // 1
    YOLOC_I8HALO_ENTRY(4, 8, 16, 16, 64, 1, 1),   // 2
    YOLOC_I8HALO_ENTRY(4, 8, 16, 16, 32, 1, 2),   // 3
    YOLOC_I8HALO_ENTRY(4, 16, 32, 32, 32, 1, 1),  // 4
    YOLOC_I8HALO_ENTRY(4, 8, 32, 32, 64, 1, 1),   // 5
    YOLOC_I8HALO_ENTRY(4, 8, 16, 16, 32, 2, 1),   // 6: stride 2
    YOLOC_I8HALO_ENTRY(4, 16, 16, 16, 32, 2, 1),  // 7
    YOLOC_I8HALO_ENTRY(4, 8, 32, 32, 64, 2, 1),   // 8
};
constexpr int kNumI8Halo = int(sizeof(kI8Halo) / sizeof(kI8Halo[0]));

bool i8in_vec_ok(const ConvArgs& a) {
    return a.c % 16 == 0 && a.xs % 16 == 0 && (reinterpret_cast<uintptr_t>(a.x) & 15) == 0;
}

bool i8_vec_ok(const ConvArgs& a) {
    return a.c % 8 == 0 && a.xs % 8 == 0 && (reinterpret_cast<uintptr_t>(a.x) & 15) == 0;
}

}  // namespace

int int8_config_count() { return kNumI8; }
Int8Config int8_config(int i) { return kI8[i].cfg; }

bool int8_mma_supported(const ConvArgs& a, int cfg) {
    return cfg >= 0 && cfg < kNumI8 && a.qscale && !a.x_i8 && !a.nchw && a.group == 1 && device_cc_major() >= 8 && a.m > 0 && a.c > 0 &&
           a.wk % 16 == 0 && a.wk >= a.kh * a.kw * a.c && (reinterpret_cast<uintptr_t>(a.wt) & 15) == 0;
}

int int8in_config_count() { return kNumI8In; }
MmaConfig int8in_config(int i) { return kI8In[i].cfg; }

bool int8in_mma_supported(const ConvArgs& a, int cfg) {
    return cfg >= 0 && cfg < kNumI8In && a.qscale && a.x_i8 && !a.nchw && a.group == 1 && device_cc_major() >= 8 &&
           a.m > 0 && a.c > 0 && a.wk % 16 == 0 && a.wk >= a.kh * a.kw * a.c &&
           (reinterpret_cast<uintptr_t>(a.wt) & 15) == 0;
}

int int8halo_config_count() { return kNumI8Halo; }
HaloConfig int8halo_config(int i) { return kI8Halo[i].cfg; }

bool int8halo_supported(const ConvArgs& a, int cfg) {
    if (cfg < 0 || cfg >= kNumI8Halo) return false;
    const int st = kI8Halo[cfg].cfg.s;
    return int8in_mma_supported(a, 0) && i8in_vec_ok(a) && a.kh == 3 && a.kw == 3 && a.sh == st && a.sw == st &&
           a.ph == 1 && a.pw == 1 && a.oh == (a.h - 1) / st + 1 && a.ow == (a.w - 1) / st + 1;
}

int int8_default_config(const ConvArgs& a) {
    const long long P = (long long)a.n * a.oh * a.ow;
    const long long K = (long long)a.kh * a.kw * a.c;
    const int sms = device_sm_count();
    auto blocks = [&](int bm, int bn) { return ((P + bm - 1) / bm) * ((a.m + bn - 1) / bn); };
    if (a.m <= 16) return blocks(128, 16) >= sms ? 9 : 4;
    if (a.m <= 32) return blocks(128, 32) >= 2 * sms ? 7 : (blocks(64, 32) >= sms ? 2 : 3);
    if (blocks(128, 64) >= 2 * sms) return 1;
    if (blocks(64, 64) >= sms) return 0;
    if (K >= 256) return blocks(32, 32) >= sms / 2 ? 11 : 10;
    return 3;
}

void conv_int8(const ConvArgs& a, cudaStream_t s) {
    int t = a.kernel;
    int cfg = -1;
    if (a.x_i8) {  // int8 input buffer: the halo or cp.async kernel, else the direct one
        if (t >= kConvInt8HaloBase && int8halo_supported(a, t - kConvInt8HaloBase)) {
            const HaloEntry& e = kI8Halo[t - kConvInt8HaloBase];
            const long long tiles =
                (long long)a.n * ((a.oh + e.cfg.th - 1) / e.cfg.th) * ((a.ow + e.cfg.tw - 1) / e.cfg.tw);
            launch_pdl(e.fn, dim3(unsigned(tiles), unsigned((a.m + e.cfg.bn - 1) / e.cfg.bn)),
                       dim3(unsigned(e.threads)), 0, s, a);
            return;
        }
        int ci = -1;
        if (t >= kConvInt8InMmaBase && int8in_mma_supported(a, t - kConvInt8InMmaBase))
            ci = t - kConvInt8InMmaBase;
        else if (t != kConvInt8Direct && int8in_mma_supported(a, 0))
            ci = mma_default_config(a);
        if (ci >= 0) {
            const InEntry& e = kI8In[ci];
            const long long P = (long long)a.n * a.oh * a.ow;
            dim3 grid(unsigned((P + e.cfg.bm - 1) / e.cfg.bm), unsigned((a.m + e.cfg.bn - 1) / e.cfg.bn));
            launch_pdl(i8in_vec_ok(a) ? e.vec : e.gen, grid, dim3(unsigned(e.threads)), 0, s, a);
            return;
        }
        t = kConvInt8Direct;
    }
    if (t >= kConvInt8MmaBase && int8_mma_supported(a, t - kConvInt8MmaBase))
        cfg = t - kConvInt8MmaBase;
    else if (t != kConvInt8Direct && int8_mma_supported(a, 0))
        cfg = int8_default_config(a);
    if (cfg < 0) {
        long long b = (conv_items(a) + 255) / 256;
        if (b < 1) b = 1;
        if (b > 65535LL * 8) b = 65535LL * 8;
        launch_kernel(conv_i8_direct_kernel, dim3(unsigned(b)), dim3(256), 0, s, false, a);
        return;
    }
    const Entry& e = kI8[cfg];
    const long long P = (long long)a.n * a.oh * a.ow;
    dim3 grid(unsigned((P + e.cfg.bm - 1) / e.cfg.bm), unsigned((a.m + e.cfg.bn - 1) / e.cfg.bn));
    KernelFn fn = i8_vec_ok(a) ? e.vec : e.gen;
    launch_pdl(fn, grid, dim3(unsigned(e.threads)), 0, s, a);
}

}  // namespace cuda
}  // namespace yoloc
