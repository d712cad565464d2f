// Launchers of the engine's CUDA kernels (bodies in element_ops.h).
// fp16 = true: activations and conv weights are __half, accumulation is float.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>

#include "engine/cuda/element_ops.h"

namespace yoloc {
namespace cuda {

void conv(const ConvArgs& a, bool fp16, cudaStream_t s);
// Whether the tiled, four- and two-pixel stem kernels (kConvStemTile, kConvStemQuad,
// kConvStemPair) can run
// this conv: the graph input read as NCHW float32, 3 channels, 3x3 stride 2 pad 1,
// 8..64 outputs in steps of 8.
bool stem_tile_supported(const ConvArgs& a);
// Whether the current device has tensor cores (sm_70+); cached after the first call,
// which must happen outside stream capture (the runtime calls it when a context is made).
bool tensor_cores_available();
void maxpool(const PoolArgs& a, bool fp16, cudaStream_t s);
void resize_nearest(const ResizeArgs& a, bool fp16, cudaStream_t s);
void copy_channels(const CopyArgs& a, bool fp16, cudaStream_t s);
void input_pack(const PackArgs& a, bool fp16, cudaStream_t s);
void output_unpack(const UnpackArgs& a, bool fp16, cudaStream_t s);
// DFL softmax + expectation, dist2bbox (xywh), stride, class sigmoid: one kernel.
void detect(const DetectArgs& a, bool fp16, cudaStream_t s);

}  // namespace cuda
}  // namespace yoloc
