// Element-wise unary float ops, one line each. The list is expanded by the reference
// kernels (ir/ops), the fast CPU executor and the GPU element kernels
// (engine/cuda/generic_ops.h), so adding an op here gives it to every backend at once:
// the expression is the definition, evaluated in float32 everywhere.
// C++14 and free of host-only calls, so that nvcc compiles it for the device too.
#pragma once

#include <math.h>

#include <cstdint>

#ifdef __CUDACC__
#define YOLOC_UNARY_HD __host__ __device__ __forceinline__
#else
#define YOLOC_UNARY_HD inline
#endif

namespace yoloc {

// X(OnnxName, attribute a, default a, attribute b, default b, expression of x, a, b).
// Attributes an op does not have are written "" with default 0.
// The enum below numbers the ops in this order and engine files store that number:
// append new ops at the end, never reorder.
#define YOLOC_UNARY_OPS(X)                                                                   \
    X(Sigmoid, "", 0.f, "", 0.f, 1.0f / (1.0f + expf(-x)))                                   \
    X(Relu, "", 0.f, "", 0.f, x > 0.0f ? x : 0.0f)                                           \
    X(Exp, "", 0.f, "", 0.f, expf(x))                                                        \
    X(Log, "", 0.f, "", 0.f, logf(x))                                                        \
    X(Sqrt, "", 0.f, "", 0.f, sqrtf(x))                                                      \
    X(Neg, "", 0.f, "", 0.f, -x)                                                             \
    X(Floor, "", 0.f, "", 0.f, floorf(x))                                                    \
    X(Ceil, "", 0.f, "", 0.f, ceilf(x))                                                      \
    X(Tanh, "", 0.f, "", 0.f, tanhf(x))                                                      \
    X(HardSwish, "", 0.f, "", 0.f, x * fminf(fmaxf(x / 6.0f + 0.5f, 0.0f), 1.0f))            \
    X(Abs, "", 0.f, "", 0.f, fabsf(x))                                                       \
    X(Reciprocal, "", 0.f, "", 0.f, 1.0f / x)                                                \
    X(LeakyRelu, "alpha", 0.01f, "", 0.f, x >= 0.0f ? x : a * x)                             \
    X(HardSigmoid, "alpha", 0.2f, "beta", 0.5f, fminf(fmaxf(a * x + b, 0.0f), 1.0f))         \
    X(Softplus, "", 0.f, "", 0.f, x > 20.0f ? x : log1pf(expf(x)))                           \
    X(Erf, "", 0.f, "", 0.f, erff(x))                                                        \
    X(Round, "", 0.f, "", 0.f, rintf(x))                                                     \
    X(Sin, "", 0.f, "", 0.f, sinf(x))                                                        \
    X(Cos, "", 0.f, "", 0.f, cosf(x))                                                        \
    X(Elu, "alpha", 1.0f, "", 0.f, x >= 0.0f ? x : a * (expf(x) - 1.0f))                     \
    X(Mish, "", 0.f, "", 0.f, x * tanhf(x > 20.0f ? x : log1pf(expf(x))))

enum class UnaryOp : int32_t {
#define YOLOC_UNARY_ENUM(name, an, ad, bn, bd, expr) name,
    YOLOC_UNARY_OPS(YOLOC_UNARY_ENUM)
#undef YOLOC_UNARY_ENUM
    Count
};

// The op applied to one value; a and b are the op's attributes (unary_defaults when the
// node does not set them).
YOLOC_UNARY_HD float apply_unary(UnaryOp op, float x, float a, float b) {
    (void)a;
    (void)b;
    switch (op) {
#define YOLOC_UNARY_CASE(name, an, ad, bn, bd, expr) \
    case UnaryOp::name:                             \
        return (expr);
        YOLOC_UNARY_OPS(YOLOC_UNARY_CASE)
#undef YOLOC_UNARY_CASE
        case UnaryOp::Count:
            break;
    }
    return x;
}

}  // namespace yoloc
