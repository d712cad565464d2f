// INT8 engines from Q/DQ models: the INT8 tensor-core conv against the direct INT8
// kernel (same integer sums) and against the reference executor running the Q/DQ
// graph (fake quantization in float: the definition), then whole models. Needs a CUDA
// GPU; run by scripts/test-gpu.sh.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>

#include "engine/cpu/executor.h"
#include "engine/cuda/conv_int8.h"
#include "engine/cuda/conv_mma.h"
#include "engine/cuda/runtime.h"
#include "models.h"
#include "onnx/onnx_io.h"
#include "quant/calibrate.h"
#include "quant/quantize.h"
#include "test_util.h"
#include "yolo/generate.h"
#include "yolo/image.h"
#include "yolo/letterbox.h"

using namespace yoloc;
using yoloc::engine::Precision;

namespace {

using Outputs = std::vector<std::vector<float>>;

Tensor rand_input(Shape s, uint32_t seed, float lo, float hi) {
    auto v = yoloc_test::random_floats(size_t(shape_numel(s)), seed, 1.0f);
    for (auto& x : v) x = lo + (x + 1.f) * 0.5f * (hi - lo);
    return Tensor::from_floats(s, v);
}

Outputs gpu_run(const Model& m, Precision p, const Tensor& x, int conv_kernel = 0, engine::PlanStats* stats = nullptr,
                bool int8_storage = true) {
    gpu::BuildOptions o;
    o.plan.precision = p;
    o.plan.int8_storage = int8_storage;
    o.plan.batch = x.dim(0);
    o.tune = conv_kernel == 0;
    gpu::BuildResult r = gpu::build_engine(m, o);
    if (stats) *stats = r.file.plan.stats;
    auto eng = gpu::make_engine(r.file, "in-memory engine");
    gpu::ContextOptions co;
    co.conv_kernel = conv_kernel;
    gpu::Context ctx(eng, co);
    Outputs out;
    ctx.infer(x.data<float>(), out);
    return out;
}

Tensor ref_run(const Model& m, const Tensor& x) {
    ReferenceExecutor ex(m);
    return ex.run({{m.graph.inputs[0].name, x}}).at(m.graph.outputs[0].name);
}

double sqnr(const Tensor& want, const std::vector<float>& got) {
    return sqnr_db(want, Tensor::from_floats(want.shape(), got));
}

double max_rel(const std::vector<float>& a, const std::vector<float>& b) {
    double e = 0;
    for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
        double d = std::fabs(double(a[i]) - double(b[i])) / (1.0 + std::fabs(double(b[i])));
        if (!(d <= e)) e = std::isnan(d) ? 1e30 : d;
    }
    return a.size() == b.size() ? e : 1e30;
}

// Fraction of elements within `tol` (relative to 1 + |ref|) of the reference.
double frac_close(const std::vector<float>& got, const Tensor& want, double tol) {
    size_t ok = 0;
    for (int64_t i = 0; i < want.numel(); ++i) {
        double w = want.data<float>()[i];
        ok += std::fabs(double(got[size_t(i)]) - w) <= tol * (1.0 + std::fabs(w));
    }
    return double(ok) / double(want.numel());
}

