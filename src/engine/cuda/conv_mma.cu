// Tensor-core implicit-GEMM convolution (see conv_mma.h). C++14; the sm_80
// instructions (cp.async, ldmatrix, mma.sync m16n8k16) sit behind
// __CUDA_ARCH__ >= 800, so the file compiles for sm_53 / sm_75 too (empty kernels).
#include "engine/cuda/conv_mma.h"

#include "core/env.h"
#include "engine/cuda/conv_int8.h"
#include "engine/cuda/launch.h"
#include "engine/cuda/splitk.h"

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace yoloc {
namespace cuda {

namespace {

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
#define YOLOC_MMA_ARCH 1
#endif
// Thread-block clusters (sm_90, CUDA 12): the cluster split-K tiles. Raw PTX rather than
// cooperative_groups, whose CUDA 13 headers need C++17 (these sources stay C++14).
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900 && CUDART_VERSION >= 12000
#define YOLOC_CLUSTER_ARCH 1
__device__ __forceinline__ unsigned cluster_rank() {
    unsigned r;
    asm volatile("mov.u32 %0, %%cluster_ctarank;\n" : "=r"(r));
    return r;
}
__device__ __forceinline__ unsigned cluster_blocks() {
    unsigned r;
    asm volatile("mov.u32 %0, %%cluster_nctarank;\n" : "=r"(r));
    return r;
}
__device__ __forceinline__ void cluster_sync() {
    asm volatile("barrier.cluster.arrive.release.aligned;\nbarrier.cluster.wait.acquire.aligned;\n" ::: "memory");
}
// The shared-memory address `addr` (this block's window) in block `rank` of the cluster.
__device__ __forceinline__ unsigned cluster_map(unsigned addr, unsigned rank) {
    unsigned r;
    asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(r) : "r"(addr), "r"(rank));
    return r;
}
__device__ __forceinline__ float2 cluster_ld2(unsigned addr) {
    float2 v;
    asm volatile("ld.shared::cluster.v2.f32 {%0, %1}, [%2];\n" : "=f"(v.x), "=f"(v.y) : "r"(addr) : "memory");
    return v;
}
#endif

#ifdef YOLOC_MMA_ARCH
__device__ __forceinline__ unsigned smem_u32(const void* p) {
    return static_cast<unsigned>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void cp_async16(unsigned dst, const void* src, int src_bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async16_ca(unsigned dst, const void* src, int src_bytes) {
    asm volatile("cp.async.ca.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}
__device__ __forceinline__ void ldmatrix_x4(unsigned& r0, unsigned& r1, unsigned& r2, unsigned& r3, unsigned addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
                 : "r"(addr));
}
__device__ __forceinline__ void ldmatrix_x4_trans(unsigned& r0, unsigned& r1, unsigned& r2, unsigned& r3,
                                                  unsigned addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
                 : "r"(addr));
}
__device__ __forceinline__ void mma16816(float* d, const unsigned* a, const unsigned* b) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
#endif

#ifdef YOLOC_MMA_ARCH
// Whether the epilogue may store (and read the residual as) half2 pairs.
__device__ __forceinline__ bool epi_pairs_ok(const ConvArgs& a) {
    return ((reinterpret_cast<uintptr_t>(a.y) & 3) == 0) && (a.ys % 2 == 0) &&
           (!a.res || (((reinterpret_cast<uintptr_t>(a.res) & 3) == 0) && (a.rs % 2 == 0)));
}

// Output pixel p, channels col and col + 1 (`two`: col + 1 < M) from the sums v0, v1 with
// the bias added (the caller loads it once per column: the stores below may alias it for
// the compiler, which would otherwise reload it for every pixel): SiLU, residual, fp16
// store into the output view.
__device__ __forceinline__ void epi_pair(const ConvArgs& a, int p, int col, float v0, float v1, bool two,
                                         bool pair_ok) {
    __half* y = static_cast<__half*>(a.y);
    const __half* res = static_cast<const __half*>(a.res);
    if (a.silu) {
        v0 = __fdividef(v0, 1.0f + __expf(-v0));
        v1 = __fdividef(v1, 1.0f + __expf(-v1));
    }
    if (two && pair_ok) {
        if (res) {
            const float2 r = __half22float2(*reinterpret_cast<const __half2*>(res + size_t(p) * a.rs + col));
            v0 += r.x;
            v1 += r.y;
        }
        *reinterpret_cast<__half2*>(y + size_t(p) * a.ys + col) = __floats2half2_rn(v0, v1);
    } else {
        if (res) v0 += __half2float(res[size_t(p) * a.rs + col]);
        y[size_t(p) * a.ys + col] = __float2half(v0);
        if (two) {
            if (res) v1 += __half2float(res[size_t(p) * a.rs + col + 1]);
            y[size_t(p) * a.ys + col + 1] = __float2half(v1);
        }
    }
}

// Epilogue of the fp16 tensor-core kernels from the accumulator fragments. row_p(r) maps a
// tile row to its output pixel (-1: outside the output).
template <int MT, int NT, int WM, int WN, class RowP>
__device__ __forceinline__ void mma_epilogue(const ConvArgs& a, float (&acc)[MT][NT][4], int m0, int wm, int wn,
                                             int lane, RowP row_p) {
    const bool pair_ok = epi_pairs_ok(a);
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
        const int col = m0 + wn * WN + nt * 8 + (lane & 3) * 2;
        if (col >= a.m) continue;
        const bool two = col + 1 < a.m;
        const float b0 = a.bias[col], b1 = two ? a.bias[col + 1] : 0.f;
#pragma unroll
        for (int mt = 0; mt < MT; ++mt)
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                const int p = row_p(wm * WM + mt * 16 + (lane >> 2) + h * 8);
                if (p >= 0) epi_pair(a, p, col, acc[mt][nt][2 * h] + b0, acc[mt][nt][2 * h + 1] + b1, two, pair_ok);
            }
    }
}
#endif


// BM x BN output tile per block, K in steps of BK through STAGES shared-memory
// stages; warps of WM x WN; SK warp groups split each BK step between them (for
// layers with few output pixels and a long K) and are summed through shared memory.
// VEC: 16-byte cp.async loads (cin, cout, strides multiples of 8, aligned
// pointers); else element loads (the 3-channel stem, odd slices).
template <int BM, int BN, int BK, int WM, int WN, int SK, int STAGES, bool VEC>
struct MmaConv {
    static constexpr int kWarpsM = BM / WM, kWarpsN = BN / WN;
    static constexpr int kWarps = kWarpsM * kWarpsN * SK;
    static constexpr int kThreads = kWarps * 32;
    static constexpr int kMT = WM / 16, kNT = WN / 8;
    static constexpr int kKSteps = BK / 16;
    static constexpr int kAS = BK + 8;  // padded rows: conflict-free ldmatrix, 16-byte aligned
    static constexpr int kBS = BN + 8;
    static constexpr int kAStage = BM * kAS, kBStage = BK * kBS;  // halves
    static constexpr int kPipeBytes = STAGES * (kAStage + kBStage) * 2;
    static constexpr int kRedBytes = (SK - 1) * BM * BN * 4;
    static constexpr int kSmemBytes = kPipeBytes > kRedBytes ? kPipeBytes : kRedBytes;
    static constexpr int kACpr = BK / 8;  // 16-byte chunks per A row
    static constexpr int kBCpr = BN / 8;
    static constexpr int kAIters = (BM * kACpr + kThreads - 1) / kThreads;
    static constexpr int kBIters = (BK * kBCpr + kThreads - 1) / kThreads;
    static_assert(BM % WM == 0 && BN % WN == 0 && WM % 16 == 0 && WN % 16 == 0, "tile shape");
    static_assert(kKSteps % SK == 0, "split-K groups must divide the K steps");
    static_assert(kThreads % kACpr == 0 && (BM * kACpr) % kThreads == 0, "A loader mapping");
    static_assert(kSmemBytes <= 48 * 1024, "static shared memory limit");
};

// CL > 1: launched as clusters of CL blocks along z (cluster split-K); the reduction code
// is compiled only into those instantiations (the others are 11-23% smaller on sm_90, and
// the driver loads each used kernel's code into device memory).
template <int BM, int BN, int BK, int WM, int WN, int SK, int STAGES, bool VEC, int CL>
__global__ void __launch_bounds__(MmaConv<BM, BN, BK, WM, WN, SK, STAGES, VEC>::kThreads)
    conv_mma_kernel(ConvArgs a) {
#ifdef YOLOC_MMA_ARCH
    using C = MmaConv<BM, BN, BK, WM, WN, SK, STAGES, VEC>;
    __shared__ __align__(16) unsigned char smem[C::kSmemBytes];
    __half* As = reinterpret_cast<__half*>(smem);
    __half* Bs = As + STAGES * C::kAStage;

    const __half* __restrict__ x = static_cast<const __half*>(a.x);
    const __half* __restrict__ wt = static_cast<const __half*>(a.wt);
    const int P = a.n * a.oh * a.ow;
    const int K = a.kh * a.kw * a.c;
    const int M = a.m;
    const int p0 = blockIdx.x * BM, m0 = blockIdx.y * BN;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int kg = warp / (C::kWarpsM * C::kWarpsN);
    const int wrest = warp % (C::kWarpsM * C::kWarpsN);
    const int wm = wrest / C::kWarpsN, wn = wrest % C::kWarpsN;

    // A loader: this thread's chunk column and rows (fixed over the K loop).
    const int a_kc = tid % C::kACpr;
    const int a_r0 = tid / C::kACpr;
    constexpr int kARowStep = C::kThreads / C::kACpr;
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
            a_iy[i] = -(1 << 28);  // never inside the image
            a_ix[i] = 0;
        }
    }

    // Cluster split-K (gridDim.z > 1, launched as clusters of (1, 1, z) on sm_90): block z
    // of the cluster takes its share of the K tiles; the partial sums meet in block 0's
    // registers through distributed shared memory below. Otherwise all K tiles.
    const int ktotal = (K + BK - 1) / BK;
    const int kper = (ktotal + int(gridDim.z) - 1) / int(gridDim.z);
    const int kt0 = int(blockIdx.z) * kper;
    const int ktiles = max(0, min(ktotal, kt0 + kper) - kt0);

    // load_a: the activation tile (written by the previous kernel); load_b: the weights.
    auto load_stage = [&](int stage, int kt, bool load_a, bool load_b) {
        __half* as = As + stage * C::kAStage;
        __half* bs = Bs + stage * C::kBStage;
        const int k0 = (kt0 + kt) * BK;
        if (VEC) {
            const int k = k0 + a_kc * 8;
            const int tap = k / a.c;
            const int ci = k - tap * a.c;
            const int ky = tap / a.kw, kx = tap - ky * a.kw;
            const bool kok = k < K;
#pragma unroll
            for (int i = 0; i < C::kAIters && load_a; ++i) {
                const int r = a_r0 + i * kARowStep;
                const int iy = a_iy[i] + ky, ix = a_ix[i] + kx;
                const bool ok = kok && unsigned(iy) < unsigned(a.h) && unsigned(ix) < unsigned(a.w);
                const __half* src = ok ? x + (size_t(a_base[i] + iy) * a.w + ix) * a.xs + ci : x;
                cp_async16_ca(smem_u32(as + r * C::kAS + a_kc * 8), src, ok ? 16 : 0);
            }
#pragma unroll
            for (int i = 0; i < C::kBIters && load_b; ++i) {
                const int idx = tid + i * C::kThreads;
                if ((BK * C::kBCpr) % C::kThreads != 0 && idx >= BK * C::kBCpr) break;
                const int kr = idx / C::kBCpr, nc = idx % C::kBCpr;
                const int kk = k0 + kr, n = m0 + nc * 8;
                const bool ok = kk < K && n < M;
                const __half* src = ok ? wt + size_t(kk) * M + n : wt;
                cp_async16(smem_u32(bs + kr * C::kBS + nc * 8), src, ok ? 16 : 0);
            }
        } else {
            const __half zero = __float2half(0.f);
#pragma unroll
            for (int i = 0; i < C::kAIters && load_a; ++i) {
                const int r = a_r0 + i * kARowStep;
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
                *reinterpret_cast<uint4*>(as + r * C::kAS + a_kc * 8) = *reinterpret_cast<const uint4*>(v);
            }
#pragma unroll
            for (int i = 0; i < C::kBIters && load_b; ++i) {
                const int idx = tid + i * C::kThreads;
                if ((BK * C::kBCpr) % C::kThreads != 0 && idx >= BK * C::kBCpr) break;
                const int kr = idx / C::kBCpr, nc = idx % C::kBCpr;
                const int kk = k0 + kr;
                __align__(16) __half v[8];
#pragma unroll
                for (int j = 0; j < 8; ++j) {
                    const int n = m0 + nc * 8 + j;
                    v[j] = (kk < K && n < M) ? wt[size_t(kk) * M + n] : zero;
                }
                *reinterpret_cast<uint4*>(bs + kr * C::kBS + nc * 8) = *reinterpret_cast<const uint4*>(v);
            }
        }
    };

    float acc[C::kMT][C::kNT][4];
#pragma unroll
    for (int i = 0; i < C::kMT; ++i)
#pragma unroll
        for (int j = 0; j < C::kNT; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.f;

    // PDL (launch.h): the weights of the first stages do not depend on the previous kernel,
    // so they load before the wait. The successor may launch after the main loop (right
    // after the wait measured slower on H100: 0.3785 vs 0.3735 ms FP16, 0.510 vs 0.480 ms
    // INT8). The first commit group holds those weights, so the pipeline's waits still
    // cover them.
#pragma unroll
    for (int s = 0; s < STAGES - 1; ++s)
        if (s < ktiles) load_stage(s, s, false, true);
    pdl_wait();
#pragma unroll
    for (int s = 0; s < STAGES - 1; ++s) {
        if (s < ktiles) load_stage(s, s, true, false);
        cp_async_commit();
    }

    for (int kt = 0; kt < ktiles; ++kt) {
        cp_async_wait<STAGES - 2>();
        __syncthreads();
        {
            const int nk = kt + STAGES - 1;
            if (nk < ktiles) load_stage(nk % STAGES, nk, true, true);
            cp_async_commit();
        }
        const int stage = kt % STAGES;
        const __half* as = As + stage * C::kAStage;
        const __half* bs = Bs + stage * C::kBStage;
#pragma unroll
        for (int kk = 0; kk < C::kKSteps / SK; ++kk) {
            const int ks = kk * SK + kg;
            unsigned af[C::kMT][4];
            unsigned bf[C::kNT][2];
#pragma unroll
            for (int mt = 0; mt < C::kMT; ++mt) {
                const int row = wm * WM + mt * 16 + (lane & 15);
                const int col = ks * 16 + (lane >> 4) * 8;
                ldmatrix_x4(af[mt][0], af[mt][1], af[mt][2], af[mt][3], smem_u32(as + row * C::kAS + col));
            }
#pragma unroll
            for (int np = 0; np < C::kNT / 2; ++np) {
                const int row = ks * 16 + (lane & 15);
                const int col = wn * WN + np * 16 + (lane >> 4) * 8;
                ldmatrix_x4_trans(bf[2 * np][0], bf[2 * np][1], bf[2 * np + 1][0], bf[2 * np + 1][1],
                                  smem_u32(bs + row * C::kBS + col));
            }
#pragma unroll
            for (int mt = 0; mt < C::kMT; ++mt)
#pragma unroll
                for (int nt = 0; nt < C::kNT; ++nt) mma16816(acc[mt][nt], af[mt], bf[nt]);
        }
    }

    pdl_launch_dependents();
    if (SK > 1) {
        // Sum the K groups through shared memory (the pipeline buffers are free now).
        cp_async_wait<0>();
        __syncthreads();
        splitk_sum<float, C::kMT, C::kNT, WM, WN, BM, BN, SK>(acc, reinterpret_cast<float*>(smem), kg, wm, wn, lane);
        if (kg > 0) return;
    }

#ifdef YOLOC_CLUSTER_ARCH
    if (CL > 1 && gridDim.z > 1) {  // SK == 1 here (mma_supported): every thread is still running
        // Reduce-scatter through distributed shared memory: every block leaves its partial
        // BM x BN sums in its shared memory; then block r of the cluster adds up rows
        // [r * BM / z, (r + 1) * BM / z) of all z partials and stores them (bias, SiLU,
        // residual). With block 0 summing everything, its z - 1 remote reads per element were
        // serial; now each block reads 1 / z of the tile from every block.
        cp_async_wait<0>();
        __syncthreads();
        float* red = reinterpret_cast<float*>(smem);  // BM x BN floats (mma_supported checks the size)
#pragma unroll
        for (int mt = 0; mt < C::kMT; ++mt)
#pragma unroll
            for (int nt = 0; nt < C::kNT; ++nt)
#pragma unroll
                for (int h = 0; h < 2; ++h) {
                    const int row = wm * WM + mt * 16 + (lane >> 2) + h * 8;
                    const int col = wn * WN + nt * 8 + (lane & 3) * 2;
                    *reinterpret_cast<float2*>(red + row * BN + col) = make_float2(acc[mt][nt][2 * h], acc[mt][nt][2 * h + 1]);
                }
        cluster_sync();
        const int nb = int(cluster_blocks()), rank = int(cluster_rank());
        const int rows = (BM + nb - 1) / nb, r0 = rank * rows;
        const bool pair_ok = epi_pairs_ok(a);
        for (int i = tid; i < rows * (BN / 2); i += C::kThreads) {
            const int row = r0 + i / (BN / 2), col = (i % (BN / 2)) * 2;
            const int p = p0 + row, m = m0 + col;
            if (row >= BM || p >= P || m >= M) continue;
            const unsigned local = smem_u32(red + row * BN + col);
            float2 sum = make_float2(0.f, 0.f);
#pragma unroll 8
            for (int g = 0; g < nb; ++g) {
                const float2 v = cluster_ld2(cluster_map(local, unsigned(g)));
                sum.x += v.x;
                sum.y += v.y;
            }
            const bool two = m + 1 < M;
            epi_pair(a, p, m, sum.x + a.bias[m], sum.y + (two ? a.bias[m + 1] : 0.f), two, pair_ok);
        }
        cluster_sync();  // every block's partials stay until all blocks have read them
        return;
    }
#endif
    // Staged store (SK == 1, the tile fits the pipeline's shared memory): the fragments'
    // bias + SiLU go to shared memory as floats, then each thread adds the residual and
    // stores 8 channels with one 16-byte store. From the fragments a warp's store covers 8
    // rows x 16 bytes; the memory-bound 1x1 convs at 160x160 ran at about 1.3 TB/s at batch
    // 32. Same operations in the same order as epi_pair, so the same bits.
    constexpr int kTS = BN + 4;  // floats per staged row (padding: fewer bank conflicts)
    if (SK == 1 && BM * kTS * 4 <= C::kSmemBytes && a.stage_out && (a.ys % 8) == 0 &&
        (reinterpret_cast<uintptr_t>(a.y) & 15) == 0 &&
        (!a.res || ((a.rs % 8) == 0 && (reinterpret_cast<uintptr_t>(a.res) & 15) == 0))) {
        cp_async_wait<0>();
        __syncthreads();  // every warp is done with the pipeline's stages
        float* tile = reinterpret_cast<float*>(smem);
#pragma unroll
        for (int nt = 0; nt < C::kNT; ++nt) {
            const int col = wn * WN + nt * 8 + (lane & 3) * 2;
            const bool in0 = m0 + col < M, in1 = m0 + col + 1 < M;
            const float b0 = in0 ? a.bias[m0 + col] : 0.f, b1 = in1 ? a.bias[m0 + col + 1] : 0.f;
#pragma unroll
            for (int mt = 0; mt < C::kMT; ++mt)
#pragma unroll
                for (int h = 0; h < 2; ++h) {
                    const int row = wm * WM + mt * 16 + (lane >> 2) + h * 8;
                    float v0 = acc[mt][nt][2 * h] + b0, v1 = acc[mt][nt][2 * h + 1] + b1;
                    if (a.silu) {
                        v0 = __fdividef(v0, 1.0f + __expf(-v0));
                        v1 = __fdividef(v1, 1.0f + __expf(-v1));
                    }
                    *reinterpret_cast<float2*>(tile + row * kTS + col) = make_float2(v0, v1);
                }
        }
        __syncthreads();
        __half* y = static_cast<__half*>(a.y);
        const __half* res = static_cast<const __half*>(a.res);
        for (int i = tid; i < BM * (BN / 8); i += C::kThreads) {
            const int r = i / (BN / 8), c = (i % (BN / 8)) * 8;
            const int p = p0 + r, m = m0 + c;
            if (p >= P || m >= M) continue;
            const float* t = tile + r * kTS + c;
            if (m + 8 <= M) {
                const float4 t0 = *reinterpret_cast<const float4*>(t), t1 = *reinterpret_cast<const float4*>(t + 4);
                float v[8] = {t0.x, t0.y, t0.z, t0.w, t1.x, t1.y, t1.z, t1.w};
                if (res) {
                    const uint4 rv = *reinterpret_cast<const uint4*>(res + size_t(p) * a.rs + m);
                    const __half2* rh = reinterpret_cast<const __half2*>(&rv);
#pragma unroll
                    for (int j = 0; j < 4; ++j) {
                        const float2 f = __half22float2(rh[j]);
                        v[2 * j] += f.x;
                        v[2 * j + 1] += f.y;
                    }
                }
                uint4 out;
                __half2* oh = reinterpret_cast<__half2*>(&out);
#pragma unroll
                for (int j = 0; j < 4; ++j) oh[j] = __floats2half2_rn(v[2 * j], v[2 * j + 1]);
                *reinterpret_cast<uint4*>(y + size_t(p) * a.ys + m) = out;
            } else {
                for (int j = 0; m + j < M; ++j) {
                    float v = t[j];
                    if (res) v += __half2float(res[size_t(p) * a.rs + m + j]);
                    y[size_t(p) * a.ys + m + j] = __float2half(v);
                }
            }
        }
        return;
    }
    mma_epilogue<C::kMT, C::kNT, WM, WN>(a, acc, m0, wm, wn, lane, [&](int r) { return p0 + r < P ? p0 + r : -1; });
#else
    // Below sm_80: never launched (mma_supported() says no); keep the tile constants used.
    using C = MmaConv<BM, BN, BK, WM, WN, SK, STAGES, VEC>;
    (void)a;
    (void)C::kMT;
    (void)C::kNT;
    (void)C::kBCpr;
    (void)C::kAIters;
    (void)C::kBIters;
#endif
}

// 3x3 convs (pad 1, stride S = 1 or 2) from a halo tile: the block's TH x TW output
// pixels need a ((TH-1)S+3) x ((TW-1)S+3) input patch per channel chunk; it is loaded
// into shared memory once (cp.async, zero-filled outside the image) with all 9 taps'
// weights of the chunk, and the 9 taps read it through ldmatrix row addresses
// (implicit im2col in shared memory). The implicit GEMM above re-reads each input
// pixel for every tap through L1/L2 and walks K in many short steps, each a
// global-load latency; here a layer with at most CK input channels has one load phase,
// and with ST = 2 the next chunk loads while this one computes. Warps of 32 pixels x
// WN channels.
// PB > 0 (persistent, layers with at most CK input channels, ST = 2): PB blocks per SM
// walk the tiles; each loads its weights once and the next tile's patch while it
// computes this one. One tile per block reloads the weights for every tile: for the
// 16- and 32-channel layers at 160x160 and 80x80 that is as many bytes as the patch.
template <int TH, int TW, int BN, int WN, int CK, int S, int ST, int PB = 0>
struct HaloConv {
    static constexpr int kBM = TH * TW;
    static constexpr int kWarpsM = kBM / 32, kWarpsN = BN / WN;
    static constexpr int kThreads = kWarpsM * kWarpsN * 32;
    static constexpr int kMT = 2, kNT = WN / 8;
    static constexpr int kHH = (TH - 1) * S + 3, kHW = (TW - 1) * S + 3;
    static constexpr int kRow = CK + 8;   // halves per patch pixel: conflict-free ldmatrix (stride 1)
    static constexpr int kWRow = BN + 8;  // halves per weight row
    static constexpr int kPatch = kHH * kHW * kRow, kW = 9 * CK * kWRow;
    // Shared memory (halves): stage st's patch and weights; persistent blocks keep one
    // set of weights after the two patches.
    static constexpr int kHalves = PB > 0 ? 2 * kPatch + kW : ST * (kPatch + kW);
    static constexpr int kSmem = kHalves * 2;
    __host__ __device__ static constexpr int patch_off(int st) { return PB > 0 ? st * kPatch : st * (kPatch + kW); }
    __host__ __device__ static constexpr int w_off(int st) { return PB > 0 ? 2 * kPatch : st * (kPatch + kW) + kPatch; }
    static_assert(kBM % 32 == 0 && TW % 8 == 0 && BN % WN == 0 && WN % 16 == 0 && CK % 16 == 0, "tile shape");
    static_assert((S == 1 || S == 2) && (ST == 1 || ST == 2), "stride and stages");
    static_assert(PB == 0 || ST == 2, "persistent blocks double-buffer the patch");
    static_assert(kSmem <= 227 * 1024, "shared memory per block (H100); halo_supported checks this GPU's");
};

template <int TH, int TW, int BN, int WN, int CK, int S, int ST, int PB>
__global__ void __launch_bounds__(HaloConv<TH, TW, BN, WN, CK, S, ST, PB>::kThreads) conv_halo_kernel(ConvArgs a) {
    using C = HaloConv<TH, TW, BN, WN, CK, S, ST, PB>;
#ifdef YOLOC_MMA_ARCH
    extern __shared__ __align__(16) unsigned char halo_smem[];  // C::kSmem bytes (conv_halo)
    __half* smem = reinterpret_cast<__half*>(halo_smem);
    const __half* __restrict__ x = static_cast<const __half*>(a.x);
    const __half* __restrict__ wt = static_cast<const __half*>(a.wt);
    const int M = a.m;
    const int tiles_x = (a.ow + TW - 1) / TW, tiles_y = (a.oh + TH - 1) / TH;
    const int m0 = blockIdx.y * BN;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wm = warp / C::kWarpsN, wn = warp % C::kWarpsN;
    struct Tile {
        int n, oy0, ox0;
    };
    auto tile_at = [&](int t) {
        Tile r;
        r.n = t / (tiles_x * tiles_y);
        r.oy0 = (t / tiles_x) % tiles_y * TH;
        r.ox0 = t % tiles_x * TW;
        return r;
    };

    auto load_w = [&](int c0, int st) {
        constexpr int kCpr = BN / 8;
        __half* ws = smem + C::w_off(st);
        for (int idx = tid; idx < 9 * CK * kCpr; idx += C::kThreads) {
            const int r = idx / kCpr, nc = idx % kCpr;
            const int tap = r / CK, ci = c0 + r % CK, col = m0 + nc * 8;
            const bool ok = ci < a.c && col < M;
            const __half* src = ok ? wt + (size_t(tap) * a.c + ci) * M + col : wt;
            cp_async16(smem_u32(ws + r * C::kWRow + nc * 8), src, ok ? 16 : 0);
        }
    };
    auto load_patch = [&](int c0, int st, const Tile& tl) {
        constexpr int kCpr = CK / 8;
        __half* patch = smem + C::patch_off(st);
        for (int idx = tid; idx < C::kHH * C::kHW * kCpr; idx += C::kThreads) {
            const int pix = idx / kCpr, cc = idx % kCpr;
            const int iy = tl.oy0 * S + pix / C::kHW - 1, ix = tl.ox0 * S + pix % C::kHW - 1, ci = c0 + cc * 8;
            const bool ok = unsigned(iy) < unsigned(a.h) && unsigned(ix) < unsigned(a.w) && ci < a.c;
            const __half* src = ok ? x + ((size_t(tl.n) * a.h + iy) * a.w + ix) * a.xs + ci : x;
            cp_async16_ca(smem_u32(patch + pix * C::kRow + cc * 8), src, ok ? 16 : 0);
        }
    };

    float acc[C::kMT][C::kNT][4];
    auto zero = [&]() {
#pragma unroll
        for (int i = 0; i < C::kMT; ++i)
#pragma unroll
            for (int j = 0; j < C::kNT; ++j)
#pragma unroll
                for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.f;
    };
    zero();

    // This lane's ldmatrix row for each m16 tile: output pixel (ty, tx) of the tile.
    int prow[C::kMT];
#pragma unroll
    for (int mt = 0; mt < C::kMT; ++mt) {
        const int r = wm * 32 + mt * 16 + (lane & 15);
        prow[mt] = (r / TW) * S * C::kHW + (r % TW) * S;
    }
    // The patch of stage `pst` times the weights of stage `wst`.
    auto compute = [&](int pst, int wst) {
        const __half* patch = smem + C::patch_off(pst);
        const __half* ws = smem + C::w_off(wst);
#pragma unroll
        for (int tap = 0; tap < 9; ++tap) {
            const int off = (tap / 3) * C::kHW + tap % 3;
#pragma unroll
            for (int ks = 0; ks < CK / 16; ++ks) {
                unsigned af[C::kMT][4];
                unsigned bf[C::kNT][2];
#pragma unroll
                for (int mt = 0; mt < C::kMT; ++mt)
                    ldmatrix_x4(af[mt][0], af[mt][1], af[mt][2], af[mt][3],
                                smem_u32(patch + (prow[mt] + off) * C::kRow + ks * 16 + (lane >> 4) * 8));
#pragma unroll
                for (int np = 0; np < C::kNT / 2; ++np)
                    ldmatrix_x4_trans(bf[2 * np][0], bf[2 * np][1], bf[2 * np + 1][0], bf[2 * np + 1][1],
                                      smem_u32(ws + (tap * CK + ks * 16 + (lane & 15)) * C::kWRow + wn * WN + np * 16 +
                                               (lane >> 4) * 8));
#pragma unroll
                for (int mt = 0; mt < C::kMT; ++mt)
#pragma unroll
                    for (int nt = 0; nt < C::kNT; ++nt) mma16816(acc[mt][nt], af[mt], bf[nt]);
            }
        }
    };
    auto epilogue = [&](const Tile& tl) {
        mma_epilogue<C::kMT, C::kNT, 32, WN>(a, acc, m0, wm, wn, lane, [&](int r) {
            const int oy = tl.oy0 + r / TW, ox = tl.ox0 + r % TW;
            return oy < a.oh && ox < a.ow ? (tl.n * a.oh + oy) * a.ow + ox : -1;
        });
    };

    if (PB > 0) {
        // Persistent: one channel chunk (halo_supported), one set of weights, the patches
        // of this tile and the next in stages 0 and 1.
        const int ntiles = a.n * tiles_y * tiles_x;
        load_w(0, 0);  // weights do not depend on the previous kernel (PDL)
        pdl_wait();
        pdl_launch_dependents();  // every block of this grid is resident: nothing to crowd out
        int t = blockIdx.x;
        if (t < ntiles) load_patch(0, 0, tile_at(t));
        cp_async_commit();
        for (int i = 0; t < ntiles; t += gridDim.x, ++i) {
            const int st = i & 1;
            const int nt = t + int(gridDim.x);
            if (nt < ntiles) load_patch(0, st ^ 1, tile_at(nt));  // stage st^1 was last read in iteration i-1
            cp_async_commit();
            cp_async_wait<1>();
            __syncthreads();
            compute(st, 0);
            epilogue(tile_at(t));
            zero();
            __syncthreads();  // stage st is loaded again in iteration i+1
        }
        return;
    }

    const Tile tl = tile_at(blockIdx.x);
    const int chunks = (a.c + CK - 1) / CK;
    load_w(0, 0);  // weights do not depend on the previous kernel (PDL)
    pdl_wait();
    load_patch(0, 0, tl);
    cp_async_commit();
    for (int i = 0; i < chunks; ++i) {
        const int st = ST == 2 ? (i & 1) : 0;
        if (ST == 2) {
            if (i + 1 < chunks) {  // the other stage was last read in iteration i - 1 (synced below)
                load_w((i + 1) * CK, st ^ 1);
                load_patch((i + 1) * CK, st ^ 1, tl);
            }
            cp_async_commit();
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();
        compute(st, st);
        __syncthreads();
        if (ST == 1 && i + 1 < chunks) {
            load_w((i + 1) * CK, 0);
            load_patch((i + 1) * CK, 0, tl);
            cp_async_commit();
        }
    }
    pdl_launch_dependents();
    epilogue(tl);
#else
    (void)a;
    (void)C::kMT;
    (void)C::kNT;
#endif
}

using KernelFn = void (*)(ConvArgs);

struct Entry {
    MmaConfig cfg;
    KernelFn vec, gen;
    int threads, smem;
};

#define YOLOC_MMA_CENTRY(BM, BN, BK, WM, WN, SK, ST, CL)                                                  \
    Entry {                                                                                               \
        MmaConfig{BM, BN, BK, WM, WN, SK, ST, CL}, conv_mma_kernel<BM, BN, BK, WM, WN, SK, ST, true, CL>, \
            conv_mma_kernel<BM, BN, BK, WM, WN, SK, ST, false, CL>,                                       \
            MmaConv<BM, BN, BK, WM, WN, SK, ST, true>::kThreads,                                          \
            MmaConv<BM, BN, BK, WM, WN, SK, ST, true>::kSmemBytes                                         \
    }
#define YOLOC_MMA_ENTRY(BM, BN, BK, WM, WN, SK, ST) YOLOC_MMA_CENTRY(BM, BN, BK, WM, WN, SK, ST, 1)

// The tile table (tactic ids are kConvMmaBase + index: keep the order stable, engine
// files store the index).
const Entry kEntries[] = {
    YOLOC_MMA_ENTRY(128, 64, 32, 32, 32, 1, 3),  // 0: big layers, 8 warps
    YOLOC_MMA_ENTRY(64, 64, 32, 32, 32, 1, 3),   // 1
    YOLOC_MMA_ENTRY(64, 32, 32, 32, 16, 1, 3),   // 2: cout 32
    YOLOC_MMA_ENTRY(128, 32, 32, 32, 32, 1, 3),  // 3: cout 32, many pixels
    YOLOC_MMA_ENTRY(128, 16, 32, 32, 16, 1, 3),  // 4: cout 16 (stem, C2f bottleneck at 160)
    YOLOC_MMA_ENTRY(64, 16, 32, 16, 16, 1, 3),   // 5: cout 16, fewer pixels
    YOLOC_MMA_ENTRY(32, 32, 64, 32, 32, 4, 3),   // 6: few pixels, long K: 4-way in-block split-K
    YOLOC_MMA_ENTRY(32, 64, 64, 32, 32, 4, 2),   // 7
    YOLOC_MMA_ENTRY(64, 64, 64, 32, 32, 2, 2),   // 8
    YOLOC_MMA_ENTRY(16, 32, 64, 16, 32, 4, 3),   // 9: tiny layers (20x20 at 640)
    YOLOC_MMA_ENTRY(64, 32, 64, 32, 16, 2, 3),   // 10
    YOLOC_MMA_ENTRY(32, 16, 64, 16, 16, 2, 3),   // 11: smallest tile
    // Deeper pipelines / longer K per stage: small layers are bound by the latency of
    // each K step, not by math.
    YOLOC_MMA_ENTRY(32, 16, 64, 16, 16, 2, 6),   // 12
    YOLOC_MMA_ENTRY(32, 16, 128, 16, 16, 4, 3),  // 13
    YOLOC_MMA_ENTRY(64, 32, 32, 32, 16, 1, 5),   // 14
    YOLOC_MMA_ENTRY(16, 32, 128, 16, 16, 4, 3),  // 15
    YOLOC_MMA_ENTRY(64, 16, 64, 16, 16, 2, 3),   // 16
    YOLOC_MMA_ENTRY(128, 16, 32, 32, 16, 1, 4),  // 17
    YOLOC_MMA_ENTRY(32, 32, 128, 16, 16, 4, 2),  // 18
    // Output widths that 16/32/64 tiles waste: the Detect heads' fused 144-channel conv
    // (3 x 48) and their 80-channel class convs.
    YOLOC_MMA_ENTRY(64, 48, 32, 32, 48, 1, 3),   // 19
    YOLOC_MMA_ENTRY(64, 48, 64, 32, 48, 2, 3),   // 20
    YOLOC_MMA_ENTRY(128, 48, 32, 32, 48, 1, 3),  // 21
    YOLOC_MMA_ENTRY(64, 80, 32, 32, 80, 1, 3),   // 22
    YOLOC_MMA_ENTRY(32, 80, 64, 32, 80, 2, 3),   // 23
    // 8-way in-block split-K: the 20x20 layers with K >= 1152 had ~100 blocks of 4 warps
    // (fewer than the H100's SMs), each walking 9+ K steps.
    YOLOC_MMA_ENTRY(16, 16, 128, 16, 16, 8, 3),  // 24
    YOLOC_MMA_ENTRY(32, 16, 128, 16, 16, 8, 3),  // 25
    YOLOC_MMA_ENTRY(16, 32, 128, 16, 32, 8, 3),  // 26
    YOLOC_MMA_ENTRY(16, 16, 256, 16, 16, 8, 2),  // 27
    // Split-K across a cluster of 2 or 4 blocks (sm_90): the partial sums are added through
    // distributed shared memory, no global workspace. For the 20x20 layers whose K
    // (1152-2304) made ~50-100 blocks each walk 9-18 K tiles.
    YOLOC_MMA_CENTRY(32, 32, 64, 16, 16, 1, 3, 2),   // 28
    YOLOC_MMA_CENTRY(32, 32, 64, 16, 16, 1, 3, 4),   // 29
    YOLOC_MMA_CENTRY(32, 16, 64, 16, 16, 1, 3, 4),   // 30
    YOLOC_MMA_CENTRY(32, 64, 64, 32, 32, 1, 3, 4),   // 31
    YOLOC_MMA_CENTRY(64, 32, 64, 32, 16, 1, 3, 2),   // 32
    YOLOC_MMA_CENTRY(32, 32, 128, 16, 16, 1, 2, 4),  // 33
};
constexpr int kNumEntries = int(sizeof(kEntries) / sizeof(kEntries[0]));

struct HaloEntry {
    HaloConfig cfg;
    KernelFn fn;
    int threads, smem;  // smem: dynamic shared memory bytes
};
#define YOLOC_HALO_PENTRY(TH, TW, BN, WN, CK, S, ST, PB)                                                 \
    HaloEntry {                                                                                          \
        HaloConfig{TH, TW, BN, WN, CK, S, ST, PB}, conv_halo_kernel<TH, TW, BN, WN, CK, S, ST, PB>,      \
            HaloConv<TH, TW, BN, WN, CK, S, ST, PB>::kThreads, HaloConv<TH, TW, BN, WN, CK, S, ST, PB>::kSmem \
    }
#define YOLOC_HALO_ENTRY(TH, TW, BN, WN, CK, S, ST) YOLOC_HALO_PENTRY(TH, TW, BN, WN, CK, S, ST, 0)

// Halo tiles (tactic ids kConvHaloBase + index: keep the order stable).
const HaloEntry kHalo[] = {
    YOLOC_HALO_ENTRY(8, 16, 32, 32, 32, 1, 1),  // 0: 128 pixels, 4 warps
    YOLOC_HALO_ENTRY(8, 16, 64, 32, 16, 1, 1),  // 1: 8 warps
    YOLOC_HALO_ENTRY(4, 16, 32, 32, 32, 1, 1),  // 2: 64 pixels (small maps)
    YOLOC_HALO_ENTRY(4, 8, 32, 32, 32, 1, 1),   // 3: 32 pixels, 1 warp (20x20 maps)
    YOLOC_HALO_ENTRY(8, 16, 16, 16, 32, 1, 1),  // 4: cout 16
    YOLOC_HALO_ENTRY(4, 16, 64, 32, 16, 1, 1),  // 5
    YOLOC_HALO_ENTRY(4, 8, 16, 16, 64, 1, 1),   // 6: few pixels, cout 16-32, long K chunks
    // Two stages (the next channel chunk loads during this one's MMAs): long K.
    YOLOC_HALO_ENTRY(4, 8, 16, 16, 32, 1, 2),   // 7
    YOLOC_HALO_ENTRY(8, 16, 16, 16, 16, 1, 2),  // 8
    YOLOC_HALO_ENTRY(4, 16, 32, 32, 16, 1, 2),  // 9
    // Stride 2 (the downsampling convs).
    YOLOC_HALO_ENTRY(4, 8, 32, 32, 32, 2, 1),   // 10
    YOLOC_HALO_ENTRY(4, 8, 16, 16, 32, 2, 1),   // 11
    YOLOC_HALO_ENTRY(4, 16, 16, 16, 32, 2, 1),  // 12
    YOLOC_HALO_ENTRY(4, 16, 32, 32, 32, 2, 1),  // 13
    YOLOC_HALO_ENTRY(4, 8, 16, 16, 16, 2, 2),   // 14
    // Stride 2 with 16-channel chunks: model.1 (16 -> 32 at 320 -> 160), model.3 (32 -> 64).
    YOLOC_HALO_ENTRY(8, 16, 32, 32, 16, 2, 1),  // 15
    YOLOC_HALO_ENTRY(4, 16, 32, 32, 16, 2, 1),  // 16
    YOLOC_HALO_ENTRY(4, 16, 64, 32, 16, 2, 1),  // 17
    // Persistent blocks (PB per SM; layers of at most CK input channels): the weights
    // load once per block, the next tile's patch during this tile's MMAs.
    YOLOC_HALO_PENTRY(8, 16, 16, 16, 16, 1, 2, 4),   // 18: 16 -> 16 at 160x160
    YOLOC_HALO_PENTRY(8, 16, 16, 16, 16, 1, 2, 8),   // 19
    YOLOC_HALO_PENTRY(16, 16, 16, 16, 16, 1, 2, 4),  // 20: 256 pixels, 8 warps
    YOLOC_HALO_PENTRY(8, 8, 32, 32, 32, 1, 2, 4),    // 21: 32 -> 32 at 80x80
    YOLOC_HALO_PENTRY(4, 16, 32, 32, 32, 1, 2, 4),   // 22
    YOLOC_HALO_PENTRY(8, 8, 32, 32, 32, 1, 2, 8),    // 23
    // Weights-stationary (more than 48 KiB of shared memory: sm_80+ GPUs that have it,
    // halo_supported): all 9 x cin weights of the block's BN outputs stay in shared memory
    // while one block per SM walks the tiles. The Detect heads at 80x80 and 40x40 and the
    // 64-channel 3x3 convs reloaded 23-65 KiB of weights for every 128-pixel tile.
    YOLOC_HALO_PENTRY(8, 32, 48, 48, 64, 1, 2, 1),   // 24: cin 64 -> the fused 144 (3 x 48)
    YOLOC_HALO_PENTRY(8, 16, 64, 32, 64, 1, 2, 1),   // 25: 64 -> 64
    YOLOC_HALO_PENTRY(8, 16, 80, 16, 80, 1, 2, 1),   // 26: 80 -> 80 (class head), 20 warps
    YOLOC_HALO_PENTRY(8, 16, 80, 80, 80, 1, 2, 1),   // 27: 80 -> 80, 4 warps of 32 x 80
    YOLOC_HALO_PENTRY(8, 16, 48, 48, 64, 1, 2, 1),   // 28
    YOLOC_HALO_PENTRY(8, 32, 64, 32, 64, 1, 2, 1),   // 29: 64 -> 64, 16 warps
    YOLOC_HALO_PENTRY(8, 16, 48, 48, 128, 1, 2, 1),  // 30: cin 128 -> 144 at 40x40
};
constexpr int kNumHalo = int(sizeof(kHalo) / sizeof(kHalo[0]));

bool vec_ok(const ConvArgs& a) {
    return a.c % 8 == 0 && a.xs % 8 == 0 && a.m % 8 == 0 && (reinterpret_cast<uintptr_t>(a.x) & 15) == 0 &&
           (reinterpret_cast<uintptr_t>(a.wt) & 15) == 0;
}

}  // namespace

namespace {
// One attribute of the current device, or `fallback` where it cannot be read.
int current_device_attr(cudaDeviceAttr attr, int fallback) {
    int dev = 0, v = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&v, attr, dev) != cudaSuccess) return fallback;
    return v;
}
}  // namespace

