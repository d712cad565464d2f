// The GPU engine's generic tier on the host: the element functions of
// engine/cuda/generic_ops.h (the code the CUDA kernels run) in plain loops, one-node
// models of every op against the reference kernels (generic_op_cases.h), then the
// behaviours ONNX Runtime or the ONNX spec fixes where the reference has no opinion.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <vector>

#include "generic_op_cases.h"

using namespace yoloc;
using namespace yoloc_test;

namespace {

class HostBackend : public GenericBackend {
public:
    void* alloc(size_t bytes) override {
        blocks_.emplace_back(bytes, uint8_t(0xFF));
        return blocks_.back().data();
    }
    void upload(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
    void download(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
    void unary(const cuda::UnaryArgs& a) override {
        for (long long i = 0; i < cuda::unary_items(a); ++i) cuda::unary_at<float>(a, i);
    }
    void binary(const cuda::BinaryArgs& a, bool int32) override {
        for (long long i = 0; i < cuda::binary_items(a); ++i)
            int32 ? cuda::binary_at<int>(a, i) : cuda::binary_at<float>(a, i);
    }
    void where(const cuda::WhereArgs& a) override {
        for (long long i = 0; i < cuda::where_items(a); ++i) cuda::where_at<uint32_t>(a, i);
    }
    void softmax(const cuda::SoftmaxArgs& a) override {
        for (long long i = 0; i < cuda::softmax_items(a); ++i) cuda::softmax_at<float>(a, i);
    }
    void matmul(const cuda::MatMulArgs& a) override {
        for (long long i = 0; i < cuda::matmul_items(a); ++i) cuda::matmul_at<float>(a, i);
    }
    void strided_copy(const cuda::StridedCopyArgs& a) override {
        for (long long i = 0; i < cuda::strided_copy_items(a); ++i) cuda::strided_copy_at<uint32_t>(a, i);
    }
    void gather(const cuda::GatherArgs& a) override {
        for (long long i = 0; i < cuda::gather_items(a); ++i) cuda::gather_at<uint32_t>(a, i);
    }
    void gather_elements(const cuda::GatherElementsArgs& a) override {
        for (long long i = 0; i < cuda::gather_elements_items(a); ++i) cuda::gather_elements_at<uint32_t>(a, i);
    }
    // kernel 1: the per-element rank twin; otherwise the per-row radix select.
    void topk(const cuda::TopKArgs& a, bool int32) override {
        if (a.kernel == 1) {
            for (long long i = 0; i < cuda::topk_rank_items(a); ++i)
                int32 ? cuda::topk_rank_at<int>(a, i) : cuda::topk_rank_at<float>(a, i);
            return;
        }
        for (long long i = 0; i < cuda::topk_row_items(a); ++i)
            int32 ? cuda::topk_row_at<int>(a, i) : cuda::topk_row_at<float>(a, i);
    }
    void reduce(const cuda::ReduceArgs& a, bool int32) override {
        for (long long i = 0; i < cuda::reduce_items(a); ++i)
            int32 ? cuda::reduce_at<int>(a, i) : cuda::reduce_at<float>(a, i);
    }
    void cast(const cuda::CastArgs& a) override {
        for (long long i = 0; i < cuda::cast_items(a); ++i) cuda::cast_at<float>(a, i);
    }
    void fake_quant(const cuda::FakeQuantArgs& a) override {
        for (long long i = 0; i < cuda::fake_quant_items(a); ++i) cuda::fake_quant_at<float>(a, i);
    }
    void conv_transpose(const cuda::ConvTransposeArgs& a) override {
        for (long long i = 0; i < cuda::conv_transpose_items(a); ++i) cuda::conv_transpose_at<float>(a, i);
    }

private:
    std::vector<std::vector<uint8_t>> blocks_;
};

// Runs the cases; every op of the family must have been compared with an oracle.
void check_family(const std::vector<OpCase>& cases, GenericBackend& be) {
    const CaseTally t = check_cases(cases, be, false);
    std::string missing;
    for (const auto& op : t.no_oracle) missing += " " + op;
    EXPECT_TRUE(t.no_oracle.empty()) << "no oracle for:" << missing;
    EXPECT_GT(t.ran, 0);
}

std::vector<Tensor> run(const Node& n, const std::vector<Tensor>& ins, int64_t opset = 17) {
    HostBackend be;
    return run_generic(n, ins, opset, be);
}

}  // namespace

TEST(GenericOps, UnaryOpsMatchTheReference) {
    HostBackend be;
    check_family(unary_cases(), be);
}

TEST(GenericOps, BinaryOpsBroadcastLikeTheReference) {
    HostBackend be;
    check_family(binary_cases(), be);
}

TEST(GenericOps, WhereBroadcastsItsThreeOperands) {
    HostBackend be;
    check_family(where_cases(), be);
}

TEST(GenericOps, SoftmaxAndLogSoftmaxMatchTheReference) {
    HostBackend be;
    check_family(softmax_cases(), be);
}

TEST(GenericOps, MatMulBroadcastsBatchesAndVectors) {
    HostBackend be;
    check_family(matmul_cases(), be);
}

TEST(GenericOps, StridedCopiesAreTransposeSliceExpandConcatAndSplit) {
    HostBackend be;
    check_family(copy_cases(), be);
}

TEST(GenericOps, GatherAndGatherElementsMatchTheReference) {
    HostBackend be;
    check_family(gather_cases(), be);
}

TEST(GenericOps, TopKRadixSelectAndRankCountingMatchTheReference) {
    HostBackend radix;
    radix.topk_kernel = 2;
    check_family(topk_cases(), radix);
    // Rank counting is O(len) per element: on the host, the inputs up to one row of 8400.
    std::vector<OpCase> short_rows;
    for (const OpCase& c : topk_cases())
        if (c.inputs[0].numel() <= 8400) short_rows.push_back(c);
    HostBackend rank;
    rank.topk_kernel = 1;
    check_family(short_rows, rank);
}

TEST(GenericOps, ReduceOpsMatchTheReference) {
    HostBackend be;
    check_family(reduce_cases(), be);
}

TEST(GenericOps, CastMatchesTheReference) {
    HostBackend be;
    check_family(cast_cases(), be);
}

TEST(GenericOps, FakeQuantIsQuantizeThenDequantize) {
    HostBackend be;
    check_family(fake_quant_cases(), be);
}

TEST(GenericOps, ConvTransposeMatchesTheReference) {
    HostBackend be;
    check_family(conv_transpose_cases(), be);
}

// Expected values from onnxruntime 1.32 (CPU) on the same inputs: among equal values the
// lower index comes first, for largest and smallest; NaN ranks above +inf.
TEST(GenericOps, TopKOrdersTiesAndNaNLikeOnnxRuntime) {
    const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
    struct Want {
        std::vector<float> x;
        int64_t k;
        int largest;
        std::vector<int64_t> idx;
    };
    const std::vector<Want> wants = {{{1, 3, 3, 2, 3, 1, 1, 0, 3}, 5, 1, {1, 2, 4, 8, 3}},
                                     {{1, 3, 3, 2, 3, 1, 1, 0, 3}, 5, 0, {7, 0, 5, 6, 3}},
                                     {{1, nan, 3, -inf, inf}, 5, 1, {1, 4, 2, 0, 3}},
                                     {{1, nan, 3, -inf, inf}, 5, 0, {3, 0, 2, 4, 1}},
                                     {{0.f, -0.f, 0.f, -0.f}, 3, 1, {0, 1, 2}}};
    for (int kernel : {2, 1})
        for (const Want& w : wants) {
            Node n = make_node("TopK", 2, 2);
            n.attrs["largest"] = Attribute::of_int(w.largest);
            HostBackend be;
            be.topk_kernel = kernel;
            auto out = run_generic(n, {Tensor::from_floats({1, int64_t(w.x.size())}, w.x), ints({w.k})}, 17, be);
            std::vector<int64_t> got;
            for (int64_t i = 0; i < out[1].numel(); ++i) got.push_back(out[1].at_i64(i));
            EXPECT_EQ(got, w.idx) << "kernel " << kernel << ", largest " << w.largest;
        }
}

// onnxruntime 1.32 on x86-64: truncation toward zero; NaN and out-of-range values give
// INT_MIN for int32; anything but 0 (NaN too) is true.
TEST(GenericOps, CastTruncatesTowardZeroAndSaturatesLikeOnnxRuntime) {
    const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
    const std::vector<float> x = {-2.7f, -2.5f, -0.5f, 0.5f, 1.5f, 2.5f, 2.7f, -0.f, 1e10f, -1e10f, nan, inf};
    const std::vector<int64_t> to_int = {-2, -2, 0, 0, 1, 2, 2, 0, INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN};
    const std::vector<int64_t> to_bool = {1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1};
    Node n = make_node("Cast", 1);
    n.attrs["to"] = Attribute::of_int(int64_t(DType::Int32));
    EXPECT_EQ(run(n, {Tensor::from_floats({12}, x)})[0].to_int64s(), to_int);
    n.attrs["to"] = Attribute::of_int(int64_t(DType::Bool));
    EXPECT_EQ(run(n, {Tensor::from_floats({12}, x)})[0].to_int64s(), to_bool);
}

// ONNX Mod: fmod 0 is Python's % (the divisor's sign), fmod 1 is C's fmod (the dividend's).
TEST(GenericOps, IntegerModTakesTheDivisorsSignAndFModTheDividends) {
    const Tensor a = Tensor::from_int64s({4}, {7, -7, 7, -7}), b = Tensor::from_int64s({4}, {3, 3, -3, -3});
    Node n = make_node("Mod", 2);
    EXPECT_EQ(run(n, {a, b})[0].to_int64s(), (std::vector<int64_t>{1, 2, -2, -1}));
    n.attrs["fmod"] = Attribute::of_int(1);
    EXPECT_EQ(run(n, {a, b})[0].to_int64s(), (std::vector<int64_t>{1, -1, 1, -1}));
    const Tensor fa = Tensor::from_floats({4}, {7.5f, -7.5f, 7.5f, -7.5f}), fb = Tensor::from_floats({4}, {2, 2, -2, -2});
    EXPECT_EQ(run(n, {fa, fb})[0].to_floats(), (std::vector<float>{1.5f, -1.5f, 1.5f, -1.5f}));
}

TEST(GenericOps, LogicalAndOrderOpsFollowTheirTruthTables) {
    Tensor p(DType::Bool, {4}), q(DType::Bool, {4});
    const uint8_t pv[4] = {0, 0, 1, 1}, qv[4] = {0, 1, 0, 1};
    std::memcpy(p.raw(), pv, 4);
    std::memcpy(q.raw(), qv, 4);
    EXPECT_EQ(run(make_node("And", 2), {p, q})[0].to_int64s(), (std::vector<int64_t>{0, 0, 0, 1}));
    EXPECT_EQ(run(make_node("Or", 2), {p, q})[0].to_int64s(), (std::vector<int64_t>{0, 1, 1, 1}));
    EXPECT_EQ(run(make_node("Xor", 2), {p, q})[0].to_int64s(), (std::vector<int64_t>{0, 1, 1, 0}));
    const Tensor a = Tensor::from_floats({3}, {1, 2, 3}), b = Tensor::from_floats({3}, {2, 2, 2});
    EXPECT_EQ(run(make_node("LessOrEqual", 2), {a, b})[0].to_int64s(), (std::vector<int64_t>{1, 1, 0}));
    EXPECT_EQ(run(make_node("GreaterOrEqual", 2), {a, b})[0].to_int64s(), (std::vector<int64_t>{0, 1, 1}));
}

// A kernel cannot fail a run: an index outside [-len, len) yields 0 instead of reading
// outside the buffer, and integer division by zero yields 0 instead of a fault.
TEST(GenericOps, BadIndicesAndZeroDivisorsGiveZeroNotAFault) {
    const Tensor x = Tensor::from_floats({4}, {10, 11, 12, 13});
    EXPECT_EQ(run(make_node("Gather", 2), {x, ints({1, 4, -5, -4, 1 << 30})})[0].to_floats(),
              (std::vector<float>{11, 0, 0, 10, 0}));
    Node ge = make_node("GatherElements", 2);
    EXPECT_EQ(run(ge, {x, ints({3, 9, -1, -9})})[0].to_floats(), (std::vector<float>{13, 0, 13, 0}));
    const Tensor a = Tensor::from_int64s({3}, {7, INT32_MIN, 5}), z = Tensor::from_int64s({3}, {0, -1, 0});
    EXPECT_EQ(run(make_node("Div", 2), {a, z})[0].to_int64s(), (std::vector<int64_t>{0, INT32_MIN, 0}));
    EXPECT_EQ(run(make_node("Mod", 2), {a, z})[0].to_int64s(), (std::vector<int64_t>{0, 0, 0}));
}
