// The generator: Ultralytics' parameter counts, layout and a model that runs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <set>

#include "engine/cpu/executor.h"
#include "ir/shape_inference.h"
#include "onnx/onnx_io.h"
#include "test_util.h"
#include "yolo/generate.h"

using namespace yoloc;

namespace {

// Own count (independent of Graph::parameter_count): Conv weight and bias initializers.
int64_t conv_params(const Graph& g) {
    std::set<std::string> seen;
    int64_t n = 0;
    for (const Node& node : g.nodes) {
        if (node.op_type != "Conv") continue;
        for (size_t k = 1; k < node.inputs.size(); ++k)
            if (const Tensor* t = g.find_initializer(node.inputs[k]))
                if (seen.insert(node.inputs[k]).second) n += t->numel();
    }
    return n;
}

Model gen(const std::string& scale, int nc = 80, int imgsz = 640, uint64_t seed = 0, bool calibrate = true) {
    GenerateOptions o;
    o.scale = scale;
    o.nc = nc;
    o.imgsz = imgsz;
    o.seed = seed;
    o.calibrate = calibrate;
    return generate_yolov8(o);
}

// A smooth, image-like input in 0..1, unlike the generator's probe images.
Tensor test_image(int64_t size) {
    Tensor img(DType::Float32, {1, 3, size, size});
    float* p = img.data<float>();
    for (int64_t c = 0; c < 3; ++c)
        for (int64_t y = 0; y < size; ++y)
            for (int64_t x = 0; x < size; ++x)
                p[(c * size + y) * size + x] = 0.5f + 0.4f * std::sin(0.03f * float(x + 2 * y) + float(c));
    return img;
}

}  // namespace

// Ultralytics' fused parameter counts (model.fuse(); model.info()), nc = 80.
TEST(Generate, ParameterCountsMatchUltralyticsForEveryScale) {
    const std::map<std::string, int64_t> expected{
        {"n", 3151904}, {"s", 11156544}, {"m", 25886080}, {"l", 43668288}, {"x", 68200608}};
    for (const auto& kv : expected) {
        Model m = gen(kv.first, 80, 640, 0, /*calibrate=*/false);
        EXPECT_EQ(conv_params(m.graph), kv.second) << "scale " << kv.first;
        EXPECT_EQ(m.graph.parameter_count(), kv.second) << "scale " << kv.first;
    }
}

TEST(Generate, ParameterCountFollowsNumberOfClasses) {
    Model m = gen("n", 7);
    EXPECT_EQ(conv_params(m.graph), 3007013);
    EXPECT_EQ(m.graph.parameter_count(), 3007013);
}

TEST(Generate, LayoutIsUltralyticsExport) {
    Model m = gen("n");
    EXPECT_EQ(m.ir_version, 8);
    EXPECT_EQ(m.opset(), 17);
    ASSERT_EQ(m.graph.inputs.size(), 1u);
    EXPECT_EQ(m.graph.inputs[0].name, "images");
    ASSERT_EQ(m.graph.outputs.size(), 1u);
    EXPECT_EQ(m.graph.outputs[0].name, "output0");
    // Same op histogram as the real yolov8n export.
    auto h = m.graph.op_histogram();
    EXPECT_EQ(h["Conv"], 64);
    EXPECT_EQ(h["Sigmoid"], 58);  // 57 SiLU + class scores
    EXPECT_EQ(h["MaxPool"], 3);
    EXPECT_EQ(h["Resize"], 2);
    EXPECT_EQ(h["Split"], 10);
    EXPECT_EQ(h["Softmax"], 1);
    EXPECT_GE(m.graph.producer("/model.2/cv1/conv/Conv_output_0"), 0);
    EXPECT_NE(m.graph.find_initializer("model.2.cv1.conv.weight"), nullptr);
    EXPECT_NE(m.graph.find_initializer("model.22.dfl.conv.weight"), nullptr);
    EXPECT_NE(m.graph.find_initializer("model.22.anchors"), nullptr);
}

TEST(Generate, MatchesRealYolov8nNodeForNode) {
    REQUIRE_SHARED();
    Model real = load_onnx(yoloc_test::shared_dir() + "/models/yolov8n_coco.onnx");
    Model ours = gen("n");
    // Same ops, names and weight shapes for every node that is not a torch-numbered Constant.
    std::map<std::string, const Node*> by_name;
    for (const Node& n : ours.graph.nodes) by_name[n.name] = &n;
    int compared = 0;
    for (const Node& n : real.graph.nodes) {
        if (n.op_type == "Constant") continue;
        auto it = by_name.find(n.name);
        ASSERT_NE(it, by_name.end()) << "missing node " << n.name;
        EXPECT_EQ(it->second->op_type, n.op_type) << n.name;
        ASSERT_EQ(it->second->inputs.size(), n.inputs.size()) << n.name;
        for (size_t k = 0; k < n.inputs.size(); ++k) {
            const Tensor* a = real.graph.find_initializer(n.inputs[k]);
            if (!a) continue;
            const Tensor* b = ours.graph.find_initializer(it->second->inputs[k]);
            ASSERT_NE(b, nullptr) << n.name << " input " << k;
            EXPECT_EQ(b->shape(), a->shape()) << n.name << " input " << k;
        }
        for (const auto& kv : n.attrs) EXPECT_TRUE(it->second->has(kv.first)) << n.name << " lacks " << kv.first;
        ++compared;
    }
    EXPECT_EQ(compared, int(ours.graph.nodes.size()) - int(ours.graph.op_histogram()["Constant"]));
    // Decode constants are exact.
    auto ra = real.graph.find_initializer("model.22.anchors")->to_floats();
    auto oa = ours.graph.find_initializer("model.22.anchors")->to_floats();
    EXPECT_EQ(ra, oa);
    auto rs = real.graph.find_initializer("model.22.strides")->to_floats();
    auto os = ours.graph.find_initializer("model.22.strides")->to_floats();
    EXPECT_EQ(rs, os);
}

