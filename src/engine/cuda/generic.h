// Launchers of the generic tier's CUDA kernels (bodies in generic_ops.h). Each takes
// arguments the plan has validated (shapes consistent, k <= len), enqueues on `s` and
// allocates nothing: the plan gives every buffer. None of these kernels needs scratch.
// elem_bytes: the size of the elements an op moves without arithmetic (4 for the tier's
// float32 / int32; 2 and 1 work too); int32: the operands are int32, else float32.
#pragma once

#include <cuda_runtime_api.h>

#include "engine/cuda/generic_ops.h"

namespace yoloc {
namespace cuda {

void unary(const UnaryArgs& a, cudaStream_t s);
void binary(const BinaryArgs& a, bool int32, cudaStream_t s);
void where(const WhereArgs& a, int elem_bytes, cudaStream_t s);
// Rows along the last axis (inner == 1): one warp per row; otherwise one thread per row.
void softmax(const SoftmaxArgs& a, cudaStream_t s);
// a.kernel 0: shared-memory tiles (64x64, or 32x32 where that leaves SMs idle).
void matmul(const MatMulArgs& a, cudaStream_t s);
void strided_copy(const StridedCopyArgs& a, int elem_bytes, cudaStream_t s);
void gather(const GatherArgs& a, int elem_bytes, cudaStream_t s);
void gather_elements(const GatherElementsArgs& a, int elem_bytes, cudaStream_t s);
// a.kernel 0: one block per row (radix select of the k-th key, then a sort of the k
// taken in shared memory) where k <= kTopKMaxSorted, else one thread per element
// counting its rank (O(len) each).
constexpr int kTopKMaxSorted = 4096;
void topk(const TopKArgs& a, bool int32, cudaStream_t s);
void reduce(const ReduceArgs& a, bool int32, cudaStream_t s);
void cast(const CastArgs& a, cudaStream_t s);
void fake_quant(const FakeQuantArgs& a, cudaStream_t s);
void conv_transpose(const ConvTransposeArgs& a, cudaStream_t s);

}  // namespace cuda
}  // namespace yoloc
