// The fast executor's activation layout and the simple kernels that work on it.
//
// Activations between convolutions are kept "blocked" as N, C/16, H, W, 16
// (oneDNN's nChw16c): one 16-float vector per pixel and channel block, which is
// what AVX-512 convolutions want. Channels are padded to a multiple of 16 with
// zeros. With channel counts that are multiples of 16, a channel slice is a
// contiguous range per image, so Split and Concat along channels are memcpys.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "engine/cpu/fast/thread_pool.h"

namespace yoloc {
namespace fast {

constexpr int64_t kBlock = 16;

inline int64_t padded_channels(int64_t c) { return (c + kBlock - 1) / kBlock * kBlock; }

// Geometry of one 4-D activation [N, C, H, W].
struct BlockedShape {
    int64_t n = 0, c = 0, h = 0, w = 0;
    int64_t cp() const { return padded_channels(c); }
    int64_t image_floats() const { return cp() * h * w; }   // per batch item
    int64_t floats() const { return n * image_floats(); }
    Shape shape() const { return {n, c, h, w}; }
};

// Plain NCHW <-> blocked; the padding channels of `dst` are written as zeros.
void nchw_to_blocked(const float* src, float* dst, const BlockedShape& s, ThreadPool* pool);
void blocked_to_nchw(const float* src, float* dst, const BlockedShape& s, ThreadPool* pool);

// dst = a + b over whole padded buffers (same geometry).
void add_blocked(const float* a, const float* b, float* dst, int64_t floats, ThreadPool* pool);

// For each of `n` images copies `len` floats from src + i*src_stride to
// dst + i*dst_stride: a channel slice of blocked tensors when the channel
// offsets and counts are multiples of 16 (Split and Concat along channels).
void copy_slices(const float* src, int64_t src_stride, float* dst, int64_t dst_stride, int64_t len, int64_t n);

// Max pooling, 2-D, no dilation; padding counts as -inf.
struct PoolSpec {
    int64_t kh, kw, sh, sw, pt, pl;
};
void maxpool_blocked(const float* in, const BlockedShape& is, float* out, const BlockedShape& os,
                     const PoolSpec& p, ThreadPool* pool);

// Nearest resize by index maps: out(y, x) = in(ymap[y], xmap[x]).
void resize_nearest_blocked(const float* in, const BlockedShape& is, float* out, const BlockedShape& os,
                            const std::vector<int64_t>& ymap, const std::vector<int64_t>& xmap,
                            ThreadPool* pool);

}  // namespace fast
}  // namespace yoloc
