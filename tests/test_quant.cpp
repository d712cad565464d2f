// INT8 post-training quantization (src/quant): the Q/DQ form TensorRT accepts, the
// calibration math, the TensorRT calibration cache, the rule checker, and bad input.
#include <gtest/gtest.h>


#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "core/file.h"
#include "engine/cpu/executor.h"
#include "engine/cpu/fast_executor.h"
#include "onnx/onnx_io.h"
#include "quant/calibrate.h"
#include "quant/fake_quant.h"
#include "quant/quantize.h"
#include "quant/trt_rules.h"
#include "test_util.h"
#include "yolo/generate.h"
#include "yolo/image.h"

using namespace yoloc;

namespace {

std::string shared(const std::string& rel) { return yoloc_test::shared_dir() + "/" + rel; }

using CmdResult = yoloc_test::CliResult;
CmdResult yoloc_cmd(const std::string& args) { return yoloc_test::run_cli(args); }

// The real model quantized once per test process (2 calibration images: structure
// does not depend on how many).
const QuantizeResult& real_quantized() {
    static QuantizeResult r = [] {
        Model m = load_onnx(shared("models/yolov8n_coco.onnx"));
        std::vector<std::string> imgs = calibration_images(shared("data/coco128/images/train2017"), 2);
        QuantizeOptions o;
        o.report_images = 1;
        o.keep_fp = 0;  // every layer quantized: the structure rules apply to all
        return quantize_model(m, imgs, o);
    }();
    return r;
}

const Node* producer_of(const Graph& g, const std::string& v) {
    int p = g.producer(v);
    return p < 0 ? nullptr : &g.nodes[size_t(p)];
}

Node make_node(const std::string& name, const std::string& op, std::vector<std::string> in, std::vector<std::string> out) {
    Node n;
    n.name = name;
    n.op_type = op;
    n.inputs = std::move(in);
    n.outputs = std::move(out);
    return n;
}

ValueInfo vinfo(const std::string& name, Shape s, DType t = DType::Float32) {
    ValueInfo v;
    v.name = name;
    v.dtype = t;
    for (auto d : s) v.shape.push_back(Dim{d, ""});
    return v;
}

// A one-Conv float model: x[1,4,8,8] -> Conv(w[8,4,3,3], b) -> y.
Model tiny_conv_model() {
    Model m;
    Graph& g = m.graph;
    g.inputs.push_back(vinfo("x", {1, 4, 8, 8}));
    g.outputs.push_back(vinfo("y", {1, 8, 8, 8}));
    std::vector<float> w(8 * 4 * 9);
    for (size_t i = 0; i < w.size(); ++i) w[i] = float(std::sin(double(i))) * 0.1f;
    g.initializers["w"] = Tensor::from_floats({8, 4, 3, 3}, w);
    g.initializers["b"] = Tensor::from_floats({8}, std::vector<float>(8, 0.01f));
    Node c = make_node("conv", "Conv", {"x", "w", "b"}, {"y"});
    c.attrs["pads"] = Attribute::of_ints({1, 1, 1, 1});
    g.nodes.push_back(c);
    return m;
}

// What ONNX Runtime's quantize_dynamic makes of a Conv: DynamicQuantizeLinear on the
// activation (uint8, run-time asymmetric zero point), ConvInteger with a uint8
// weight and a non-zero weight zero point, then Cast and a Mul by the scales.
Model ort_dynamic_like() {
    Model m = tiny_conv_model();
    Graph& g = m.graph;
    g.nodes.clear();
    g.initializers.erase("w");
    g.initializers["w_quantized"] = Tensor(DType::UInt8, {8, 4, 3, 3});
    Tensor wz(DType::UInt8, {});
    wz.data<uint8_t>()[0] = 131;
    g.initializers["w_zero_point"] = wz;
    g.initializers["w_scale"] = Tensor::scalar_f32(0.002f);
    g.nodes.push_back(make_node("x_QuantizeLinear", "DynamicQuantizeLinear", {"x"}, {"x_q", "x_scale", "x_zp"}));
    Node ci = make_node("conv_quant", "ConvInteger", {"x_q", "w_quantized", "x_zp", "w_zero_point"}, {"y_int"});
    ci.attrs["pads"] = Attribute::of_ints({1, 1, 1, 1});
    g.nodes.push_back(ci);
    Node cast = make_node("cast", "Cast", {"y_int"}, {"y_f"});
    cast.attrs["to"] = Attribute::of_int(1);
    g.nodes.push_back(cast);
    g.nodes.push_back(make_node("scale_mul", "Mul", {"x_scale", "w_scale"}, {"s"}));
    g.nodes.push_back(make_node("out_mul", "Mul", {"y_f", "s"}, {"y"}));
    return m;
}

bool has_rule(const std::vector<Violation>& v, const std::string& node, const std::string& rule) {
    for (const auto& x : v)
        if (x.node == node && x.rule == rule) return true;
    return false;
}

// A Q/DQ model of tiny_conv_model() made by yoloc's own insertion (amax 1 for x).
Model tiny_qdq() {
    Model m = tiny_conv_model();
    QuantPlan p = plan_quantization(m);
    return insert_qdq(m, p, {{"x", 1.0}}, true);
}

// A float model with a YOLOv8-like 3-D tail: x[1,3,16,16] -> Conv -> y[1,8,16,16]
// -> Reshape -> r[1,8,256] -> Softmax -> s -> Mul by a constant computed from a
// Constant node and an initializer (c2) -> out[1,8,256]; plus Shape(x) (int64).
Model tail_model() {
    Model m;
    Graph& g = m.graph;
    g.inputs.push_back(vinfo("x", {1, 3, 16, 16}));
    g.outputs.push_back(vinfo("out", {1, 8, 256}));
    std::vector<float> w(8 * 3 * 9);
    for (size_t i = 0; i < w.size(); ++i) w[i] = float(std::cos(double(i))) * 0.2f;
    g.initializers["w"] = Tensor::from_floats({8, 3, 3, 3}, w);
    g.initializers["shape3"] = Tensor::from_int64s({3}, {1, 8, 256});
    g.initializers["k"] = Tensor::scalar_f32(3.0f);
    Node c = make_node("conv", "Conv", {"x", "w"}, {"y"});
    c.attrs["pads"] = Attribute::of_ints({1, 1, 1, 1});
    g.nodes.push_back(c);
    Node cst = make_node("const", "Constant", {}, {"c"});
    cst.attrs["value"] = Attribute::of_tensor(Tensor::scalar_f32(0.5f));
    g.nodes.push_back(cst);
    g.nodes.push_back(make_node("const_mul", "Mul", {"c", "k"}, {"c2"}));
    g.nodes.push_back(make_node("shape", "Shape", {"x"}, {"xs"}));
    g.nodes.push_back(make_node("reshape", "Reshape", {"y", "shape3"}, {"r"}));
    Node sm = make_node("softmax", "Softmax", {"r"}, {"s"});
    sm.attrs["axis"] = Attribute::of_int(2);
    g.nodes.push_back(sm);
    g.nodes.push_back(make_node("scale", "Mul", {"s", "c2"}, {"out"}));
    m.opsets = {{"", 13}};
    return m;
}

// Parses "name: hex" lines of a calibration cache (header skipped).
std::map<std::string, float> parse_cache(const std::string& text) {
    std::map<std::string, float> r;
    std::istringstream in(text);
    std::string line;
    std::getline(in, line);
    while (std::getline(in, line)) {
        size_t k = line.rfind(": ");
        if (k == std::string::npos) continue;
        uint32_t bits = uint32_t(std::stoul(line.substr(k + 2), nullptr, 16));
        float f;
        std::memcpy(&f, &bits, 4);
        r[line.substr(0, k)] = f;
    }
    return r;
}

}  // namespace

