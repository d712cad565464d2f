// CUDA kernels of the generic tier: grid-stride loops over the element functions of
// generic_ops.h (the code the host test runs), plus three kernels for the ops that
// dominate where the tier runs: a warp per Softmax row (C2PSA's attention), a
// shared-memory tiled MatMul (its two products) and a radix-select TopK (YOLO26's
// end-to-end head: 300 of 8400 per image).
// C++14 and CUDA 10.2 / sm_53 clean: no CUB (C++17 in CUDA 12+, absent from 10.2).
#include "engine/cuda/generic.h"

#include <cuda_runtime.h>

#include "engine/cuda/conv_mma.h"
#include "engine/cuda/launch.h"

namespace yoloc {
namespace cuda {

namespace {

constexpr int kThreads = kGridStrideThreads;

YOLOC_GRID_STRIDE_KERNEL(unary, UnaryArgs, unary_at, unary_items)
YOLOC_GRID_STRIDE_KERNEL(binary, BinaryArgs, binary_at, binary_items)
YOLOC_GRID_STRIDE_KERNEL(where, WhereArgs, where_at, where_items)
YOLOC_GRID_STRIDE_KERNEL(softmax, SoftmaxArgs, softmax_at, softmax_items)
YOLOC_GRID_STRIDE_KERNEL(matmul, MatMulArgs, matmul_at, matmul_items)
YOLOC_GRID_STRIDE_KERNEL(strided_copy, StridedCopyArgs, strided_copy_at, strided_copy_items)
YOLOC_GRID_STRIDE_KERNEL(gather, GatherArgs, gather_at, gather_items)
YOLOC_GRID_STRIDE_KERNEL(gather_elements, GatherElementsArgs, gather_elements_at, gather_elements_items)
YOLOC_GRID_STRIDE_KERNEL(topk_rank, TopKArgs, topk_rank_at, topk_rank_items)
YOLOC_GRID_STRIDE_KERNEL(reduce, ReduceArgs, reduce_at, reduce_items)
YOLOC_GRID_STRIDE_KERNEL(cast, CastArgs, cast_at, cast_items)
YOLOC_GRID_STRIDE_KERNEL(fake_quant, FakeQuantArgs, fake_quant_at, fake_quant_items)
YOLOC_GRID_STRIDE_KERNEL(conv_transpose, ConvTransposeArgs, conv_transpose_at, conv_transpose_items)

template <typename ARGS>
void launch_moves(void (*k4)(ARGS), void (*k2)(ARGS), void (*k1)(ARGS), const ARGS& a, long long items, int elem_bytes,
                  cudaStream_t s) {
    if (items <= 0) return;
    void (*fn)(ARGS) = elem_bytes == 4 ? k4 : (elem_bytes == 2 ? k2 : k1);
    launch_pdl(fn, dim3(grid_stride_blocks(items)), dim3(kThreads), 0, s, a);
}

// ---- Softmax: one warp per row ---------------------------------------------------------

__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xFFFFFFFFu, v, o));
    return v;
}
__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xFFFFFFFFu, v, o);
    return v;
}

// Rows along the last axis (inner == 1): the lanes of a warp read neighbouring values,
// where one thread per row (softmax_at) reads a row each, 400 floats apart in C2PSA.
__global__ void softmax_rows_kernel(SoftmaxArgs a) {
    pdl_wait();
    pdl_launch_dependents();
    const int lane = threadIdx.x & 31;
    const long long warps = (long long)gridDim.x * (blockDim.x >> 5);
    for (long long row = (blockIdx.x * (long long)blockDim.x + threadIdx.x) >> 5; row < a.outer; row += warps) {
        const float* x = a.x + row * a.len;
        float* y = a.y + row * a.len;
        float m = -INFINITY;
        for (int j = lane; j < a.len; j += 32) m = fmaxf(m, x[j]);
        m = warp_max(m);
        float sum = 0.f;
        for (int j = lane; j < a.len; j += 32) sum += expf(x[j] - m);
        sum = warp_sum(sum);
        if (a.log) {
            const float ls = logf(sum);
            for (int j = lane; j < a.len; j += 32) y[j] = x[j] - m - ls;
        } else {
            const float inv = 1.0f / sum;
            for (int j = lane; j < a.len; j += 32) y[j] = expf(x[j] - m) * inv;
        }
    }
}

