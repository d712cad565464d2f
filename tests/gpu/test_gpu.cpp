// GPU parity tests: every engine kernel against the reference kernels (ir/op_table.h),
// then the whole yolov8n engine. Needs a CUDA GPU; run by scripts/test-gpu.sh.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include <cuda_runtime_api.h>

#include "core/file.h"
#include "engine/cpu/executor.h"
#include "engine/cuda/conv_cudnn.h"
#include "engine/cuda/conv_mma.h"
#include "engine/cuda/launch_args.h"
#include "engine/memory_plan.h"
#include "engine/cuda/launch.h"
#include "engine/cuda/runtime.h"
#include "models.h"
#include "onnx/onnx_io.h"
#include "test_util.h"
#include "yolo/generate.h"

using namespace yoloc;
using yoloc::engine::Precision;

namespace {

using Outputs = std::vector<std::vector<float>>;

Tensor random_input(Shape s, uint32_t seed, float lo = 0.f, float hi = 1.f) {
    auto v = yoloc_test::random_floats(size_t(shape_numel(s)), seed, 1.0f);
    for (auto& x : v) x = lo + (x + 1.f) * 0.5f * (hi - lo);
    return Tensor::from_floats(s, v);
}

// Tactics are timed only where the test runs the engine's own choice (conv_kernel 0).
std::shared_ptr<gpu::Engine> build(const Model& m, Precision p, int64_t batch, bool tune = true) {
    gpu::BuildOptions o;
    o.plan.precision = p;
    o.plan.batch = batch;
    o.tune = tune;
    gpu::BuildResult r = gpu::build_engine(m, o);
    return gpu::make_engine(r.file, "in-memory engine");
}

Outputs run_gpu(const Model& m, Precision p, const Tensor& x, bool graph = true, int conv_kernel = 0) {
    auto eng = build(m, p, x.dim(0), conv_kernel == 0);
    gpu::ContextOptions co;
    co.cuda_graph = graph;
    co.conv_kernel = conv_kernel;
    gpu::Context ctx(eng, co);
    Outputs out;
    ctx.infer(x.data<float>(), out);
    return out;
}

Outputs run_ref(const Model& m, const Tensor& x) {
    ReferenceExecutor ex(m);
    TensorMap r = ex.run({{m.graph.inputs[0].name, x}});
    Outputs out;
    for (const auto& o : m.graph.outputs) {
        const Tensor& t = r.at(o.name);
        out.emplace_back(t.data<float>(), t.data<float>() + t.numel());
    }
    return out;
}

// Max |a-b| / (1 + |b|): absolute near 0, relative for large values.
double max_err(const std::vector<float>& a, const std::vector<float>& b, size_t from = 0, size_t to = size_t(-1)) {
    EXPECT_EQ(a.size(), b.size());
    double e = 0;
    for (size_t i = from; i < std::min({a.size(), b.size(), to}); ++i) {
        double d = std::fabs(double(a[i]) - double(b[i])) / (1.0 + std::fabs(double(b[i])));
        if (!(d <= e)) e = std::isnan(d) ? 1e30 : d;
    }
    return e;
}

void expect_close(const Outputs& got, const Outputs& want, double tol, const std::string& what) {
    ASSERT_EQ(got.size(), want.size()) << what;
    for (size_t i = 0; i < got.size(); ++i) {
        double e = max_err(got[i], want[i]);
        EXPECT_LE(e, tol) << what << ": output " << i;
    }
}

// One conv (+SiLU) model, for kernel-shape sweeps.
Model conv_model(int64_t c, int64_t m, int64_t k, int64_t s, int64_t g, int64_t h, int64_t w, bool silu, bool residual,
                 int64_t batch = 1) {
    Model md;
    Graph& G = md.graph;
    G.inputs.push_back({"x", DType::Float32, {Dim{batch, ""}, Dim{c, ""}, Dim{h, ""}, Dim{w, ""}}, true});
    G.outputs.push_back({"y", DType::Float32, {}, false});
    G.initializers["w"] = Tensor::from_floats({m, c / g, k, k},
                                              yoloc_test::random_floats(size_t(m * c / g * k * k), 7, 0.3f));
    G.initializers["b"] = Tensor::from_floats({m}, yoloc_test::random_floats(size_t(m), 8, 0.3f));
    Node n;
    n.name = "conv";
    n.op_type = "Conv";
    n.inputs = {"x", "w", "b"};
    n.outputs = {silu || residual ? "c" : "y"};
    n.attrs["kernel_shape"] = Attribute::of_ints({k, k});
    n.attrs["strides"] = Attribute::of_ints({s, s});
    n.attrs["pads"] = Attribute::of_ints({k / 2, k / 2, k / 2, k / 2});
    n.attrs["group"] = Attribute::of_int(g);
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
    return md;
}

}  // namespace

