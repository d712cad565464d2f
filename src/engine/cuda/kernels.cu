// CUDA kernels of the GPU engine: correct-first grid-stride loops over the
// element functions in element_ops.h (the same code the CPU emulation test runs).
// C++14 and CUDA 10.2 / sm_53 clean: cuda_fp16 only here; the tensor-core
// implicit GEMM lives in conv_mma.cu (sm_80+, guarded).
#include "engine/cuda/kernels.h"

#include "core/env.h"
#include "engine/cuda/conv_cudnn.h"
#include "engine/cuda/conv_int8.h"
#include "engine/cuda/conv_mma.h"
#include "engine/cuda/launch.h"

#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <mma.h>

#include <algorithm>
#include <cfloat>
#include <cstdint>
#include <cstdlib>

namespace yoloc {
namespace cuda {

namespace {

constexpr int kThreads = kGridStrideThreads;

YOLOC_GRID_STRIDE_KERNEL(conv, ConvArgs, conv_at, conv_items)
YOLOC_GRID_STRIDE_KERNEL(maxpool, PoolArgs, maxpool_at, pool_items)
YOLOC_GRID_STRIDE_KERNEL(resize, ResizeArgs, resize_at, resize_items)
YOLOC_GRID_STRIDE_KERNEL(copy, CopyArgs, copy_at, copy_items)
YOLOC_GRID_STRIDE_KERNEL(pack, PackArgs, pack_at, pack_items)
YOLOC_GRID_STRIDE_KERNEL(unpack, UnpackArgs, unpack_at, unpack_items)
YOLOC_GRID_STRIDE_KERNEL(detect, DetectArgs, detect_at, detect_items)

// Implicit GEMM: out[P = n*oh*ow][M] = A[P][K = kh*kw*C] * W[K][M], with A read
// from the NHWC input on the fly and W already stored [kh][kw][C][M]. 64x64 output
// tile per block of 256 threads, 4x4 outputs per thread, K in steps of 16 through
// shared memory; float accumulation for both precisions (no tensor cores yet).
// Groups > 1 use the direct kernel.
constexpr int kBM = 64, kBN = 64, kBK = 16;

template <typename T>
__global__ void __launch_bounds__(256) conv_gemm_kernel(ConvArgs a) {
    __shared__ float As[kBK][kBM + 4];
    __shared__ float Bs[kBK][kBN + 4];
    const T* x = static_cast<const T*>(a.x);
    const T* wt = static_cast<const T*>(a.wt);
    const int P = a.n * a.oh * a.ow;
    const int K = a.kh * a.kw * a.c;
    const int p0 = blockIdx.x * kBM, m0 = blockIdx.y * kBN;
    const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
    float acc[4][4];
    for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j) acc[i][j] = 0.f;
    for (int k0 = 0; k0 < K; k0 += kBK) {
        for (int e = 0; e < 4; ++e) {
            const int idx = tid + e * 256;
            const int pp = idx / kBK, kk = idx % kBK;  // neighbouring threads: neighbouring channels
            const int p = p0 + pp, k = k0 + kk;
            float v = 0.f;
            if (p < P && k < K) {
                const int ox = p % a.ow, t = p / a.ow;
                const int oy = t % a.oh, n = t / a.oh;
                const int ci = k % a.c, t2 = k / a.c;
                const int kx = t2 % a.kw, ky = t2 / a.kw;
                const int iy = oy * a.sh - a.ph + ky, ix = ox * a.sw - a.pw + kx;
                if (iy >= 0 && iy < a.h && ix >= 0 && ix < a.w)
                    v = ld(x + ((size_t(n) * a.h + iy) * a.w + ix) * a.xs + ci);
            }
            As[kk][pp] = v;
        }
        for (int e = 0; e < 4; ++e) {
            const int idx = tid + e * 256;
            const int kk = idx / kBN, mm = idx % kBN;
            const int k = k0 + kk, m = m0 + mm;
            Bs[kk][mm] = (k < K && m < a.m) ? ld(wt + size_t(k) * a.m + m) : 0.f;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < kBK; ++kk) {
            float av[4], bv[4];
            for (int i = 0; i < 4; ++i) av[i] = As[kk][ty * 4 + i];
            for (int j = 0; j < 4; ++j) bv[j] = Bs[kk][tx * 4 + j];
            for (int i = 0; i < 4; ++i)
                for (int j = 0; j < 4; ++j) acc[i][j] += av[i] * bv[j];
        }
        __syncthreads();
    }
    for (int i = 0; i < 4; ++i) {
        const int p = p0 + ty * 4 + i;
        if (p >= P) continue;
        for (int j = 0; j < 4; ++j) {
            const int m = m0 + tx * 4 + j;
            if (m >= a.m) continue;
            float v = acc[i][j] + a.bias[m];
            if (a.silu) v = v / (1.0f + expf(-v));
            if (a.res) v += ld(static_cast<const T*>(a.res) + size_t(p) * a.rs + m);
            st(static_cast<T*>(a.y) + size_t(p) * a.ys + m, v);
        }
    }
}

// Tensor-core variant (fp16 only, opt-in while it is new: ConvArgs::kernel == 2):
// same implicit GEMM, 64x64 tile, 4 warps of 32x32 each as 2x2 WMMA 16x16x16
// fragments with float accumulation; the epilogue goes through shared memory.
// Compiled to an empty body below sm_70 (Jetson Nano), where it is never launched.
constexpr int kWThreads = 128;

__global__ void __launch_bounds__(128) conv_wmma_kernel(ConvArgs a) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 700
    using namespace nvcuda;
    __shared__ __align__(32) __half As[kBM][kBK + 8];
    __shared__ __align__(32) __half Bs[kBK][kBN + 8];
    __shared__ __align__(32) float Cs[kBM][kBN + 4];
    const __half* x = static_cast<const __half*>(a.x);
    const __half* wt = static_cast<const __half*>(a.wt);
    const int P = a.n * a.oh * a.ow;
    const int K = a.kh * a.kw * a.c;
    const int p0 = blockIdx.x * kBM, m0 = blockIdx.y * kBN;
    const int tid = threadIdx.x, warp = tid / 32;
    const int wm = warp / 2, wn = warp % 2;  // warp tile: rows wm*32.., cols wn*32..
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
    for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);
    const __half zero = __float2half(0.0f);
    for (int k0 = 0; k0 < K; k0 += kBK) {
        for (int e = 0; e < (kBM * kBK) / kWThreads; ++e) {
            const int idx = tid + e * kWThreads;
            const int pp = idx / kBK, kk = idx % kBK;
            const int p = p0 + pp, k = k0 + kk;
            __half v = zero;
            if (p < P && k < K) {
                const int ox = p % a.ow, t = p / a.ow;
                const int oy = t % a.oh, n = t / a.oh;
                const int ci = k % a.c, t2 = k / a.c;
                const int kx = t2 % a.kw, ky = t2 / a.kw;
                const int iy = oy * a.sh - a.ph + ky, ix = ox * a.sw - a.pw + kx;
                if (iy >= 0 && iy < a.h && ix >= 0 && ix < a.w) v = x[((size_t(n) * a.h + iy) * a.w + ix) * a.xs + ci];
            }
            As[pp][kk] = v;
        }
        for (int e = 0; e < (kBK * kBN) / kWThreads; ++e) {
            const int idx = tid + e * kWThreads;
            const int kk = idx / kBN, mm = idx % kBN;
            const int k = k0 + kk, m = m0 + mm;
            Bs[kk][mm] = (k < K && m < a.m) ? wt[size_t(k) * a.m + m] : zero;
        }
        __syncthreads();
        wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> fa[2];
        wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::row_major> fb[2];
        for (int i = 0; i < 2; ++i) wmma::load_matrix_sync(fa[i], &As[wm * 32 + i * 16][0], kBK + 8);
        for (int j = 0; j < 2; ++j) wmma::load_matrix_sync(fb[j], &Bs[0][wn * 32 + j * 16], kBN + 8);
        for (int i = 0; i < 2; ++i)
            for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
        __syncthreads();
    }
    for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 2; ++j)
            wmma::store_matrix_sync(&Cs[wm * 32 + i * 16][wn * 32 + j * 16], acc[i][j], kBN + 4, wmma::mem_row_major);
    __syncthreads();
    for (int e = tid; e < kBM * kBN; e += kWThreads) {
        const int pp = e / kBN, mm = e % kBN;
        const int p = p0 + pp, m = m0 + mm;
        if (p >= P || m >= a.m) continue;
        float v = Cs[pp][mm] + a.bias[m];
        if (a.silu) v = v / (1.0f + expf(-v));
        if (a.res) v += __half2float(static_cast<const __half*>(a.res)[size_t(p) * a.rs + m]);
        static_cast<__half*>(a.y)[size_t(p) * a.ys + m] = __float2half(v);
    }