// One conv (+SiLU) (+ residual Add of the input) with Q/DQ as `yoloc quantize` writes
// it: the input's Q -> DQ feeds the conv and the Add's residual.
Model qdq_conv(int64_t c, int64_t m, int64_t k, int64_t s, int64_t h, int64_t w, bool silu, bool residual,
               int64_t batch, bool per_channel) {
    Model md;
    Graph& G = md.graph;
    G.inputs.push_back({"x", DType::Float32, {Dim{batch, ""}, Dim{c, ""}, Dim{h, ""}, Dim{w, ""}}, true});
    G.outputs.push_back({"y", DType::Float32, {}, false});
    G.initializers["w"] = Tensor::from_floats({m, c, k, k}, yoloc_test::random_floats(size_t(m * c * k * k), 7, 0.3f));
    G.initializers["b"] = Tensor::from_floats({m}, yoloc_test::random_floats(size_t(m), 8, 0.3f));
    Node n;
    n.name = "conv";
    n.op_type = "Conv";
    n.inputs = {"x", "w", "b"};
    n.outputs = {silu || residual ? "c" : "y"};
    n.attrs["kernel_shape"] = Attribute::of_ints({k, k});
    n.attrs["strides"] = Attribute::of_ints({s, s});
    n.attrs["pads"] = Attribute::of_ints({k / 2, k / 2, k / 2, k / 2});
    G.nodes.push_back(n);
    std::string last = n.outputs[0];
    if (silu) {
        Node sg;
        sg.name = "sig";
        sg.op_type = "Sigmoid";
        sg.inputs = {last};
        sg.outputs = {"sg"};
        G.nodes.push_back(sg);
        Node mul;
        mul.name = "mul";
        mul.op_type = "Mul";
        mul.inputs = {last, "sg"};
        mul.outputs = {residual ? "a" : "y"};
        G.nodes.push_back(mul);
        last = mul.outputs[0];
    }
    if (residual) {
        Node add;
        add.name = "add";
        add.op_type = "Add";
        add.inputs = {"x", last};
        add.outputs = {"y"};
        G.nodes.push_back(add);
    }
    // Q/DQ by hand (the quantize API wants image-like sizes): x -> Q -> DQ (scale 0.9/127,
    // clips a little of the [-1, 1] input) read by the conv and the Add; int8 weights
    // (max|w|/127 per channel or per tensor) behind a DequantizeLinear on axis 0.
    G.initializers["xs"] = Tensor::scalar_f32(0.9f / 127.f);
    G.initializers["xz"] = Tensor(DType::Int8, {});
    const Tensor& wf = G.initializers.at("w");
    const int64_t per = wf.numel() / m;
    Tensor wq(DType::Int8, wf.shape());
    Tensor wsc = per_channel ? Tensor(DType::Float32, {m}) : Tensor(DType::Float32, {});
    Tensor wz = per_channel ? Tensor(DType::Int8, {m}) : Tensor(DType::Int8, {});
    for (int64_t ch = 0; ch < (per_channel ? m : 1); ++ch) {
        float mx = 0.f;
        const int64_t lo = per_channel ? ch * per : 0, hi = per_channel ? lo + per : wf.numel();
        for (int64_t i = lo; i < hi; ++i) mx = std::max(mx, std::fabs(wf.data<float>()[i]));
        const float sc = mx > 0 ? mx / 127.f : 1.f;
        wsc.data<float>()[ch] = sc;
        for (int64_t i = lo; i < hi; ++i)
            wq.data<int8_t>()[i] = int8_t(std::min(127.f, std::max(-127.f, std::nearbyint(wf.data<float>()[i] / sc))));
    }
    G.initializers["wq"] = wq;
    G.initializers["ws"] = wsc;
    G.initializers["wz"] = wz;
    G.initializers.erase("w");
    Node q, dq, wdq;
    q.name = "xq";
    q.op_type = "QuantizeLinear";
    q.inputs = {"x", "xs", "xz"};
    q.outputs = {"xq"};
    dq.name = "xdq";
    dq.op_type = "DequantizeLinear";
    dq.inputs = {"xq", "xs", "xz"};
    dq.outputs = {"xd"};
    wdq.name = "wdq";
    wdq.op_type = "DequantizeLinear";
    wdq.inputs = {"wq", "ws", "wz"};
    wdq.outputs = {"wd"};
    wdq.attrs["axis"] = Attribute::of_int(0);
    for (auto& node : G.nodes)
        for (auto& in : node.inputs) {
            if (in == "x") in = "xd";
            if (in == "w") in = "wd";
        }
    G.nodes.insert(G.nodes.begin(), {q, dq, wdq});
    return md;
}

bool have_mma() {
    gpu::current_device();
    return cuda::device_cc_major() >= 8;
}

}  // namespace

