// Runs engine plans on the CPU with the very element functions the CUDA kernels
// use (engine/cuda/element_ops.h, generic_ops.h) and the same argument builder, over
// one arena laid out by the memory planner and poisoned with NaN (plan_emulation.h).
// Matching the reference executor here checks lowering, views, in-place concat,
// liveness, the generic tier's argument translation and kernel indexing on machines
// without a GPU; the GPU run then only adds the device.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>

#include "engine/cpu/executor.h"
#include "engine/memory_plan.h"
#include "engine/plan.h"
#include "gpu/models.h"
#include "onnx/onnx_io.h"
#include "model_compare.h"
#include "plan_emulation.h"
#include "test_util.h"
#include "yolo/image.h"
#include "yolo/input_size.h"
#include "yolo/letterbox.h"

using namespace yoloc;
using namespace yoloc::engine;

namespace {

std::vector<std::vector<float>> emulate(const Plan& p, const Tensor& x, std::vector<size_t> order = {},
                                        const MemoryPlan* given = nullptr) {
    return yoloc_test::emulate_plan(p, x, std::move(order), given);
}

Tensor random_input(Shape s, uint32_t seed, float lo, float hi) {
    auto v = yoloc_test::random_floats(size_t(shape_numel(s)), seed, 1.0f);
    for (auto& x : v) x = lo + (x + 1.f) * 0.5f * (hi - lo);
    return Tensor::from_floats(s, v);
}

// A topological order of `dag` (Kahn; default: the DAG of the data alone): `latest`
// picks the ready op with the highest index first (runs each branch as early as it
// can: the head of a level before the rest of the neck), else a seeded random ready op.
std::vector<size_t> other_order(const Plan& p, bool latest, uint32_t seed, const MemoryPlan* mp = nullptr) {
    const OpDag dag = op_dag(p, mp);
    const size_t n = p.ops.size();
    std::vector<size_t> order;
    std::vector<bool> done(n, false);
    uint32_t r = seed;
    while (order.size() < n) {
        std::vector<size_t> ready;
        for (size_t i = 0; i < n; ++i) {
            if (done[i]) continue;
            bool ok = true;
            for (int d : dag.deps[i]) ok = ok && done[size_t(d)];
            if (ok) ready.push_back(i);
        }
        r = r * 1664525u + 1013904223u;
        const size_t pick = latest ? ready.back() : ready[(r >> 8) % ready.size()];
        done[pick] = true;
        order.push_back(pick);
    }
    return order;
}

double max_rel(const std::vector<float>& a, const Tensor& b) {
    EXPECT_EQ(int64_t(a.size()), b.numel());
    double e = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        double d = std::fabs(double(a[i]) - double(b.data<float>()[i])) / (1.0 + std::fabs(double(b.data<float>()[i])));
        if (!(d <= e)) e = std::isnan(d) ? 1e30 : d;
    }
    return e;
}

}  // namespace

TEST(EngineEmulate, TinyModelMatchesReference) {
    for (int64_t batch : {1, 3}) {
        Model m = yoloc_test::tiny_engine_model(batch);
        Plan p = build_plan(m, {});
        Tensor x = random_input({batch, 6, 10, 12}, 21, -1.f, 1.f);
        auto got = emulate(p, x);
        TensorMap ref = ReferenceExecutor(m).run({{"x", x}});
        ASSERT_EQ(got.size(), 2u);
        EXPECT_LE(max_rel(got[0], ref.at("y")), 1e-5) << "batch " << batch;
        EXPECT_LE(max_rel(got[1], ref.at("d")), 1e-5) << "batch " << batch;
    }
}

TEST(EngineEmulate, Yolov8nMatchesReference) {
    REQUIRE_SHARED();
    Model m = load_onnx(yoloc_test::shared_dir() + "/models/yolov8n_coco.onnx");
    // 320x320 keeps the plain loops quick; the plan is the same op for op.
    Model m320 = m;
    set_input_size(m320, 1, 320);  // re-targets the exported anchors/reshapes too
    Tensor x = random_input({1, 3, 320, 320}, 5, 0.f, 1.f);
    TensorMap ref = ReferenceExecutor(m320).run({{m.graph.inputs[0].name, x}});
    for (SiblingFusion fusion : {SiblingFusion::Off, SiblingFusion::On}) {
        PlanOptions o;
        o.fuse_siblings = fusion;
        Plan p = build_plan(m320, o);
        EXPECT_EQ(p.stats.convs_fused_siblings, fusion == SiblingFusion::On ? 3 : 0);
        auto got = emulate(p, x);
        const Tensor& r = ref.at(p.output_names[0]);
        ASSERT_EQ(got[0].size(), size_t(r.numel()));
        double e = max_rel(got[0], r);
        std::printf("yolov8n 320 emulated plan (horizontal fusion %s) vs reference: max rel diff %.3g\n",
                    fusion == SiblingFusion::On ? "on" : "off", e);
        EXPECT_LE(e, 1e-4);
    }
}