TEST(Gpu, Device) {
    engine::DeviceIdentity d = gpu::current_device();
    std::printf("GPU: %s, compute capability %d.%d, CUDA runtime %d\n", d.gpu_name.c_str(), d.cc_major, d.cc_minor,
                d.cuda_runtime);
    EXPECT_GT(d.cc_major, 0);
}

TEST(Gpu, ConvShapesFp32AndFp16) {
    struct Cfg {
        int64_t c, m, k, s, g, h, w;
        bool silu, res;
    };
    const Cfg cfgs[] = {
        {3, 16, 3, 2, 1, 33, 31, true, false},   // stem-like, odd sizes (reads the NCHW input: stem kernel)
        {3, 64, 3, 1, 1, 17, 19, true, false},   // stem kernel, widest output it takes
        {4, 8, 5, 1, 1, 9, 9, false, false},     // a stem with K = 100: the element-function fallback
        {3, 12, 3, 2, 1, 15, 15, true, false},   // a stem 12 wide: the element-function fallback too
        {3, 48, 3, 2, 1, 21, 140, true, false},  // tiled stem: 3 groups of 16, two partial 4 x 64 tiles
        {16, 16, 3, 1, 1, 20, 20, true, true},   // bottleneck with residual
        {64, 128, 3, 2, 1, 20, 20, true, false}, // downsampling
        {96, 64, 1, 1, 1, 10, 12, true, false},  // 1x1
        {24, 12, 3, 1, 4, 9, 9, false, false},   // grouped, no activation
        {64, 80, 1, 1, 1, 8, 8, false, false},   // head-like 1x1, plain
    };
    for (const Cfg& c : cfgs) {
        if (c.res && c.m != c.c) continue;
        Model m = conv_model(c.c, c.m, c.k, c.s, c.g, c.h, c.w, c.silu, c.res);
        Tensor x = random_input({1, c.c, c.h, c.w}, uint32_t(c.c * 31 + c.m), -1.f, 1.f);
        Outputs want = run_ref(m, x);
        // 5-7: the tiled, four- and two-pixel stems where they apply; other convs take the direct kernel.
        for (int kern : {0, 1, 2, 3, int(cuda::kConvStemTile), int(cuda::kConvStemQuad), int(cuda::kConvStemPair)}) {
            std::string what = cat("conv c", c.c, " m", c.m, " k", c.k, " s", c.s, " g", c.g, " kernel ", kern);
            expect_close(run_gpu(m, Precision::FP32, x, true, kern), want, 1e-4, what + " fp32");
            expect_close(run_gpu(m, Precision::FP16, x, true, kern), want, 2e-2, what + " fp16");
        }
        if (c.c == 3 && c.k == 3 && c.s == 2 && c.m % 8 == 0) {
            // The four- and two-pixel stems sum in the one-pixel stem's order: the same bits.
            for (Precision pr : {Precision::FP32, Precision::FP16})
                for (int kern : {int(cuda::kConvStemQuad), int(cuda::kConvStemPair)})
                    EXPECT_EQ(max_err(run_gpu(m, pr, x, true, kern)[0], run_gpu(m, pr, x, true, cuda::kConvDirect)[0]),
                              0.0)
                        << "stem kernel " << kern << " vs direct, m " << c.m << " w " << c.w;
        }
    }
}

// The SPPF chain (packed fp16 channels: 2 per thread at small batch, 8 at large) and the
// Detect decode (one thread per anchor and part) against their one-element-per-thread
// twins, which the tiny model and fp32 engines run: the same values (maxima are exact;
// the decode does the same arithmetic), and both against the reference executor. The twins are picked with
// YOLOC_SPPF / YOLOC_DETECT, read when a context captures its graph.
TEST(Gpu, SppfAndDetectKernelsMatchTheirTwins) {
    GenerateOptions go;
    go.imgsz = 160;
    Model m = generate_yolov8(go);
    Tensor x = random_input({1, 3, 160, 160}, 21, 0.f, 1.f);
    auto eng = build(m, Precision::FP16, 1);
    auto run = [&]() {
        gpu::Context ctx(eng, gpu::ContextOptions{});
        Outputs out;
        ctx.infer(x.data<float>(), out);
        return out;
    };
    const Outputs fast = run();
    setenv("YOLOC_SPPF", "plain", 1);
    setenv("YOLOC_DETECT", "rows", 1);
    const Outputs twin = run();
    unsetenv("YOLOC_SPPF");
    unsetenv("YOLOC_DETECT");
    ASSERT_EQ(fast.size(), 1u);
    EXPECT_LE(max_err(fast[0], twin[0]), 1e-6);
    // Against the reference executor: signal-to-noise of the whole output (fp16
    // activations through a random-weight net; the real model's tests hold boxes and
    // scores to pixels and 1e-2).
    const Outputs want = run_ref(m, x);
    double sig = 0, err = 0;
    for (size_t i = 0; i < want[0].size(); ++i) {
        sig += double(want[0][i]) * want[0][i];
        err += (double(fast[0][i]) - want[0][i]) * (double(fast[0][i]) - want[0][i]);
    }
    const double db = 10 * std::log10(sig / std::max(err, 1e-30));
    EXPECT_GT(db, 30.0);
    std::printf("generated yolov8n 160 fp16: fast vs twin kernels %.2g (max rel), engine vs reference %.1f dB\n",
                max_err(fast[0], twin[0]), db);
}