// ---- Structure of what `quantize` writes, on the real YOLOv8n --------------------

TEST(QuantReal, EveryConvReadsDequantizedInputAndWeight) {
    REQUIRE_SHARED();
    const Graph& g = real_quantized().model.graph;
    int convs = 0;
    for (const auto& n : g.nodes) {
        if (n.op_type != "Conv" || is_dfl_conv(g, n)) continue;
        ++convs;
        const Node* x = producer_of(g, n.inputs[0]);
        const Node* w = producer_of(g, n.inputs[1]);
        ASSERT_TRUE(x && x->op_type == "DequantizeLinear") << n.name << " input is not dequantized";
        const Node* q = producer_of(g, x->inputs[0]);
        EXPECT_TRUE(q && q->op_type == "QuantizeLinear") << n.name;
        ASSERT_TRUE(w && w->op_type == "DequantizeLinear") << n.name << " weight is not dequantized";
        EXPECT_TRUE(g.is_initializer(w->inputs[0])) << n.name;
    }
    EXPECT_EQ(convs, 63);  // all but the DFL conv
}

TEST(QuantReal, DflConvStaysFloatByDefault) {
    REQUIRE_SHARED();
    const Graph& g = real_quantized().model.graph;
    int dfl = 0;
    for (const auto& n : g.nodes) {
        if (n.op_type != "Conv" || !is_dfl_conv(g, n)) continue;
        ++dfl;
        const Node* x = producer_of(g, n.inputs[0]);
        EXPECT_FALSE(x && x->op_type == "DequantizeLinear");
    }
    EXPECT_EQ(dfl, 1);
}

TEST(QuantReal, ZeroPointsAreInt8Zeros) {
    REQUIRE_SHARED();
    const Graph& g = real_quantized().model.graph;
    int qdq = 0;
    for (const auto& n : g.nodes) {
        if (n.op_type != "QuantizeLinear" && n.op_type != "DequantizeLinear") continue;
        ++qdq;
        ASSERT_EQ(n.inputs.size(), 3u) << n.name;
        const Tensor* z = g.find_initializer(n.inputs[2]);
        ASSERT_TRUE(z) << n.name;
        EXPECT_EQ(z->dtype(), DType::Int8) << n.name;
        for (int64_t i = 0; i < z->numel(); ++i) EXPECT_EQ(z->at_i64(i), 0) << n.name;
    }
    EXPECT_GT(qdq, 63 + 63);  // a weight DQ per Conv + Q/DQ pairs (shared by Convs reading one value)
}

TEST(QuantReal, WeightsAreInt8PerChannelOnAxis0InSymmetricRange) {
    REQUIRE_SHARED();
    const Graph& g = real_quantized().model.graph;
    for (const auto& n : g.nodes) {
        if (n.op_type != "Conv" || is_dfl_conv(g, n)) continue;
        const Node* w = producer_of(g, n.inputs[1]);
        ASSERT_TRUE(w);
        const Tensor& q = *g.find_initializer(w->inputs[0]);
        const Tensor& s = *g.find_initializer(w->inputs[1]);
        EXPECT_EQ(q.dtype(), DType::Int8);
        EXPECT_EQ(w->attr_i("axis", 1), 0) << n.name;
        EXPECT_EQ(s.numel(), q.dim(0)) << n.name;
        int mn = 0, mx = 0;
        for (int64_t i = 0; i < q.numel(); ++i) {
            mn = std::min<int>(mn, q.data<int8_t>()[i]);
            mx = std::max<int>(mx, q.data<int8_t>()[i]);
        }
        EXPECT_GE(mn, -127) << n.name;
        EXPECT_LE(mx, 127) << n.name;
    }
}

