// INT8 tensor-core implicit-GEMM convolution (sm_80+): mma.sync m16n8k32 s8.s8.s32.
// Two kernels: for an fp16 input buffer each A tile is quantized to int8 with the
// layer's input scale as it is loaded (round half to even, saturate, exactly
// QuantizeLinear); for an int8 input buffer (int8 storage) the A tile is a cp.async
// copy in a multi-stage pipeline. weights are int8 [cout][K padded to 16], int32
// accumulation, epilogue: * (s_in * s_w[c]) + bias, SiLU, residual (fp16, optionally
// fake-quantized, or int8), fp16 store into the output view or int8 (QuantizeLinear
// with the output channel's scale, ConvArgs::ysc). Below sm_80 (and for the Jetson
// Nano's CUDA 10.2 builds) the kernels compile to empty bodies and are never launched:
// conv_int8() then runs the one-output-per-thread INT8 kernel (conv_int8_at).
#pragma once

#include <cuda_runtime_api.h>

#include "engine/cuda/conv_mma.h"
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
// The kernel for int8 input buffers (ConvArgs::x_i8; tactics kConvInt8InMmaBase + i).
int int8in_config_count();
MmaConfig int8in_config(int i);
bool int8in_mma_supported(const ConvArgs& a, int cfg);
// 3x3 halo tiles on an int8 input buffer (tactics kConvInt8HaloBase + i).
int int8halo_config_count();
HaloConfig int8halo_config(int i);
bool int8halo_supported(const ConvArgs& a, int cfg);
// An INT8 conv (a.qscale != null) with tactic a.kernel (kConvInt8MmaBase + i or
// kConvInt8Direct; anything else: the heuristic tile, or the direct kernel below sm_80).
void conv_int8(const ConvArgs& a, cudaStream_t s);

}  // namespace cuda
}  // namespace yoloc