#endif
}

// SPPF chain (stride-1 "same" pools of odd k, chained): one block per image and
// kSppC channels; the plane sits in shared memory and each pool of the chain is a
// separable max (rows, then columns) of the previous one, as SPPF defines it.
constexpr int kSppC = 1;
constexpr int kSppMaxPix = 4096;  // h*w that fits: 2 planes of kSppC floats

template <typename T>
__global__ void __launch_bounds__(256) sppf_kernel(PoolArgs a) {
    __shared__ float cur[kSppMaxPix * kSppC], tmp[kSppMaxPix * kSppC];
    const int n = blockIdx.y, c0 = blockIdx.x * kSppC;
    const int hw = a.h * a.w, items = hw * kSppC;
    const int ry = a.kh / 2, rx = a.kw / 2;
    const T* x = static_cast<const T*>(a.x);
    pdl_wait();
    pdl_launch_dependents();
    for (int i = threadIdx.x; i < items; i += blockDim.x) {
        const int pix = i / kSppC, c = i % kSppC;
        cur[i] = c0 + c < a.c ? ld(x + (size_t(n) * hw + pix) * a.xs + c0 + c) : 0.f;
    }
    __syncthreads();
    for (int j = 0; j < a.chain; ++j) {
        for (int i = threadIdx.x; i < items; i += blockDim.x) {
            const int pix = i / kSppC, c = i % kSppC;
            const int yy = pix / a.w, xx = pix % a.w;
            const int x0 = max(xx - rx, 0), x1 = min(xx + rx, a.w - 1);
            float m = -FLT_MAX;
            for (int u = x0; u <= x1; ++u) m = fmaxf(m, cur[(yy * a.w + u) * kSppC + c]);
            tmp[i] = m;
        }
        __syncthreads();
        T* y = static_cast<T*>(j == 0 ? a.y : a.ym[j - 1]);
        const int ys = j == 0 ? a.ys : a.yms[j - 1];
        for (int i = threadIdx.x; i < items; i += blockDim.x) {
            const int pix = i / kSppC, c = i % kSppC;
            const int yy = pix / a.w, xx = pix % a.w;
            const int y0 = max(yy - ry, 0), y1 = min(yy + ry, a.h - 1);
            float m = -FLT_MAX;
            for (int v = y0; v <= y1; ++v) m = fmaxf(m, tmp[(v * a.w + xx) * kSppC + c]);
            cur[i] = m;
            if (c0 + c < a.c) st(y + (size_t(n) * hw + pix) * ys + c0 + c, m);
        }
        __syncthreads();
    }
}

// The same SPPF chain on packed channels: each thread keeps W 32-bit words of a pixel
// (W = 4: 16-byte loads and stores, 8 fp16 or 16 int8 channels; W = 1: 2 fp16 or 4 int8
// channels, 4x the blocks for small batches, where one block per 8 channels left most
// SMs idle: 16 blocks for yolov8n's 128 channels at batch 1). One block per (image,
// channel group); the plane stays in shared memory in the storage type. The max of
// fp16 values (__hmax2) or of int8 values (__vmaxs4, per byte) is one of them, so
// nothing rounds; quantized values need no scale (the max of Q(x) is Q(max x)).
constexpr int kSppVecMaxPix = 1024;  // h*w that fits: 2 planes of 16-byte words = 32 KiB

template <bool I8>
__device__ __forceinline__ unsigned max_word(unsigned a, unsigned b) {
    if (I8) return __vmaxs4(a, b);
    const __half2 r = __hmax2(*reinterpret_cast<const __half2*>(&a), *reinterpret_cast<const __half2*>(&b));
    return *reinterpret_cast<const unsigned*>(&r);
}
template <int W>
struct Words {
    unsigned w[W];
};
template <bool I8, int W>
__device__ __forceinline__ Words<W> max_words(Words<W> a, const Words<W>& b) {
#pragma unroll
    for (int k = 0; k < W; ++k) a.w[k] = max_word<I8>(a.w[k], b.w[k]);
    return a;
}

// One pass of the separable max: the max of the 2R + 1 words at v = i + d * step, d in
// [-R, R], clamped to [lo, hi]. A clamped tap repeats an edge word, which leaves a max
// unchanged, so this equals the window cut at the border; with R fixed (R > 0) the loads
// carry no trip count and issue together (ncu, batch 1: the loop with a data-dependent
// trip count left the 64 blocks at 10 cycles per instruction, 12% occupancy). R == 0:
// radius `r` at run time.
template <bool I8, int W, int R>
__device__ __forceinline__ Words<W> window_max(const Words<W>* plane, int i, int lo, int hi, int step, int r,
                                               const Words<W>& lowest) {
    if (R > 0) {
        Words<W> m = plane[i * step];
#pragma unroll
        for (int d = 1; d <= R; ++d) {
            m = max_words<I8, W>(m, plane[max(i - d, lo) * step]);
            m = max_words<I8, W>(m, plane[min(i + d, hi) * step]);
        }
        return m;
    }
    Words<W> m = lowest;
    for (int u = max(i - r, lo); u <= min(i + r, hi); ++u) m = max_words<I8, W>(m, plane[u * step]);
    return m;
}