int device_cc_major() {
    static const int cc = current_device_attr(cudaDevAttrComputeCapabilityMajor, 0);
    return cc;
}

int device_sm_count() {
    static const int n = current_device_attr(cudaDevAttrMultiProcessorCount, 1);
    return n;
}

// Dynamic shared memory one block may opt into on this device (0 if unknown). Cached.
int device_smem_optin() {
    static const int b = current_device_attr(cudaDevAttrMaxSharedMemoryPerBlockOptin, 0);
    return b;
}

int halo_config_count() { return kNumHalo; }

bool halo_supported(const ConvArgs& a, int cfg) {
    if (cfg < 0 || cfg >= kNumHalo) return false;
    if (kHalo[cfg].smem > 48 * 1024 && kHalo[cfg].smem > device_smem_optin()) return false;
    const int st = kHalo[cfg].cfg.s;
    if (kHalo[cfg].cfg.pb > 0 && a.c > kHalo[cfg].cfg.ck) return false;  // persistent: one channel chunk
    return !a.qscale && !a.nchw && a.group == 1 && device_cc_major() >= 8 && a.kh == 3 && a.kw == 3 && a.sh == st &&
           a.sw == st && a.ph == 1 && a.pw == 1 && a.oh == (a.h - 1) / st + 1 && a.ow == (a.w - 1) / st + 1 &&
           vec_ok(a);
}

