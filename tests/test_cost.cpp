// Static cost: FLOPs, parameters and activation memory.
#include <gtest/gtest.h>

#include "ir/cost.h"
#include "ir/shape_inference.h"
#include "onnx/onnx_io.h"
#include "test_util.h"
#include "yolo/generate.h"

using namespace yoloc;

// Ultralytics reports yolov8n as 8.7 GFLOPs and 3,151,904 parameters (fused).
TEST(Cost, Yolov8nIs8Point7GflopsAnd3151904Params) {
    REQUIRE_SHARED();
    Model m = load_onnx(yoloc_test::shared_dir() + "/models/yolov8n_coco.onnx");
    ModelCost c = count_cost(m, infer_shapes(m));
    EXPECT_NEAR(c.flops / 1e9, 8.7, 0.05);
    EXPECT_EQ(c.params, 3151904);
    EXPECT_DOUBLE_EQ(c.flops_by_op.at("Conv"), c.flops);
    EXPECT_GT(c.flops_by_op.at("Mul"), 0);
    EXPECT_GE(c.weight_bytes, 3151904 * 4);
    // The largest single activation is a [1,32,320,320] float map (13.1 MB); the peak
    // holds at least it plus its producer's input, and far less than the total.
    EXPECT_GT(c.activation_bytes_peak, int64_t(32) * 320 * 320 * 4);
    EXPECT_LT(c.activation_bytes_peak, c.activation_bytes_total / 4);
}

TEST(Cost, GeneratedNanoCostsTheSameAsReal) {
    Model m = generate_yolov8(GenerateOptions{});
    ModelCost c = count_cost(m, infer_shapes(m));
    EXPECT_NEAR(c.flops / 1e9, 8.744, 0.001);
    EXPECT_EQ(c.params, 3151904);
}

TEST(Cost, FlopsScaleWithImageArea) {
    GenerateOptions o;
    o.imgsz = 320;
    Model m = generate_yolov8(o);
    ModelCost c = count_cost(m, infer_shapes(m));
    EXPECT_NEAR(c.flops / 1e9, 8.744 / 4, 0.01);
}

// A hand-checkable chain: x[1,2,4,4] -> Conv 3x3 (2->3, pad 1) -> Relu -> y.
TEST(Cost, SmallGraphCountsAndLiveness) {
    Model m;
    ValueInfo in;
    in.name = "x";
    for (int64_t d : {1, 2, 4, 4}) in.shape.push_back(Dim{d, ""});
    m.graph.inputs.push_back(in);
    m.graph.initializers["w"] = Tensor(DType::Float32, {3, 2, 3, 3});
    m.graph.initializers["b"] = Tensor(DType::Float32, {3});
    Node conv;
    conv.name = "conv";
    conv.op_type = "Conv";
    conv.inputs = {"x", "w", "b"};
    conv.outputs = {"c"};
    conv.attrs["pads"] = Attribute::of_ints({1, 1, 1, 1});
    conv.attrs["kernel_shape"] = Attribute::of_ints({3, 3});
    Node relu;
    relu.name = "relu";
    relu.op_type = "Relu";
    relu.inputs = {"c"};
    relu.outputs = {"y"};
    m.graph.nodes = {conv, relu};
    ValueInfo out;
    out.name = "y";
    m.graph.outputs.push_back(out);
    ModelCost c = count_cost(m, infer_shapes(m));
    EXPECT_DOUBLE_EQ(c.flops, 2.0 * (3 * 4 * 4) * (2 * 3 * 3));
    EXPECT_DOUBLE_EQ(c.flops_by_op.at("Relu"), 48);
    EXPECT_EQ(c.params, 3 * 2 * 9 + 3);
    EXPECT_EQ(c.weight_bytes, (54 + 3) * 4);
    // x (128 B) + c (192 B) live at the conv; at the relu x is gone: c + y = 384 B.
    EXPECT_EQ(c.activation_bytes_peak, 384);
    EXPECT_EQ(c.activation_bytes_total, 128 + 192 + 192);
}