// ---- MatMul: shared-memory tiles -------------------------------------------------------

// A BM x BN output tile per block of 256 threads (16 x 16), each thread computing
// (BM/16) x (BN/16) outputs 16 rows / columns apart (conflict-free shared reads,
// coalesced stores); K in steps of 16 through shared memory. Blocks along z walk the
// batch matrices.
constexpr int kMmBK = 16;

template <int BM, int BN>
__global__ void __launch_bounds__(256) matmul_tiled_kernel(MatMulArgs a, long long batches) {
    constexpr int TM = BM / 16, TN = BN / 16;
    __shared__ float As[kMmBK][BM + 1];
    __shared__ float Bs[kMmBK][BN + 1];
    pdl_wait();
    pdl_launch_dependents();
    const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
    const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
    for (long long bz = blockIdx.z; bz < batches; bz += gridDim.z) {
        long long ao, bo;
        matmul_batch(a, bz, &ao, &bo);
        const float* A = a.a + ao;
        const float* B = a.b + bo;
        float acc[TM][TN];
#pragma unroll
        for (int i = 0; i < TM; ++i)
#pragma unroll
            for (int j = 0; j < TN; ++j) acc[i][j] = 0.f;
        for (int k0 = 0; k0 < a.k; k0 += kMmBK) {
            // Neighbouring threads load neighbouring k of a row of A, neighbouring n of B.
            for (int e = tid; e < BM * kMmBK; e += 256) {
                const int mm = e / kMmBK, kk = e % kMmBK;
                const int row = m0 + mm, k = k0 + kk;
                As[kk][mm] = (row < a.m && k < a.k) ? A[(long long)row * a.k + k] : 0.f;
            }
            for (int e = tid; e < kMmBK * BN; e += 256) {
                const int kk = e / BN, nn = e % BN;
                const int k = k0 + kk, col = n0 + nn;
                Bs[kk][nn] = (k < a.k && col < a.n) ? B[(long long)k * a.n + col] : 0.f;
            }
            __syncthreads();
#pragma unroll
            for (int kk = 0; kk < kMmBK; ++kk) {
                float av[TM], bv[TN];
#pragma unroll
                for (int i = 0; i < TM; ++i) av[i] = As[kk][ty + 16 * i];
#pragma unroll
                for (int j = 0; j < TN; ++j) bv[j] = Bs[kk][tx + 16 * j];
#pragma unroll
                for (int i = 0; i < TM; ++i)
#pragma unroll
                    for (int j = 0; j < TN; ++j) acc[i][j] += av[i] * bv[j];
            }
            __syncthreads();
        }
        float* Y = a.y + bz * a.m * a.n;
#pragma unroll
        for (int i = 0; i < TM; ++i) {
            const int row = m0 + ty + 16 * i;
            if (row >= a.m) continue;
#pragma unroll
            for (int j = 0; j < TN; ++j) {
                const int col = n0 + tx + 16 * j;
                if (col < a.n) Y[(long long)row * a.n + col] = acc[i][j];
            }
        }
    }
}

template <int BM, int BN>
void launch_matmul_tiled(const MatMulArgs& a, long long batches, cudaStream_t s) {
    const dim3 grid(unsigned((a.n + BN - 1) / BN), unsigned((a.m + BM - 1) / BM),
                    unsigned(batches < 65535 ? batches : 65535));
    launch_pdl(matmul_tiled_kernel<BM, BN>, grid, dim3(256), 0, s, a, batches);
}

// ---- TopK: radix select per block ------------------------------------------------------

constexpr int kTopKThreadsMax = 1024;

// hist[digit] += 1 for the active lanes; lanes with the same digit add once together
// (sm_70+): a row of scores in [0, 1] shares its top digits, and one shared-memory
// address taking every lane's atomic serializes the warp.
__device__ __forceinline__ void hist_add(int* hist, unsigned digit, bool active) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 700
    const unsigned peers = __match_any_sync(0xFFFFFFFFu, active ? digit : 0xFFFFFFFFu);
    if (active && (threadIdx.x & 31) == unsigned(__ffs(peers) - 1)) atomicAdd(&hist[digit], __popc(peers));