// The carveout follows the engine's batch (runtime.cpp, engine_carveout) and scopes nest;
// this process has no YOLOC_CARVEOUT (test-gpu.sh does not set it), which would win.
TEST(Gpu, LaunchCarveoutFollowsTheEngine) {
    if (std::getenv("YOLOC_CARVEOUT")) GTEST_SKIP() << "YOLOC_CARVEOUT overrides the engine's carveout";
    engine::Plan p;
    p.batch = 1;
    EXPECT_EQ(gpu::engine_carveout(p), 100);
    p.batch = 32;
    EXPECT_EQ(gpu::engine_carveout(p), -1);
    EXPECT_EQ(cuda::kernel_carveout(), 100);  // nothing set on this thread
    const int prev = cuda::set_launch_carveout(-1);
    EXPECT_EQ(cuda::kernel_carveout(), -1);
    EXPECT_EQ(cuda::set_launch_carveout(prev), -1);
    EXPECT_EQ(cuda::kernel_carveout(), 100);
}

TEST(Gpu, TinyModelAllOpsFp32) {
    for (int64_t b : {1, 3}) {
        Model m = yoloc_test::tiny_engine_model(b);
        Tensor x = random_input({b, 6, 10, 12}, 11, -1.f, 1.f);
        Outputs want = run_ref(m, x);
        for (int kern : {0, 1, 3})
            expect_close(run_gpu(m, Precision::FP32, x, true, kern), want, 1e-4, cat("tiny fp32 batch ", b, " kernel ", kern));
    }
}

TEST(Gpu, TinyModelAllOpsFp16) {
    Model m = yoloc_test::tiny_engine_model(2);
    Tensor x = random_input({2, 6, 10, 12}, 12, -1.f, 1.f);
    Outputs want = run_ref(m, x);
    for (int kern : {0, 1, 2, 3})
        expect_close(run_gpu(m, Precision::FP16, x, true, kern), want, 3e-2, cat("tiny fp16 kernel ", kern));
}

bool have_mma() {
    gpu::current_device();
    return cuda::device_cc_major() >= 8;
}

