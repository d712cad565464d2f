// Launchers of the GPU pre/post-processing kernels (bodies in prepost_ops.h) and
// the per-context object that owns their device buffers. The pipeline for one
// image: upload the decoded BGR bytes -> letterbox into the engine's input ->
// (engine) -> decode candidates -> sort -> class-wise NMS -> gather the kept ones,
// mapped to original pixels; only the detections come back to the host.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "engine/cuda/prepost_ops.h"

namespace yoloc {
namespace cuda {

void letterbox(const LetterboxArgs& a, cudaStream_t s);
// Appends one key per candidate to `keys` (count in *count, which must be zeroed).
void decode(const DecodeArgs& a, unsigned long long* keys, unsigned* count, cudaStream_t s);
// Keys sort_keys_desc may touch for n keys (it pads to a power of two): size the
// key buffer for this many.
int sort_capacity(int n);
// Sorts keys[0, n) in descending order, in place (writes padding up to sort_capacity(n)).
void sort_keys_desc(unsigned long long* keys, int n, cudaStream_t s);
// Greedy NMS per class (one block per class) over the first k sorted keys:
// keep[r] = 1 for every kept rank r (keep must be zeroed).
void nms_per_class(const float* pred, int nc, int anchors, const unsigned long long* keys, int k, float iou,
                   int max_det, unsigned char* keep, cudaStream_t s);
// The first max_det kept candidates in rank order, mapped to original pixels.
void gather(const float* pred, int nc, int anchors, const unsigned long long* keys, const unsigned char* keep,
            int k, int max_det, const MapArgs& m, PpDetection* out, int* out_count, cudaStream_t s);

}  // namespace cuda
}  // namespace yoloc