#else
    if (active) atomicAdd(&hist[digit], 1);
#endif
}

// This thread's rank among the flagged threads of the block, in thread order; *total:
// how many are flagged. blockDim.x a multiple of 32. Ends with a barrier (sums is reused).
__device__ int block_rank(bool flag, int* sums, int* total) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    const unsigned ballot = __ballot_sync(0xFFFFFFFFu, flag);
    if (lane == 0) sums[warp] = __popc(ballot);
    __syncthreads();
    if (threadIdx.x == 0) {
        int run = 0;
        for (int w = 0; w < warps; ++w) {
            const int c = sums[w];
            sums[w] = run;
            run += c;
        }
        sums[32] = run;
    }
    __syncthreads();
    const int rank = sums[warp] + __popc(ballot & ((1u << lane) - 1u));
    *total = sums[32];
    __syncthreads();
    return rank;
}

// The key of element j of a row: from the row's keys in shared memory where they fit
// (`keys` not null), else from the input.
template <typename T>
__device__ __forceinline__ unsigned row_key(const unsigned* keys, const T* x, int j, int inner, int largest) {
    return keys ? keys[j] : topk_key(x[(long long)j * inner], largest);
}

// Shared memory a TopK block may use (the Jetson Nano's 48 KiB per block, less the
// kernel's static arrays and a margin).
constexpr int kTopKSmemBudget = 46 * 1024;

// One block per row (x viewed as [outer, len, inner]): four passes of 8-bit histograms
// find the k-th key (topk_key) and how many keys equal to it are taken; the keys above it
// and the first of those equal to it, in index order, go to shared memory as topk_order
// values, sorted there by a bitonic network (sort_n: a power of two >= k, zero-padded).
// The same selection as topk_row_at, spread over the block. cache: the row's keys are
// computed once into shared memory after the sort buffer (8400 anchors: 33 KB), so that
// the five passes over the row read shared memory instead of L2.
template <typename T>
__global__ void __launch_bounds__(kTopKThreadsMax) topk_radix_kernel(TopKArgs a, int sort_n, int cache) {
    extern __shared__ unsigned long long order[];
    unsigned* const keys = cache ? reinterpret_cast<unsigned*>(order + sort_n) : nullptr;
    __shared__ int hist[256];
    __shared__ int sums[33];
    __shared__ unsigned s_prefix;
    __shared__ int s_need, s_above, s_ties;
    pdl_wait();
    pdl_launch_dependents();
    const int tid = threadIdx.x, lane = tid & 31;
    const int k = a.k < a.len ? a.k : a.len;
    const long long rows = (long long)a.outer * a.inner;
    if (k <= 0) return;
    for (long long row = blockIdx.x; row < rows; row += gridDim.x) {
        const long long o = row / a.inner, r = row % a.inner;
        const T* x = static_cast<const T*>(a.x) + o * a.len * a.inner + r;
        if (keys)
            for (int j = tid; j < a.len; j += blockDim.x) keys[j] = topk_key(x[(long long)j * a.inner], a.largest);
        if (tid == 0) {
            s_prefix = 0;
            s_need = k;
        }
        unsigned mask = 0;
        for (int shift = 24; shift >= 0; shift -= 8) {
            for (int d = tid; d < 256; d += blockDim.x) hist[d] = 0;
            __syncthreads();
            const unsigned prefix = s_prefix;
            for (int base = 0; base < a.len; base += blockDim.x) {  // uniform trip count: hist_add syncs the warp
                const int j = base + tid;
                const unsigned key = j < a.len ? row_key(keys, x, j, a.inner, a.largest) : 0u;
                hist_add(hist, (key >> shift) & 255u, j < a.len && (key & mask) == prefix);
            }
            __syncthreads();
            // radix_pick by warp 0: lane l sums digits 255-8l down to 248-8l, a scan over the
            // lanes finds the one holding the need-th key, which walks its eight digits.
            if (tid < 32) {
                int c[8], sum = 0;
                for (int q = 0; q < 8; ++q) {
                    c[q] = hist[255 - 8 * lane - q];
                    sum += c[q];
                }
                int incl = sum;
                for (int off = 1; off < 32; off <<= 1) {
                    const int v = __shfl_up_sync(0xFFFFFFFFu, incl, off);
                    if (lane >= off) incl += v;
                }
                const int need = s_need;
                const int excl = incl - sum;
                __syncwarp();
                if (excl < need && need <= incl) {
                    int rem = need - excl, q = 0;
                    while (q < 7 && c[q] < rem) rem -= c[q++];
                    s_prefix = prefix | (unsigned(255 - 8 * lane - q) << shift);
                    s_need = rem;
                }
            }
            mask |= 255u << shift;
            __syncthreads();
        }
        const unsigned kth = s_prefix;
        const int need = s_need, above_n = k - need;
        for (int d = tid; d < sort_n; d += blockDim.x) order[d] = 0ull;
        if (tid == 0) {
            s_above = 0;
            s_ties = 0;
        }
        __syncthreads();
        for (int base = 0; base < a.len; base += blockDim.x) {
            const int j = base + tid;
            const unsigned key = j < a.len ? row_key(keys, x, j, a.inner, a.largest) : 0u;
            if (j < a.len && key > kth) order[atomicAdd(&s_above, 1)] = topk_order(key, j);
            const int ties = s_ties;
            int total;
            const int rank = block_rank(j < a.len && key == kth, sums, &total);
            if (j < a.len && key == kth && ties + rank < need) order[above_n + ties + rank] = topk_order(key, j);
            if (tid == 0) s_ties = ties + total;
            __syncthreads();
        }
        // Bitonic sort, descending.
        for (int size = 2; size <= sort_n; size <<= 1)
            for (int stride = size >> 1; stride > 0; stride >>= 1) {
                __syncthreads();
                for (int t = tid; t < sort_n / 2; t += blockDim.x) {
                    const int lo = 2 * t - (t & (stride - 1)), hi = lo + stride;
                    const unsigned long long u = order[lo], v = order[hi];
                    if ((u < v) == ((lo & size) == 0)) {
                        order[lo] = v;
                        order[hi] = u;
                    }
                }
            }
        __syncthreads();
        for (int p = tid; p < k; p += blockDim.x) {
            const int j = int(0xFFFFFFFFu - unsigned(order[p] & 0xFFFFFFFFull));
            const long long out = (o * a.k + p) * a.inner + r;
            static_cast<T*>(a.values)[out] = x[(long long)j * a.inner];
            a.indices[out] = j;
        }
        __syncthreads();  // order and the counters are reused by the next row
    }
}