// Every tensor-core tile configuration against the reference executor: the 3-channel
// stem (element loads), channel counts that are not multiples of 8 or of the tile
// (masking, element loads), residual, stride 2, 1x1, 5x5, batch > 1, long K.
TEST(Gpu, MmaConvTilesMatchReference) {
    if (!have_mma()) GTEST_SKIP() << "tensor-core implicit GEMM needs compute capability 8.0+";
    struct Cfg {
        int64_t c, m, k, s, g, h, w;
        bool silu, res;
        int64_t batch;
    };
    const Cfg cfgs[] = {
        {3, 16, 3, 2, 1, 33, 31, true, false, 1},     // stem: cin 3, odd sizes
        {16, 16, 3, 1, 1, 20, 20, true, true, 1},     // bottleneck + residual
        {32, 64, 3, 2, 1, 19, 21, true, false, 2},    // downsampling, batch 2
        {96, 64, 1, 1, 1, 10, 12, true, false, 1},    // 1x1
        {64, 80, 1, 1, 1, 8, 8, false, false, 1},     // head-like 1x1, plain, cout 80
        {12, 24, 3, 1, 1, 9, 11, true, false, 1},     // cin/cout not multiples of 8
        {40, 36, 5, 1, 1, 7, 9, false, false, 1},     // 5x5, cout not a tile multiple
        {256, 128, 3, 1, 1, 6, 5, true, false, 1},    // long K (2304), few pixels
        {64, 64, 3, 1, 1, 13, 13, true, true, 1},     // residual, 64 channels
        {32, 144, 3, 1, 1, 24, 40, true, false, 2},   // the heads' fused 144 (halo: 3 chunks of 48, edge tiles)
        {80, 80, 3, 1, 1, 20, 20, true, false, 1},    // class head: cin 80 = 2.5 halo chunks of 32
        // More tiles than the persistent halo blocks (pb x SMs): each block walks several.
        {16, 16, 3, 1, 1, 320, 320, true, true, 1},   // 800 tiles of 8x16, residual
        {32, 32, 3, 1, 1, 160, 160, true, false, 2},  // 800 tiles of 8x8 over 2 images
        {16, 32, 3, 2, 1, 319, 317, true, false, 1},  // model.1-like stride 2, odd sizes
        // K 1152 (18 K tiles): split across clusters of up to 8 blocks, residual, 13 row tiles.
        {128, 128, 3, 1, 1, 20, 20, true, true, 1},
        {128, 40, 3, 2, 1, 21, 19, true, false, 2},  // stride 2, cout not a multiple of the tile
    };
    for (const Cfg& c : cfgs) {
        Model m = conv_model(c.c, c.m, c.k, c.s, c.g, c.h, c.w, c.silu, c.res, c.batch);
        Tensor x = random_input({c.batch, c.c, c.h, c.w}, uint32_t(c.c * 31 + c.m), -1.f, 1.f);
        Outputs want = run_ref(m, x);
        for (int t = 0; t < cuda::mma_config_count(); ++t) {
            std::string what = cat("conv c", c.c, " m", c.m, " k", c.k, " s", c.s, " n", c.batch, " ",
                                   gpu::tactic_name(cuda::kConvMmaBase + t));
            expect_close(run_gpu(m, Precision::FP16, x, true, cuda::kConvMmaBase + t), want, 2e-2, what);
        }
        // The halo tiles (3x3 stride 1 or 2; elsewhere the tactic falls back to the heuristic tile).
        for (int t = 0; t < cuda::halo_config_count(); ++t) {
            std::string what = cat("conv c", c.c, " m", c.m, " k", c.k, " s", c.s, " n", c.batch, " ",
                                   gpu::tactic_name(cuda::kConvHaloBase + t));
            expect_close(run_gpu(m, Precision::FP16, x, true, cuda::kConvHaloBase + t), want, 2e-2, what);
        }
    }
}

// The implicit-GEMM kernels store their output tile through shared memory (16-byte rows)
// or straight from the accumulator fragments (YOLOC_STAGE_OUT=0); both run the same
// epilogue arithmetic (bias, SiLU, residual, fp16 rounding) on the same accumulators, so
// their outputs must be equal bit for bit, for every tile and edge case.
TEST(Gpu, MmaStagedStoreEqualsFragmentStoreBitForBit) {
    if (!have_mma()) GTEST_SKIP() << "tensor-core implicit GEMM needs compute capability 8.0+";
    struct Cfg {
        int64_t c, m, k, s, h, w;
        bool silu, res;
        int64_t batch;
    };
    const Cfg cfgs[] = {
        {16, 16, 3, 1, 20, 20, true, true, 1},    // residual, one 16-channel tile row
        {96, 64, 1, 1, 10, 12, true, false, 1},   // 1x1
        {64, 80, 1, 1, 8, 8, false, false, 1},    // plain, cout 80 (not a multiple of 64)
        {32, 144, 3, 1, 24, 40, true, false, 2},  // the heads' fused 144, batch 2, edge pixel tiles
        {128, 128, 3, 1, 20, 20, true, true, 1},  // long K, residual
        {12, 24, 3, 1, 9, 11, true, false, 1},    // channels not multiples of 8: no staging, same output
    };
    const int prev = cuda::set_stage_out(-1);
    for (const Cfg& c : cfgs) {
        Model m = conv_model(c.c, c.m, c.k, c.s, 1, c.h, c.w, c.silu, c.res, c.batch);
        Tensor x = random_input({c.batch, c.c, c.h, c.w}, uint32_t(c.c * 17 + c.m), -2.f, 2.f);
        for (int t = 0; t < cuda::mma_config_count(); ++t) {
            const int tactic = cuda::kConvMmaBase + t;
            cuda::set_stage_out(1);
            const Outputs staged = run_gpu(m, Precision::FP16, x, true, tactic);
            cuda::set_stage_out(0);
            const Outputs frags = run_gpu(m, Precision::FP16, x, true, tactic);
            ASSERT_EQ(staged.size(), frags.size());
            for (size_t o = 0; o < staged.size(); ++o) {
                ASSERT_EQ(staged[o].size(), frags[o].size());
                size_t differ = 0;
                for (size_t i = 0; i < staged[o].size(); ++i)
                    differ += std::memcmp(&staged[o][i], &frags[o][i], sizeof(float)) != 0;
                EXPECT_EQ(differ, 0u) << "conv c" << c.c << " m" << c.m << " k" << c.k << " n" << c.batch << " "
                                      << gpu::tactic_name(tactic) << ": output " << o;
            }
        }
    }
    cuda::set_stage_out(prev);
}