template <bool I8, int W, int R>
__global__ void __launch_bounds__(256) sppf_words_kernel(PoolArgs a) {
    using V = Words<W>;
    __shared__ V cur[kSppVecMaxPix], tmp[kSppVecMaxPix];
    constexpr int kEB = I8 ? 1 : 2;             // bytes per channel
    constexpr int kCh = W * 4 / kEB;            // channels per thread
    const int n = blockIdx.y, c0 = blockIdx.x * kCh;
    const int hw = a.h * a.w;
    const int ry = a.kh / 2, rx = a.kw / 2;
    const char* x = static_cast<const char*>(a.x);
    V lowest;
#pragma unroll
    for (int k = 0; k < W; ++k) lowest.w[k] = I8 ? 0x80808080u : 0xFC00FC00u;  // -128 bytes / -inf halves
    pdl_wait();
    pdl_launch_dependents();
    for (int pix = threadIdx.x; pix < hw; pix += blockDim.x)
        cur[pix] = *reinterpret_cast<const V*>(x + ((size_t(n) * hw + pix) * a.xs + c0) * kEB);
    __syncthreads();
    for (int j = 0; j < a.chain; ++j) {
        for (int pix = threadIdx.x; pix < hw; pix += blockDim.x) {
            const int yy = pix / a.w, xx = pix - yy * a.w;
            tmp[pix] = window_max<I8, W, R>(cur + yy * a.w, xx, 0, a.w - 1, 1, rx, lowest);
        }
        __syncthreads();
        char* y = static_cast<char*>(j == 0 ? a.y : a.ym[j - 1]);
        const int ys = j == 0 ? a.ys : a.yms[j - 1];
        for (int pix = threadIdx.x; pix < hw; pix += blockDim.x) {
            const int yy = pix / a.w, xx = pix - yy * a.w;
            const V m = window_max<I8, W, R>(tmp + xx, yy, 0, a.h - 1, a.w, ry, lowest);
            cur[pix] = m;
            *reinterpret_cast<V*>(y + ((size_t(n) * hw + pix) * ys + c0) * kEB) = m;
        }
        __syncthreads();
    }
}

// Channels per thread-word group the packed SPPF kernel can use here (0: none).
int sppf_words_channels(const PoolArgs& a, bool fp16, int words) {
    const char* v = env_get("YOLOC_SPPF");  // "plain": the 1-channel kernel (A/B runs, GPU tests)
    if (v && v[0] == 'p') return 0;
    if (!(a.i8 || fp16) || a.chain < 2 || a.oh != a.h || a.ow != a.w || a.h * a.w > kSppVecMaxPix) return 0;
    const int eb = a.i8 ? 1 : 2, ch = words * 4 / eb, al = words * 4;
    auto aligned = [&](const void* p, int s) {
        return (reinterpret_cast<uintptr_t>(p) % unsigned(al)) == 0 && s % ch == 0;
    };
    bool ok = a.c % ch == 0 && aligned(a.x, a.xs) && aligned(a.y, a.ys);
    for (int j = 1; j < a.chain; ++j) ok = ok && aligned(a.ym[j - 1], a.yms[j - 1]);
    return ok ? ch : 0;
}

// Detect decode, one thread per output element (anchor fastest: coalesced writes):
// class rows are one sigmoid each; box rows each run the two DFL sides they need.
template <typename T>
__device__ __forceinline__ float dfl_side(const T* q, int reg_max) {
    if (reg_max == 1) return ld(q);  // no DFL (YOLO26): the distance itself
    float mx = -FLT_MAX;
    for (int j = 0; j < reg_max; ++j) mx = fmaxf(mx, ld(q + j));
    float sum = 0.f, e = 0.f;
    for (int j = 0; j < reg_max; ++j) {
        const float v = __expf(ld(q + j) - mx);
        sum += v;
        e += v * float(j);
    }
    return e / sum;
}

template <typename T>
__global__ void detect_rows_kernel(DetectArgs a) {
    pdl_wait();
    pdl_launch_dependents();
    const int rows = 4 + a.nc;
    const long long total = (long long)a.n * rows * a.anchors;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        const int anchor = int(i % a.anchors);
        const long long t = i / a.anchors;
        const int row = int(t % rows), n = int(t / rows);
        int l = 0, gx = 0, gy = 0;
        const T* p = detect_cell<T>(a, n, anchor, l, gx, gy);
        float v;
        if (row >= 4) {
            v = 1.0f / (1.0f + __expf(-ld(p + 4 * a.reg_max + (row - 4))));
        } else {
            // xywh: x = ax + (d2 - d0) / 2, w = d0 + d2 (y, h with d1, d3).
            const int s0 = row & 1;
            const float lo = dfl_side(p + s0 * a.reg_max, a.reg_max);
            const float hi = dfl_side(p + (s0 + 2) * a.reg_max, a.reg_max);
            const float sf = float(a.stride[l]);
            const float anc = (s0 == 0 ? gx : gy) + 0.5f;
            if (a.xyxy)
                v = row < 2 ? (anc - lo) * sf : (anc + hi) * sf;
            else
                v = row < 2 ? ((anc - lo) + (anc + hi)) * 0.5f * sf : ((anc + hi) - (anc - lo)) * sf;
        }
        a.out[i] = v;
    }
}

// Detect decode, one thread per (anchor, part), anchor fastest: part 0 writes the x and
// w rows (DFL sides 0 and 2), part 1 the y and h rows (sides 1 and 3), each part after
// that kDetChunk class rows. Each DFL side is computed once (the rows kernel above
// computes every side twice) with the same arithmetic, so the outputs are identical.
constexpr int kDetChunk = 16;

// 16 consecutive values into registers: two 16-byte loads where fp16 and aligned (all
// 16 requests in flight at once; the loops of dfl_side issue them one by one, which
// costs an L2 round trip each when the L1 is small, as with the max-shared carveout).
__device__ __forceinline__ void load16(const __half* p, float* v) {
    if ((reinterpret_cast<uintptr_t>(p) & 15) == 0) {
        const uint4 u0 = reinterpret_cast<const uint4*>(p)[0], u1 = reinterpret_cast<const uint4*>(p)[1];
        const __half2* h0 = reinterpret_cast<const __half2*>(&u0);
        const __half2* h1 = reinterpret_cast<const __half2*>(&u1);
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            const float2 f0 = __half22float2(h0[k]), f1 = __half22float2(h1[k]);
            v[2 * k] = f0.x;
            v[2 * k + 1] = f0.y;
            v[8 + 2 * k] = f1.x;
            v[8 + 2 * k + 1] = f1.y;
        }
        return;
    }
