// GPU letterbox, candidate decode, sort, class-wise NMS and gather. The element
// arithmetic lives in prepost_ops.h (shared with the CPU emulation test); this
// file only distributes it over threads. Compiled with -fmad=false (CMakeLists):
// no FMA contraction, so boxes and IoUs round exactly as on the CPU.
// C++14 and CUDA 10.2 clean. The sort is our own bitonic network: CUB and Thrust
// in CUDA 12.x/13 require C++17, and CUDA 10.2 (Jetson Nano) ships neither as a
// supported library.
#include "engine/cuda/prepost.h"

#include <cuda_runtime.h>

#include "engine/cuda/launch.h"

namespace yoloc {
namespace cuda {

namespace {

constexpr int kThreads = kGridStrideThreads;

__global__ void letterbox_kernel(LetterboxArgs a) {
    const long long total = letterbox_items(a);
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x)
        letterbox_at(a, i);
}

__global__ void decode_kernel(DecodeArgs a, unsigned long long* keys, unsigned* count) {
    const long long total = decode_items(a);
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        unsigned long long k;
        if (decode_at(a, i, &k)) keys[atomicAdd(count, 1u)] = k;  // order restored by the sort
    }
}

// Order-preserving compaction of one block's flags: returns this thread's slot
// among the flagged threads (valid when flag) and sets *total. blockDim.x must be
// a multiple of 32, at most 1024.
__device__ int block_compact(bool flag, int* warp_sums, int* total) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    const unsigned ballot = __ballot_sync(0xFFFFFFFFu, flag);
    if (lane == 0) warp_sums[warp] = __popc(ballot);
    __syncthreads();
    if (threadIdx.x == 0) {
        int run = 0;
        for (int w = 0; w < warps; ++w) {
            const int c = warp_sums[w];
            warp_sums[w] = run;
            run += c;
        }
        warp_sums[32] = run;
    }
    __syncthreads();
    const int slot = warp_sums[warp] + __popc(ballot & ((1u << lane) - 1u));
    *total = warp_sums[32];
    __syncthreads();  // warp_sums is reused by the next call
    return slot;
}

// One block per class: walks the sorted candidates in order, collecting this
// class's ones chunk by chunk, and keeps a candidate unless it overlaps a kept box
// (IoU > iou): the CPU's greedy NMS, with the overlap test spread over the block.
__global__ void nms_kernel(const float* pred, int nc, int anchors, const unsigned long long* keys, int k, float iou,
                           int max_det, unsigned char* keep) {
    extern __shared__ PpBox kept[];  // max_det boxes
    __shared__ int warp_sums[33];
    __shared__ int list[kThreads];
    __shared__ int nkept;
    const int c = blockIdx.x;
    if (threadIdx.x == 0) nkept = 0;
    __syncthreads();
    for (int base = 0; base < k; base += blockDim.x) {
        const int r = base + threadIdx.x;
        const bool mine = r < k && int(key_index(keys[r]) % unsigned(nc)) == c;
        int total = 0;
        const int slot = block_compact(mine, warp_sums, &total);
        if (mine) list[slot] = r;
        __syncthreads();
        for (int j = 0; j < total; ++j) {
            const int rank = list[j];
            const PpBox b = candidate_box(pred, anchors, int(key_index(keys[rank]) / unsigned(nc)));
            const int n = nkept;
            bool hit = false;
            for (int t = threadIdx.x; t < n; t += blockDim.x)
                if (pp_iou(kept[t], b) > iou) hit = true;
            if (!__syncthreads_or(hit) && threadIdx.x == 0) {
                kept[n] = b;
                nkept = n + 1;
                keep[rank] = 1;
            }
            __syncthreads();
            if (nkept >= max_det) return;  // uniform: read after the barrier
        }
    }
}

__global__ void gather_kernel(const float* pred, int nc, int anchors, const unsigned long long* keys,
                              const unsigned char* keep, int k, int max_det, MapArgs m, PpDetection* out,
                              int* out_count) {
    __shared__ int warp_sums[33];
    int written = 0;
    for (int base = 0; base < k && written < max_det; base += blockDim.x) {
        const int r = base + threadIdx.x;
        const bool kept = r < k && keep[r];
        int total = 0;
        const int slot = written + block_compact(kept, warp_sums, &total);
        if (kept && slot < max_det) {
            const unsigned idx = key_index(keys[r]);
            const PpBox b = candidate_box(pred, anchors, int(idx / unsigned(nc)));
            PpDetection d;
            d.class_id = int(idx % unsigned(nc));
            d.conf = key_score(keys[r]);
            d.x1 = map_x(m, b.x1);
            d.y1 = map_y(m, b.y1);
            d.x2 = map_x(m, b.x2);
            d.y2 = map_y(m, b.y2);
            out[slot] = d;
        }
        written += total;
    }
    if (threadIdx.x == 0) *out_count = written < max_det ? written : max_det;
}