// The runtime runs independent branches on several streams, so ops may run in any order
// the data allows. The Concurrent arena (no shared bytes between them) must give the same outputs in
// such orders; the Sequential arena, which lets a later branch reuse bytes an earlier
// one still needs, must not (so the check can fail), which is why the runtime then adds
// the arena's own order to the DAG.
TEST(EngineEmulate, ConcurrentArenaGivesTheSameOutputsInAnyOrderTheDataAllows) {
    REQUIRE_SHARED();
    Model m = load_onnx(yoloc_test::shared_dir() + "/models/yolov8n_coco.onnx");
    set_input_size(m, 1, 160);
    Plan p = build_plan(m, {});
    p.memory_mode = Plan::MemoryMode::Concurrent;
    Tensor x = random_input({1, 3, 160, 160}, 9, 0.f, 1.f);
    const std::vector<float> ref = emulate(p, x)[0];
    const Tensor ref_t = Tensor::from_floats(p.output_shapes[0], ref);
    const std::vector<size_t> latest = other_order(p, true, 0);
    size_t moved = 0;
    for (size_t i = 0; i < latest.size(); ++i) moved += latest[i] != i;
    EXPECT_GT(moved, 10u) << "the data DAG should allow another order";
    EXPECT_EQ(max_rel(emulate(p, x, latest)[0], ref_t), 0.0);
    for (uint32_t seed : {1u, 2u, 3u}) EXPECT_EQ(max_rel(emulate(p, x, other_order(p, false, seed))[0], ref_t), 0.0);

    Plan seq = p;
    seq.memory_mode = Plan::MemoryMode::Sequential;
    EXPECT_LT(plan_memory(seq).arena_bytes, plan_memory(p).arena_bytes);
    EXPECT_EQ(max_rel(emulate(seq, x)[0], ref_t), 0.0);
    EXPECT_GT(max_rel(emulate(seq, x, latest)[0], ref_t), 1e-3) << "the sequential arena should break this order";
    std::printf("arena at 160: sequential %s, concurrent %s; ops moved by the other order: %zu of %zu\n",
                format_bytes(plan_memory(seq).arena_bytes).c_str(), format_bytes(plan_memory(p).arena_bytes).c_str(),
                moved, p.ops.size());
}

// The Bounded arena (the default) keeps independent branches apart only while the arena
// stays under a cap; the buffers past it share bytes in op order, and the runtime's DAG
// (op_dag with the memory plan) orders the ops that share. Any order of that DAG must
// give the same outputs. Here the cap is the Sequential arena itself, the tightest, so
// that many buffers share; an order of the data DAG alone must then break it.
TEST(EngineEmulate, BoundedArenaGivesTheSameOutputsInAnyOrderItsDagAllows) {
    REQUIRE_SHARED();
    Model m = load_onnx(yoloc_test::shared_dir() + "/models/yolov8n_coco.onnx");
    set_input_size(m, 1, 160);
    Plan p = build_plan(m, {});
    ASSERT_EQ(p.memory_mode, Plan::MemoryMode::Bounded);
    Plan seq = p, conc = p;
    seq.memory_mode = Plan::MemoryMode::Sequential;
    conc.memory_mode = Plan::MemoryMode::Concurrent;
    const MemoryPlan ms = plan_memory(seq), mc = plan_memory(conc);
    MemoryPlan mb = plan_memory_bounded(p, ms.arena_bytes);
    EXPECT_LT(mb.arena_bytes, mc.arena_bytes);
    EXPECT_NO_THROW(verify_memory_plan(p, mb));
    EXPECT_THROW(verify_memory_plan(conc, mb), Error) << "some independent buffers should share bytes";

    Tensor x = random_input({1, 3, 160, 160}, 11, 0.f, 1.f);
    const std::vector<float> ref = emulate(p, x, {}, &mb)[0];
    const Tensor ref_t = Tensor::from_floats(p.output_shapes[0], ref);
    EXPECT_EQ(max_rel(emulate(conc, x)[0], ref_t), 0.0);
    EXPECT_EQ(max_rel(emulate(p, x, other_order(p, true, 0, &mb), &mb)[0], ref_t), 0.0);
    for (uint32_t seed : {1u, 2u, 3u})
        EXPECT_EQ(max_rel(emulate(p, x, other_order(p, false, seed, &mb), &mb)[0], ref_t), 0.0);
    EXPECT_GT(max_rel(emulate(p, x, other_order(p, true, 0), &mb)[0], ref_t), 1e-3)
        << "the data DAG alone should allow an order that the shared bytes break";
    std::printf("arena at 160: sequential %s, bounded at the sequential size %s, concurrent %s\n",
                format_bytes(ms.arena_bytes).c_str(), format_bytes(mb.arena_bytes).c_str(),
                format_bytes(mc.arena_bytes).c_str());
}

// ---- whole models with generic ops --------------------------------------------------