#pragma unroll
    for (int j = 0; j < 16; ++j) v[j] = __half2float(p[j]);
}
__device__ __forceinline__ void load16(const float* p, float* v) {
#pragma unroll
    for (int j = 0; j < 16; ++j) v[j] = p[j];
}

// dfl_side for reg_max 16 from registers: the same operations in the same order.
template <typename T>
__device__ __forceinline__ float dfl_side16(const T* q) {
    float v[16];
    load16(q, v);
    float mx = -FLT_MAX;
#pragma unroll
    for (int j = 0; j < 16; ++j) mx = fmaxf(mx, v[j]);
    float sum = 0.f, e = 0.f;
#pragma unroll
    for (int j = 0; j < 16; ++j) {
        const float w = __expf(v[j] - mx);
        sum += w;
        e += w * float(j);
    }
    return e / sum;
}

template <typename T>
__global__ void detect_parts_kernel(DetectArgs a) {
    pdl_wait();
    pdl_launch_dependents();
    const int rows = 4 + a.nc;
    const int parts = 2 + (a.nc + kDetChunk - 1) / kDetChunk;
    const long long total = (long long)a.n * parts * a.anchors;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        const int anchor = int(i % a.anchors);
        const long long t = i / a.anchors;
        const int part = int(t % parts), n = int(t / parts);
        int l = 0, gx = 0, gy = 0;
        const T* p = detect_cell<T>(a, n, anchor, l, gx, gy);
        float* o = a.out + size_t(n) * rows * a.anchors + anchor;
        if (part < 2) {
            // xywh: x = ax + (d2 - d0) / 2, w = d0 + d2 (y, h with d1, d3), as detect_rows_kernel.
            const bool r16 = a.reg_max == kDetChunk;
            const float lo = r16 ? dfl_side16(p + part * a.reg_max) : dfl_side(p + part * a.reg_max, a.reg_max);
            const float hi = r16 ? dfl_side16(p + (part + 2) * a.reg_max) : dfl_side(p + (part + 2) * a.reg_max, a.reg_max);
            const float sf = float(a.stride[l]);
            const float anc = (part == 0 ? gx : gy) + 0.5f;
            if (a.xyxy) {
                o[size_t(part) * a.anchors] = (anc - lo) * sf;
                o[size_t(part + 2) * a.anchors] = (anc + hi) * sf;
            } else {
                o[size_t(part) * a.anchors] = ((anc - lo) + (anc + hi)) * 0.5f * sf;
                o[size_t(part + 2) * a.anchors] = ((anc + hi) - (anc - lo)) * sf;
            }
        } else {
            const int c0 = (part - 2) * kDetChunk;
            const T* q = p + 4 * a.reg_max + c0;
            if (c0 + kDetChunk <= a.nc) {
                float v[kDetChunk];
                load16(q, v);
#pragma unroll
                for (int c = 0; c < kDetChunk; ++c) o[size_t(4 + c0 + c) * a.anchors] = 1.0f / (1.0f + __expf(-v[c]));
            } else {
                for (int c = c0; c < a.nc; ++c) o[size_t(4 + c) * a.anchors] = 1.0f / (1.0f + __expf(-ld(q + c - c0)));
            }
        }
    }
}

// Nearest resize, 16 bytes (8 fp16 or 16 int8 channels, EB bytes each) per thread when
// everything is aligned.
template <int EB>
__global__ void resize_vec_kernel(ResizeArgs a) {
    pdl_wait();
    pdl_launch_dependents();
    constexpr int kV = 16 / EB;
    const int oh = a.h * a.fy, ow = a.w * a.fx, cv = a.c / kV;
    const long long total = (long long)a.n * oh * ow * cv;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        const int ch = int(i % cv) * kV;
        long long p = i / cv;
        const int ox = int(p % ow);
        p /= ow;
        const int oy = int(p % oh);
        const int b = int(p / oh);
        const uint4 v = *reinterpret_cast<const uint4*>(static_cast<const char*>(a.x) +
                                                        (((size_t(b) * a.h + oy / a.fy) * a.w + ox / a.fx) * a.xs + ch) * EB);
        *reinterpret_cast<uint4*>(static_cast<char*>(a.y) + (((size_t(b) * oh + oy) * ow + ox) * a.ys + ch) * EB) = v;
    }
}

// One output per thread (kConvDirect): any precision, groups, the NCHW stem.
void conv_direct(const ConvArgs& a, bool fp16, cudaStream_t s) {
    const unsigned g = grid_stride_blocks(conv_items(a));
    if (fp16)
        launch_pdl(conv_kernel<__half>, dim3(g), dim3(kThreads), 0, s, a);
    else
        launch_pdl(conv_kernel<float>, dim3(g), dim3(kThreads), 0, s, a);
}

// The stem: a conv over a few channels of the NCHW float32 input (ConvArgs::nchw).
// Replaces InputPack + a tensor-core conv whose 3-channel K (27) fills a third of its
// smallest K step. One thread per (output pixel, group of 8 output channels): the
// receptive field in registers, the weights in shared memory as float [k][m] read 4
// channels at a time, 8 channels stored with one 16-byte store where aligned. KH, KW, C
// are template parameters for YOLOv8's 3x3x3 stem (0: read from the arguments). INT8:
// input quantized with in_scale, int8 weights, the exact integer sum (|sum| < 2^24 for
// K <= 48) scaled by qscale, as conv_int8_at.
constexpr int kStemMaxK = 48, kStemMaxM = 64, kStemGroup = 8;

// The stem's weights into shared memory as float sw[k][m] (k in [ky][kx][c] order; INT8:
// the int8 [m][wk] rows), with the per-channel scales sq (1 for float) and the bias sb.
template <typename T, bool INT8>
__device__ __forceinline__ void stem_weights(const ConvArgs& a, int K, float* sw, float* sq, float* sb) {
    const int M = a.m;
    for (int i = threadIdx.x; i < K * M; i += blockDim.x) {
        const int k = i / M, m = i - k * M;
        sw[i] = INT8 ? float(static_cast<const signed char*>(a.wt)[size_t(m) * a.wk + k])
                     : ld(static_cast<const T*>(a.wt) + i);
    }
    for (int m = threadIdx.x; m < M; m += blockDim.x) {
        sb[m] = a.bias[m];
        sq[m] = INT8 ? a.qscale[m] : 1.f;
    }
}