TEST(QuantReal, ActivationScalesArePerTensor) {
    REQUIRE_SHARED();
    const Graph& g = real_quantized().model.graph;
    for (const auto& n : g.nodes)
        if (n.op_type == "QuantizeLinear") EXPECT_EQ(g.find_initializer(n.inputs[1])->numel(), 1) << n.name;
}

// The scale of the QuantizeLinear reading `v`, or 0 when none does.
float q_scale_of(const Graph& g, const std::string& v) {
    for (const auto& n : g.nodes)
        if (n.op_type == "QuantizeLinear" && n.inputs[0] == v) return g.find_initializer(n.inputs[1])->data<float>()[0];
    return 0.f;
}

TEST(QuantReal, TensorsJoinedByAConcatShareOneScale) {
    REQUIRE_SHARED();
    const Graph& g = real_quantized().model.graph;
    int checked = 0;
    for (const auto& n : g.nodes) {
        if (n.op_type != "Concat") continue;
        const float sy = q_scale_of(g, n.outputs[0]);
        if (sy == 0.f) continue;  // the Detect tail's concats feed no Q
        for (const auto& x : n.inputs) {
            const float sx = q_scale_of(g, x);
            if (sx == 0.f) continue;
            EXPECT_EQ(sx, sy) << n.name << " input " << x;
            ++checked;
        }
    }
    // yolov8n: the C2f split halves read by bottlenecks (8 C2f) and the backbone/neck
    // tensors read by a conv and a concat (model.4, model.6).
    EXPECT_GE(checked, 10);
}

TEST(QuantShare, ConcatGroupsThroughPoolsAndResizesTakeTheLargestRange) {
    Model m;
    Graph& g = m.graph;
    g.nodes.push_back(make_node("cat", "Concat", {"a", "b"}, {"y"}));
    g.nodes.push_back(make_node("pool", "MaxPool", {"y"}, {"z"}));
    g.nodes.push_back(make_node("up", "Resize", {"c", "", "scales"}, {"u"}));
    g.nodes.push_back(make_node("cat2", "Concat", {"u", "z"}, {"v"}));
    Node lin = make_node("lin", "Resize", {"w", "", "scales"}, {"wl"});
    lin.attrs["mode"] = Attribute::of_string("linear");
    g.nodes.push_back(lin);
    g.nodes.push_back(make_node("conv", "Conv", {"a", "k"}, {"d"}));
    const std::map<std::string, double> amax = {{"a", 1}, {"b", 3}, {"y", 2}, {"z", 2.5}, {"c", 0.5},
                                                {"u", 0.5}, {"v", 2.5}, {"w", 7}, {"wl", 6}, {"d", 9}};
    std::vector<std::vector<std::string>> groups;
    auto r = share_concat_amax(m, amax, &groups);
    for (const char* v : {"a", "b", "y", "z", "c", "u", "v"}) EXPECT_EQ(r.at(v), 3.0) << v;
    EXPECT_EQ(r.at("w"), 7.0);  // a linear Resize does not commute with rounding: own range
    EXPECT_EQ(r.at("wl"), 6.0);
    EXPECT_EQ(r.at("d"), 9.0);  // a Conv output is not joined to its input
    EXPECT_EQ(groups.size(), 1u);
}

TEST(QuantReal, ResidualAddsHaveQdqOnOneInputOnly) {
    REQUIRE_SHARED();
    const Graph& g = real_quantized().model.graph;
    int adds = 0;
    for (const auto& n : g.nodes) {
        if (n.op_type != "Add" || g.is_initializer(n.inputs[0]) || g.is_initializer(n.inputs[1])) continue;
        const Node* a = producer_of(g, n.inputs[0]);
        const Node* b = producer_of(g, n.inputs[1]);
        int dq = (a && a->op_type == "DequantizeLinear") + (b && b->op_type == "DequantizeLinear");
        if (a && b && (a->op_type == "Mul" || b->op_type == "Mul")) {
            ++adds;
            EXPECT_EQ(dq, 1) << n.name;
        }
    }
    EXPECT_EQ(adds, 6);  // yolov8n's backbone bottlenecks: 1 + 2 + 2 + 1
}

TEST(QuantReal, AddsOnlyQuantizeAndDequantizeOps) {
    REQUIRE_SHARED();
    Model f = load_onnx(shared("models/yolov8n_coco.onnx"));
    auto before = f.graph.op_histogram();
    auto after = real_quantized().model.graph.op_histogram();
    for (const auto& kv : after) {
        if (kv.first == "QuantizeLinear" || kv.first == "DequantizeLinear") continue;
        EXPECT_EQ(kv.second, before[kv.first]) << kv.first;
    }
    EXPECT_EQ(after.size(), before.size() + 2);
}

TEST(QuantReal, KeepsInputsOutputsAndOpset) {
    REQUIRE_SHARED();
    Model f = load_onnx(shared("models/yolov8n_coco.onnx"));
    const Model& q = real_quantized().model;
    ASSERT_EQ(q.graph.inputs.size(), f.graph.inputs.size());
    ASSERT_EQ(q.graph.outputs.size(), f.graph.outputs.size());
    EXPECT_EQ(q.graph.inputs[0].name, f.graph.inputs[0].name);
    EXPECT_EQ(q.graph.outputs[0].name, f.graph.outputs[0].name);
    EXPECT_EQ(q.graph.inputs[0].concrete(), f.graph.inputs[0].concrete());
    EXPECT_EQ(q.graph.outputs[0].concrete(), f.graph.outputs[0].concrete());
    EXPECT_EQ(q.opset(), 17);
}