namespace {

// The FP32 plan of `m` emulated against the reference executor on input x; every output
// compared (drift: see Worst). Returns the plan's generic op count.
int expect_plan_matches_reference(const std::string& what, const Model& m, const Tensor& x, bool drift = false) {
    SCOPED_TRACE(what);
    Plan p = build_plan(m, {});
    const auto got = emulate(p, x);
    const TensorMap ref = ReferenceExecutor(m).run({{m.graph.inputs[0].name, x}});
    yoloc_test::expect_outputs_match(what, p, got, ref, drift);
    return p.stats.generic_ops;
}

}  // namespace

// Every zoo model (segment and pose included) at its exported 640x640 on noise: the plan's NHWC ops,
// the generic tier (C2PSA attention, YOLO26's TopK head, the seg proto upsampler, op by
// op decodes) and the conversions between them.
TEST(EngineEmulate, EveryZooModelMatchesTheReference) {
    REQUIRE_SHARED();
    const std::vector<std::string> names = yoloc_test::zoo_models();
    EXPECT_GE(names.size(), 10u);
    int with_generic = 0;
    for (const std::string& name : names) {
        Model m = load_onnx(yoloc_test::shared_dir() + "/models/zoo/" + name + ".onnx");
        set_input_size(m, 1, 640);  // the dynamic export's symbolic sizes; the others keep theirs
        with_generic += expect_plan_matches_reference(name, m, random_input({1, 3, 640, 640}, 3, 0.f, 1.f)) > 0;
    }
    EXPECT_GE(with_generic, 4) << "YOLO11, YOLO26 (both heads), segment and pose models take the generic tier";
}

// The real yolo11n on a photo (noise makes flat DFL distributions whose box expectations
// amplify float32 rounding): its C2PSA attention runs on the generic tier. (yolov8n has
// no generic op: Yolov8nMatchesReference above.)
TEST(EngineEmulate, Yolo11nMatchesTheReferenceOnAPhoto) {
    REQUIRE_SHARED();
    const Tensor x = preprocess(load_image(yoloc_test::shared_dir() + "/data/samples/dog.jpg"), 640);
    Model m = load_onnx(yoloc_test::shared_dir() + "/models/yolo11n_coco.onnx");
    EXPECT_GT(expect_plan_matches_reference("yolo11n_coco", m, x, true), 0);
}

// A Const op's data is written once, at load, into the device weight block, and its
// readers read it there: the op launches nothing. (EveryZooModelMatchesTheReference checks
// the values: the arena bytes of those buffers are NaN in the emulation.)
TEST(EngineEmulate, ConstDataIsReadFromTheWeightsAndItsOpLaunchesNothing) {
    REQUIRE_SHARED();
    Model m = load_onnx(yoloc_test::shared_dir() + "/models/zoo/yolov8z_pose.onnx");
    const Plan p = build_plan(m, {});
    DeviceWeightLayout L;
    const std::vector<uint8_t> image = yoloc_test::emulated_weights(p, &L);
    const std::vector<int64_t> resident = cuda::weight_resident_buffers(p, L);
    const MemoryPlan mp = plan_memory(p);
    std::vector<uint8_t> arena(size_t(mp.arena_bytes + 4));
    int consts = 0, reads = 0, binary_reads = 0;
    for (size_t i = 0; i < p.ops.size(); ++i) {
        const PlanOp& op = p.ops[i];
        const bool is_const = op.kind == OpKind::Generic && GenericKind(op.gop) == GenericKind::Const;
        const void* b = L.b[i] >= 0 ? image.data() + L.b[i] : nullptr;
        const void* w = L.w[i] >= 0 ? image.data() + L.w[i] : nullptr;
        if (op.kind == OpKind::Conv) w = b = nullptr;  // not needed here
        if (is_const) {
            ++consts;
            EXPECT_EQ(resident[size_t(op.out.buf)], L.b[i]) << op.name;
            const cuda::OpArgs a = cuda::make_op_args(p, i, arena.data(), mp.offsets, w, static_cast<const float*>(b),
                                                      nullptr, nullptr, image.data(), &resident);
            EXPECT_TRUE(a.generic.none) << op.name;
            continue;
        }
        if (op.kind != OpKind::Generic) continue;
        for (const View& v : op.in) {
            if (resident[size_t(v.buf)] < 0) continue;
            ++reads;
            const cuda::OpArgs a = cuda::make_op_args(p, i, arena.data(), mp.offsets, w, static_cast<const float*>(b),
                                                      nullptr, nullptr, image.data(), &resident);
            // Binary (the pose decode's anchors and strides) reads its second operand from the weights.
            if (GenericKind(op.gop) == GenericKind::Binary && v.buf == op.in[1].buf) {
                EXPECT_EQ(a.generic.binary.b, image.data() + resident[size_t(v.buf)]) << op.name;
                ++binary_reads;
            }
        }
    }
    EXPECT_GE(consts, 2);
    EXPECT_GE(reads, consts);
    EXPECT_GT(binary_reads, 0);
    std::printf("yolov8z_pose: %d Const ops resident in the weights, read by %d generic op inputs\n", consts, reads);
}
