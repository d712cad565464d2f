// Tensor-core implicit-GEMM convolution for fp16 NHWC activations (sm_80+):
// mma.sync m16n8k16 with ldmatrix and a cp.async multi-stage shared-memory
// pipeline, float accumulation, fused bias + SiLU + residual epilogue written into
// the output view (the concat-in-place slice). GEMM view: rows = output pixels
// (n*oh*ow), columns = output channels, K = kh*kw*cin in the weight order
// [kh][kw][cin][cout].
//
// Several tile configurations exist; the build times them per layer (tactics).
// On GPUs below sm_80 (and in CUDA 10.2 builds for the Jetson Nano) the kernels
// compile to empty bodies and mma_supported() says no, so they are never launched.
#pragma once

#include <cuda_runtime_api.h>

#include "engine/cuda/element_ops.h"
#include "engine/cuda/launch.h"

namespace yoloc {
namespace cuda {

// Conv tactic ids (ConvArgs::kernel, PlanOp::tactic).
enum ConvTactic : int {
    kConvAuto = 0,      // heuristic choice (what an engine without timed tactics runs)
    kConvDirect = 1,    // one output per thread, any precision / groups
    kConvWmma = 2,      // old WMMA 64x64 kernel (fp16, sm_70+)
    kConvSimtGemm = 3,  // tiled implicit GEMM on CUDA cores (fp32 / fp16)
    kConvInt8Direct = 4,    // INT8 conv, one output per thread (any GPU; conv_int8.h)
    kConvStemTile = 5,      // the NCHW stem from a shared-memory input tile (kernels.cu)
    kConvStemQuad = 6,      // the NCHW stem, four output pixels per thread (kernels.cu)
    kConvStemPair = 7,      // the NCHW stem, two output pixels per thread (kernels.cu)
    kConvMmaBase = 16,      // + index into the mma configuration table
    kConvInt8MmaBase = 64,  // + index into the INT8 mma configuration table (conv_int8.h)
    kConvInt8InMmaBase = 128,  // + index into the int8-input INT8 table (conv_int8.h)
    kConvHaloBase = 192,       // + index into the fp16 3x3 halo-tile table
    kConvInt8HaloBase = 256,   // + index into the INT8 (int8 input) 3x3 halo-tile table (conv_int8.h)
    kConvCudnnBase = 512,      // + index into cuDNN's heuristic list for the layer's graph (conv_cudnn.h)
    kConvCudnnMax = 64,        // at most this many cuDNN configurations per layer
};

struct MmaConfig {
    int bm, bn, bk, wm, wn, splitk, stages;
    int cluster;  // > 1: K split across a thread-block cluster of this many blocks (sm_90)
};

int mma_config_count();
// Whether tile configuration `cfg` can run this conv here: fp16, groups 1, a GPU of
// compute capability 8.0+ (cached by tensor_cores_available()).
bool mma_supported(const ConvArgs& a, int cfg);
// Heuristic configuration for a conv (used for kConvAuto).
int mma_default_config(const ConvArgs& a);
void conv_mma(const ConvArgs& a, int cfg, cudaStream_t s);

// fp16 3x3 convs (pad 1, stride 1 or 2) from a shared-memory halo tile (conv_halo_kernel).
struct HaloConfig {
    int th, tw, bn, wn, ck, s, stages;
    int pb;  // > 0: persistent, pb blocks per SM walk the tiles (layers of at most ck input channels)
};
int halo_config_count();
bool halo_supported(const ConvArgs& a, int cfg);
void conv_halo(const ConvArgs& a, int cfg, cudaStream_t s);
// Compute capability major of the current device (cached; first call outside capture).
int device_cc_major();
int device_sm_count();
// Shared memory one block may opt into (cudaDevAttrMaxSharedMemoryPerBlockOptin; cached).
int device_smem_optin();
// Whether the implicit-GEMM kernel stores its output tile through shared memory (16-byte
// stores; default) or from the accumulator fragments (YOLOC_STAGE_OUT=0). Cached.
bool stage_out();
// Overrides stage_out() for launches from this thread (1 staged, 0 fragments, -1 back
// to YOLOC_STAGE_OUT / the default); returns the previous override. For tests that
// compare the two stores.
int set_stage_out(int on);

// "mma128x64k32s3", "direct", ...: for reports.
const char* conv_tactic_name(int tactic, char* buf, int len);

}  // namespace cuda
}  // namespace yoloc