void conv_halo(const ConvArgs& a, int cfg, cudaStream_t s) {
    const HaloEntry& e = kHalo[cfg];
    long long tiles = (long long)a.n * ((a.oh + e.cfg.th - 1) / e.cfg.th) * ((a.ow + e.cfg.tw - 1) / e.cfg.tw);
    if (e.cfg.pb > 0) {  // persistent: pb blocks per SM across the column blocks, at least one tile each
        const long long cols = (a.m + e.cfg.bn - 1) / e.cfg.bn;
        tiles = std::min(tiles, std::max(1LL, (long long)e.cfg.pb * device_sm_count() / cols));
    }
    dim3 grid(unsigned(tiles), unsigned((a.m + e.cfg.bn - 1) / e.cfg.bn));
    // Opt in to more than 48 KiB at each launch, on the current device (a cached flag would
    // miss a second GPU), not up front: that would load every kernel's code (launch.h). Not
    // a stream operation, so allowed during graph capture; engines launch at capture only.
    if (e.smem > 48 * 1024) cudaFuncSetAttribute(e.fn, cudaFuncAttributeMaxDynamicSharedMemorySize, e.smem);
    launch_pdl(e.fn, grid, dim3(unsigned(e.threads)), size_t(e.smem), s, a);
}

int mma_config_count() { return kNumEntries; }