TEST(QuantReal, PassesTheOnnxChecker) {
    REQUIRE_SHARED();
    // Debian's python3-onnx, else the project's .venv (scripts/peer-venv.sh) when it has onnx.
    std::string py = "/usr/bin/python3";
    if (std::system((py + " -c 'import onnx' 2>/dev/null").c_str()) != 0) py = std::string(YOLOC_SOURCE_DIR) + "/.venv/bin/python";
    if (std::system(("'" + py + "' -c 'import onnx' 2>/dev/null").c_str()) != 0) {
        if (yoloc_test::in_ci()) FAIL() << "python3-onnx is missing in CI";
        GTEST_SKIP() << "neither /usr/bin/python3 nor .venv/bin/python has the onnx module";
    }
    std::string dir = yoloc_test::scratch_dir("quant_checker");
    save_onnx(real_quantized().model, dir + "/q.onnx");
    std::string cmd = "'" + py + "' -c \"import onnx,sys; onnx.checker.check_model(sys.argv[1], full_check=True)\" '" +
                      dir + "/q.onnx'";
    EXPECT_EQ(std::system(cmd.c_str()), 0);
}

TEST(QuantReal, PassesTheTensorRtRules) {
    REQUIRE_SHARED();
    std::vector<Violation> v = check_model(real_quantized().model, "tensorrt");
    for (const auto& x : v) ADD_FAILURE() << x.line();
}

TEST(QuantReal, PerTensorReproducesTheExportsInt8WeightsExactly) {
    // The model's weights were de-quantized from a per-tensor INT8 export: every
    // conv weight lies on its layer's grid, so per-tensor max/127 re-quantization is
    // lossless for those 62 convs (see docs/QUANTIZATION.md).
    REQUIRE_SHARED();
    Model m = load_onnx(shared("models/yolov8n_coco.onnx"));
    QuantPlan p = plan_quantization(m);
    std::map<std::string, double> amax;
    for (const auto& l : p.layers) amax[l.input] = 1.0;
    Model q = prepare_qdq_for_float(insert_qdq(m, p, amax, /*per_channel=*/false));
    int exact = 0;
    for (const auto& n : q.graph.nodes) {
        if (n.op_type != "Conv") continue;
        const Tensor& wq = *q.graph.find_initializer(n.inputs[1]);
        // The original float weight: same Conv node name in the float model.
        for (const auto& fn : m.graph.nodes)
            if (fn.name == n.name) {
                const Tensor& wf = *m.graph.find_initializer(fn.inputs[1]);
                double err = 0, mx = 0;
                for (int64_t i = 0; i < wf.numel(); ++i) {
                    err = std::max(err, double(std::fabs(wf.data<float>()[i] - wq.data<float>()[i])));
                    mx = std::max(mx, double(std::fabs(wf.data<float>()[i])));
                }
                if (err <= 1e-6 * mx) ++exact;
            }
    }
    EXPECT_GE(exact, 62);
}

// Quantization end to end through the CLI: `quantize` writes the Q/DQ model and
// its cache (every activation: 243 tensors on yolov8n), and `detect` runs the Q/DQ
// model and still finds the dog.
TEST(QuantReal, CliQuantizeThenDetectOnTheQdqModel) {
    REQUIRE_SHARED();
    std::string dir = yoloc_test::scratch_dir("quant_cli_detect");
    CmdResult q = yoloc_cmd("quantize " + shared("models/yolov8n_coco.onnx") + " --calib " +
                            shared("data/coco128/images/train2017") + " --calib-count 2 --keep-fp 0 -o " + dir +
                            "/q.onnx");
    ASSERT_EQ(q.code, 0) << q.out;
    ASSERT_TRUE(file_exists(dir + "/q.onnx"));
    ASSERT_TRUE(file_exists(dir + "/q.cache"));
    EXPECT_NE(q.out.find("quantized 69 layers"), std::string::npos) << q.out;  // 63 convs + 6 Adds (DFL float)
    EXPECT_NE(q.out.find("(243 tensors)"), std::string::npos) << q.out;
    std::string cache = read_file(dir + "/q.cache");
    EXPECT_EQ(std::count(cache.begin(), cache.end(), '\n'), 244);  // header + 243 tensors
    EXPECT_NE(cache.find("\noutput0: "), std::string::npos);
    CmdResult d = yoloc_cmd("detect " + dir + "/q.onnx " + shared("data/samples/dog.jpg") + " --out " + dir + "/det");
    ASSERT_EQ(d.code, 0) << d.out;
    nlohmann::json det = nlohmann::json::parse(read_file(dir + "/det/dog.json"));
    bool dog = false;
    for (const auto& x : det["detections"]) dog = dog || (x["name"] == "dog" && x["conf"].get<double>() > 0.5);
    EXPECT_TRUE(dog) << det.dump();
}

TEST(QuantKeepFp, LeavesTheMostSensitiveLayerInFloat) {
    REQUIRE_SHARED();
    GenerateOptions go;
    go.imgsz = 64;
    Model m = generate_yolov8(go);
    QuantizeOptions o;
    o.keep_fp = 1;
    o.sensitivity_images = 1;
    o.report_images = 1;
    QuantizeResult r = quantize_model(m, calibration_images(shared("data/coco128/images/train2017"), 1), o);
    ASSERT_EQ(r.kept_fp.size(), 1u);
    // The kept layer is the one with the lowest output SQNR when quantized alone.
    double lowest = 1e300;
    std::string most;
    for (const auto& l : r.layers)
        if (l.sensitivity_db < lowest) lowest = l.sensitivity_db, most = l.node;
    EXPECT_EQ(r.kept_fp[0], most);
    const Graph& g = r.model.graph;
    for (const auto& n : g.nodes)
        if (n.name == most && n.op_type == "Conv") {
            const Node* x = producer_of(g, n.inputs[0]);
            EXPECT_FALSE(x && x->op_type == "DequantizeLinear");
        }
}