template <typename T>
void launch_topk(const TopKArgs& a, cudaStream_t s) {
    const long long rows = (long long)a.outer * a.inner;
    const int k = a.k < a.len ? a.k : a.len;
    if (rows <= 0 || k <= 0) return;
    const bool radix = a.kernel != 1 && k <= kTopKMaxSorted;  // its sort fits shared memory
    if (!radix) {
        launch_pdl(topk_rank_kernel<T>, dim3(grid_stride_blocks(topk_rank_items(a))), dim3(kThreads), 0, s, a);
        return;
    }
    int sort_n = 1;
    while (sort_n < k) sort_n <<= 1;
    int threads = 64;
    while (threads < kTopKThreadsMax && (threads < a.len || threads < sort_n / 2)) threads <<= 1;
    const unsigned blocks = unsigned(rows < 65535 ? rows : 65535);
    const long long sort_bytes = (long long)sort_n * 8, cache_bytes = (long long)a.len * 4;
    const int cache = sort_bytes + cache_bytes <= kTopKSmemBudget;
    launch_pdl(topk_radix_kernel<T>, dim3(blocks), dim3(threads), size_t(sort_bytes + (cache ? cache_bytes : 0)), s,
               a, sort_n, cache);
}

}  // namespace

void unary(const UnaryArgs& a, cudaStream_t s) {
    if (unary_items(a) > 0) launch_pdl(unary_kernel<float>, dim3(grid_stride_blocks(unary_items(a))), dim3(kThreads), 0, s, a);
}

