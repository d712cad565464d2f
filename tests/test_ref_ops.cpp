// Reference kernels on hand-computed cases: each expected value is worked out
// from the ONNX operator definition, not from the code.
#include <gtest/gtest.h>

#include <cmath>

#include "ir/op_table.h"

using namespace yoloc;

namespace {
Node node(const std::string& op, std::vector<std::string> ins, std::vector<std::string> outs = {"y"}) {
    Node n;
    n.name = op;
    n.op_type = op;
    n.inputs = std::move(ins);
    n.outputs = std::move(outs);
    return n;
}
}  // namespace

TEST(RefOps, Conv3x3WithPaddingAndBias) {
    // 1x1x3x3 input 1..9, all-ones 3x3 kernel, pad 1: centre = 45, corner = 1+2+4+5 = 12.
    Tensor x = Tensor::from_floats({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
    Tensor w = Tensor::from_floats({1, 1, 3, 3}, std::vector<float>(9, 1.f));
    Tensor b = Tensor::from_floats({1}, {0.5f});
    Tensor y = ref_conv2d(x, w, b, {1, 1}, {1, 1, 1, 1}, {1, 1}, 1);
    ASSERT_EQ(y.shape(), (Shape{1, 1, 3, 3}));
    EXPECT_FLOAT_EQ(y.data<float>()[4], 45.5f);
    EXPECT_FLOAT_EQ(y.data<float>()[0], 12.5f);
}

TEST(RefOps, ConvStride2AndGroups) {
    Tensor x = Tensor::from_floats({1, 2, 2, 2}, {1, 2, 3, 4, 10, 20, 30, 40});
    Tensor w = Tensor::from_floats({2, 1, 1, 1}, {2.f, 3.f});  // depthwise 1x1
    Tensor y = ref_conv2d(x, w, Tensor(), {2, 2}, {0, 0, 0, 0}, {1, 1}, 2);
    ASSERT_EQ(y.shape(), (Shape{1, 2, 1, 1}));
    EXPECT_FLOAT_EQ(y.data<float>()[0], 2.f);
    EXPECT_FLOAT_EQ(y.data<float>()[1], 30.f);
}

TEST(RefOps, MaxPoolSamePaddingKeepsSize) {
    Tensor x = Tensor::from_floats({1, 1, 2, 3}, {1, 5, 2, 7, 0, 3});
    Node n = node("MaxPool", {"x"});
    n.attrs["kernel_shape"] = Attribute::of_ints({3, 3});
    n.attrs["pads"] = Attribute::of_ints({1, 1, 1, 1});
    Tensor y = ref_eval(n, {x}, 17)[0];
    ASSERT_EQ(y.shape(), (Shape{1, 1, 2, 3}));
    EXPECT_EQ(y.to_floats(), (std::vector<float>{7, 7, 5, 7, 7, 5}));
}

TEST(RefOps, ResizeNearestDoublesLikeTorchUpsample) {
    Tensor x = Tensor::from_floats({1, 1, 1, 2}, {1, 2});
    Node n = node("Resize", {"x", "", "s"});
    n.attrs["mode"] = Attribute::of_string("nearest");
    n.attrs["coordinate_transformation_mode"] = Attribute::of_string("asymmetric");
    n.attrs["nearest_mode"] = Attribute::of_string("floor");
    Tensor s = Tensor::from_floats({4}, {1, 1, 2, 2});
    Tensor y = ref_eval(n, {x, Tensor(), s}, 17)[0];
    EXPECT_EQ(y.shape(), (Shape{1, 1, 2, 4}));
    EXPECT_EQ(y.to_floats(), (std::vector<float>{1, 1, 2, 2, 1, 1, 2, 2}));
}

TEST(RefOps, SplitThenConcatRestoresTheTensor) {
    Tensor x = Tensor::from_floats({1, 3, 1, 1}, {1, 2, 3});
    Node sp = node("Split", {"x", "s"}, {"a", "b"});
    sp.attrs["axis"] = Attribute::of_int(1);
    auto parts = ref_eval(sp, {x, Tensor::from_int64s({2}, {1, 2})}, 17);
    EXPECT_EQ(parts[0].to_floats(), (std::vector<float>{1}));
    EXPECT_EQ(parts[1].to_floats(), (std::vector<float>{2, 3}));
    Node cc = node("Concat", {"b", "a"});
    cc.attrs["axis"] = Attribute::of_int(1);
    EXPECT_EQ(ref_eval(cc, {parts[1], parts[0]}, 17)[0].to_floats(), (std::vector<float>{2, 3, 1}));
}

TEST(RefOps, SplitSizesMustAddUp) {
    Node sp = node("Split", {"x", "s"}, {"a", "b"});
    sp.attrs["axis"] = Attribute::of_int(1);
    EXPECT_THROW(ref_eval(sp, {Tensor(DType::Float32, {1, 3}), Tensor::from_int64s({2}, {1, 1})}, 17), Error);
}

TEST(RefOps, SoftmaxRowsSumToOne) {
    Tensor x = Tensor::from_floats({2, 2}, {0, std::log(3.f), 1, 1});
    Tensor y = ref_eval(node("Softmax", {"x"}), {x}, 17)[0];
    EXPECT_NEAR(y.data<float>()[0], 0.25f, 1e-6);
    EXPECT_NEAR(y.data<float>()[1], 0.75f, 1e-6);
    EXPECT_NEAR(y.data<float>()[2], 0.5f, 1e-6);
}

TEST(RefOps, BroadcastArithmetic) {
    Tensor a = Tensor::from_floats({2, 1}, {1, 2});
    Tensor b = Tensor::from_floats({1, 3}, {10, 20, 30});
    EXPECT_EQ(ref_eval(node("Add", {"a", "b"}), {a, b}, 17)[0].to_floats(),
              (std::vector<float>{11, 21, 31, 12, 22, 32}));
    EXPECT_EQ(ref_eval(node("Sub", {"b", "a"}), {b, a}, 17)[0].to_floats(), (std::vector<float>{9, 19, 29, 8, 18, 28}));
}

TEST(RefOps, ReshapeZeroCopiesAndMinusOneInfers) {
    Tensor x(DType::Float32, {2, 3, 4});
    Tensor y = ref_eval(node("Reshape", {"x", "s"}), {x, Tensor::from_int64s({2}, {0, -1})}, 17)[0];
    EXPECT_EQ(y.shape(), (Shape{2, 12}));
    EXPECT_THROW(ref_eval(node("Reshape", {"x", "s"}), {x, Tensor::from_int64s({2}, {5, -1})}, 17), Error);
}

TEST(RefOps, TransposeSwapsAxes) {
    Tensor x = Tensor::from_floats({2, 3}, {1, 2, 3, 4, 5, 6});
    Node n = node("Transpose", {"x"});
    n.attrs["perm"] = Attribute::of_ints({1, 0});
    Tensor y = ref_eval(n, {x}, 17)[0];
    EXPECT_EQ(y.shape(), (Shape{3, 2}));
    EXPECT_EQ(y.to_floats(), (std::vector<float>{1, 4, 2, 5, 3, 6}));
}

TEST(RefOps, SliceWithNegativeStep) {
    Tensor x = Tensor::from_floats({5}, {0, 1, 2, 3, 4});
    auto i64 = [](int64_t v) { return Tensor::from_int64s({1}, {v}); };
    Tensor y = ref_eval(node("Slice", {"x", "s", "e", "a", "p"}), {x, i64(-1), i64(-6), i64(0), i64(-2)}, 17)[0];
    EXPECT_EQ(y.to_floats(), (std::vector<float>{4, 2, 0}));
}

TEST(RefOps, GatherWithNegativeIndex) {
    Tensor x = Tensor::from_int64s({4}, {1, 3, 640, 640});
    Tensor y = ref_eval(node("Gather", {"x", "i"}), {x, Tensor::from_int64s({}, {-1})}, 17)[0];
    EXPECT_EQ(y.rank(), 0u);
    EXPECT_EQ(y.at_i64(0), 640);
}

TEST(RefOps, QuantizeRoundsHalfToEvenAndSaturates) {
    Tensor x = Tensor::from_floats({5}, {0.5f, 1.5f, 2.5f, -2.5f, 1000.f});
    Tensor s = Tensor::scalar_f32(1.f);
    Tensor zp(DType::Int8, {});
    Tensor q = ref_eval(node("QuantizeLinear", {"x", "s", "z"}), {x, s, zp}, 17)[0];
    ASSERT_EQ(q.dtype(), DType::Int8);
    EXPECT_EQ(q.to_int64s(), (std::vector<int64_t>{0, 2, 2, -2, 127}));
    Tensor d = ref_eval(node("DequantizeLinear", {"q", "s", "z"}), {q, Tensor::scalar_f32(0.5f), zp}, 17)[0];
    EXPECT_EQ(d.to_floats(), (std::vector<float>{0, 1, 1, -1, 63.5f}));
}

TEST(RefOps, PerChannelDequantizeUsesAxis) {
    Tensor q(DType::Int8, {2, 2});
    q.data<int8_t>()[0] = 1;
    q.data<int8_t>()[1] = 2;
    q.data<int8_t>()[2] = 3;
    q.data<int8_t>()[3] = 4;
    Node n = node("DequantizeLinear", {"q", "s"});
    n.attrs["axis"] = Attribute::of_int(0);
    Tensor d = ref_eval(n, {q, Tensor::from_floats({2}, {1.f, 10.f})}, 17)[0];
    EXPECT_EQ(d.to_floats(), (std::vector<float>{1, 2, 30, 40}));
}

TEST(RefOps, UnknownOpIsNamed) {
    try {
        ref_eval(node("NoSuchOp", {"x"}), {Tensor(DType::Float32, {1})}, 17);
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("NoSuchOp"), std::string::npos);
    }
}