// Stem outputs m0..m0+7 of one pixel from their sums acc: scale sq, bias sb, SiLU, stored
// at y[m0..m0+7] (one 16-byte store where `vec`). Every stem kernel.
template <typename T>
__device__ __forceinline__ void stem_store(const ConvArgs& a, float (&acc)[kStemGroup], const float* sq,
                                           const float* sb, int m0, T* y, bool vec) {
#pragma unroll
    for (int j = 0; j < kStemGroup; ++j) {
        float r = acc[j] * sq[m0 + j] + sb[m0 + j];
        if (a.silu) r = __fdividef(r, 1.0f + __expf(-r));
        acc[j] = r;
    }
    if (vec) {
        __align__(16) __half h[kStemGroup];
#pragma unroll
        for (int j = 0; j < kStemGroup; ++j) h[j] = __float2half(acc[j]);
        *reinterpret_cast<uint4*>(y + m0) = *reinterpret_cast<const uint4*>(h);
    } else {
#pragma unroll
        for (int j = 0; j < kStemGroup; ++j) st(y + m0 + j, acc[j]);
    }
}

// acc[0..7] += v * sw[k][m0..m0+7] (shared memory, read 4 channels at a time).
__device__ __forceinline__ void stem_fma(float (&acc)[kStemGroup], float v, const float* sw, int k, int M, int m0) {
    const float4 w0 = *reinterpret_cast<const float4*>(sw + k * M + m0);
    const float4 w1 = *reinterpret_cast<const float4*>(sw + k * M + m0 + 4);
    acc[0] += v * w0.x;
    acc[1] += v * w0.y;
    acc[2] += v * w0.z;
    acc[3] += v * w0.w;
    acc[4] += v * w1.x;
    acc[5] += v * w1.y;
    acc[6] += v * w1.z;
    acc[7] += v * w1.w;
}

// One pixel's stem outputs m0..m0+7 from its K receptive-field values v: the dot products
// with the weights sw[k][m] in k order, then stem_store.
template <typename T, int KMAX>
__device__ __forceinline__ void stem_group(const ConvArgs& a, const float (&v)[KMAX], int K, const float* sw,
                                           const float* sq, const float* sb, int m0, T* y, bool vec) {
    float acc[kStemGroup];
#pragma unroll
    for (int j = 0; j < kStemGroup; ++j) acc[j] = 0.f;
#pragma unroll
    for (int kk = 0; kk < KMAX; ++kk)
        if (kk < K) stem_fma(acc, v[kk], sw, kk, a.m, m0);
    stem_store(a, acc, sq, sb, m0, y, vec);
}

template <typename T, bool INT8, int KH, int KW, int C>
__global__ void __launch_bounds__(128) conv_stem_kernel(ConvArgs a) {
    constexpr int KMAX = KH > 0 ? KH * KW * C : kStemMaxK;
    __shared__ __align__(16) float sw[kStemMaxK * kStemMaxM];
    __shared__ float sb[kStemMaxM], sq[kStemMaxM];
    const int kh = KH > 0 ? KH : a.kh, kw = KH > 0 ? KW : a.kw, c = KH > 0 ? C : a.c;
    const int K = kh * kw * c, M = a.m;  // M: a multiple of kStemGroup (conv_stem checks)
    stem_weights<T, INT8>(a, K, sw, sq, sb);
    __syncthreads();
    pdl_wait();  // the weights above overlapped the previous kernel; the input is read below
    pdl_launch_dependents();
    const int groups = M / kStemGroup;
    const long long items = (long long)a.n * a.oh * a.ow * groups;
    const float* x = static_cast<const float*>(a.x);
    const bool vec = sizeof(T) == 2 && a.ys % 8 == 0 && (reinterpret_cast<uintptr_t>(a.y) & 15) == 0;
    for (long long it = blockIdx.x * (long long)blockDim.x + threadIdx.x; it < items;
         it += (long long)gridDim.x * blockDim.x) {
        const int g = int(it % groups);
        const long long p = it / groups;
        const int ox = int(p % a.ow);
        const long long t = p / a.ow;
        const int oy = int(t % a.oh), n = int(t / a.oh);
        float v[KMAX];
#pragma unroll
        for (int kk = 0; kk < KMAX; ++kk) {
            float u = 0.f;
            if (kk < K) {
                const int ci = kk % c, tap = kk / c;
                const int iy = oy * a.sh - a.ph + tap / kw, ix = ox * a.sw - a.pw + tap % kw;
                if (iy >= 0 && iy < a.h && ix >= 0 && ix < a.w) u = x[((size_t(n) * c + ci) * a.h + iy) * a.w + ix];
            }
            v[kk] = INT8 ? quant_i8(u, a.in_scale) : u;
        }
        stem_group(a, v, K, sw, sq, sb, g * kStemGroup, static_cast<T*>(a.y) + size_t(p) * a.ys, vec);
    }
}

// The 3x3 stride-2 pad-1 stem from a shared-memory tile (kConvStemTile): a block of
// 256 threads makes 2 x 64 output pixels. It loads the 5 x 129 input patch of each of
// the 3 channels once, with coalesced loads (the kernel above reads every tap of every
// pixel from global memory, once per 8-channel group: 54 loads per pixel for 16
// channels), even and odd columns apart so that the stride-2 taps of a warp read
// consecutive shared-memory words. Each thread then makes one pixel's channels 8 at a
// time (its group, then every 256 / 128 = 2nd group) from the 27 values in registers:
// few registers, so that many blocks hide the load latency. Same arithmetic as
// conv_stem_kernel.
constexpr int kStemTH = 2, kStemTW = 64, kStemThreads = 256;
constexpr int kStemPH = 2 * kStemTH + 1, kStemPW = 2 * kStemTW + 1;
constexpr int kStemOdd = kStemTW + 1;  // where a patch row's odd columns start

__device__ __forceinline__ int stem_col(int j) { return (j & 1) ? kStemOdd + (j >> 1) : (j >> 1); }