void binary(const BinaryArgs& a, bool int32, cudaStream_t s) {
    const long long n = binary_items(a);
    if (n <= 0) return;
    launch_pdl(int32 ? binary_kernel<int> : binary_kernel<float>, dim3(grid_stride_blocks(n)), dim3(kThreads), 0, s, a);
}

void where(const WhereArgs& a, int elem_bytes, cudaStream_t s) {
    launch_moves(where_kernel<unsigned>, where_kernel<unsigned short>, where_kernel<unsigned char>, a,
                 where_items(a), elem_bytes, s);
}

void softmax(const SoftmaxArgs& a, cudaStream_t s) {
    const long long rows = softmax_items(a);
    if (rows <= 0 || a.len <= 0) return;
    if (a.inner == 1) {
        const long long warps_per_block = kThreads / 32;
        long long blocks = (rows + warps_per_block - 1) / warps_per_block;
        if (blocks > 65535LL * 8) blocks = 65535LL * 8;
        launch_pdl(softmax_rows_kernel, dim3(unsigned(blocks)), dim3(kThreads), 0, s, a);
        return;
    }
    launch_pdl(softmax_kernel<float>, dim3(grid_stride_blocks(rows)), dim3(kThreads), 0, s, a);
}

void matmul(const MatMulArgs& a, cudaStream_t s) {
    const long long batches = dims_numel(a.batch, kMatMulBatchRank);
    if (batches <= 0 || a.m <= 0 || a.n <= 0) return;
    if (a.kernel == 1) {
        launch_pdl(matmul_kernel<float>, dim3(grid_stride_blocks(matmul_items(a))), dim3(kThreads), 0, s, a);
        return;
    }
    const long long big = ((a.m + 63) / 64) * ((a.n + 63) / 64) * batches;
    if (a.kernel == 2 || (a.kernel != 3 && big >= device_sm_count()))
        launch_matmul_tiled<64, 64>(a, batches, s);
    else
        launch_matmul_tiled<32, 32>(a, batches, s);
}

void strided_copy(const StridedCopyArgs& a, int elem_bytes, cudaStream_t s) {
    launch_moves(strided_copy_kernel<unsigned>, strided_copy_kernel<unsigned short>,
                 strided_copy_kernel<unsigned char>, a, strided_copy_items(a), elem_bytes, s);
}

void gather(const GatherArgs& a, int elem_bytes, cudaStream_t s) {
    launch_moves(gather_kernel<unsigned>, gather_kernel<unsigned short>, gather_kernel<unsigned char>, a,
                 gather_items(a), elem_bytes, s);
}

void gather_elements(const GatherElementsArgs& a, int elem_bytes, cudaStream_t s) {
    launch_moves(gather_elements_kernel<unsigned>, gather_elements_kernel<unsigned short>,
                 gather_elements_kernel<unsigned char>, a, gather_elements_items(a), elem_bytes, s);
}

void topk(const TopKArgs& a, bool int32, cudaStream_t s) {
    if (int32)
        launch_topk<int>(a, s);
    else
        launch_topk<float>(a, s);
}

void reduce(const ReduceArgs& a, bool int32, cudaStream_t s) {
    const long long n = reduce_items(a);
    if (n <= 0) return;
    launch_pdl(int32 ? reduce_kernel<int> : reduce_kernel<float>, dim3(grid_stride_blocks(n)), dim3(kThreads), 0, s, a);
}

void cast(const CastArgs& a, cudaStream_t s) {
    if (cast_items(a) > 0) launch_pdl(cast_kernel<float>, dim3(grid_stride_blocks(cast_items(a))), dim3(kThreads), 0, s, a);
}

void fake_quant(const FakeQuantArgs& a, cudaStream_t s) {
    const long long n = fake_quant_items(a);
    if (n > 0) launch_pdl(fake_quant_kernel<float>, dim3(grid_stride_blocks(n)), dim3(kThreads), 0, s, a);
}

void conv_transpose(const ConvTransposeArgs& a, cudaStream_t s) {
    const long long n = conv_transpose_items(a);
    if (n > 0) launch_pdl(conv_transpose_kernel<float>, dim3(grid_stride_blocks(n)), dim3(kThreads), 0, s, a);
}

}  // namespace cuda
}  // namespace yoloc