// Every INT8 tile configuration: the same integer sums as the direct INT8 kernel (so
// only the fp16 store and the epilogue's exp differ), and the reference Q/DQ graph up
// to values on a rounding boundary. Shapes: the 3-channel stem (element loads),
// residual with its fake-quant, stride 2, 1x1, odd channel counts, 5x5, long K, batch 2.
TEST(GpuInt8, ConvTilesMatchDirectAndReference) {
    struct Cfg {
        int64_t c, m, k, s, h, w;
        bool silu, res;
        int64_t batch;
    };
    const Cfg cfgs[] = {
        {3, 16, 3, 2, 33, 31, true, false, 1},    // stem
        {16, 16, 3, 1, 20, 20, true, true, 1},    // bottleneck + quantized residual
        {32, 64, 3, 2, 19, 21, true, false, 2},   // downsampling, batch 2
        {96, 64, 1, 1, 10, 12, true, false, 1},   // 1x1
        {64, 80, 1, 1, 8, 8, false, false, 1},    // head-like 1x1, plain
        {12, 24, 3, 1, 9, 11, true, false, 1},    // channels not multiples of 8
        {40, 36, 5, 1, 7, 9, false, false, 1},    // 5x5
        {256, 128, 3, 1, 6, 5, true, false, 1},   // long K
        {64, 64, 3, 1, 13, 13, true, true, 1},    // residual, 64 channels
    };
    for (const Cfg& c : cfgs) {
        for (bool pc : {true, false}) {
            Model q = qdq_conv(c.c, c.m, c.k, c.s, c.h, c.w, c.silu, c.res, c.batch, pc);
            Tensor x = rand_input({c.batch, c.c, c.h, c.w}, uint32_t(c.c * 31 + c.m), -1.f, 1.f);
            Tensor want = ref_run(q, x);
            engine::PlanStats st;
            Outputs direct = gpu_run(q, Precision::INT8, x, cuda::kConvInt8Direct, &st);
            ASSERT_EQ(st.convs_int8, 1);
            ASSERT_EQ(st.fake_quants, 0);
            const std::string shape = cat("conv c", c.c, " m", c.m, " k", c.k, " s", c.s, " n", c.batch,
                                          c.res ? " +res" : "", pc ? " per-channel" : " per-tensor");
            const double d_db = sqnr(want, direct[0]);
            EXPECT_GT(d_db, 35.0) << shape << " i8direct";
            EXPECT_GT(frac_close(direct[0], want, 2e-2), 0.99) << shape << " i8direct";
            if (c.c == 3 && c.k == 3 && c.s == 2) {  // the tiled stem: the same integer sums
                Outputs tile = gpu_run(q, Precision::INT8, x, cuda::kConvStemTile);
                EXPECT_LE(max_rel(tile[0], direct[0]), 5e-3) << shape << " stemtile vs i8direct";
                for (int kern : {int(cuda::kConvStemQuad), int(cuda::kConvStemPair)}) {
                    Outputs px = gpu_run(q, Precision::INT8, x, kern);
                    EXPECT_EQ(max_rel(px[0], direct[0]), 0.0) << shape << " stem kernel " << kern << " vs i8direct";
                }
            }
            if (!have_mma()) continue;
            double worst = 1e9, worst_vs_direct = 0;
            for (int t = 0; t < cuda::int8_config_count(); ++t) {
                const int tac = cuda::kConvInt8MmaBase + t;
                Outputs got = gpu_run(q, Precision::INT8, x, tac);
                const double db = sqnr(want, got[0]);
                const double vd = max_rel(got[0], direct[0]);
                worst = std::min(worst, db);
                worst_vs_direct = std::max(worst_vs_direct, vd);
                EXPECT_LE(vd, 5e-3) << shape << " " << gpu::tactic_name(tac) << " vs i8direct";
                EXPECT_GT(db, 35.0) << shape << " " << gpu::tactic_name(tac);
            }
            Outputs tuned = gpu_run(q, Precision::INT8, x, 0);
            EXPECT_LE(max_rel(tuned[0], direct[0]), 5e-3) << shape << " tuned";
            std::printf("int8 %s: direct %.1f dB vs reference; mma tiles worst %.1f dB, max rel vs direct %.2g\n",
                        shape.c_str(), d_db, worst, worst_vs_direct);
        }
    }
}