// ---- Execution of Q/DQ models ----------------------------------------------------

TEST(QuantExec, FastExecutorMatchesReferenceOnQdqModel) {
    GenerateOptions go;
    go.imgsz = 64;
    Model m = generate_yolov8(go);
    QuantPlan p = plan_quantization(m);
    std::map<std::string, double> amax;
    for (const auto& l : p.layers) amax[l.input] = 4.0;
    Model q = insert_qdq(m, p, amax, true);
    Tensor x(DType::Float32, {1, 3, 64, 64});
    for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = float((i * 7919) % 256) / 255.0f;
    const std::string in = q.graph.inputs[0].name, out = q.graph.outputs[0].name;
    Tensor a = make_executor(q, "reference")->run({{in, x}}).at(out);
    Tensor b = make_executor(q, "fast")->run({{in, x}}).at(out);
    // Summation order differs, so a value near a rounding boundary can land one
    // int8 step apart; the outputs must still agree closely overall.
    EXPECT_GT(sqnr_db(a, b), 30.0);
}

TEST(QuantExec, FastPlanKeepsConvsFusedOnQdqModel) {
    GenerateOptions go;
    go.imgsz = 64;
    Model m = generate_yolov8(go);
    QuantPlan p = plan_quantization(m, {}, /*quantize_dfl=*/false);  // its input is a plain tensor
    std::map<std::string, double> amax;
    for (const auto& l : p.layers) amax[l.input] = 4.0;
    Model q = prepare_qdq_for_float(insert_qdq(m, p, amax, true));
    FastPlanStats f = FastExecutor(m, ExecutorOptions{}).stats();
    FastPlanStats s = FastExecutor(q, ExecutorOptions{}).stats();
    EXPECT_EQ(s.convs, f.convs);
    EXPECT_EQ(s.fused_silu, f.fused_silu);
    EXPECT_EQ(s.fused_residual, f.fused_residual);
    // Only the Q/DQ of the plain graph input run as reference steps.
    EXPECT_LE(s.ref_steps, f.ref_steps + 2);
}

TEST(QuantExec, WeightDequantizeIsFoldedForTheFastPath) {
    Model q = prepare_qdq_for_float(tiny_qdq());
    int dq = 0, qn = 0;
    for (const auto& n : q.graph.nodes) {
        dq += n.op_type == "DequantizeLinear";
        qn += n.op_type == "QuantizeLinear";
    }
    EXPECT_EQ(qn, 1);
    EXPECT_EQ(dq, 1);  // the activation's; the weight's became a float initializer
    EXPECT_EQ(q.graph.find_initializer(q.graph.nodes.back().inputs[1])->dtype(), DType::Float32);
}

// ---- Calibration math ------------------------------------------------------------

TEST(QuantCalib, EntropyMatchesTensorRtAlgorithmOnSyntheticHistogram) {
    // Expected value from a NumPy replica of pytorch-quantization's
    // _compute_amax_entropy (TensorRT's EntropyCalibration2) on the same histogram:
    // counts round(1e6 * exp(-k/100)), plus 3 outliers in bin 1500 -> bin 1109.
    std::vector<double> h(2048);
    for (int k = 0; k < 2048; ++k) h[size_t(k)] = std::nearbyint(1e6 * std::exp(-k / 100.0));
    h[1500] += 3;
    EXPECT_NEAR(amax_entropy(h, 0.01), 11.09, 1e-9);
}

TEST(QuantCalib, PercentileIsUpperEdgeOfTheBinReachingIt) {
    std::vector<double> h(2048, 0.0);
    h[0] = 99;
    h[1000] = 1;
    EXPECT_DOUBLE_EQ(amax_percentile(h, 0.5, 99.0), 0.5);
    EXPECT_DOUBLE_EQ(amax_percentile(h, 0.5, 100.0), 1001 * 0.5);
}

TEST(QuantCalib, MinmaxIsTheObservedMax) {
    TensorStats st;
    st.amax = 3.5;
    st.hist.assign(2048, 1.0);
    EXPECT_DOUBLE_EQ(choose_amax(st, CalibMethod::MinMax, 99.99), 3.5);
}

TEST(QuantCalib, MseClipsAFarOutlier) {
    std::vector<double> h(2048, 0.0);
    for (int k = 0; k < 200; ++k) h[size_t(k)] = 1e6;
    h[2047] = 1;  // one value far out: clipping it costs less than a 10x coarser grid
    double a = amax_mse(h, 1.0);
    EXPECT_LT(a, 400.0);
    EXPECT_GT(a, 128.0);
}

TEST(QuantCalib, ClippingRatioCountsValuesAboveAmax) {
    TensorStats st;
    st.amax = 2048;
    st.hist.assign(2048, 0.0);
    st.hist[10] = 90;
    st.hist[2000] = 10;
    st.count = 100;
    EXPECT_DOUBLE_EQ(clipping_ratio(st, 1000.0), 0.1);
}

// ---- TensorRT calibration cache --------------------------------------------------

TEST(QuantCache, HeaderAndHexAreFloat32ScaleBits) {
    std::string c = calibration_cache({{"images", 1.0}, {"/model.0/act/Mul_output_0", 12.7}}, 8205, CalibMethod::Entropy);
    std::istringstream in(c);
    std::string line;
    std::getline(in, line);
    EXPECT_EQ(line, "TRT-8205-EntropyCalibration2");
    std::getline(in, line);
    EXPECT_EQ(line, "/model.0/act/Mul_output_0: " + float_hex(0.1f));
    std::getline(in, line);
    float s = 1.0f / 127.0f;
    uint32_t bits;
    std::memcpy(&bits, &s, 4);
    char hex[16];
    std::snprintf(hex, sizeof hex, "%08x", bits);
    EXPECT_EQ(line, std::string("images: ") + hex);
    EXPECT_EQ(float_hex(1.0f), "3f800000");
}