template <typename T, bool INT8>
__global__ void __launch_bounds__(kStemThreads) conv_stem_tile_kernel(ConvArgs a) {
    __shared__ __align__(16) float sw[27 * kStemMaxM];
    __shared__ float sb[kStemMaxM], sq[kStemMaxM];
    __shared__ float patch[3][kStemPH][kStemPW];
    const int M = a.m;  // a multiple of 8, at most kStemMaxM (stem_tile_supported)
    stem_weights<T, INT8>(a, 27, sw, sq, sb);
    const int tiles_x = (a.ow + kStemTW - 1) / kStemTW, tiles_y = (a.oh + kStemTH - 1) / kStemTH;
    const int tile = blockIdx.x;
    const int n = tile / (tiles_x * tiles_y);
    const int oy0 = (tile / tiles_x) % tiles_y * kStemTH, ox0 = tile % tiles_x * kStemTW;
    pdl_wait();  // the weights above overlapped the previous kernel; the input is read below
    pdl_launch_dependents();
    const float* x = static_cast<const float*>(a.x);
    const int iy0 = oy0 * 2 - 1, ix0 = ox0 * 2 - 1;
    for (int i = threadIdx.x; i < 3 * kStemPH * kStemPW; i += kStemThreads) {
        const int j = i % kStemPW, r = (i / kStemPW) % kStemPH, c = i / (kStemPW * kStemPH);
        const int iy = iy0 + r, ix = ix0 + j;
        float u = 0.f;
        if (unsigned(iy) < unsigned(a.h) && unsigned(ix) < unsigned(a.w))
            u = x[((size_t(n) * 3 + c) * a.h + iy) * a.w + ix];
        patch[c][r][stem_col(j)] = INT8 ? quant_i8(u, a.in_scale) : u;
    }
    __syncthreads();
    constexpr int kPix = kStemTH * kStemTW;
    const int pix = threadIdx.x % kPix;
    const int ty = pix / kStemTW, tx = pix % kStemTW;
    const int oy = oy0 + ty, ox = ox0 + tx;
    if (oy >= a.oh || ox >= a.ow) return;
    float v[27];
#pragma unroll
    for (int ky = 0; ky < 3; ++ky)
#pragma unroll
        for (int kx = 0; kx < 3; ++kx)
#pragma unroll
            for (int c = 0; c < 3; ++c) v[(ky * 3 + kx) * 3 + c] = patch[c][2 * ty + ky][stem_col(2 * tx + kx)];
    T* y = static_cast<T*>(a.y) + ((size_t(n) * a.oh + oy) * a.ow + ox) * a.ys;
    const bool vec = sizeof(T) == 2 && a.ys % 8 == 0 && (reinterpret_cast<uintptr_t>(a.y) & 15) == 0;
    for (int m0 = threadIdx.x / kPix * kStemGroup; m0 < M; m0 += kStemThreads / kPix * kStemGroup)
        stem_group(a, v, 27, sw, sq, sb, m0, y, vec);
}

// The 3x3 stride-2 pad-1 stem, PX = 4 or 2 adjacent output pixels per thread
// (kConvStemQuad, kConvStemPair). conv_stem_kernel spends its instructions on loads: 27 per
// pixel and 8 channels, and two shared-memory weight loads per 8 multiply-adds; ncu found it
// instruction-bound (SM 80%, DRAM 30%) at batch 32. Here the 2 * PX + 1 input columns of a
// row that the PX pixels' windows span are PX / 2 aligned 16-byte loads and one scalar (the
// pixels' first column 2 * PX * q - 1 is one before a multiple of 4), and each weight load
// feeds the PX pixels; GPT groups of 8 output channels per thread reuse the loaded inputs.
// Same sums in the same k order as conv_stem_kernel, so the same bits.
template <typename T, bool INT8, int PX, int GPT>
__global__ void __launch_bounds__(128) conv_stem_px_kernel(ConvArgs a) {
    constexpr int kCols = 2 * PX + 1;
    __shared__ __align__(16) float sw[27 * kStemMaxM];
    __shared__ float sb[kStemMaxM], sq[kStemMaxM];
    const int M = a.m;  // a multiple of 8 * GPT, at most kStemMaxM (launch_stem_px)
    stem_weights<T, INT8>(a, 27, sw, sq, sb);
    __syncthreads();
    pdl_wait();  // the weights above overlapped the previous kernel; the input is read below
    pdl_launch_dependents();
    const int runs = (a.ow + PX - 1) / PX, sets = M / (kStemGroup * GPT);
    const long long items = (long long)a.n * sets * a.oh * runs;
    const float* x = static_cast<const float*>(a.x);
    const bool vec_in = a.w % 4 == 0 && (reinterpret_cast<uintptr_t>(x) & 15) == 0;
    const bool vec = sizeof(T) == 2 && a.ys % 8 == 0 && (reinterpret_cast<uintptr_t>(a.y) & 15) == 0;
    for (long long it = blockIdx.x * (long long)blockDim.x + threadIdx.x; it < items;
         it += (long long)gridDim.x * blockDim.x) {
        // Runs of PX pixels fastest, then rows, then channel sets: a warp shares its weights
        // (broadcast shared-memory reads).
        const int qx = int(it % runs);
        long long t = it / runs;
        const int oy = int(t % a.oh);
        t /= a.oh;
        const int set = int(t % sets), n = int(t / sets);
        const int ox0 = qx * PX, ix0 = 2 * ox0 - 1;
        float acc[GPT][PX][kStemGroup];
#pragma unroll
        for (int g = 0; g < GPT; ++g)
#pragma unroll
            for (int q = 0; q < PX; ++q)
#pragma unroll
                for (int j = 0; j < kStemGroup; ++j) acc[g][q][j] = 0.f;
#pragma unroll
        for (int ky = 0; ky < 3; ++ky) {
            const int iy = 2 * oy - 1 + ky;
            const bool row_in = unsigned(iy) < unsigned(a.h);
            float r[3][kCols];  // channel c, input columns ix0 .. ix0 + 2 * PX of row iy
#pragma unroll
            for (int c = 0; c < 3; ++c) {
                const float* row = x + ((size_t(n) * 3 + c) * a.h + (row_in ? iy : 0)) * a.w;
                if (!row_in) {
#pragma unroll
                    for (int j = 0; j < kCols; ++j) r[c][j] = 0.f;
                } else if (vec_in && ix0 + kCols <= a.w) {  // ix0 + 1 = 2 * PX * qx: 16-byte aligned
                    r[c][0] = ix0 >= 0 ? row[ix0] : 0.f;
#pragma unroll
                    for (int v = 0; v < PX / 2; ++v) {
                        const float4 f = *reinterpret_cast<const float4*>(row + ix0 + 1 + 4 * v);
                        r[c][1 + 4 * v] = f.x;
                        r[c][2 + 4 * v] = f.y;
                        r[c][3 + 4 * v] = f.z;
                        r[c][4 + 4 * v] = f.w;
                    }
                } else {
#pragma unroll
                    for (int j = 0; j < kCols; ++j) r[c][j] = unsigned(ix0 + j) < unsigned(a.w) ? row[ix0 + j] : 0.f;
                }
                if (INT8) {
#pragma unroll
                    for (int j = 0; j < kCols; ++j) r[c][j] = quant_i8(r[c][j], a.in_scale);
                }
            }
            // k = (ky * 3 + kx) * 3 + c: conv_stem_kernel's order.
#pragma unroll
            for (int kx = 0; kx < 3; ++kx)
#pragma unroll
                for (int c = 0; c < 3; ++c)
#pragma unroll
                    for (int g = 0; g < GPT; ++g)
#pragma unroll
                        for (int q = 0; q < PX; ++q)
                            stem_fma(acc[g][q], r[c][2 * q + kx], sw, (ky * 3 + kx) * 3 + c, M,
                                     (set * GPT + g) * kStemGroup);
        }
#pragma unroll
        for (int q = 0; q < PX; ++q) {
            if (ox0 + q >= a.ow) break;
            T* y = static_cast<T*>(a.y) + ((size_t(n) * a.oh + oy) * a.ow + ox0 + q) * a.ys;
#pragma unroll
            for (int g = 0; g < GPT; ++g) stem_store(a, acc[g][q], sq, sb, (set * GPT + g) * kStemGroup, y, vec);
        }
    }
}

