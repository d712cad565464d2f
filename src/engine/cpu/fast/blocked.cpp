#include "engine/cpu/fast/blocked.h"

#include <algorithm>
#include <cstring>
#include <limits>

namespace yoloc {
namespace fast {

void nchw_to_blocked(const float* src, float* dst, const BlockedShape& s, ThreadPool* pool) {
    const int64_t hw = s.h * s.w, nb = s.cp() / kBlock;
    pool->parallel_for(s.n * nb, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) {
            int64_t n = i / nb, cb = i % nb;
            float* d = dst + i * hw * kBlock;
            for (int64_t k = 0; k < kBlock; ++k) {
                int64_t c = cb * kBlock + k;
                if (c >= s.c) {
                    for (int64_t p = 0; p < hw; ++p) d[p * kBlock + k] = 0.f;
                    continue;
                }
                const float* sp = src + (n * s.c + c) * hw;
                for (int64_t p = 0; p < hw; ++p) d[p * kBlock + k] = sp[p];
            }
        }
    });
}

void blocked_to_nchw(const float* src, float* dst, const BlockedShape& s, ThreadPool* pool) {
    const int64_t hw = s.h * s.w, nb = s.cp() / kBlock;
    const int64_t tile = 64;  // pixels per tile: the 16 x 64 transpose stays in L1
    const int64_t tiles = (hw + tile - 1) / tile;
    pool->parallel_for(s.n * nb * tiles, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) {
            int64_t t = i % tiles, nc = i / tiles, n = nc / nb, cb = nc % nb;
            int64_t p0 = t * tile, p1 = std::min(hw, p0 + tile);
            const float* sp = src + nc * hw * kBlock;
            int64_t kmax = std::min(kBlock, s.c - cb * kBlock);
            for (int64_t k = 0; k < kmax; ++k) {
                float* d = dst + (n * s.c + cb * kBlock + k) * hw;
                for (int64_t p = p0; p < p1; ++p) d[p] = sp[p * kBlock + k];
            }
        }
    });
}

void add_blocked(const float* a, const float* b, float* dst, int64_t floats, ThreadPool* pool) {
    const int64_t chunk = 4096;
    pool->parallel_for((floats + chunk - 1) / chunk, [&](int64_t cb, int64_t ce) {
        int64_t e = std::min(floats, ce * chunk);
        for (int64_t i = cb * chunk; i < e; ++i) dst[i] = a[i] + b[i];
    });
}

void copy_slices(const float* src, int64_t src_stride, float* dst, int64_t dst_stride, int64_t len, int64_t n) {
    for (int64_t i = 0; i < n; ++i)
        std::memcpy(dst + i * dst_stride, src + i * src_stride, size_t(len) * sizeof(float));
}

void maxpool_blocked(const float* in, const BlockedShape& is, float* out, const BlockedShape& os,
                     const PoolSpec& p, ThreadPool* pool) {
    const int64_t nb = os.cp() / kBlock;
    pool->parallel_for(os.n * nb * os.h, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) {
            int64_t oy = i % os.h, nc = i / os.h;
            const float* ip = in + nc * is.h * is.w * kBlock;
            float* op = out + (nc * os.h + oy) * os.w * kBlock;
            int64_t y0 = std::max<int64_t>(0, oy * p.sh - p.pt), y1 = std::min(is.h, oy * p.sh - p.pt + p.kh);
            for (int64_t ox = 0; ox < os.w; ++ox) {
                int64_t x0 = std::max<int64_t>(0, ox * p.sw - p.pl), x1 = std::min(is.w, ox * p.sw - p.pl + p.kw);
                float acc[kBlock];
                for (int64_t k = 0; k < kBlock; ++k) acc[k] = -std::numeric_limits<float>::infinity();
                for (int64_t y = y0; y < y1; ++y)
                    for (int64_t x = x0; x < x1; ++x) {
                        const float* v = ip + (y * is.w + x) * kBlock;
                        for (int64_t k = 0; k < kBlock; ++k) acc[k] = std::max(acc[k], v[k]);
                    }
                for (int64_t k = 0; k < kBlock; ++k) op[ox * kBlock + k] = acc[k];
            }
        }
    });
}

void resize_nearest_blocked(const float* in, const BlockedShape& is, float* out, const BlockedShape& os,
                            const std::vector<int64_t>& ymap, const std::vector<int64_t>& xmap,
                            ThreadPool* pool) {
    const int64_t nb = os.cp() / kBlock;
    pool->parallel_for(os.n * nb * os.h, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) {
            int64_t oy = i % os.h, nc = i / os.h;
            const float* row = in + (nc * is.h + ymap[size_t(oy)]) * is.w * kBlock;
            float* op = out + (nc * os.h + oy) * os.w * kBlock;
            for (int64_t ox = 0; ox < os.w; ++ox)
                std::memcpy(op + ox * kBlock, row + xmap[size_t(ox)] * kBlock, sizeof(float) * kBlock);
        }
    });
}

}  // namespace fast
}  // namespace yoloc