// Concat-in-place slices, split views, residual views and Copy inputs through every tile
// (the tiny model's channel offsets are not multiples of 8: element-load path).
TEST(Gpu, MmaTinyModelEveryTile) {
    if (!have_mma()) GTEST_SKIP() << "needs compute capability 8.0+";
    Model m = yoloc_test::tiny_engine_model(2);
    Tensor x = random_input({2, 6, 10, 12}, 12, -1.f, 1.f);
    Outputs want = run_ref(m, x);
    for (int t = 0; t < cuda::mma_config_count(); ++t)
        expect_close(run_gpu(m, Precision::FP16, x, true, cuda::kConvMmaBase + t), want, 3e-2,
                     cat("tiny fp16 ", gpu::tactic_name(cuda::kConvMmaBase + t)));
}

// Build-time tactic selection: every conv gets a timed tactic, stored in the engine file
// and read back; tuned engines, multi-stream graphs and one-stream graphs agree.
TEST(Gpu, TacticsAreChosenStoredAndUsed) {
    Model m = yoloc_test::tiny_engine_model(1);
    gpu::BuildOptions o;
    o.plan.precision = Precision::FP16;
    std::string dir = yoloc_test::scratch_dir("gpu_tactics");
    o.timing_cache = dir + "/timing.cache";
    std::remove(o.timing_cache.c_str());
    gpu::BuildResult r = gpu::build_engine(m, o);
    ASSERT_EQ(int(r.tactics.size()), r.file.plan.stats.convs);
    for (const auto& t : r.tactics) {
        EXPECT_GT(t.tactic, 0) << t.name;
        EXPECT_EQ(r.file.plan.ops[size_t(t.op)].tactic, t.tactic);
        EXPECT_FALSE(t.cached);
        // The chosen tactic was timed, and is the fastest or one shared with other
        // layers within 3% of it (share_tactics).
        double fastest = 1e30, chosen = -1;
        for (const auto& c : t.tried) {
            fastest = std::min(fastest, c.second);
            if (c.first == t.tactic) chosen = c.second;
        }
        EXPECT_GE(chosen, 0.0) << t.name;
        EXPECT_LE(chosen, fastest * 1.03 + 1e-9) << t.name;
        std::printf("tactic %s %s: %s %.2f us (heuristic %.2f us)\n", t.name.c_str(), t.shape.c_str(),
                    gpu::tactic_name(t.tactic).c_str(), t.best_us, t.auto_us);
    }
    engine::write_engine(dir + "/t.engine", r.file);
    engine::EngineFile back = engine::read_engine(dir + "/t.engine");
    for (const auto& t : r.tactics) EXPECT_EQ(back.plan.ops[size_t(t.op)].tactic, t.tactic);
    // The timing cache answers a second build without timing.
    gpu::BuildResult r2 = gpu::build_engine(m, o);
    for (size_t i = 0; i < r2.tactics.size(); ++i) {
        EXPECT_TRUE(r2.tactics[i].cached);
        EXPECT_EQ(r2.tactics[i].tactic, r.tactics[i].tactic);
    }
    Tensor x = random_input({1, 6, 10, 12}, 21, -1.f, 1.f);
    Outputs want = run_ref(m, x);
    auto eng = gpu::make_engine(back, "tuned");
    Outputs a, b;
    gpu::Context multi(eng);
    multi.infer(x.data<float>(), a);
    expect_close(a, want, 3e-2, "tuned tiny fp16");
    setenv("YOLOC_GRAPH_STREAMS", "1", 1);
    gpu::Context single(eng);
    unsetenv("YOLOC_GRAPH_STREAMS");
    single.infer(x.data<float>(), b);
    EXPECT_EQ(a, b);
    auto prof = gpu::profile_ops(eng, 3);
    EXPECT_EQ(prof.size(), back.plan.ops.size());
}

TEST(Gpu, CudaGraphEqualsPlainLaunches) {
    Model m = yoloc_test::tiny_engine_model(1);
    Tensor x = random_input({1, 6, 10, 12}, 13, -1.f, 1.f);
    Outputs a = run_gpu(m, Precision::FP32, x, true);
    Outputs b = run_gpu(m, Precision::FP32, x, false);
    EXPECT_EQ(a, b);
}

