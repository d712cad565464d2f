// Fast kernels on plain (row-major) float tensors for the ops of the Detect tail
// that the reference kernels run too slowly for a 1-2 ms budget: Sigmoid,
// Softmax, and Concat/Split along any axis (as memcpys).
#pragma once

#include <cstdint>
#include <vector>

#include "engine/cpu/fast/thread_pool.h"

namespace yoloc {
namespace fast {

void sigmoid(const float* x, float* y, int64_t n, ThreadPool* pool);

// Softmax over the middle dim of [outer, axis, inner].
void softmax(const float* x, float* y, int64_t outer, int64_t axis, int64_t inner, ThreadPool* pool);

// Concat: each input i is [outer, len_i] (len_i = its axis dim times inner);
// the output is [outer, sum len_i]. Split is the inverse.
void concat_rows(const std::vector<const float*>& ins, const std::vector<int64_t>& lens, float* out, int64_t outer);
void split_rows(const float* in, int64_t outer, const std::vector<float*>& outs, const std::vector<int64_t>& lens);

}  // namespace fast
}  // namespace yoloc