// kConvStemQuad: 4 pixels x 16 channels per thread where the width is a multiple of 16
// (fewer, fuller threads: batch 32); kConvStemPair: 2 pixels x 8 channels (4x the threads:
// small batches).
template <typename T, bool INT8>
void launch_stem_px(const ConvArgs& a, bool quad, cudaStream_t s) {
    const int px = quad ? 4 : 2, gpt = quad && a.m % (2 * kStemGroup) == 0 ? 2 : 1;
    long long b = ((long long)a.n * a.oh * ((a.ow + px - 1) / px) * (a.m / (kStemGroup * gpt)) + 127) / 128;
    b = std::max(1LL, std::min(b, 65535LL * 8));
    void (*fn)(ConvArgs) = !quad ? conv_stem_px_kernel<T, INT8, 2, 1>
                           : gpt == 2 ? conv_stem_px_kernel<T, INT8, 4, 2> : conv_stem_px_kernel<T, INT8, 4, 1>;
    launch_pdl(fn, dim3(unsigned(b)), dim3(128), 0, s, a);
}

template <typename T, bool INT8>
void launch_stem(const ConvArgs& a, cudaStream_t s) {
    long long b = ((long long)a.n * a.oh * a.ow * (a.m / kStemGroup) + 127) / 128;
    if (b < 1) b = 1;
    if (b > 65535LL * 8) b = 65535LL * 8;
    if (a.kh == 3 && a.kw == 3 && a.c == 3)
        launch_pdl(conv_stem_kernel<T, INT8, 3, 3, 3>, dim3(unsigned(b)), dim3(128), 0, s, a);
    else
        launch_pdl(conv_stem_kernel<T, INT8, 0, 0, 0>, dim3(unsigned(b)), dim3(128), 0, s, a);
}

void conv_stem(const ConvArgs& a, bool fp16, cudaStream_t s) {
    const int K = a.kh * a.kw * a.c;
    const bool int8 = a.qscale != nullptr;
    if ((a.kernel == kConvStemQuad || a.kernel == kConvStemPair) && stem_tile_supported(a)) {
        const bool quad = a.kernel == kConvStemQuad;
        if (int8)
            launch_stem_px<__half, true>(a, quad, s);
        else if (fp16)
            launch_stem_px<__half, false>(a, quad, s);
        else
            launch_stem_px<float, false>(a, quad, s);
        return;
    }
    if (a.kernel == kConvStemTile && stem_tile_supported(a)) {
        const long long tiles =
            (long long)a.n * ((a.oh + kStemTH - 1) / kStemTH) * ((a.ow + kStemTW - 1) / kStemTW);
        const dim3 grid{unsigned(tiles)}, block{unsigned(kStemThreads)};
        if (int8)
            launch_pdl(conv_stem_tile_kernel<__half, true>, grid, block, 0, s, a);
        else if (fp16)
            launch_pdl(conv_stem_tile_kernel<__half, false>, grid, block, 0, s, a);
        else
            launch_pdl(conv_stem_tile_kernel<float, false>, grid, block, 0, s, a);
        return;
    }
    if (K <= kStemMaxK && a.m <= kStemMaxM && a.m % kStemGroup == 0 && a.group == 1 && !a.res && !a.ysc) {
        if (int8)
            launch_stem<__half, true>(a, s);
        else if (fp16)
            launch_stem<__half, false>(a, s);
        else
            launch_stem<float, false>(a, s);
        return;
    }
    // Larger stems, or output widths that are not a multiple of 8: the one-output-per-thread
    // kernels, whose element functions read NCHW too.
    if (int8) {
        ConvArgs d = a;
        d.kernel = kConvInt8Direct;
        conv_int8(d, s);
        return;
    }
    conv_direct(a, fp16, s);
}

}  // namespace

bool stem_tile_supported(const ConvArgs& a) {
    return a.nchw && a.c == 3 && a.kh == 3 && a.kw == 3 && a.sh == 2 && a.sw == 2 && a.ph == 1 && a.pw == 1 &&
           a.group == 1 && a.m % kStemGroup == 0 && a.m <= kStemMaxM && !a.res && !a.ysc && a.oh == (a.h - 1) / 2 + 1 &&
           a.ow == (a.w - 1) / 2 + 1;
}

bool tensor_cores_available() {
    device_sm_count();  // cached too: the tactic heuristics read it during capture
    device_smem_optin();
    pdl_enabled();
    kernel_carveout();
    return device_cc_major() >= 7;
}

// a.kernel is a ConvTactic (conv_mma.h). kConvAuto: tensor-core implicit GEMM with
// the heuristic tile for fp16 on sm_80+, else the SIMT implicit GEMM (groups 1) or
// the direct kernel. A tactic that cannot run this conv here falls back to kConvAuto.
void conv(const ConvArgs& a, bool fp16, cudaStream_t s) {
    if (a.nchw) {  // the stem reading the graph input: its own kernel, any precision
        conv_stem(a, fp16, s);
        return;
    }
    if (a.qscale) {  // INT8 conv (Q/DQ folded): its own kernels
        conv_int8(a, s);
        return;
    }
    int t = a.kernel;
    if (t >= kConvCudnnBase && t < kConvCudnnBase + kConvCudnnMax) {
        // cuDNN's weights are in its own layout: no other kernel can stand in.
        cudnn_conv_run(a.dnn, a, s);
        return;
    }
    if (t >= kConvHaloBase && t - kConvHaloBase < halo_config_count()) {
        if (fp16 && halo_supported(a, t - kConvHaloBase)) {
            conv_halo(a, t - kConvHaloBase, s);
            return;
        }
        t = kConvAuto;
    }
    if (t == kConvInt8Direct || t >= kConvInt8MmaBase) t = kConvAuto;
    if (t >= kConvMmaBase && !(fp16 && mma_supported(a, t - kConvMmaBase))) t = kConvAuto;
    if (t == kConvWmma && !(fp16 && a.group == 1 && tensor_cores_available())) t = kConvAuto;
    if (t == kConvAuto) {
        if (fp16 && a.group == 1 && mma_supported(a, 0))
            t = kConvMmaBase + mma_default_config(a);
        else
            t = a.group == 1 ? kConvSimtGemm : kConvDirect;
    }
    if (t == kConvSimtGemm && a.group != 1) t = kConvDirect;
    if (t >= kConvMmaBase) {
        conv_mma(a, t - kConvMmaBase, s);
        return;
    }
    if (t == kConvWmma) {
        const long long P = (long long)a.n * a.oh * a.ow;
        dim3 grid(unsigned((P + kBM - 1) / kBM), unsigned((a.m + kBN - 1) / kBN));
        launch_kernel(conv_wmma_kernel, grid, dim3(kWThreads), 0, s, false, a);
        return;
    }
    if (t == kConvSimtGemm) {
        const long long P = (long long)a.n * a.oh * a.ow;
        dim3 grid(unsigned((P + kBM - 1) / kBM), unsigned((a.m + kBN - 1) / kBN));
        if (fp16)
            launch_kernel(conv_gemm_kernel<__half>, grid, dim3(256), 0, s, false, a);
        else
            launch_kernel(conv_gemm_kernel<float>, grid, dim3(256), 0, s, false, a);
        return;
    }
    conv_direct(a, fp16, s);
}

