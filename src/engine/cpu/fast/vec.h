// Float vectors with GCC vector extensions, shared by the fast kernels: portable
// (AVX-512 and AVX2 functions on x86, NEON elsewhere), and the vectorized exp that
// SiLU, Sigmoid and Softmax use. Two widths: 16 floats (one zmm, or 4 NEON q
// registers) and 8 floats (one ymm). On AVX2 the 16-float type is the wrong one: GCC
// turns its compare-and-select (exp's clamps) into scalar code through the stack, so
// AVX2 functions use the 8-float type (vec_isa picks them).
#pragma once

#include <cstdint>
#include <cstring>

// The 32- and 64-byte vector types cross no ABI boundary (all helpers are inlined).
#pragma GCC diagnostic ignored "-Wpsabi"

namespace yoloc {
namespace fast {

typedef float v16 __attribute__((vector_size(64)));
typedef int32_t vi16 __attribute__((vector_size(64)));
typedef float v8 __attribute__((vector_size(32)));
typedef int32_t vi8 __attribute__((vector_size(32)));

template <typename V>
struct VecInt;
template <>
struct VecInt<v16> {
    typedef vi16 type;
};
template <>
struct VecInt<v8> {
    typedef vi8 type;
};

#if defined(__x86_64__) && defined(__GNUC__)
// Feature names, not arch= names: an arch= clone is picked by CPU model, so an AMD
// CPU with AVX-512 would get the baseline SSE2 clone.
#define YOLOC_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#define YOLOC_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")))
#define YOLOC_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define YOLOC_HAVE_X86_TARGETS 1
#else
#define YOLOC_CLONES
#endif
#define YOLOC_INLINE inline __attribute__((always_inline))

// Which vector functions this CPU runs: AVX-512 (v16 in zmm), AVX2 + FMA (v8 in ymm),
// or the portable build (v16; NEON on aarch64).
enum class VecIsa { Avx512, Avx2, Generic };

inline VecIsa vec_isa() {
#if defined(YOLOC_HAVE_X86_TARGETS)
    static const VecIsa isa = [] {
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
            __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
            return VecIsa::Avx512;
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return VecIsa::Avx2;
        return VecIsa::Generic;
    }();
    return isa;
#else
    return VecIsa::Generic;
#endif
}

template <typename V>
YOLOC_INLINE V splatv(float f) {
    V v = {};
    return v + f;
}

template <typename V>
YOLOC_INLINE V loadv(const float* p) {
    V v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

template <typename V>
YOLOC_INLINE void storev(float* p, V v) {
    std::memcpy(p, &v, sizeof v);
}

// exp with Cephes' polynomial (relative error ~1e-7), vectorized.
template <typename V>
YOLOC_INLINE V expv(V x) {
    typedef typename VecInt<V>::type VI;
    x = x < splatv<V>(88.f) ? x : splatv<V>(88.f);
    x = x > splatv<V>(-87.f) ? x : splatv<V>(-87.f);
    V t = x * 1.44269504088896341f + 12582912.f;  // round to nearest via the 1.5*2^23 trick
    V n = t - 12582912.f;
    V r = x - n * 0.693359375f - n * -2.12194440e-4f;
    V p = splatv<V>(1.9875691500E-4f);
    p = p * r + 1.3981999507E-3f;
    p = p * r + 8.3334519073E-3f;
    p = p * r + 4.1665795894E-2f;
    p = p * r + 1.6666665459E-1f;
    p = p * r + 5.0000001201E-1f;
    p = p * r * r + r + 1.f;
    VI e = (__builtin_convertvector(n, VI) + 127) << 23;
    V s;
    std::memcpy(&s, &e, sizeof s);
    return p * s;
}

template <typename V>
YOLOC_INLINE V siluv(V v) {
    return v / (expv(-v) + 1.f);
}

template <typename V>
YOLOC_INLINE V sigmoidv(V v) {
    return 1.f / (expv(-v) + 1.f);
}

static YOLOC_INLINE v16 splat(float f) { return splatv<v16>(f); }
static YOLOC_INLINE v16 load16(const float* p) { return loadv<v16>(p); }
static YOLOC_INLINE void store16(float* p, v16 v) { storev(p, v); }
static YOLOC_INLINE v16 exp16(v16 x) { return expv(x); }
static YOLOC_INLINE v16 silu16(v16 v) { return siluv(v); }
static YOLOC_INLINE v16 sigmoid16(v16 v) { return sigmoidv(v); }

}  // namespace fast
}  // namespace yoloc