bool mma_supported(const ConvArgs& a, int cfg) {
    if (!(cfg >= 0 && cfg < kNumEntries && a.group == 1 && device_cc_major() >= 8 && a.m > 0 && a.c > 0)) return false;
    const Entry& e = kEntries[cfg];
    if (e.cfg.cluster > 1) {
        // Clusters: sm_90 and CUDA 12.3 launches; one warp group (every thread reaches the
        // cluster barriers); the reduction's BM x BN floats fit the pipeline's shared memory;
        // at least two K tiles per block.
        const int ktiles = (a.kh * a.kw * a.c + e.cfg.bk - 1) / e.cfg.bk;
        return CUDART_VERSION >= 12030 && device_cc_major() >= 9 && e.cfg.splitk == 1 &&
               e.cfg.bm * e.cfg.bn * 4 <= e.smem && ktiles >= 2 * e.cfg.cluster;
    }
    return true;
}

int mma_default_config(const ConvArgs& a) {
    const long long P = (long long)a.n * a.oh * a.ow;
    const long long K = (long long)a.kh * a.kw * a.c;
    const int sms = device_sm_count();
    auto blocks = [&](int bm, int bn) { return ((P + bm - 1) / bm) * ((a.m + bn - 1) / bn); };
    if (a.m <= 16) return blocks(128, 16) >= sms ? 4 : 5;
    if (a.m <= 32) return blocks(128, 32) >= 2 * sms ? 3 : (blocks(64, 32) >= sms || K < 256 ? 2 : 10);
    if (blocks(128, 64) >= 2 * sms) return 0;
    if (blocks(64, 64) >= sms) return 1;
    if (K >= 512) return blocks(32, 64) >= sms / 2 ? 7 : 6;
    return 1;
}