namespace {

struct Yolo {
    Model model;
    Tensor x;
    Outputs ref;
};

// The reference executor is slow (plain loops): run it once for all yolov8n tests.
const Yolo& yolo() {
    static std::unique_ptr<Yolo> y;
    if (!y) {
        y.reset(new Yolo);
        y->model = load_onnx(yoloc_test::shared_dir() + "/models/yolov8n_coco.onnx");
        y->x = random_input({1, 3, 640, 640}, 42);
        y->ref = run_ref(y->model, y->x);
    }
    return *y;
}

// Max absolute difference over boxes (rows 0..3) and scores (rows 4..) of [1, 84, A].
void yolo_diffs(const std::vector<float>& got, const std::vector<float>& want, double& box_abs, double& box_rel,
                double& score_abs) {
    const size_t A = 8400;
    box_abs = box_rel = score_abs = 0;
    for (size_t i = 0; i < want.size(); ++i) {
        double d = std::fabs(double(got[i]) - double(want[i]));
        if (std::isnan(d)) d = 1e30;
        if (i < 4 * A) {
            box_abs = std::max(box_abs, d);
            box_rel = std::max(box_rel, d / std::max(1.0, std::fabs(double(want[i]))));
        } else {
            score_abs = std::max(score_abs, d);
        }
    }
}

}  // namespace

TEST(Gpu, Yolov8nFp32MatchesReference) {
    REQUIRE_SHARED();
    const Yolo& y = yolo();
    for (int kern : {0, 1}) {
        Outputs got = run_gpu(y.model, Precision::FP32, y.x, true, kern);
        ASSERT_EQ(got.size(), 1u);
        ASSERT_EQ(got[0].size(), y.ref[0].size());
        double ba, br, sa;
        yolo_diffs(got[0], y.ref[0], ba, br, sa);
        std::printf("yolov8n fp32 (%s conv) vs reference: boxes max abs %.3g px (rel %.3g), scores max abs %.3g\n",
                    kern ? "direct" : "gemm", ba, br, sa);
        EXPECT_LE(sa, 1e-3) << "conv kernel " << kern;
        EXPECT_LE(br, 1e-3) << "conv kernel " << kern;
    }
}

TEST(Gpu, Yolov8nFp16ScoresWithin1e2) {
    REQUIRE_SHARED();
    const Yolo& y = yolo();
    for (int kern : {0, 1, int(cuda::kConvSimtGemm)}) {
        Outputs got = run_gpu(y.model, Precision::FP16, y.x, true, kern);
        double ba, br, sa;
        yolo_diffs(got[0], y.ref[0], ba, br, sa);
        std::printf("yolov8n fp16 (%s conv) vs reference: boxes max abs %.3g px (rel %.3g), scores max abs %.3g\n",
                    kern == 0 ? "tuned tactics" : gpu::tactic_name(kern).c_str(), ba, br, sa);
        EXPECT_LE(sa, 1e-2) << "conv kernel " << kern;
        EXPECT_LE(ba, 2.0) << "conv kernel " << kern;
    }
}

// cuDNN tactics: every conv that cuDNN may take set to configuration `index` of its
// heuristic list, or (index -1) the first that runs here without workspace (plans are
// made when the engine is made, weights in cuDNN's layout); returns how many convs run
// on cuDNN.
int set_cudnn_tactics(engine::EngineFile& f, int index) {
    const engine::MemoryPlan mp = engine::plan_memory(f.plan, 0);
    uint8_t* fake = reinterpret_cast<uint8_t*>(uintptr_t(1) << 20);  // any 256-aligned base: only alignment matters
    int n = 0;
    for (size_t i = 0; i < f.plan.ops.size(); ++i) {
        if (f.plan.ops[i].kind != engine::OpKind::Conv) continue;
        const cuda::OpArgs a = cuda::make_op_args(f.plan, i, fake, mp.offsets, fake, reinterpret_cast<float*>(fake));
        if (!cuda::cudnn_conv_supported(a.conv)) continue;
        int pick = index;
        if (pick < 0) {
            const auto c = cuda::cudnn_conv_candidates(a.conv, 1);
            if (c.empty()) continue;
            pick = c[0].index;
        }
        f.plan.ops[i].tactic = cuda::kConvCudnnBase + pick;
        ++n;
    }
    if (n > 0) f.info.device.cudnn = cuda::cudnn_version();  // as build_engine records it
    return n;
}

Outputs run_engine(const engine::EngineFile& f, const Tensor& x) {
    gpu::Context ctx(gpu::make_engine(f, "cudnn engine"));
    Outputs out;
    ctx.infer(x.data<float>(), out);
    return out;
}