// Ranges of the quantized layers' inputs from the float model on this input (max |x|):
// what minmax calibration gives.
std::map<std::string, double> minmax_amax(const Model& m, const QuantPlan& qp, const Tensor& x) {
    std::vector<std::string> vals;
    for (const auto& l : qp.layers)
        if (std::find(vals.begin(), vals.end(), l.input) == vals.end()) vals.push_back(l.input);
    TensorMap acts = ReferenceExecutor(with_extra_outputs(m, vals)).run({{m.graph.inputs[0].name, x}});
    std::map<std::string, double> amax;
    for (const auto& v : vals) {
        double a = 0;
        const Tensor& t = acts.at(v);
        for (int64_t i = 0; i < t.numel(); ++i) a = std::max(a, double(std::fabs(t.data<float>()[i])));
        amax[v] = a;
    }
    return amax;
}

// A C2f-like block in float: conv1 (c -> 2m, k x k, stride s, SiLU) -> Split(m, m);
// the second half -> conv2 (3x3, SiLU) + the half itself (residual); Concat(half 1,
// half 2, sum) -> 1x1 conv3 -> y. Quantized like `yoloc quantize` (minmax ranges from
// this input, concat scales shared): every buffer between the convs can be int8.
Model qdq_c2f(int64_t c, int64_t m, int64_t k, int64_t s, int64_t h, int64_t w, int64_t batch, const Tensor& x) {
    Model md;
    md.opsets = {{"", 17}};
    Graph& G = md.graph;
    G.inputs.push_back({"x", DType::Float32, {Dim{batch, ""}, Dim{c, ""}, Dim{h, ""}, Dim{w, ""}}, true});
    G.outputs.push_back({"y", DType::Float32, {}, false});
    uint32_t seed = 40;
    auto conv = [&](const std::string& name, const std::string& in, int64_t ci, int64_t co, int64_t kk, int64_t st,
                    bool silu, const std::string& out) {
        G.initializers[name + ".w"] = Tensor::from_floats(
            {co, ci, kk, kk}, yoloc_test::random_floats(size_t(co * ci * kk * kk), seed++, 1.5f / std::sqrt(float(ci * kk * kk))));
        G.initializers[name + ".b"] = Tensor::from_floats({co}, yoloc_test::random_floats(size_t(co), seed++, 0.2f));
        Node n;
        n.name = name;
        n.op_type = "Conv";
        n.inputs = {in, name + ".w", name + ".b"};
        n.outputs = {silu ? name + ".c" : out};
        n.attrs["kernel_shape"] = Attribute::of_ints({kk, kk});
        n.attrs["strides"] = Attribute::of_ints({st, st});
        n.attrs["pads"] = Attribute::of_ints({kk / 2, kk / 2, kk / 2, kk / 2});
        G.nodes.push_back(n);
        if (!silu) return;
        Node sg;
        sg.name = name + ".sig";
        sg.op_type = "Sigmoid";
        sg.inputs = {n.outputs[0]};
        sg.outputs = {name + ".sg"};
        G.nodes.push_back(sg);
        Node mul;
        mul.name = name + ".mul";
        mul.op_type = "Mul";
        mul.inputs = {n.outputs[0], sg.outputs[0]};
        mul.outputs = {out};
        G.nodes.push_back(mul);
    };
    conv("conv1", "x", c, 2 * m, k, s, true, "a1");
    Tensor sizes(DType::Int64, {2});
    sizes.data<int64_t>()[0] = m;
    sizes.data<int64_t>()[1] = m;
    G.initializers["split"] = sizes;
    Node sp;
    sp.name = "split";
    sp.op_type = "Split";
    sp.inputs = {"a1", "split"};
    sp.outputs = {"h1", "h2"};
    sp.attrs["axis"] = Attribute::of_int(1);
    G.nodes.push_back(sp);
    conv("conv2", "h2", m, m, 3, 1, true, "a2");
    Node add;
    add.name = "add";
    add.op_type = "Add";
    add.inputs = {"h2", "a2"};
    add.outputs = {"r"};
    G.nodes.push_back(add);
    Node cat;
    cat.name = "cat";
    cat.op_type = "Concat";
    cat.inputs = {"h1", "h2", "r"};
    cat.outputs = {"cc"};
    cat.attrs["axis"] = Attribute::of_int(1);
    G.nodes.push_back(cat);
    conv("conv3", "cc", 3 * m, m, 1, 1, false, "y");
    QuantPlan qp = plan_quantization(md, {}, false);
    return insert_qdq(md, qp, share_concat_amax(md, minmax_amax(md, qp, x)), true);
}

