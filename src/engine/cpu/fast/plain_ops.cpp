#include "engine/cpu/fast/plain_ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/cpu/fast/vec.h"

namespace yoloc {
namespace fast {

namespace {

template <typename V>
YOLOC_INLINE void sigmoid_span(const float* x, float* y, int64_t b, int64_t e) {
    constexpr int64_t L = sizeof(V) / sizeof(float);
    int64_t i = b;
    for (; i + L <= e; i += L) storev(y + i, sigmoidv(loadv<V>(x + i)));
    for (; i < e; ++i) y[i] = 1.f / (1.f + std::exp(-x[i]));
}

// Softmax over `axis` values strided by `stride`, for `len` contiguous columns.
template <typename V>
YOLOC_INLINE void softmax_span(const float* x, float* y, int64_t axis, int64_t stride, int64_t len) {
    constexpr int64_t L = sizeof(V) / sizeof(float);
    int64_t j = 0;
    for (; j + L <= len; j += L) {
        V m = loadv<V>(x + j);
        for (int64_t a = 1; a < axis; ++a) {
            V v = loadv<V>(x + a * stride + j);
            m = v > m ? v : m;
        }
        V sum = splatv<V>(0.f);
        for (int64_t a = 0; a < axis; ++a) {
            V e = expv(loadv<V>(x + a * stride + j) - m);
            storev(y + a * stride + j, e);
            sum += e;
        }
        V r = 1.f / sum;
        for (int64_t a = 0; a < axis; ++a) storev(y + a * stride + j, loadv<V>(y + a * stride + j) * r);
    }
    for (; j < len; ++j) {
        float m = x[j];
        for (int64_t a = 1; a < axis; ++a) m = std::max(m, x[a * stride + j]);
        float sum = 0;
        for (int64_t a = 0; a < axis; ++a) sum += (y[a * stride + j] = std::exp(x[a * stride + j] - m));
        for (int64_t a = 0; a < axis; ++a) y[a * stride + j] /= sum;
    }
}

#if defined(YOLOC_HAVE_X86_TARGETS)
YOLOC_TARGET_AVX512 void sigmoid_avx512(const float* x, float* y, int64_t b, int64_t e) { sigmoid_span<v16>(x, y, b, e); }
YOLOC_TARGET_AVX2 void sigmoid_avx2(const float* x, float* y, int64_t b, int64_t e) { sigmoid_span<v8>(x, y, b, e); }
YOLOC_TARGET_AVX512 void softmax_avx512(const float* x, float* y, int64_t axis, int64_t stride, int64_t len) {
    softmax_span<v16>(x, y, axis, stride, len);
}
YOLOC_TARGET_AVX2 void softmax_avx2(const float* x, float* y, int64_t axis, int64_t stride, int64_t len) {
    softmax_span<v8>(x, y, axis, stride, len);
}
#endif

void sigmoid_range(const float* x, float* y, int64_t b, int64_t e) {
#if defined(YOLOC_HAVE_X86_TARGETS)
    switch (vec_isa()) {
        case VecIsa::Avx512: return sigmoid_avx512(x, y, b, e);
        case VecIsa::Avx2: return sigmoid_avx2(x, y, b, e);
        case VecIsa::Generic: break;
    }
#endif
    sigmoid_span<v16>(x, y, b, e);
}

void softmax_cols(const float* x, float* y, int64_t axis, int64_t stride, int64_t len) {
#if defined(YOLOC_HAVE_X86_TARGETS)
    switch (vec_isa()) {
        case VecIsa::Avx512: return softmax_avx512(x, y, axis, stride, len);
        case VecIsa::Avx2: return softmax_avx2(x, y, axis, stride, len);
        case VecIsa::Generic: break;
    }
#endif
    softmax_span<v16>(x, y, axis, stride, len);
}

}  // namespace

void sigmoid(const float* x, float* y, int64_t n, ThreadPool* pool) {
    const int64_t chunk = 4096;
    pool->parallel_for((n + chunk - 1) / chunk, [&](int64_t b, int64_t e) {
        sigmoid_range(x, y, b * chunk, std::min(n, e * chunk));
    });
}

void softmax(const float* x, float* y, int64_t outer, int64_t axis, int64_t inner, ThreadPool* pool) {
    // Split the contiguous inner dim too, so that outer = 1 still uses every thread.
    int64_t piece = (inner + 4 * pool->size() - 1) / (4 * pool->size());
    piece = std::max<int64_t>(16, (piece + 15) / 16 * 16);
    const int64_t parts = (inner + piece - 1) / piece;
    pool->parallel_for(outer * parts, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) {
            int64_t o = i / parts, j0 = (i % parts) * piece;
            softmax_cols(x + o * axis * inner + j0, y + o * axis * inner + j0, axis, inner,
                         std::min(piece, inner - j0));
        }
    });
}

void concat_rows(const std::vector<const float*>& ins, const std::vector<int64_t>& lens, float* out, int64_t outer) {
    int64_t total = 0;
    for (int64_t l : lens) total += l;
    for (int64_t o = 0; o < outer; ++o) {
        float* dst = out + o * total;
        for (size_t i = 0; i < ins.size(); ++i) {
            std::memcpy(dst, ins[i] + o * lens[i], size_t(lens[i]) * sizeof(float));
            dst += lens[i];
        }
    }
}

void split_rows(const float* in, int64_t outer, const std::vector<float*>& outs, const std::vector<int64_t>& lens) {
    int64_t total = 0;
    for (int64_t l : lens) total += l;
    for (int64_t o = 0; o < outer; ++o) {
        const float* src = in + o * total;
        for (size_t i = 0; i < outs.size(); ++i) {
            std::memcpy(outs[i] + o * lens[i], src, size_t(lens[i]) * sizeof(float));
            src += lens[i];
        }
    }
}

}  // namespace fast
}  // namespace yoloc