// Bitonic sort, descending, over a power-of-two number of keys (padding keys are 0,
// below every real key). Stages whose partner distance j fits in one block's chunk
// of kSortChunk keys run in shared memory; only the wider ones go through global
// memory, one launch per (k, j).
constexpr int kSortChunk = 2048;  // keys per block in shared memory (16 KB)

__device__ __forceinline__ void bitonic_step(unsigned long long* a, int i, int l, int gi, int k) {
    const unsigned long long x = a[i], y = a[l];
    const bool descending_block = (gi & k) == 0;  // the final order is descending
    if (descending_block ? (x < y) : (x > y)) {
        a[i] = y;
        a[l] = x;
    }
}

__global__ void bitonic_global_kernel(unsigned long long* keys, int n, int j, int k) {
    const int t = blockIdx.x * blockDim.x + threadIdx.x;  // one pair per thread
    if (t >= n / 2) return;
    const int i = 2 * j * (t / j) + (t % j);
    bitonic_step(keys, i, i + j, i, k);
}

// Runs, inside each chunk, every stage k in [k_lo, k_hi] (powers of two), starting
// the first at partner distance first_j and the others at k/2.
__global__ void bitonic_shared_kernel(unsigned long long* keys, int k_lo, int k_hi, int first_j) {
    __shared__ unsigned long long a[kSortChunk];
    const int base = blockIdx.x * kSortChunk;
    for (int t = threadIdx.x; t < kSortChunk; t += blockDim.x) a[t] = keys[base + t];
    __syncthreads();
    for (int k = k_lo; k <= k_hi; k <<= 1) {
        for (int j = (k == k_lo ? first_j : k >> 1); j > 0; j >>= 1) {
            for (int t = threadIdx.x; t < kSortChunk / 2; t += blockDim.x) {
                const int i = 2 * j * (t / j) + (t % j);
                bitonic_step(a, i, i + j, base + i, k);
            }
            __syncthreads();
        }
    }
    for (int t = threadIdx.x; t < kSortChunk; t += blockDim.x) keys[base + t] = a[t];
}

}  // namespace

void letterbox(const LetterboxArgs& a, cudaStream_t s) {
    letterbox_kernel<<<grid_stride_blocks(letterbox_items(a)), kThreads, 0, s>>>(a);
}

void decode(const DecodeArgs& a, unsigned long long* keys, unsigned* count, cudaStream_t s) {
    decode_kernel<<<grid_stride_blocks(decode_items(a)), kThreads, 0, s>>>(a, keys, count);
}

int sort_capacity(int n) {
    int p = kSortChunk;
    while (p < n) p <<= 1;
    return p;
}

void sort_keys_desc(unsigned long long* keys, int n, cudaStream_t s) {
    if (n <= 1) return;
    // Pad to a power of two (at least one chunk) with zeros, which sort last.
    int n2 = kSortChunk;
    while (n2 < n) n2 <<= 1;
    cudaMemsetAsync(keys + n, 0, size_t(n2 - n) * sizeof(unsigned long long), s);
    const int chunks = n2 / kSortChunk;
    // Every chunk sorted on its own (stages k = 2 .. kSortChunk) ...
    bitonic_shared_kernel<<<chunks, 1024, 0, s>>>(keys, 2, kSortChunk, 1);
    // ... then the merges wider than a chunk: global steps while j >= kSortChunk,
    // the rest of each stage in shared memory.
    const unsigned pairs_blocks = unsigned((n2 / 2 + kThreads - 1) / kThreads);
    for (int k = 2 * kSortChunk; k <= n2; k <<= 1) {
        for (int j = k >> 1; j >= kSortChunk; j >>= 1)
            bitonic_global_kernel<<<pairs_blocks, kThreads, 0, s>>>(keys, n2, j, k);
        bitonic_shared_kernel<<<chunks, 1024, 0, s>>>(keys, k, k, kSortChunk / 2);
    }
}

void nms_per_class(const float* pred, int nc, int anchors, const unsigned long long* keys, int k, float iou,
                   int max_det, unsigned char* keep, cudaStream_t s) {
    if (k <= 0 || max_det <= 0) return;
    nms_kernel<<<nc, kThreads, size_t(max_det) * sizeof(PpBox), s>>>(pred, nc, anchors, keys, k, iou, max_det, keep);
}

void gather(const float* pred, int nc, int anchors, const unsigned long long* keys, const unsigned char* keep,
            int k, int max_det, const MapArgs& m, PpDetection* out, int* out_count, cudaStream_t s) {
    gather_kernel<<<1, 1024, 0, s>>>(pred, nc, anchors, keys, keep, k, max_det, m, out, out_count);
}

}  // namespace cuda
}  // namespace yoloc