void conv_mma(const ConvArgs& a, int cfg, cudaStream_t s) {
    const Entry& e = kEntries[cfg];
    const long long P = (long long)a.n * a.oh * a.ow;
    const int cl = e.cfg.cluster > 1 ? e.cfg.cluster : 1;
    dim3 grid(unsigned((P + e.cfg.bm - 1) / e.cfg.bm), unsigned((a.m + e.cfg.bn - 1) / e.cfg.bn), unsigned(cl));
    KernelFn fn = vec_ok(a) ? e.vec : e.gen;
    ConvArgs b = a;
    b.stage_out = stage_out() ? 1 : 0;
    launch_kernel_ex(fn, grid, dim3(unsigned(e.threads)), 0, s, true, cl, b);
}

bool pdl_enabled() {
    static int on = -1;
    if (on < 0) {
        const char* v = env_get("YOLOC_PDL");
        on = (CUDART_VERSION >= 12030 && device_cc_major() >= 9 && !(v && v[0] == '0')) ? 1 : 0;
    }
    return on == 1;
}

namespace {
thread_local int g_launch_carveout = kCarveoutUnset;
}

int set_launch_carveout(int pct) {
    const int prev = g_launch_carveout;
    g_launch_carveout = pct;
    return prev;
}

int kernel_carveout() {
    static int env = -3;  // -3: not read yet; kCarveoutUnset: YOLOC_CARVEOUT not set
    if (env == -3) {
        const char* v = env_get("YOLOC_CARVEOUT");
        env = v ? std::max(-1, std::min(100, std::atoi(v))) : kCarveoutUnset;
    }
    if (env != kCarveoutUnset) return env;
    return g_launch_carveout != kCarveoutUnset ? g_launch_carveout : 100;
}