TEST(Generate, SameSeedSameWeightsOtherSeedOtherWeights) {
    Model a = gen("n", 80, 320, 1), b = gen("n", 80, 320, 1), c = gen("n", 80, 320, 2);
    auto wa = a.graph.find_initializer("model.4.m.1.cv2.conv.weight")->to_floats();
    EXPECT_EQ(wa, b.graph.find_initializer("model.4.m.1.cv2.conv.weight")->to_floats());
    EXPECT_NE(wa, c.graph.find_initializer("model.4.m.1.cv2.conv.weight")->to_floats());
}

TEST(Generate, ClassBiasFollowsUltralyticsBiasInit) {
    Model m = gen("n", 80);
    const float expect[3] = {std::log(5.f / 80.f / (80.f * 80.f)), std::log(5.f / 80.f / (40.f * 40.f)),
                             std::log(5.f / 80.f / (20.f * 20.f))};
    for (int i = 0; i < 3; ++i) {
        auto b = m.graph.find_initializer("model.22.cv3." + std::to_string(i) + ".2.bias")->to_floats();
        ASSERT_EQ(b.size(), 80u);
        EXPECT_NEAR(b[0], expect[i], 1e-4);
    }
}

TEST(Generate, RejectsBadOptions) {
    EXPECT_THROW(gen("q"), Error);
    EXPECT_THROW(gen("n", 0), Error);
    EXPECT_THROW(gen("n", 80, 650), Error);
}

TEST(Generate, NanoRunsInReferenceExecutorWithSaneOutputs) {
    Model m = gen("n");
    auto exec = make_executor(m, "reference");
    TensorMap out = exec->run({{"images", test_image(640)}});
    ASSERT_EQ(out.count("output0"), 1u);
    const Tensor& y = out.at("output0");
    ASSERT_EQ(y.shape(), (Shape{1, 84, 8400}));
    const float* q = y.data<float>();
    int64_t A = 8400;
    for (int64_t i = 0; i < y.numel(); ++i) ASSERT_TRUE(std::isfinite(q[i])) << "element " << i;
    float smin = 1, smax = 0;
    for (int64_t c = 4; c < 84; ++c)
        for (int64_t a = 0; a < A; ++a) {
            float s = q[c * A + a];
            smin = std::min(smin, s);
            smax = std::max(smax, s);
        }
    EXPECT_GT(smin, 0.f);
    EXPECT_LT(smax, 1.f);
    // Boxes: positive sizes, centres near their anchors (inside the image, give or take a cell).
    for (int64_t a = 0; a < A; a += 97) {
        EXPECT_GT(q[2 * A + a], 0.f);
        EXPECT_GT(q[3 * A + a], 0.f);
        EXPECT_GT(q[0 * A + a], -64.f);
        EXPECT_LT(q[0 * A + a], 704.f);
    }
}

// Calibration keeps every SiLU output in a sane range through the whole depth, on an
// image the calibration never saw (plain random weights reach rms 50+ or 1e-3).
TEST(Generate, ActivationsStaySaneThroughTheDepth) {
    Model m = gen("n", 80, 320);
    ReferenceExecutor exec(m, /*keep_intermediates=*/true);
    TensorMap vals = exec.run({{"images", test_image(320)}});
    int checked = 0;
    for (const Node& n : m.graph.nodes) {
        if (n.op_type != "Mul" || n.name.find("/act/") == std::string::npos) continue;
        auto it = vals.find(n.outputs[0]);
        ASSERT_NE(it, vals.end()) << n.name;
        const float* q = it->second.data<float>();
        double s2 = 0, mx = 0;
        for (int64_t i = 0; i < it->second.numel(); ++i) {
            s2 += double(q[i]) * q[i];
            mx = std::max(mx, double(std::fabs(q[i])));
        }
        double rms = std::sqrt(s2 / double(it->second.numel()));
        EXPECT_GT(rms, 0.03) << n.name;
        EXPECT_LT(rms, 5.0) << n.name;
        EXPECT_LT(mx, 100.0) << n.name;
        ++checked;
    }
    EXPECT_EQ(checked, 57);
}

TEST(Generate, SavedModelPassesOnnxChecker) {
    const char* py = "/usr/bin/python3";
    if (std::system((std::string(py) + " -c 'import onnx' >/dev/null 2>&1").c_str()) != 0) {
        if (yoloc_test::in_ci()) FAIL() << py << " lacks the onnx package; CI must have it";
        GTEST_SKIP() << py << " lacks the onnx package (apt install python3-onnx): skipping";
    }
    std::string dir = yoloc_test::scratch_dir("generate_checker");
    struct Case {
        const char* name;
        int nc, imgsz;
    };
    for (const Case& c : {Case{"yolov8n", 80, 640}, Case{"yolov8n_nc7_320", 7, 320}}) {
        std::string file = dir + "/" + c.name + ".onnx";
        save_onnx(gen("n", c.nc, c.imgsz), file);
        std::string cmd = std::string(py) +
                          " -c \"import onnx,sys; onnx.checker.check_model(sys.argv[1], full_check=True)\" '" + file + "'";
        EXPECT_EQ(std::system(cmd.c_str()), 0) << "onnx.checker rejected " << file;
    }
}

TEST(Generate, ShapesInferForOtherImageSizes) {
    Model m = gen("s", 3, 320);
    ShapeInfo si = infer_shapes(m);
    EXPECT_EQ(si.at("output0").shape, (Shape{1, 7, 2100}));
}
