// INT8 tensor-core implicit-GEMM convolution (sm_80+): mma.sync m16n8k32 s8.s8.s32.
// Activations stay fp16 in memory (the plan's buffers); each A tile is quantized to
// int8 with the layer's input scale as it is loaded (round half to even, saturate,
// exactly QuantizeLinear), weights are int8 [cout][K padded to 16], int32
// accumulation, epilogue: * (s_in * s_w[c]) + bias, SiLU, residual (optionally
// fake-quantized), fp16 store into the output view. Below sm_80 (and for the Jetson
// Nano's CUDA 10.2 builds) the kernels compile to empty bodies and are never launched:
// conv_int8() then runs the one-output-per-thread INT8 kernel (conv_int8_at).
#pragma once

#include <cuda_runtime_api.h>

#include "engine/cuda/element_ops.h"

namespace yoloc {
namespace cuda {

struct Int8Config {
    int bm, bn, bk, wm, wn, splitk;
};

int int8_config_count();
Int8Config int8_config(int i);
// Whether INT8 tile configuration `cfg` can run this conv here (groups 1, sm_80+).
bool int8_mma_supported(const ConvArgs& a, int cfg);
int int8_default_config(const ConvArgs& a);
// An INT8 conv (a.qscale != null) with tactic a.kernel (kConvInt8MmaBase + i or
// kConvInt8Direct; anything else: the heuristic tile, or the direct kernel below sm_80).
void conv_int8(const ConvArgs& a, cudaStream_t s);

}  // namespace cuda
}  // namespace yoloc