#define YOLOC_LAUNCH(FN, NAME, ARGS, ITEMS)                                                      \
    void FN(const ARGS& a, bool fp16, cudaStream_t s) {                                           \
        const unsigned g = grid_stride_blocks(ITEMS(a));                                                    \
        if (fp16)                                                                                 \
            launch_pdl(NAME##_kernel<__half>, dim3(g), dim3(kThreads), 0, s, a);                  \
        else                                                                                      \
            launch_pdl(NAME##_kernel<float>, dim3(g), dim3(kThreads), 0, s, a);                   \
    }

// int8 buffers (ARGS::i8, INT8 storage) take the signed char instantiation.
#define YOLOC_LAUNCH_I8(FN, NAME, ARGS, ITEMS)                                                   \
    void FN(const ARGS& a, bool fp16, cudaStream_t s) {                                           \
        const unsigned g = grid_stride_blocks(ITEMS(a));                                                    \
        if (a.i8)                                                                                 \
            launch_pdl(NAME##_kernel<signed char>, dim3(g), dim3(kThreads), 0, s, a);             \
        else if (fp16)                                                                            \
            launch_pdl(NAME##_kernel<__half>, dim3(g), dim3(kThreads), 0, s, a);                  \
        else                                                                                      \
            launch_pdl(NAME##_kernel<float>, dim3(g), dim3(kThreads), 0, s, a);                   \
    }

YOLOC_LAUNCH_I8(maxpool_plain, maxpool, PoolArgs, pool_items)
YOLOC_LAUNCH_I8(resize_plain, resize, ResizeArgs, resize_items)

void maxpool(const PoolArgs& a, bool fp16, cudaStream_t s) {
    // Packed SPPF: 16-byte words unless that leaves SMs idle and 4-byte words can run.
    int ch = sppf_words_channels(a, fp16, 4);
    const int ch1 = sppf_words_channels(a, fp16, 1);
    bool narrow = ch1 > 0 && (ch == 0 || (long long)a.n * (a.c / ch) < device_sm_count());
    if (const char* v = env_get("YOLOC_SPPF"))  // "w1" / "w4": the word width, for A/B runs
        if (v[0] == 'w') narrow = ch1 > 0 && (v[1] == '1' || ch == 0);
    if (narrow) ch = ch1;
    if (ch > 0) {
        const dim3 grid(unsigned(a.c / ch), unsigned(a.n));
        // Radius 2 (5x5, YOLOv8's SPPF) unrolled; other windows loop.
        const bool r2 = a.kh == 5 && a.kw == 5;
        void (*fn)(PoolArgs) = a.i8 ? (narrow ? (r2 ? sppf_words_kernel<true, 1, 2> : sppf_words_kernel<true, 1, 0>)
                                              : (r2 ? sppf_words_kernel<true, 4, 2> : sppf_words_kernel<true, 4, 0>))
                                    : (narrow ? (r2 ? sppf_words_kernel<false, 1, 2> : sppf_words_kernel<false, 1, 0>)
                                              : (r2 ? sppf_words_kernel<false, 4, 2> : sppf_words_kernel<false, 4, 0>));
        launch_pdl(fn, grid, dim3(256), 0, s, a);
        return;
    }
    if (a.chain > 1 && a.h * a.w <= kSppMaxPix && a.oh == a.h && a.ow == a.w) {
        dim3 grid(unsigned((a.c + kSppC - 1) / kSppC), unsigned(a.n));
        if (a.i8)
            launch_pdl(sppf_kernel<signed char>, grid, dim3(256), 0, s, a);
        else if (fp16)
            launch_pdl(sppf_kernel<__half>, grid, dim3(256), 0, s, a);
        else
            launch_pdl(sppf_kernel<float>, grid, dim3(256), 0, s, a);
        return;
    }
    maxpool_plain(a, fp16, s);
}

void resize_nearest(const ResizeArgs& a, bool fp16, cudaStream_t s) {
    const int v = a.i8 ? 16 : 8;  // channels per 16 bytes
    if ((fp16 || a.i8) && a.c % v == 0 && a.xs % v == 0 && a.ys % v == 0 &&
        (reinterpret_cast<uintptr_t>(a.x) & 15) == 0 && (reinterpret_cast<uintptr_t>(a.y) & 15) == 0) {
        const dim3 g(grid_stride_blocks((long long)a.n * a.h * a.fy * a.w * a.fx * (a.c / v)));
        if (a.i8)
            launch_pdl(resize_vec_kernel<1>, g, dim3(kThreads), 0, s, a);
        else
            launch_pdl(resize_vec_kernel<2>, g, dim3(kThreads), 0, s, a);
        return;
    }
    resize_plain(a, fp16, s);
}
YOLOC_LAUNCH_I8(copy_channels, copy, CopyArgs, copy_items)
YOLOC_LAUNCH(input_pack, pack, PackArgs, pack_items)
YOLOC_LAUNCH(output_unpack, unpack, UnpackArgs, unpack_items)

void detect(const DetectArgs& a, bool fp16, cudaStream_t s) {
    const char* v = env_get("YOLOC_DETECT");  // "rows": the one-output-per-thread kernel (A/B runs, GPU tests)
    if (!(v && v[0] == 'r')) {
        const unsigned g = grid_stride_blocks((long long)a.n * (2 + (a.nc + kDetChunk - 1) / kDetChunk) * a.anchors);
        if (fp16)
            launch_pdl(detect_parts_kernel<__half>, dim3(g), dim3(kThreads), 0, s, a);
        else
            launch_pdl(detect_parts_kernel<float>, dim3(g), dim3(kThreads), 0, s, a);
        return;
    }
    const unsigned g = grid_stride_blocks((long long)a.n * (4 + a.nc) * a.anchors);
    if (fp16)
        launch_pdl(detect_rows_kernel<__half>, dim3(g), dim3(kThreads), 0, s, a);
    else
        launch_pdl(detect_rows_kernel<float>, dim3(g), dim3(kThreads), 0, s, a);
}

}  // namespace cuda
}  // namespace yoloc
