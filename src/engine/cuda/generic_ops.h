// The GPU engine's generic tier: every op the reference executor runs, on row-major
// (ONNX layout) tensors, one work item at a time, as plain functions that nvcc compiles
// for the device and any C++ compiler for the host (the style of element_ops.h).
// generic.cu runs them in grid-stride loops, beside faster kernels for MatMul, Softmax
// and TopK; tests/test_generic_ops.cpp runs them on the host against the reference
// kernels, so indexing and arithmetic are checked on machines without a GPU.
//
// Tensors are float32 or int32: ONNX int64 and bool tensors are narrowed to int32 on
// the device (indices, shapes and class ids fit), whatever the engine's activation
// precision; the plan converts NHWC activations to this layout and back at the tier's
// boundaries. Shapes have rank <= kGenericRank, padded with leading 1s; strides count
// elements and a stride of 0 broadcasts, so one struct serves every rank. Dims and
// strides are int (offsets are computed in 64 bits): the plan keeps each tensor under
// 2^31 elements (YOLO's largest here, [32, 84, 8400], has 2.3e7).
// C++14, no CUDA headers needed.
#pragma once

#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "engine/cuda/element_ops.h"
#include "ir/unary_ops.h"

namespace yoloc {
namespace cuda {

constexpr int kGenericRank = 6;

// ---- shapes -------------------------------------------------------------------------

// The coordinates of element i of a row-major tensor of shape `dims`.
YOLOC_HD void unravel(const int* dims, long long i, int* idx) {
    for (int k = kGenericRank - 1; k >= 0; --k) {
        const long long q = i / dims[k];
        idx[k] = int(i - q * dims[k]);
        i = q;
    }
}

YOLOC_HD long long strided_offset(const int* idx, const int* strides) {
    long long off = 0;
    for (int k = 0; k < kGenericRank; ++k) off += (long long)idx[k] * strides[k];
    return off;
}

YOLOC_HD long long dims_numel(const int* dims, int rank = kGenericRank) {
    long long n = 1;
    for (int k = 0; k < rank; ++k) n *= dims[k];
    return n;
}

// Setup for the plan and the tests: `shape` (rank <= kGenericRank) as padded dims.
YOLOC_HD void pad_dims(const int64_t* shape, int rank, int* dims) {
    const int lead = kGenericRank - rank;
    for (int k = 0; k < kGenericRank; ++k) dims[k] = k < lead ? 1 : int(shape[k - lead]);
}

// The element strides of a row-major tensor of `shape`, padded, read through numpy
// broadcasting: 0 on its dims of size 1 (and on the padding), so that it can be indexed
// with the coordinates of any output it broadcasts to.
YOLOC_HD void broadcast_strides(const int64_t* shape, int rank, int* strides) {
    const int lead = kGenericRank - rank;
    long long s = 1;
    for (int k = kGenericRank - 1; k >= 0; --k) {
        if (k < lead) {
            strides[k] = 0;
            continue;
        }
        const int64_t d = shape[k - lead];
        strides[k] = d == 1 ? 0 : int(s);
        s *= d;
    }
}

// ---- unary (ir/unary_ops.h) -------------------------------------------------------------

struct UnaryArgs {
    const float* x = nullptr;
    float* y = nullptr;
    long long n = 0;
    int op = 0;                    // a UnaryOp
    float alpha = 0.f, beta = 0.f;  // the op's attributes (the list's defaults where the node has none)
};

YOLOC_HD long long unary_items(const UnaryArgs& a) { return a.n; }

template <typename T>
YOLOC_HD void unary_at(const UnaryArgs& a, long long i) {
    a.y[i] = apply_unary(UnaryOp(a.op), a.x[i], a.alpha, a.beta);
}

// ---- binary with numpy broadcasting, and Where ---------------------------------------

// Engine files store these numbers: append new ops at the end, never reorder.
enum class BinaryOp : int32_t {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Min,
    Max,
    Mod,   // fmod = 0: an integer remainder takes the divisor's sign (Python's %)
    FMod,  // fmod = 1: C's fmod, the dividend's sign
    Equal,
    Less,
    Greater,
    LessOrEqual,
    GreaterOrEqual,
    And,
    Or,
    Xor,
    Count
};

// Ops whose output is int32 0/1 (ONNX bool) whatever the operands' type.
YOLOC_HD bool binary_is_predicate(int op) { return op >= int(BinaryOp::Equal) && op < int(BinaryOp::Count); }

struct BinaryArgs {
    const void* a = nullptr;  // float32 or int32, both the same (ONNX)
    const void* b = nullptr;
    void* y = nullptr;        // contiguous, the operands' type (int32 for predicates)
    int op = 0;               // a BinaryOp
    int dims[kGenericRank] = {1, 1, 1, 1, 1, 1};  // the output's shape
    int as[kGenericRank] = {}, bs[kGenericRank] = {};  // the operands' strides (0: broadcast)
};

YOLOC_HD long long binary_items(const BinaryArgs& a) { return dims_numel(a.dims); }

// The reference's std::min / std::max: the first operand unless the second is strictly
// smaller (larger), NaN included.
YOLOC_HD float binary_value(BinaryOp op, float x, float y) {
    switch (op) {
        case BinaryOp::Add: return x + y;
        case BinaryOp::Sub: return x - y;
        case BinaryOp::Mul: return x * y;
        case BinaryOp::Div: return x / y;
        case BinaryOp::Pow: return powf(x, y);
        case BinaryOp::Min: return y < x ? y : x;
        case BinaryOp::Max: return x < y ? y : x;
        case BinaryOp::Mod:  // ONNX requires fmod = 1 for floats
        case BinaryOp::FMod: return fmodf(x, y);
        case BinaryOp::Equal: return x == y ? 1.f : 0.f;
        case BinaryOp::Less: return x < y ? 1.f : 0.f;
        case BinaryOp::Greater: return x > y ? 1.f : 0.f;
        case BinaryOp::LessOrEqual: return x <= y ? 1.f : 0.f;
        case BinaryOp::GreaterOrEqual: return x >= y ? 1.f : 0.f;
        case BinaryOp::And: return (x != 0.f && y != 0.f) ? 1.f : 0.f;
        case BinaryOp::Or: return (x != 0.f || y != 0.f) ? 1.f : 0.f;
        case BinaryOp::Xor: return ((x != 0.f) != (y != 0.f)) ? 1.f : 0.f;
        case BinaryOp::Count: break;
    }
    return 0.f;
}

// Integer power as the reference computes it (pow in double, truncated), exact where the
// result fits; a negative exponent leaves only 1 and -1 non-zero.
YOLOC_HD int int_pow(int x, int e) {
    if (e < 0) return x == 1 ? 1 : (x == -1 ? ((e & 1) ? -1 : 1) : 0);
    unsigned r = 1u, b = unsigned(x);
    while (e) {
        if (e & 1) r *= b;
        b *= b;
        e >>= 1;
    }
    return int(r);
}

// Integers wrap instead of trapping: unsigned arithmetic, and division by 0 (an error in
// ONNX Runtime) gives 0 rather than a fault on the host or garbage on the device.
YOLOC_HD int binary_value(BinaryOp op, int x, int y) {
    const unsigned ux = unsigned(x), uy = unsigned(y);
    switch (op) {
        case BinaryOp::Add: return int(ux + uy);
        case BinaryOp::Sub: return int(ux - uy);
        case BinaryOp::Mul: return int(ux * uy);
        case BinaryOp::Div:  // truncates toward zero (ONNX); INT_MIN / -1 wraps
            return y == 0 ? 0 : (y == -1 ? int(0u - ux) : x / y);
        case BinaryOp::Pow: return int_pow(x, y);
        case BinaryOp::Min: return y < x ? y : x;
        case BinaryOp::Max: return x < y ? y : x;
        case BinaryOp::Mod: {
            if (y == 0 || y == -1) return 0;
            const int r = x % y;
            return (r != 0 && ((r < 0) != (y < 0))) ? r + y : r;
        }
        case BinaryOp::FMod: return (y == 0 || y == -1) ? 0 : x % y;
        case BinaryOp::Equal: return x == y;
        case BinaryOp::Less: return x < y;
        case BinaryOp::Greater: return x > y;
        case BinaryOp::LessOrEqual: return x <= y;
        case BinaryOp::GreaterOrEqual: return x >= y;
        case BinaryOp::And: return x != 0 && y != 0;
        case BinaryOp::Or: return x != 0 || y != 0;
        case BinaryOp::Xor: return (x != 0) != (y != 0);
        case BinaryOp::Count: break;
    }
    return 0;
}

template <typename T>
YOLOC_HD void binary_at(const BinaryArgs& a, long long i) {
    int idx[kGenericRank];
    unravel(a.dims, i, idx);
    const T x = static_cast<const T*>(a.a)[strided_offset(idx, a.as)];
    const T y = static_cast<const T*>(a.b)[strided_offset(idx, a.bs)];
    const T v = binary_value(BinaryOp(a.op), x, y);
    if (binary_is_predicate(a.op))
        static_cast<int*>(a.y)[i] = v != T(0) ? 1 : 0;
    else
        static_cast<T*>(a.y)[i] = v;
}

struct WhereArgs {
    const int* c = nullptr;  // the condition (ONNX bool as int32)
    const void* a = nullptr;
    const void* b = nullptr;
    void* y = nullptr;       // contiguous
    int dims[kGenericRank] = {1, 1, 1, 1, 1, 1};
    int cs[kGenericRank] = {}, as[kGenericRank] = {}, bs[kGenericRank] = {};
};

YOLOC_HD long long where_items(const WhereArgs& a) { return dims_numel(a.dims); }

// T: any type of the element's size (the value is moved, not converted).
template <typename T>
YOLOC_HD void where_at(const WhereArgs& a, long long i) {
    int idx[kGenericRank];
    unravel(a.dims, i, idx);
    static_cast<T*>(a.y)[i] = a.c[strided_offset(idx, a.cs)] ? static_cast<const T*>(a.a)[strided_offset(idx, a.as)]
                                                               : static_cast<const T*>(a.b)[strided_offset(idx, a.bs)];
}

// ---- Softmax / LogSoftmax ------------------------------------------------------------------

// x viewed as [outer, len, inner], normalized along len (opset 13+: len is the axis;
// before 13 the input is coerced to 2-D at the axis: inner = 1, len = the rest).
struct SoftmaxArgs {
    const float* x = nullptr;
    float* y = nullptr;
    int outer = 0, len = 0, inner = 1;
    int log = 0;  // LogSoftmax
};

YOLOC_HD long long softmax_items(const SoftmaxArgs& a) { return (long long)a.outer * a.inner; }

// One row: the maximum is subtracted before exp, as the reference does.
template <typename T>
YOLOC_HD void softmax_at(const SoftmaxArgs& a, long long i) {
    const long long o = i / a.inner, r = i % a.inner;
    const float* x = a.x + o * a.len * a.inner + r;
    float* y = a.y + o * a.len * a.inner + r;
    float m = -INFINITY;
    for (int j = 0; j < a.len; ++j) m = fmaxf(m, x[(long long)j * a.inner]);
    float sum = 0.f;
    for (int j = 0; j < a.len; ++j) sum += expf(x[(long long)j * a.inner] - m);
    if (a.log) {
        const float ls = logf(sum);
        for (int j = 0; j < a.len; ++j) y[(long long)j * a.inner] = x[(long long)j * a.inner] - m - ls;
    } else {
        const float inv = 1.0f / sum;
        for (int j = 0; j < a.len; ++j) y[(long long)j * a.inner] = expf(x[(long long)j * a.inner] - m) * inv;
    }
}

// ---- MatMul ---------------------------------------------------------------------------------

// y[..., m, n] = sum_k a[..., m, k] * b[..., k, n], float32 accumulation. The batch dims
// broadcast (numpy): `batch` is the output's, `as`/`bs` the operands' matrix strides per
// batch dim (0: broadcast). A 1-D operand is a matrix of one row (a) or one column (b);
// the output's layout is the same either way.
constexpr int kMatMulBatchRank = kGenericRank - 2;

struct MatMulArgs {
    const float* a = nullptr;  // each matrix [m][k], contiguous
    const float* b = nullptr;  // each matrix [k][n], contiguous
    float* y = nullptr;        // [batch..., m, n], contiguous
    int m = 0, n = 0, k = 0;
    int batch[kMatMulBatchRank] = {1, 1, 1, 1};
    int as[kMatMulBatchRank] = {}, bs[kMatMulBatchRank] = {};
    int kernel = 0;  // 0: the launcher's choice, 1: one output per thread, 2 / 3: 64x64 / 32x32 tiles
};

YOLOC_HD long long matmul_items(const MatMulArgs& a) {
    return dims_numel(a.batch, kMatMulBatchRank) * a.m * a.n;
}

// Where batch matrix `bi` of a and b starts.
YOLOC_HD void matmul_batch(const MatMulArgs& a, long long bi, long long* ao, long long* bo) {
    long long oa = 0, ob = 0;
    for (int d = kMatMulBatchRank - 1; d >= 0; --d) {
        const long long q = bi / a.batch[d];
        const long long c = bi - q * a.batch[d];
        oa += c * a.as[d];
        ob += c * a.bs[d];
        bi = q;
    }
    *ao = oa;
    *bo = ob;
}

template <typename T>
YOLOC_HD void matmul_at(const MatMulArgs& a, long long i) {
    const int col = int(i % a.n);
    const long long t = i / a.n;
    const int row = int(t % a.m);
    long long ao, bo;
    matmul_batch(a, t / a.m, &ao, &bo);
    const float* pa = a.a + ao + (long long)row * a.k;
    const float* pb = a.b + bo + col;
    float acc = 0.f;
    for (int kk = 0; kk < a.k; ++kk) acc += pa[kk] * pb[(long long)kk * a.n];
    a.y[i] = acc;
}

// ---- strided copy: Transpose, Slice, Expand, Split, Concat ----------------------------

// y[y_off + sum_k idx_k * ys_k] = x[x_off + sum_k idx_k * xs_k] over idx in `dims`.
// Transpose: xs permuted; Slice: xs scaled by the steps (negative too), x_off the starts;
// Expand: xs 0 on broadcast dims; Split / Concat: y (or x) a slice of the whole.
struct StridedCopyArgs {
    const void* x = nullptr;
    void* y = nullptr;
    int dims[kGenericRank] = {1, 1, 1, 1, 1, 1};
    int xs[kGenericRank] = {}, ys[kGenericRank] = {};
    long long x_off = 0, y_off = 0;
};

YOLOC_HD long long strided_copy_items(const StridedCopyArgs& a) { return dims_numel(a.dims); }

template <typename T>
YOLOC_HD void strided_copy_at(const StridedCopyArgs& a, long long i) {
    int idx[kGenericRank];
    unravel(a.dims, i, idx);
    static_cast<T*>(a.y)[a.y_off + strided_offset(idx, a.ys)] =
        static_cast<const T*>(a.x)[a.x_off + strided_offset(idx, a.xs)];
}

// ---- Gather, GatherElements ---------------------------------------------------------------

// An index outside [-len, len) reads nothing and yields 0 (ONNX Runtime fails the run;
// a kernel cannot, and must not read outside its buffer).
YOLOC_HD int wrap_index(int id, int len) { return id < 0 ? id + len : id; }

// x viewed as [outer, len, inner]; y is [outer, count, inner] with y[o, j, r] =
// x[o, idx[j], r] (count = the number of indices, whatever their shape).
struct GatherArgs {
    const void* x = nullptr;
    const int* idx = nullptr;
    void* y = nullptr;
    int outer = 0, len = 0, inner = 1, count = 0;
};

YOLOC_HD long long gather_items(const GatherArgs& a) { return (long long)a.outer * a.count * a.inner; }

template <typename T>
YOLOC_HD void gather_at(const GatherArgs& a, long long i) {
    const long long r = i % a.inner, t = i / a.inner;
    const long long j = t % a.count, o = t / a.count;
    const int id = wrap_index(a.idx[j], a.len);
    static_cast<T*>(a.y)[i] =
        (id >= 0 && id < a.len) ? static_cast<const T*>(a.x)[(o * a.len + id) * a.inner + r] : T(0);
}

// y[idx] = x[idx with idx[axis] = index[idx]] over idx in `dims` (the index tensor's
// shape, which y has too); xs: x's strides, `axis` counted in the padded dims.
struct GatherElementsArgs {
    const void* x = nullptr;
    const int* idx = nullptr;  // contiguous, shape `dims`
    void* y = nullptr;
    int dims[kGenericRank] = {1, 1, 1, 1, 1, 1};
    int xs[kGenericRank] = {};
    int axis = 0, len = 0;  // len: x's size along axis
};

YOLOC_HD long long gather_elements_items(const GatherElementsArgs& a) { return dims_numel(a.dims); }

template <typename T>
YOLOC_HD void gather_elements_at(const GatherElementsArgs& a, long long i) {
    int idx[kGenericRank];
    unravel(a.dims, i, idx);
    const int id = wrap_index(a.idx[i], a.len);
    idx[a.axis] = id;
    static_cast<T*>(a.y)[i] = (id >= 0 && id < a.len) ? static_cast<const T*>(a.x)[strided_offset(idx, a.xs)] : T(0);
}

// ---- TopK -------------------------------------------------------------------------------------

// x viewed as [outer, len, inner], the k first along len in order: values and int32
// indices [outer, k, inner]. The order is ONNX Runtime's, checked against it: value
// first (largest or smallest), then the lower index among equal values; NaN counts as
// larger than +inf (first for largest, last for smallest); -0 equals +0.
struct TopKArgs {
    const void* x = nullptr;  // float32 or int32
    void* values = nullptr;
    int* indices = nullptr;
    int outer = 0, len = 0, inner = 1, k = 0;
    int largest = 1;
    int kernel = 0;  // 0: the launcher's choice, 1: rank counting, 2: radix select per block
};

YOLOC_HD unsigned float_bits(float v) {
#ifdef __CUDA_ARCH__
    return __float_as_uint(v);
#else
    unsigned u;
    std::memcpy(&u, &v, sizeof u);
    return u;
#endif
}

// An unsigned key whose order is the output order (larger first) of the values.
YOLOC_HD unsigned topk_key(float v, int largest) {
    unsigned u = float_bits(v);
    if (u == 0x80000000u) u = 0;  // -0 -> +0
    const unsigned k = v != v ? 0xFFFFFFFFu : ((u & 0x80000000u) ? ~u : (u | 0x80000000u));
    return largest ? k : ~k;
}
YOLOC_HD unsigned topk_key(int v, int largest) {
    const unsigned k = unsigned(v) ^ 0x80000000u;
    return largest ? k : ~k;
}

// The total order of the elements of a row: key first, then the lower index. Never 0
// (index < 2^32 - 1), so 0 can pad a sort.
YOLOC_HD unsigned long long topk_order(unsigned key, int index) {
    return ((unsigned long long)key << 32) | (0xFFFFFFFFu - unsigned(index));
}

// One step of a radix select over 8-bit digits: hist[d] counts the candidates whose
// current digit is d; returns the digit of the candidate ranked *need (1-based, largest
// first) and leaves in *need its rank among the candidates with that digit.
YOLOC_HD int radix_pick(const int* hist, int* need) {
    for (int d = 255; d > 0; --d) {
        if (hist[d] >= *need) return d;
        *need -= hist[d];
    }
    return 0;
}

YOLOC_HD long long topk_row_items(const TopKArgs& a) { return (long long)a.outer * a.inner; }
YOLOC_HD long long topk_rank_items(const TopKArgs& a) { return (long long)a.outer * a.len * a.inner; }

// One row, with the GPU kernel's algorithm run by one thread: four radix passes find the
// k-th key, the keys above it and the first `need` keys equal to it (in index order) are
// taken, then sorted (a stable insertion sort: O(k^2), the host's reference twin).
template <typename T>
YOLOC_HD void topk_row_at(const TopKArgs& a, long long row) {
    const long long o = row / a.inner, r = row % a.inner;
    const T* x = static_cast<const T*>(a.x) + o * a.len * a.inner + r;
    T* vals = static_cast<T*>(a.values) + o * a.k * a.inner + r;
    int* ids = a.indices + o * a.k * a.inner + r;
    const int k = a.k < a.len ? a.k : a.len;  // ONNX requires k <= len; this keeps a bad k in bounds
    if (k <= 0) return;
    unsigned prefix = 0, mask = 0;
    int need = k;
    for (int shift = 24; shift >= 0; shift -= 8) {
        int hist[256];
        for (int d = 0; d < 256; ++d) hist[d] = 0;
        for (int j = 0; j < a.len; ++j) {
            const unsigned key = topk_key(x[(long long)j * a.inner], a.largest);
            if ((key & mask) == prefix) ++hist[(key >> shift) & 255u];
        }
        prefix |= unsigned(radix_pick(hist, &need)) << shift;
        mask |= 255u << shift;
    }
    int above = 0, ties = 0;
    for (int j = 0; j < a.len; ++j) {
        const unsigned key = topk_key(x[(long long)j * a.inner], a.largest);
        int slot = -1;
        if (key > prefix) slot = above++;
        else if (key == prefix && ties < need) slot = k - need + ties++;
        if (slot < 0) continue;
        vals[(long long)slot * a.inner] = x[(long long)j * a.inner];
        ids[(long long)slot * a.inner] = j;
    }
    // Taken in index order: a stable sort by key gives the lower index first among ties.
    for (int p = 1; p < above; ++p) {
        const T v = vals[(long long)p * a.inner];
        const int id = ids[(long long)p * a.inner];
        const unsigned key = topk_key(v, a.largest);
        int q = p;
        for (; q > 0 && topk_key(vals[(long long)(q - 1) * a.inner], a.largest) < key; --q) {
            vals[(long long)q * a.inner] = vals[(long long)(q - 1) * a.inner];
            ids[(long long)q * a.inner] = ids[(long long)(q - 1) * a.inner];
        }
        vals[(long long)q * a.inner] = v;
        ids[(long long)q * a.inner] = id;
    }
}

// One element: its rank in the row is the number of elements ahead of it in the order;
// written when below k. O(len) per element: for rows the block kernel cannot sort.
template <typename T>
YOLOC_HD void topk_rank_at(const TopKArgs& a, long long i) {
    const long long r = i % a.inner, t = i / a.inner;
    const int j = int(t % a.len);
    const long long o = t / a.len;
    const T* x = static_cast<const T*>(a.x) + o * a.len * a.inner + r;
    const T v = x[(long long)j * a.inner];
    const unsigned long long mine = topk_order(topk_key(v, a.largest), j);
    int rank = 0;
    for (int q = 0; q < a.len && rank < a.k; ++q)
        rank += topk_order(topk_key(x[(long long)q * a.inner], a.largest), q) > mine;
    if (rank >= a.k) return;
    const long long out = (o * a.k + rank) * a.inner + r;
    static_cast<T*>(a.values)[out] = v;
    a.indices[out] = j;
}

// ---- ReduceMax / Min / Sum / Mean -------------------------------------------------------

// Engine files store these numbers: append new ops at the end, never reorder.
enum class ReduceOp : int32_t { Max, Min, Sum, Mean, Count };

// Each output element (contiguous, shape `dims`: the kept dims, with or without keepdims's
// 1s) reduces the input over the reduced dims `rdims`; xs and rs are the input's strides
// for the two. An empty reduction gives Max -inf (INT_MIN), Min +inf (INT_MAX), Sum 0,
// Mean NaN (0 for int32), as ONNX and numpy do.
struct ReduceArgs {
    const void* x = nullptr;
    void* y = nullptr;
    int op = 0;  // a ReduceOp
    int dims[kGenericRank] = {1, 1, 1, 1, 1, 1};
    int xs[kGenericRank] = {};
    int rdims[kGenericRank] = {1, 1, 1, 1, 1, 1};
    int rs[kGenericRank] = {};
};

YOLOC_HD long long reduce_items(const ReduceArgs& a) { return dims_numel(a.dims); }

// float32 accumulates in double, in the input's order, as the reference does: the same
// sums to the last bit (in float, a ReduceSum over 84 values was off by 3e-6).
template <typename T>
struct ReduceAccumulator {
    typedef T type;
};
template <>
struct ReduceAccumulator<float> {
    typedef double type;
};

YOLOC_HD double reduce_init(ReduceOp op, double) {
    return op == ReduceOp::Max ? -INFINITY : (op == ReduceOp::Min ? INFINITY : 0.0);
}
YOLOC_HD int reduce_init(ReduceOp op, int) {
    return op == ReduceOp::Max ? INT_MIN : (op == ReduceOp::Min ? INT_MAX : 0);
}
// Max and Min propagate NaN, as the reference does.
YOLOC_HD double reduce_step(ReduceOp op, double acc, double v) {
    return op == ReduceOp::Max ? ((v > acc || v != v) ? v : acc)
                               : (op == ReduceOp::Min ? ((v < acc || v != v) ? v : acc) : acc + v);
}
YOLOC_HD int reduce_step(ReduceOp op, int acc, int v) {
    return op == ReduceOp::Max ? (v > acc ? v : acc)
                               : (op == ReduceOp::Min ? (v < acc ? v : acc) : int(unsigned(acc) + unsigned(v)));
}
YOLOC_HD double reduce_mean(double sum, long long n) { return sum / double(n); }
YOLOC_HD int reduce_mean(int sum, long long n) { return n > 0 ? int(sum / n) : 0; }

template <typename T>
YOLOC_HD void reduce_at(const ReduceArgs& a, long long i) {
    int idx[kGenericRank];
    unravel(a.dims, i, idx);
    const T* x = static_cast<const T*>(a.x) + strided_offset(idx, a.xs);
    const ReduceOp op = ReduceOp(a.op);
    typedef typename ReduceAccumulator<T>::type Acc;
    Acc acc = reduce_init(op, Acc(0));
    const long long n = dims_numel(a.rdims);
    // An odometer over the reduced dims: no division per element.
    int r[kGenericRank] = {0, 0, 0, 0, 0, 0};
    long long off = 0;
    for (long long e = 0; e < n; ++e) {
        acc = reduce_step(op, acc, x[off]);
        for (int k = kGenericRank - 1; k >= 0; --k) {
            off += a.rs[k];
            if (++r[k] < a.rdims[k]) break;
            off -= (long long)a.rs[k] * a.rdims[k];
            r[k] = 0;
        }
    }
    static_cast<T*>(a.y)[i] = T(op == ReduceOp::Mean ? reduce_mean(acc, n) : acc);
}

// ---- Cast ---------------------------------------------------------------------------------

// Engine files store these numbers: append new kinds at the end, never reorder.
enum class CastKind : int32_t { FloatToInt, IntToFloat, FloatToBool, IntToBool, Count };

struct CastArgs {
    const void* x = nullptr;
    void* y = nullptr;
    long long n = 0;
    int kind = 0;  // a CastKind; bool is int32 0/1
};

YOLOC_HD long long cast_items(const CastArgs& a) { return a.n; }

// Truncation toward zero, as ONNX Runtime casts; NaN and values outside int32 give
// INT_MIN, what ONNX Runtime gives for int32 on x86-64 (checked), where a plain
// conversion would be undefined on the host and saturate on the device.
YOLOC_HD int float_to_int(float v) {
    return (v >= -2147483648.0f && v < 2147483648.0f) ? int(v) : INT_MIN;
}

template <typename T>
YOLOC_HD void cast_at(const CastArgs& a, long long i) {
    const float* xf = static_cast<const float*>(a.x);
    const int* xi = static_cast<const int*>(a.x);
    switch (CastKind(a.kind)) {
        case CastKind::FloatToInt: static_cast<int*>(a.y)[i] = float_to_int(xf[i]); return;
        case CastKind::IntToFloat: static_cast<float*>(a.y)[i] = float(xi[i]); return;
        case CastKind::FloatToBool: static_cast<int*>(a.y)[i] = xf[i] != 0.f; return;  // NaN is true
        case CastKind::IntToBool: static_cast<int*>(a.y)[i] = xi[i] != 0; return;
        case CastKind::Count: return;
    }
}

// ---- FakeQuant (a QuantizeLinear -> DequantizeLinear pair, int8, zero point 0) ---------

struct FakeQuantArgs {
    const float* x = nullptr;
    float* y = nullptr;
    long long n = 0;
    float scale = 1.f;
};

YOLOC_HD long long fake_quant_items(const FakeQuantArgs& a) { return a.n; }

template <typename T>
YOLOC_HD void fake_quant_at(const FakeQuantArgs& a, long long i) {
    a.y[i] = fake_quant(a.x[i], a.scale);
}

// ---- ConvTranspose, 2-D, NCHW float32 -------------------------------------------------

// y[b, g*mg + m, iy*sh - ph + ky*dh, ix*sw - pw + kx*dw] += x[b, g*cg + ci, iy, ix] *
// wt[g*cg + ci, m, ky, kx] (ONNX's weight layout [c][m/group][kh][kw]), plus bias[m].
// oh, ow: the output size (output_padding and the end pads are the plan's arithmetic).
struct ConvTransposeArgs {
    const float* x = nullptr;
    const float* wt = nullptr;
    const float* bias = nullptr;  // [m] or null
    float* y = nullptr;
    int n = 0, c = 0, h = 0, w = 0;  // input
    int m = 0, oh = 0, ow = 0;       // output
    int kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1, group = 1;
};

YOLOC_HD long long conv_transpose_items(const ConvTransposeArgs& a) { return (long long)a.n * a.m * a.oh * a.ow; }

// One output, gathering the inputs that scatter into it: adds in the reference's order
// (input channel, then ky, kx), so the host gives its bits exactly.
template <typename T>
YOLOC_HD void conv_transpose_at(const ConvTransposeArgs& a, long long i) {
    const int ox = int(i % a.ow);
    long long t = i / a.ow;
    const int oy = int(t % a.oh);
    t /= a.oh;
    const int co = int(t % a.m);
    const long long b = t / a.m;
    const int mg = a.m / a.group, cg = a.c / a.group;
    const int g = co / mg, cm = co % mg;
    float acc = a.bias ? a.bias[co] : 0.f;
    for (int ci = g * cg; ci < (g + 1) * cg; ++ci) {
        const float* xp = a.x + (b * a.c + ci) * a.h * a.w;
        const float* wp = a.wt + ((long long)ci * mg + cm) * a.kh * a.kw;
        for (int ky = 0; ky < a.kh; ++ky) {
            const int ty = oy + a.ph - ky * a.dh;
            if (ty < 0 || ty % a.sh != 0 || ty / a.sh >= a.h) continue;
            for (int kx = 0; kx < a.kw; ++kx) {
                const int tx = ox + a.pw - kx * a.dw;
                if (tx < 0 || tx % a.sw != 0 || tx / a.sw >= a.w) continue;
                acc += wp[ky * a.kw + kx] * xp[(long long)(ty / a.sh) * a.w + tx / a.sw];
            }
        }
    }
    a.y[i] = acc;
}

}  // namespace cuda
}  // namespace yoloc