// INT8 storage on the GPU: the int8-input tiles (cp.async of the stored integers), the
// epilogue's int8 store and int8 residual read against the direct INT8 kernel (same
// integers: equal up to the fp16 output store) and the reference Q/DQ graph; and the
// same engine with INT8 storage off (fp16 buffers, quantized on load) against both.
TEST(GpuInt8, Int8StorageTilesMatchDirectAndReference) {
    struct Cfg {
        int64_t c, m, k, s, h, w, batch;
    };
    const Cfg cfgs[] = {
        {16, 16, 3, 2, 40, 40, 1},  // yolov8n's first C2f at 1/4 size
        {32, 32, 3, 1, 20, 20, 1},
        {64, 64, 3, 2, 21, 19, 1},  // odd sizes (batch 1: the quantize API's concrete model)
        {24, 24, 3, 1, 12, 12, 1},  // channels not multiples of 16: byte loads
        {128, 128, 3, 1, 10, 10, 1},  // long K
    };
    for (const Cfg& c : cfgs) {
        Tensor x = rand_input({c.batch, c.c, c.h, c.w}, uint32_t(c.c * 7 + c.h), 0.f, 1.f);
        Model q = qdq_c2f(c.c, c.m, c.k, c.s, c.h, c.w, c.batch, x);
        Tensor want = ref_run(q, x);
        const std::string shape = cat("c2f c", c.c, " m", c.m, " s", c.s, " ", c.h, "x", c.w, " n", c.batch);
        engine::PlanStats st;
        Outputs direct = gpu_run(q, Precision::INT8, x, cuda::kConvInt8Direct, &st);
        ASSERT_EQ(st.convs_int8, 3) << shape;
        ASSERT_GE(st.int8_buffers, 1) << shape;  // the concat buffer (conv1, conv2 write it; conv2, conv3 read it)
        Outputs off = gpu_run(q, Precision::INT8, x, cuda::kConvInt8Direct, nullptr, false);
        const double d_db = sqnr(want, direct[0]), off_db = sqnr(want, off[0]);
        EXPECT_GT(d_db, 30.0) << shape;
        EXPECT_GT(frac_close(direct[0], want, 2e-2), 0.98) << shape;
        EXPECT_GT(d_db, off_db - 1.0) << shape << ": int8 storage is the Q/DQ graph's arithmetic, fp16 storage rounds first";
        if (!have_mma()) continue;
        double worst = 0;
        for (int t = 0; t < cuda::int8in_config_count(); ++t) {
            const int tac = cuda::kConvInt8InMmaBase + t;
            Outputs got = gpu_run(q, Precision::INT8, x, tac);
            const double vd = max_rel(got[0], direct[0]);
            worst = std::max(worst, vd);
            EXPECT_LE(vd, 5e-3) << shape << " " << gpu::tactic_name(tac) << " vs i8direct";
        }
        for (int t = 0; t < cuda::int8halo_config_count(); ++t) {  // conv2 (3x3 s1); conv1 when s matches
            const int tac = cuda::kConvInt8HaloBase + t;
            Outputs got = gpu_run(q, Precision::INT8, x, tac);
            const double vd = max_rel(got[0], direct[0]);
            worst = std::max(worst, vd);
            EXPECT_LE(vd, 5e-3) << shape << " " << gpu::tactic_name(tac) << " vs i8direct";
        }
        Outputs tuned = gpu_run(q, Precision::INT8, x, 0);
        EXPECT_LE(max_rel(tuned[0], direct[0]), 5e-3) << shape << " tuned";
        std::printf("int8 storage %s: %d int8 buffers; direct %.1f dB vs reference (storage off: %.1f dB); int8-input "
                    "and halo tiles max rel vs direct %.2g\n", shape.c_str(), st.int8_buffers, d_db, off_db, worst);
    }
}

