// 16-float vectors with GCC vector extensions, shared by the fast kernels:
// portable (AVX-512/AVX2 clones on x86 via YOLOC_CLONES, NEON elsewhere), and the
// vectorized exp that SiLU, Sigmoid and Softmax use.
#pragma once

#include <cstdint>
#include <cstring>

// The 64-byte vector type crosses no ABI boundary (all helpers are inlined).
#pragma GCC diagnostic ignored "-Wpsabi"

namespace yoloc {
namespace fast {

typedef float v16 __attribute__((vector_size(64)));
typedef int32_t vi16 __attribute__((vector_size(64)));

#if defined(__x86_64__) && defined(__GNUC__)
// Feature names, not arch= names: an arch= clone is picked by CPU model, so an AMD
// CPU with AVX-512 would get the baseline SSE2 clone.
#define YOLOC_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define YOLOC_CLONES
#endif
#define YOLOC_INLINE inline __attribute__((always_inline))

static YOLOC_INLINE v16 splat(float f) {
    v16 v = {};
    return v + f;
}

static YOLOC_INLINE v16 load16(const float* p) {
    v16 v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

static YOLOC_INLINE void store16(float* p, v16 v) { std::memcpy(p, &v, sizeof v); }

// exp with Cephes' polynomial (relative error ~1e-7), vectorized.
static YOLOC_INLINE v16 exp16(v16 x) {
    x = x < splat(88.f) ? x : splat(88.f);
    x = x > splat(-87.f) ? x : splat(-87.f);
    v16 t = x * 1.44269504088896341f + 12582912.f;  // round to nearest via the 1.5*2^23 trick
    v16 n = t - 12582912.f;
    v16 r = x - n * 0.693359375f - n * -2.12194440e-4f;
    v16 p = splat(1.9875691500E-4f);
    p = p * r + 1.3981999507E-3f;
    p = p * r + 8.3334519073E-3f;
    p = p * r + 4.1665795894E-2f;
    p = p * r + 1.6666665459E-1f;
    p = p * r + 5.0000001201E-1f;
    p = p * r * r + r + 1.f;
    vi16 e = (__builtin_convertvector(n, vi16) + 127) << 23;
    v16 s;
    std::memcpy(&s, &e, sizeof s);
    return p * s;
}

static YOLOC_INLINE v16 silu16(v16 v) { return v / (exp16(-v) + 1.f); }

static YOLOC_INLINE v16 sigmoid16(v16 v) { return 1.f / (exp16(-v) + 1.f); }

}  // namespace fast
}  // namespace yoloc