// Each conv shape through cuDNN's first configurations (conv + bias [+ SiLU] [+ residual]
// as one cuDNN graph) against the reference executor. A configuration that computes a
// wrong result must have been dropped by the build, which checks each candidate against
// our kernel. (Here the residual is the conv's input, which cuDNN is not offered: see
// cudnn_conv_supported; yolov8n's residuals go through cuDNN in the test below.)
TEST(Gpu, CudnnConvTacticsMatchReference) {
    if (cuda::cudnn_version() == 0) GTEST_SKIP() << "built without cuDNN";
    struct Cfg {
        int64_t c, m, k, s, h, w;
        bool silu, res;
        int64_t batch;
    };
    const Cfg cfgs[] = {
        {16, 16, 3, 1, 20, 20, true, false, 1},  // bottleneck-like
        {32, 64, 3, 2, 19, 21, true, false, 2},  // downsampling, odd sizes, batch 2
        {96, 64, 1, 1, 10, 12, true, false, 1},  // 1x1
        {64, 80, 1, 1, 8, 8, false, false, 1},   // head 1x1, no activation
        {64, 64, 3, 1, 13, 13, true, false, 1},  // odd size, 64 channels
        {128, 144, 3, 1, 20, 20, true, false, 2},
    };
    for (const Cfg& c : cfgs) {
        Model m = conv_model(c.c, c.m, c.k, c.s, 1, c.h, c.w, c.silu, c.res, c.batch);
        Tensor x = random_input({c.batch, c.c, c.h, c.w}, uint32_t(c.c * 31 + c.m), -1.f, 1.f);
        Outputs want = run_ref(m, x);
        gpu::BuildOptions o;
        o.plan.precision = Precision::FP16;
        o.plan.batch = c.batch;
        setenv("YOLOC_CUDNN_CANDIDATES", "3", 1);  // offered below batch 8 too (runtime.cpp)
        const gpu::BuildResult tuned = gpu::build_engine(m, o);
        unsetenv("YOLOC_CUDNN_CANDIDATES");
        ASSERT_EQ(tuned.tactics.size(), 1u);
        const std::string shape = cat("conv c", c.c, " m", c.m, " k", c.k, " s", c.s, " n", c.batch);
        int right = 0;
        for (int idx = 0; idx < 3; ++idx) {
            engine::EngineFile f = tuned.file;
            ASSERT_EQ(set_cudnn_tactics(f, idx), 1);
            Outputs got;
            try {
                got = run_engine(f, x);
            } catch (const Error& e) {  // a configuration this GPU cannot run: the build skips it
                std::printf("%s: cuDNN configuration %d: %s\n", shape.c_str(), idx, e.what());
                continue;
            }
            ASSERT_EQ(got.size(), want.size());
            const double err = max_err(got[0], want[0]);
            bool dropped = false;
            for (const auto& rj : tuned.tactics[0].rejected) dropped = dropped || rj.first == cuda::kConvCudnnBase + idx;
            std::printf("%s: cudnn%d max error %.3g%s\n", shape.c_str(), idx, err, dropped ? " (dropped by the build)" : "");
            if (err <= 2e-2)
                ++right;
            else
                EXPECT_TRUE(dropped) << shape << " cudnn" << idx << ": wrong output (" << err << ") not dropped by the build";
        }
        EXPECT_GE(right, 1) << "no cuDNN configuration computed " << shape;
        // The tuned engine (whatever it chose) is right.
        expect_close(run_engine(tuned.file, x), want, 2e-2, shape + " tuned " + gpu::tactic_name(tuned.tactics[0].tactic));
    }
}

// yolov8n with every conv cuDNN can take on cuDNN: channel-slice inputs (C2f's split),
// outputs into concat slices, residual views.
TEST(Gpu, Yolov8nFp16CudnnTacticsWithin1e2) {
    REQUIRE_SHARED();
    if (cuda::cudnn_version() == 0) GTEST_SKIP() << "built without cuDNN";
    const Yolo& y = yolo();
    gpu::BuildOptions o;
    o.plan.precision = Precision::FP16;
    o.tune = false;
    engine::EngineFile f = gpu::build_engine(y.model, o).file;
    const int n = set_cudnn_tactics(f, -1);
    EXPECT_GE(n, 59) << "convs cuDNN may take (all but the stem and the Detect DFL)";
    Outputs got = run_engine(f, y.x);
    double ba, br, sa;
    yolo_diffs(got[0], y.ref[0], ba, br, sa);
    std::printf("yolov8n fp16, %d convs on cuDNN vs reference: boxes max abs %.3g px (rel %.3g), scores max abs %.3g\n",
                n, ba, br, sa);
    EXPECT_LE(sa, 1e-2);
    EXPECT_LE(ba, 2.0);
}