// A generated YOLOv8n (160x160) with Q/DQ everywhere `yoloc quantize` puts it, one
// bottleneck conv kept float (so its residual Q/DQ is a FakeQuant op): the INT8
// engine, and the FP16 engine of the same Q/DQ model (every Q/DQ a FakeQuant op), both
// against the reference executor.
TEST(GpuInt8, GeneratedYolov8nInt8EngineMatchesReference) {
    GenerateOptions go;
    go.imgsz = 160;
    Model m = generate_yolov8(go);
    std::string keep;
    for (const auto& n : m.graph.nodes)
        if (n.op_type == "Conv" && n.name.find("/m.0/cv2/") != std::string::npos && keep.empty()) keep = n.name;
    QuantPlan qp = plan_quantization(m, {keep}, false);
    Tensor x = rand_input({1, 3, 160, 160}, 5, 0.f, 1.f);
    Model q = insert_qdq(m, qp, minmax_amax(m, qp, x), true);
    Tensor want = ref_run(q, x);
    engine::PlanStats st;
    Outputs i8 = gpu_run(q, Precision::INT8, x, 0, &st);
    EXPECT_GT(st.convs_int8, 55);
    EXPECT_EQ(st.fake_quants, 1);
    Outputs f16 = gpu_run(q, Precision::FP16, x);
    const double db8 = sqnr(want, i8[0]), db16 = sqnr(want, f16[0]);
    std::printf("generated yolov8n 160 Q/DQ: int8 engine %.1f dB, fp16 engine (fake-quant ops) %.1f dB vs reference; "
                "%d int8 convs, %d fake-quant ops\n", db8, db16, st.convs_int8, st.fake_quants);
    // Random weights make this net chaotic: fp16 activations move values across int8
    // rounding boundaries, which both engines feel the same (the fp16 one has no INT8
    // kernel at all), so the INT8 engine is held to the fp16 fake-quant engine's level.
    EXPECT_GT(db8, 20.0);
    EXPECT_GT(db16, 20.0);
    EXPECT_GT(db8, db16 - 3.0);
    EXPECT_GT(frac_close(i8[0], want, 2e-2), 0.95);
}

// The real yolov8n quantized like `yoloc quantize`'s defaults (percentile, per-channel,
// the two most sensitive convs kept float; here named instead of measured, and 2
// calibration images), or the model in $YOLOC_QDQ_MODEL: INT8 engine vs the reference
// executor on a letterboxed photo.
Model coco_qdq_model() {
    const char* qm = std::getenv("YOLOC_QDQ_MODEL");
    if (qm && *qm) return load_onnx(qm);
    Model m = load_onnx(yoloc_test::shared_dir() + "/models/yolov8n_coco.onnx");
    QuantizeOptions o;
    o.keep_fp = 0;
    o.exclude = {"/model.1/conv/Conv", "/model.2/cv1/conv/Conv"};
    o.report_images = 0;
    return quantize_model(m, calibration_images(yoloc_test::shared_dir() + "/data/coco128/images/train2017", 2), o)
        .model;
}

