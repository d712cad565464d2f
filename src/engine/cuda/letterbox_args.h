// Host side of the GPU letterbox: the geometry and OpenCV's coefficient tables for
// one image, packed into two flat arrays (so they travel to the device in two
// copies), and the kernel arguments that point into them. Used by Context::detect
// (device copies of the arrays) and by the tests (host arrays for the CPU emulation,
// device arrays for the kernel test), so all three set the arguments the same way.
// Host-only C++17 (includes yolo/letterbox.h); the kernel side is prepost_ops.h.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/cuda/prepost_ops.h"
#include "yolo/letterbox.h"

namespace yoloc {
namespace cuda {

struct PackedLetterbox {
    LetterboxInfo info;
    ResizeTaps::Mode mode = ResizeTaps::Copy;
    size_t nx = 0, ny = 0;        // destination columns / rows with taps (Linear only)
    std::vector<int> index;       // x.src[nx], y.src[ny]
    std::vector<int16_t> weight;  // x.w0[nx], x.w1[nx], y.w0[ny], y.w1[ny]
};

inline PackedLetterbox pack_letterbox(int src_w, int src_h, int size) {
    PackedLetterbox p;
    p.info = letterbox_geometry(src_w, src_h, size);
    ResizeTaps t = resize_taps(src_w, src_h, p.info.new_w, p.info.new_h);
    p.mode = t.mode;
    if (t.mode != ResizeTaps::Linear) return p;
    p.nx = t.x.src.size();
    p.ny = t.y.src.size();
    p.index = t.x.src;
    p.index.insert(p.index.end(), t.y.src.begin(), t.y.src.end());
    for (const std::vector<int16_t>* w : {&t.x.w0, &t.x.w1, &t.y.w0, &t.y.w1})
        p.weight.insert(p.weight.end(), w->begin(), w->end());
    return p;
}

// Kernel arguments for `src` (BGR, src_w x src_h) -> dst ([3][size][size]), with the
// packed tables at `index` / `weight` (host or device copies of p.index / p.weight).
inline LetterboxArgs letterbox_args(const PackedLetterbox& p, const uint8_t* src, int size, const int* index,
                                    const int16_t* weight, float* dst) {
    LetterboxArgs a;
    a.src = src;
    a.sw = p.info.src_w;
    a.sh = p.info.src_h;
    a.size = size;
    a.new_w = p.info.new_w;
    a.new_h = p.info.new_h;
    a.left = p.info.left;
    a.top = p.info.top;
    a.mode = int(p.mode);
    a.dst = dst;
    if (p.mode == ResizeTaps::Linear) {
        a.tx_src = index;
        a.ty_src = index + p.nx;
        a.tx_w0 = weight;
        a.tx_w1 = weight + p.nx;
        a.ty_w0 = weight + 2 * p.nx;
        a.ty_w1 = weight + 2 * p.nx + p.ny;
    }
    return a;
}

}  // namespace cuda
}  // namespace yoloc