namespace {
thread_local int g_stage_out = -1;
}

int set_stage_out(int on) {
    const int prev = g_stage_out;
    g_stage_out = on;
    return prev;
}

bool stage_out() {
    if (g_stage_out >= 0) return g_stage_out == 1;
    static int on = -1;
    if (on < 0) {
        const char* v = env_get("YOLOC_STAGE_OUT");  // "0": store from the fragments (A/B runs)
        on = (v && v[0] == '0') ? 0 : 1;
    }
    return on == 1;
}

const char* conv_tactic_name(int tactic, char* buf, int len) {
    if (tactic >= kConvMmaBase && tactic - kConvMmaBase < kNumEntries) {
        const MmaConfig c = kEntries[tactic - kConvMmaBase].cfg;
        if (c.cluster > 1)
            std::snprintf(buf, size_t(len), "mma%dx%dk%dcl%d", c.bm, c.bn, c.bk, c.cluster);
        else if (c.splitk > 1)
            std::snprintf(buf, size_t(len), "mma%dx%dk%dsk%d", c.bm, c.bn, c.bk, c.splitk);
        else
            std::snprintf(buf, size_t(len), "mma%dx%dk%d", c.bm, c.bn, c.bk);
        return buf;
    }
    if (tactic >= kConvCudnnBase && tactic < kConvCudnnBase + kConvCudnnMax) {
        std::snprintf(buf, size_t(len), "cudnn%d", tactic - kConvCudnnBase);
        return buf;
    }
    if (tactic >= kConvInt8HaloBase && tactic - kConvInt8HaloBase < int8halo_config_count()) {
        const HaloConfig c = int8halo_config(tactic - kConvInt8HaloBase);
        std::snprintf(buf, size_t(len), "i8halo%dx%dn%dc%ds%d%s", c.th, c.tw, c.bn, c.ck, c.s, c.stages == 2 ? "x2" : "");
        return buf;
    }
    if (tactic >= kConvHaloBase && tactic - kConvHaloBase < kNumHalo) {
        const HaloConfig c = kHalo[tactic - kConvHaloBase].cfg;
        if (c.pb > 0)
            std::snprintf(buf, size_t(len), "halo%dx%dn%dc%ds%dp%d", c.th, c.tw, c.bn, c.ck, c.s, c.pb);
        else
            std::snprintf(buf, size_t(len), "halo%dx%dn%dc%ds%d%s", c.th, c.tw, c.bn, c.ck, c.s, c.stages == 2 ? "x2" : "");
        return buf;
    }
    if (tactic >= kConvInt8InMmaBase && tactic - kConvInt8InMmaBase < int8in_config_count()) {
        const MmaConfig c = int8in_config(tactic - kConvInt8InMmaBase);
        std::snprintf(buf, size_t(len), "i8in%dx%dk%ds%d%s", c.bm, c.bn, c.bk, c.stages,
                      c.splitk > 1 ? (c.splitk == 2 ? "sk2" : "sk4") : "");
        return buf;
    }
    if (tactic >= kConvInt8MmaBase && tactic - kConvInt8MmaBase < int8_config_count()) {
        const Int8Config c = int8_config(tactic - kConvInt8MmaBase);
        if (c.splitk > 1)
            std::snprintf(buf, size_t(len), "i8mma%dx%dk%dsk%d", c.bm, c.bn, c.bk, c.splitk);
        else
            std::snprintf(buf, size_t(len), "i8mma%dx%dk%d", c.bm, c.bn, c.bk);
        return buf;
    }
    const char* n = tactic == kConvAuto ? "auto" : tactic == kConvDirect ? "direct" : tactic == kConvWmma ? "wmma"
                    : tactic == kConvSimtGemm ? "simt-gemm" : tactic == kConvInt8Direct ? "i8direct"
                    : tactic == kConvStemTile ? "stemtile"
                    : tactic == kConvStemQuad ? "stemquad"
                    : tactic == kConvStemPair ? "stempair" : "?";
    std::snprintf(buf, size_t(len), "%s", n);
    return buf;
}

}  // namespace cuda
}  // namespace yoloc