TEST(GpuInt8, Yolov8nCocoInt8EngineMatchesReference) {
    REQUIRE_SHARED();
    const char* qm = std::getenv("YOLOC_QDQ_MODEL");
    Model q = coco_qdq_model();
    Image img = load_image(yoloc_test::shared_dir() + "/data/coco128/images/train2017/000000000009.jpg");
    Tensor x = preprocess(img, 640);
    Tensor want = ref_run(q, x);
    engine::PlanStats st;
    Outputs i8 = gpu_run(q, Precision::INT8, x, 0, &st);
    Outputs f16 = gpu_run(q, Precision::FP16, x);
    // Boxes (rows 0-3, pixels) and class scores (rows 4-83) separately.
    const size_t A = 8400;
    double box = 0, score = 0;
    size_t score_big = 0;
    for (size_t i = 0; i < size_t(want.numel()); ++i) {
        const double d = std::fabs(double(i8[0][i]) - double(want.data<float>()[i]));
        if (i < 4 * A) box = std::max(box, d);
        else {
            score = std::max(score, d);
            score_big += d > 0.05;
        }
    }
    const double db8 = sqnr(want, i8[0]), db16 = sqnr(want, f16[0]);
    std::printf("yolov8n_coco Q/DQ (%s): int8 engine %.1f dB (boxes max %.2f px, scores max %.3f, %zu scores off by "
                ">0.05), fp16 engine with fake-quant ops %.1f dB vs reference; %d int8 convs, %d fp16 convs, %d "
                "fake-quant ops\n", qm ? qm : "quantized in the test", db8, box, score, score_big, db16,
                st.convs_int8, st.convs - st.convs_int8, st.fake_quants);
    EXPECT_GE(st.convs_int8 + st.convs_fused_siblings, 60);  // a fused pair counts once in convs_int8
    EXPECT_GT(db8, 25.0);
    EXPECT_GT(db16, 25.0);
    EXPECT_LT(double(score_big), 1e-3 * 80 * A);
}

// The same INT8 engine at batch 2 (int8 storage, tactics timed for batch 2) on two photos:
// each image's output equals the batch-1 engine's on that photo, up to the fp32 order of the
// tiles' epilogues (the integer sums are exact in any order).
TEST(GpuInt8, Yolov8nCocoInt8Batch2EqualsBatch1) {
    REQUIRE_SHARED();
    Model q = coco_qdq_model();
    const std::string dir = yoloc_test::shared_dir() + "/data/coco128/images/train2017/";
    const Tensor a = preprocess(load_image(dir + "000000000009.jpg"), 640);
    const Tensor b = preprocess(load_image(dir + "000000000025.jpg"), 640);
    Tensor ab(DType::Float32, {2, 3, 640, 640});
    std::copy(a.data<float>(), a.data<float>() + a.numel(), ab.data<float>());
    std::copy(b.data<float>(), b.data<float>() + b.numel(), ab.data<float>() + a.numel());
    engine::PlanStats st;
    const Outputs two = gpu_run(q, Precision::INT8, ab, 0, &st);
    const Outputs one_a = gpu_run(q, Precision::INT8, a), one_b = gpu_run(q, Precision::INT8, b);
    ASSERT_EQ(two[0].size(), 2 * one_a[0].size());
    const size_t n = one_a[0].size();
    const std::vector<float> two_a(two[0].begin(), two[0].begin() + long(n)), two_b(two[0].begin() + long(n), two[0].end());
    const double ra = max_rel(two_a, one_a[0]), rb = max_rel(two_b, one_b[0]);
    std::printf("yolov8n_coco INT8 batch 2 vs batch 1: max rel %.2g (image 1), %.2g (image 2); %d int8 buffers\n", ra,
                rb, st.int8_buffers);
    EXPECT_GT(st.int8_buffers, 20);
    EXPECT_LE(ra, 1e-2);  // 0 on the H100
    EXPECT_LE(rb, 1e-2);
    EXPECT_GT(sqnr(Tensor::from_floats({long(n)}, one_a[0]), two_a), 40.0);
    EXPECT_GT(sqnr(Tensor::from_floats({long(n)}, one_b[0]), two_b), 40.0);
}