TEST(QuantCache, MinmaxHeader) {
    std::string c = calibration_cache({{"x", 1.0}}, 8601, CalibMethod::MinMax);
    EXPECT_EQ(c.substr(0, c.find('\n')), "TRT-8601-MinMaxCalibration");
}

TEST(QuantCache, CalibrationTensorsIncludeTheTailButNoConstants) {
    std::vector<std::string> v = calibration_tensors(tail_model());
    std::set<std::string> got(v.begin(), v.end());
    EXPECT_EQ(got, (std::set<std::string>{"x", "y", "r", "s", "out"}));
}

// End to end on the tail model (no ../shared needed): every float activation,
// the 3-D ones included, gets a line with a positive calibrated scale.
TEST(QuantCache, CoversTheThreeDTailEndToEnd) {
    std::string dir = yoloc_test::scratch_dir("quant_cache_tail");
    Image img(20, 12);
    for (size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = uint8_t((i * 37) % 251);
    save_png(dir + "/a.png", img);
    QuantizeOptions o;
    o.keep_fp = 0;
    o.report_images = 1;
    QuantizeResult r = quantize_model(tail_model(), {dir + "/a.png"}, o);
    std::map<std::string, float> c = parse_cache(r.cache_text);
    for (const char* name : {"x", "y", "r", "s", "out"}) {
        ASSERT_TRUE(c.count(name)) << name << " missing from the cache:\n" << r.cache_text;
        EXPECT_GT(c[name], 0.f) << name;
        EXPECT_FLOAT_EQ(c[name], float(r.cache_amax.at(name) / 127.0)) << name;
    }
    EXPECT_EQ(c.size(), 5u) << r.cache_text;
    // Softmax output lies in (0, 1]; minmax-like bounds for any method.
    EXPECT_LE(r.cache_amax.at("s"), 1.0 + 1e-6);
}

TEST(QuantCache, RealModelCoversEveryActivationIncludingTheDetectTail) {
    REQUIRE_SHARED();
    const QuantizeResult& q = real_quantized();
    std::map<std::string, float> c = parse_cache(q.cache_text);
    // The 3-D Detect tail of yolov8n (after the per-level Reshapes), output0 included.
    const std::vector<std::string> tail = {
        "/model.22/Reshape_output_0",   "/model.22/Reshape_1_output_0", "/model.22/Reshape_2_output_0",
        "/model.22/Concat_3_output_0",  "/model.22/Split_output_0",     "/model.22/Split_output_1",
        "/model.22/dfl/Reshape_1_output_0", "/model.22/Split_1_output_0", "/model.22/Split_1_output_1",
        "/model.22/Sub_output_0",       "/model.22/Add_output_0",       "/model.22/Add_1_output_0",
        "/model.22/Div_output_0",       "/model.22/Sub_1_output_0",     "/model.22/Concat_4_output_0",
        "/model.22/Mul_output_0",       "/model.22/Sigmoid_output_0",   "output0"};
    for (const auto& t : tail) {
        ASSERT_TRUE(c.count(t)) << t << " missing from the calibration cache";
        EXPECT_GT(c[t], 0.f) << t;
    }
    // ... and the 4-D tensors around the DFL softmax, the input, a backbone activation.
    for (const char* t : {"images", "/model.22/dfl/Softmax_output_0", "/model.22/dfl/conv/Conv_output_0",
                          "/model.0/act/Mul_output_0"})
        EXPECT_TRUE(c.count(t)) << t;
    // No constants: the Resize scales, the Detect's Div constant, the Reshape shapes.
    EXPECT_FALSE(c.count("/model.22/Constant_3_output_0"));
    EXPECT_FALSE(c.count("/model.22/Constant_output_0"));
    // 225 4-D float activations (input included) + 18 tail tensors.
    EXPECT_EQ(c.size(), 243u);
    EXPECT_EQ(q.cache_amax.size(), c.size());
    // Sigmoid scores lie in (0, 1).
    EXPECT_LE(q.cache_amax.at("/model.22/Sigmoid_output_0"), 1.0 + 1e-6);
}

// ---- The TensorRT rule checker -------------------------------------------------

TEST(QuantCheck, FlagsOrtDynamicQuantization) {
    std::vector<Violation> v = check_model(ort_dynamic_like(), "tensorrt");
    EXPECT_TRUE(has_rule(v, "x_QuantizeLinear", "dynamic-quantization"));
    EXPECT_TRUE(has_rule(v, "conv_quant", "integer-op"));
    EXPECT_TRUE(has_rule(v, "conv_quant", "zero-point"));  // run-time and 131
    EXPECT_TRUE(has_rule(v, "conv_quant", "uint8"));
}

TEST(QuantCheck, PassesYolocsOwnQdq) { EXPECT_TRUE(check_model(tiny_qdq(), "tensorrt").empty()); }

TEST(QuantCheck, FlagsNonZeroZeroPoint) {
    Model m = tiny_qdq();
    for (auto& kv : m.graph.initializers)
        if (kv.first == "x_zero_point") kv.second.data<int8_t>()[0] = 3;
    EXPECT_TRUE(has_rule(check_model(m), "x_QuantizeLinear", "zero-point"));
}

TEST(QuantCheck, FlagsUint8ZeroPoint) {
    Model m = tiny_qdq();
    m.graph.initializers["x_zero_point"] = Tensor(DType::UInt8, {});
    EXPECT_TRUE(has_rule(check_model(m), "x_QuantizeLinear", "uint8"));
}

TEST(QuantCheck, FlagsPerChannelActivationScale) {
    Model m = tiny_qdq();
    m.graph.initializers["x_scale"] = Tensor::from_floats({4}, {0.1f, 0.1f, 0.1f, 0.1f});
    m.graph.initializers["x_zero_point"] = Tensor(DType::Int8, {4});
    EXPECT_TRUE(has_rule(check_model(m), "x_QuantizeLinear", "per-channel-activation"));
}

TEST(QuantCheck, FlagsPerAxisBelowOpset13) {
    Model m = tiny_qdq();
    m.opsets = {{"", 12}};
    EXPECT_TRUE(has_rule(check_model(m), "w_DequantizeLinear", "opset"));
}

TEST(QuantCheck, FlagsQuantizedInputWithFloatWeight) {
    Model m = tiny_conv_model();
    QuantPlan p = plan_quantization(m);
    Model q = insert_qdq(m, p, {{"x", 1.0}}, true);
    // Put the float weight back: the input stays quantized.
    q.graph.initializers["w"] = m.graph.initializers.at("w");
    for (auto& n : q.graph.nodes)
        if (n.op_type == "Conv") n.inputs[1] = "w";
    remove_dead(q.graph);
    EXPECT_TRUE(has_rule(check_model(q), "conv", "conv-weight-not-quantized"));
}

TEST(QuantCheck, FlagsQuantizeNotFollowedByDequantize) {
    Model m = tiny_conv_model();
    Graph& g = m.graph;
    g.initializers["s"] = Tensor::scalar_f32(0.1f);
    g.initializers["z"] = Tensor(DType::Int8, {});
    g.nodes.insert(g.nodes.begin(), make_node("q", "QuantizeLinear", {"x", "s", "z"}, {"xq"}));
    Node cast = make_node("cast", "Cast", {"xq"}, {"xf"});
    cast.attrs["to"] = Attribute::of_int(1);
    g.nodes.insert(g.nodes.begin() + 1, cast);
    g.nodes.back().inputs[0] = "xf";
    EXPECT_TRUE(has_rule(check_model(m), "q", "q-without-dq"));
}

// Q -> DQ on activation `v` (scale 0.1, int8 zero point 0); returns the DQ output.
std::string add_qdq(Graph& g, const std::string& v) {
    g.initializers[v + "_s"] = Tensor::scalar_f32(0.1f);
    g.initializers[v + "_z"] = Tensor(DType::Int8, {});
    g.nodes.push_back(make_node(v + "_q", "QuantizeLinear", {v, v + "_s", v + "_z"}, {v + "_qo"}));
    g.nodes.push_back(make_node(v + "_dq", "DequantizeLinear", {v + "_qo", v + "_s", v + "_z"}, {v + "_dqo"}));
    return v + "_dqo";
}

TEST(QuantCheck, FlagsAddWithBothInputsQuantized) {
    Model m;
    Graph& g = m.graph;
    g.inputs.push_back(vinfo("a", {1, 4, 8, 8}));
    g.inputs.push_back(vinfo("b", {1, 4, 8, 8}));
    g.outputs.push_back(vinfo("y", {1, 4, 8, 8}));
    std::string da = add_qdq(g, "a"), db = add_qdq(g, "b");
    g.nodes.push_back(make_node("add", "Add", {da, db}, {"y"}));
    m.opsets = {{"", 13}};
    std::vector<Violation> v = check_model(m, "tensorrt");
    EXPECT_TRUE(has_rule(v, "add", "add-both-quantized"));
    // One side only (what yoloc writes for a residual Add) is clean.
    g.nodes.back().inputs[1] = "b";
    remove_dead(g);
    EXPECT_TRUE(check_model(m, "tensorrt").empty());
}

TEST(QuantCheck, FlagsQuantizedWeightWithFloatInput) {
    Model q = tiny_qdq();
    for (auto& n : q.graph.nodes)
        if (n.op_type == "Conv") n.inputs[0] = "x";
    remove_dead(q.graph);
    EXPECT_TRUE(has_rule(check_model(q), "conv", "conv-input-not-quantized"));
}

TEST(QuantCheck, FlagsPerChannelWeightOnTheWrongAxis) {
    Model q = tiny_qdq();
    for (auto& n : q.graph.nodes)
        if (n.name == "w_DequantizeLinear") n.attrs["axis"] = Attribute::of_int(1);
    EXPECT_TRUE(has_rule(check_model(q), "w_DequantizeLinear", "weight-axis"));
}

// What ONNX Runtime's quantize_static writes for a Conv bias: an int32 initializer
// behind DequantizeLinear.
TEST(QuantCheck, FlagsInt32BiasDequantize) {
    Model q = tiny_qdq();
    Graph& g = q.graph;
    g.initializers["b_q"] = Tensor(DType::Int32, {8});
    g.initializers["b_s"] = Tensor::from_floats({8}, std::vector<float>(8, 0.001f));
    g.initializers["b_z"] = Tensor(DType::Int32, {8});
    Node dq = make_node("b_DequantizeLinear", "DequantizeLinear", {"b_q", "b_s", "b_z"}, {"b_f"});
    dq.attrs["axis"] = Attribute::of_int(0);
    g.nodes.insert(g.nodes.begin(), dq);
    for (auto& n : g.nodes)
        if (n.op_type == "Conv") n.inputs[2] = "b_f";
    remove_dead(g);
    EXPECT_TRUE(has_rule(check_model(q), "b_DequantizeLinear", "weight-dtype"));
}

TEST(QuantCheck, CliJsonListsViolations) {
    std::string dir = yoloc_test::scratch_dir("quant_check_json");
    save_onnx(ort_dynamic_like(), dir + "/dyn.onnx");
    CmdResult r = yoloc_cmd("check " + dir + "/dyn.onnx --target tensorrt --json");
    EXPECT_EQ(r.code, 3) << r.out;
    EXPECT_NE(r.out.find("\"rule\": \"dynamic-quantization\""), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("\"fix\""), std::string::npos) << r.out;
}

TEST(QuantCheck, CliExitCodes) {
    std::string dir = yoloc_test::scratch_dir("quant_check_cli");
    save_onnx(ort_dynamic_like(), dir + "/dyn.onnx");
    save_onnx(tiny_qdq(), dir + "/ok.onnx");
    CmdResult bad = yoloc_cmd("check " + dir + "/dyn.onnx --target tensorrt");
    EXPECT_NE(bad.code, 0);
    EXPECT_NE(bad.out.find("x_QuantizeLinear: [dynamic-quantization]"), std::string::npos) << bad.out;
    EXPECT_NE(bad.out.find("fix:"), std::string::npos);
    CmdResult good = yoloc_cmd("check " + dir + "/ok.onnx --target tensorrt");
    EXPECT_EQ(good.code, 0) << good.out;
}

// ---- Bad input: clear error, nothing written -----------------------------------

TEST(QuantBadInput, EmptyCalibrationFolder) {
    std::string dir = yoloc_test::scratch_dir("quant_empty_calib");
    yoloc_test::scratch_dir("quant_empty_calib/calib");
    try {
        calibration_images(dir + "/calib", 0);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("no calibration images"), std::string::npos) << e.what();
    }
}