TEST(Gpu, Yolov8nEngineFileRoundTripAndSharedContexts) {
    REQUIRE_SHARED();
    const Yolo& y = yolo();
    gpu::BuildOptions o;
    o.plan.precision = Precision::FP16;
    o.source = "yolov8n_coco.onnx";
    gpu::BuildResult r = gpu::build_engine(y.model, o);
    std::string path = yoloc_test::scratch_dir("gpu_engine") + "/yolov8n_fp16.engine";
    engine::write_engine(path, r.file);
    auto mem = gpu::make_engine(r.file, "memory");
    auto disk = gpu::Engine::load(path);
    EXPECT_EQ(disk->summary().precision, "fp16");
    gpu::Context c1(mem), c2(disk), c3(disk);  // c2 and c3 share one engine's weights
    Outputs a, b, c;
    c1.infer(y.x.data<float>(), a);
    c2.infer(y.x.data<float>(), b);
    c3.infer(y.x.data<float>(), c);
    EXPECT_EQ(a, b);
    EXPECT_EQ(b, c);
    c2.infer(y.x.data<float>(), b);  // graph replay gives the same again
    EXPECT_EQ(a, b);
}

TEST(Gpu, EngineForAnotherDeviceOrCorruptIsRefusedOnLoad) {
    Model m = yoloc_test::tiny_engine_model(1);
    gpu::BuildOptions o;
    gpu::BuildResult r = gpu::build_engine(m, o);
    std::string dir = yoloc_test::scratch_dir("gpu_refuse");
    engine::EngineFile other = r.file;
    other.info.device.cc_major = 5;
    other.info.device.cc_minor = 3;
    other.info.device.gpu_name = "Jetson Nano";
    engine::write_engine(dir + "/nano.engine", other);
    try {
        gpu::Engine::load(dir + "/nano.engine");
        FAIL() << "loaded an engine built for compute capability 5.3";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("rebuild the engine on this device"), std::string::npos) << e.what();
    }
    std::string bytes = engine::serialize_engine(r.file);
    write_file_atomic(dir + "/cut.engine", bytes.substr(0, bytes.size() / 2));
    EXPECT_THROW(gpu::Engine::load(dir + "/cut.engine"), Error);
    engine::write_engine(dir + "/ok.engine", r.file);
    EXPECT_NO_THROW(gpu::Engine::load(dir + "/ok.engine"));
}

TEST(Gpu, Yolov8nTimings) {
    REQUIRE_SHARED();
    const Yolo& y = yolo();
    for (auto cfg : {std::make_pair(Precision::FP32, int64_t(1)), std::make_pair(Precision::FP16, int64_t(1)),
                     std::make_pair(Precision::FP16, int64_t(32))}) {
        gpu::BuildOptions o;
        o.plan.precision = cfg.first;
        o.plan.batch = cfg.second;
        gpu::BuildResult r = gpu::build_engine(y.model, o);
        size_t free0 = 0, free1 = 0, total = 0;
        cudaDeviceSynchronize();
        cudaMemGetInfo(&free0, &total);
        auto eng = gpu::make_engine(r.file, "memory");
        {
            gpu::Context probe(eng);
            probe.run_device_only();
            cudaMemGetInfo(&free1, &total);
        }
        std::printf("MEMORY yolov8n %s batch %lld: planned weights %.2f MB + arena %.2f MB; cudaMemGetInfo delta "
                    "%.2f MB (engine + one context, incl. allocator granularity and the CUDA graph)\n",
                    engine::precision_name(cfg.first), static_cast<long long>(cfg.second), r.memory.weight_bytes / 1e6,
                    r.memory.arena_bytes / 1e6, (double(free0) - double(free1)) / 1e6);
        for (int kern : {0, int(cuda::kConvSimtGemm)}) {
            gpu::ContextOptions co;
            co.conv_kernel = kern;
            gpu::Context ctx(eng, co);
            for (int i = 0; i < 5; ++i) ctx.run_device_only();
            std::vector<float> ms;
            for (int i = 0; i < 30; ++i) ms.push_back(ctx.run_device_only());
            std::sort(ms.begin(), ms.end());
            const auto& s = eng->summary();
            std::printf("TIMING yolov8n %s batch %lld %s conv: GPU median %.3f ms (min %.3f), %.0f img/s; "
                        "weights %.2f MB, arena %.2f MB\n",
                        s.precision.c_str(), static_cast<long long>(cfg.second),
                        kern == 0 ? "tuned" : gpu::tactic_name(kern).c_str(),
                        ms[ms.size() / 2], ms[0], 1000.0 * double(cfg.second) / ms[ms.size() / 2],
                        s.weight_bytes / 1e6, s.arena_bytes / 1e6);
        }
    }
}
