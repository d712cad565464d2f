// Shape inference, constant folding and re-targeting to other batch/input sizes.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/cpu/executor.h"
#include "ir/shape_inference.h"
#include "onnx/onnx_io.h"
#include "test_util.h"
#include "yolo/generate.h"
#include "yolo/input_size.h"

using namespace yoloc;

namespace {
std::string model_path() { return yoloc_test::shared_dir() + "/models/yolov8n_coco.onnx"; }

Tensor pattern_input(Shape s, uint32_t seed) {
    Tensor x(DType::Float32, s);
    for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = float(((uint32_t(i) + seed) * 2654435761u) >> 24) / 255.f;
    return x;
}
}  // namespace

TEST(ShapeInference, Yolov8nOutputAndSppfShapes) {
    REQUIRE_SHARED();
    Model m = load_onnx(model_path());
    ShapeInfo s = infer_shapes(m);
    EXPECT_EQ(s.at("output0").shape, (Shape{1, 84, 8400}));
    EXPECT_EQ(s.at("/model.9/cv2/act/Mul_output_0").shape, (Shape{1, 256, 20, 20}));
    EXPECT_EQ(s.at("/model.22/dfl/Softmax_output_0").shape, (Shape{1, 16, 4, 8400}));
}

TEST(ShapeInference, FoldingRemovesConstantNodesAndKeepsOutputs) {
    REQUIRE_SHARED();
    Model m = load_onnx(model_path());
    int folded = fold_constants(m);
    EXPECT_EQ(folded, 14);  // the 14 Constant nodes of this export
    EXPECT_EQ(m.graph.op_histogram().count("Constant"), 0u);
    Model orig = load_onnx(model_path());
    Tensor x = pattern_input({1, 3, 640, 640}, 7);
    Tensor a = make_executor(orig, "fast")->run({{"images", x}}).at("output0");
    Tensor b = make_executor(m, "fast")->run({{"images", x}}).at("output0");
    for (int64_t i = 0; i < a.numel(); ++i) ASSERT_EQ(a.data<float>()[i], b.data<float>()[i]);
}

TEST(ShapeInference, WrongInputSizeIsReportedWithTheInputName) {
    REQUIRE_SHARED();
    Model m = load_onnx(model_path());
    auto ex = make_executor(m, "reference");
    try {
        ex->run({{"images", Tensor(DType::Float32, {1, 3, 320, 320})}});
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("images"), std::string::npos) << e.what();
    }
}

TEST(ShapeInference, StaticExportRunsAtAnotherBatchAndSize) {
    REQUIRE_SHARED();
    Model m = load_onnx(model_path());
    set_input_size(m, 2, 320);
    ShapeInfo s = infer_shapes(m);
    EXPECT_EQ(s.at("output0").shape, (Shape{2, 84, 2100}));
    // Batch items are independent: item k of a batch-2 run equals a batch-1 run on it.
    Model m1 = load_onnx(model_path());
    set_input_size(m1, 1, 320);
    Tensor x0 = pattern_input({1, 3, 320, 320}, 1), x1 = pattern_input({1, 3, 320, 320}, 99);
    Tensor xb(DType::Float32, {2, 3, 320, 320});
    std::copy(x0.data<float>(), x0.data<float>() + x0.numel(), xb.data<float>());
    std::copy(x1.data<float>(), x1.data<float>() + x1.numel(), xb.data<float>() + x0.numel());
    Tensor yb = make_executor(m, "fast")->run({{"images", xb}}).at("output0");
    auto e1 = make_executor(m1, "fast");
    Tensor y0 = e1->run({{"images", x0}}).at("output0");
    Tensor y1 = e1->run({{"images", x1}}).at("output0");
    ASSERT_EQ(yb.shape(), (Shape{2, 84, 2100}));
    double maxd = 0;
    for (int64_t i = 0; i < y0.numel(); ++i) {
        maxd = std::max(maxd, double(std::fabs(yb.data<float>()[i] - y0.data<float>()[i])));
        maxd = std::max(maxd, double(std::fabs(yb.data<float>()[y0.numel() + i] - y1.data<float>()[i])));
    }
    EXPECT_LT(maxd, 1e-3);
}

TEST(ShapeInference, RetargetedAnchorsMatchAModelGeneratedAtThatSize) {
    GenerateOptions o;
    o.imgsz = 640;
    Model a = generate_yolov8(o);
    set_input_size(a, 1, 320);
    o.imgsz = 320;
    Model b = generate_yolov8(o);
    Tensor x = pattern_input({1, 3, 320, 320}, 3);
    Tensor ya = make_executor(a, "fast")->run({{"images", x}}).at("output0");
    Tensor yb = make_executor(b, "fast")->run({{"images", x}}).at("output0");
    ASSERT_EQ(ya.shape(), yb.shape());
    for (int64_t i = 0; i < ya.numel(); ++i) ASSERT_NEAR(ya.data<float>()[i], yb.data<float>()[i], 1e-3) << i;
}

TEST(ShapeInference, DynamicShapeSubgraphFoldsForAConcreteInput) {
    // x [N,4] -> Shape -> Gather(0) -> Unsqueeze -> Concat([-1... ]) -> Reshape(x)
    Model m;
    m.graph.inputs.push_back({"x", DType::Float32, {Dim{-1, "batch"}, Dim{4, ""}}, true});
    m.graph.outputs.push_back({"y", DType::Float32, {}, false});
    m.graph.initializers["idx"] = Tensor::from_int64s({}, {0});
    m.graph.initializers["ax"] = Tensor::from_int64s({1}, {0});
    m.graph.initializers["rest"] = Tensor::from_int64s({2}, {2, 2});
    auto add = [&](const std::string& op, std::vector<std::string> ins, std::string out) {
        Node n;
        n.name = op + "_" + out;
        n.op_type = op;
        n.inputs = std::move(ins);
        n.outputs = {out};
        m.graph.nodes.push_back(n);
        return &m.graph.nodes.back();
    };
    add("Shape", {"x"}, "s");
    add("Gather", {"s", "idx"}, "n");
    add("Unsqueeze", {"n", "ax"}, "n1");
    add("Concat", {"n1", "rest"}, "shape")->attrs["axis"] = Attribute::of_int(0);
    add("Reshape", {"x", "shape"}, "y");
    ShapeInfo s = infer_shapes(m, {{"x", {3, 4}}});
    EXPECT_EQ(s.at("y").shape, (Shape{3, 2, 2}));
    Model f = m;
    f.graph.inputs[0].shape[0] = Dim{3, ""};
    fold_constants(f);
    ASSERT_EQ(f.graph.nodes.size(), 1u);
    EXPECT_EQ(f.graph.nodes[0].op_type, "Reshape");
}