TEST(QuantBadInput, FewerImagesThanCalibCount) {
    REQUIRE_SHARED();
    try {
        calibration_images(shared("data/coco128/images/train2017"), 500);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("only 128"), std::string::npos) << e.what();
    }
}

TEST(QuantBadInput, AlreadyQuantizedModel) { EXPECT_THROW(check_float_model(tiny_qdq()), Error); }

TEST(QuantBadInput, UnknownMethod) { EXPECT_THROW(parse_calib_method("kl"), Error); }

// Every bad-input case of `quantize` through the CLI: one `error: ...` line that
// says what is wrong, a non-zero exit, and neither OUT.onnx nor OUT.cache written.
TEST(QuantBadInput, CliWritesNothingOnError) {
    std::string dir = yoloc_test::scratch_dir("quant_cli_bad");
    yoloc_test::scratch_dir("quant_cli_bad/calib");      // empty
    yoloc_test::scratch_dir("quant_cli_bad/one");        // one image
    yoloc_test::scratch_dir("quant_cli_bad/corrupt");    // a .jpg that is not an image
    yoloc_test::scratch_dir("quant_cli_bad/noread");     // unreadable (chmod 000)
    Image img(16, 16, 90);
    save_png(dir + "/one/a.png", img);
    save_png(dir + "/noread/a.png", img);
    {
        std::ofstream f(dir + "/corrupt/bad.jpg");
        f << "this is not a JPEG";
    }
    {
        std::ofstream f(dir + "/list.txt");
        f << "one/a.png\nmissing.jpg\n";
    }
    {
        std::ofstream f(dir + "/notes.md");
        f << "not a list";
    }
    save_onnx(tiny_conv_model(), dir + "/m.onnx");
    // tiny_conv_model() has 4 input channels; a 3-channel model for the cases that
    // get as far as running images.
    save_onnx(tail_model(), dir + "/t.onnx");
    save_onnx(tiny_qdq(), dir + "/q.onnx");
    const std::string out = " -o " + dir + "/out.onnx";
    struct Case {
        std::string args, says;
    };
    std::vector<Case> cases = {
        {"quantize " + dir + "/m.onnx --calib " + dir + "/calib" + out, "no calibration images"},
        {"quantize " + dir + "/m.onnx --calib " + dir + "/missing" + out, "not a folder of calibration images"},
        {"quantize " + dir + "/m.onnx --calib " + dir + "/notes.md" + out, "not a folder of calibration images"},
        {"quantize " + dir + "/t.onnx --calib " + dir + "/list.txt" + out, "missing.jpg"},
        {"quantize " + dir + "/t.onnx --calib " + dir + "/corrupt" + out, "bad.jpg"},
        {"quantize " + dir + "/t.onnx --calib " + dir + "/one --calib-count 3" + out, "--calib-count 3 but only 1"},
        {"quantize " + dir + "/q.onnx --calib " + dir + "/one" + out, "already quantized"},
        {"quantize " + dir + "/m.onnx --calib " + dir + "/one --method kl" + out, "unknown calibration method 'kl'"},
    };
    // root reads any folder, so the permission case only means something for other users.
    if (::geteuid() != 0 && ::chmod((dir + "/noread").c_str(), 0) == 0)
        cases.push_back({"quantize " + dir + "/t.onnx --calib " + dir + "/noread" + out, "cannot open folder"});
    for (const Case& c : cases) {
        CmdResult r = yoloc_cmd(c.args);
        EXPECT_NE(r.code, 0) << c.args;
        EXPECT_EQ(r.out.rfind("error: ", 0), 0u) << c.args << "\n" << r.out;
        EXPECT_NE(r.out.find(c.says), std::string::npos) << c.args << "\n" << r.out;
        EXPECT_FALSE(file_exists(dir + "/out.onnx")) << c.args;
        EXPECT_FALSE(file_exists(dir + "/out.cache")) << c.args;
    }
    ::chmod((dir + "/noread").c_str(), 0755);
}
