// The GPU twin of test_op_diff.cpp and of the whole-model emulation tests: the same
// one-node models through the CUDA plan (build_engine, Context::infer: the runtime's
// dispatch of every plan op, generic ones included), against the reference executor;
// then every zoo model and yolo11n as FP32 engines.
#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "engine/cpu/executor.h"
#include "engine/cuda/runtime.h"
#include "models.h"
#include "model_compare.h"
#include "onnx/onnx_io.h"
#include "op_diff_cases.h"
#include "test_util.h"
#include "yolo/image.h"
#include "yolo/input_size.h"
#include "yolo/letterbox.h"

using namespace yoloc;
using namespace yoloc_test;

namespace {

// An FP32 engine of `m` (no tactic timing: the heuristic conv kernels), with its plan.
std::shared_ptr<gpu::Engine> fp32_engine(const Model& m, engine::Plan* plan) {
    gpu::BuildOptions o;
    o.plan.precision = engine::Precision::FP32;
    o.tune = false;
    gpu::BuildResult r = gpu::build_engine(m, o);
    if (plan) *plan = r.file.plan;
    return gpu::make_engine(r.file, "in-memory engine");
}

std::vector<std::vector<float>> run_engine(const std::shared_ptr<gpu::Engine>& e, const Tensor& x) {
    gpu::Context ctx(e);
    std::vector<std::vector<float>> out;
    ctx.infer(x.data<float>(), out);
    return out;
}

}  // namespace

TEST(OpDiffGpu, EveryLoweredOpMatchesTheReferenceOnTheCudaPlan) {
    struct Row {
        int cases = 0;
        OpTally gpu;
    };
    std::map<std::string, Row> by_op;
    for (const OpCase& c : diff_cases()) {
        const std::string& op = c.node.op_type;
        Row& row = by_op[op == "QuantizeLinear" ? "QuantizeLinear+DequantizeLinear" : op];
        ++row.cases;
        DiffModel dm;
        std::string why;
        if (!make_diff_model(c, &dm, &why)) continue;
        SCOPED_TRACE(c.name);
        const TensorMap ref = ReferenceExecutor(dm.model).run({{"input", dm.input}});
        engine::Plan plan;
        std::shared_ptr<gpu::Engine> eng;
        try {
            eng = fp32_engine(dm.model, &plan);
        } catch (const Error&) {
            continue;  // test_op_diff.cpp checks which cases the plan refuses, and why
        }
        const std::vector<std::vector<float>> got = run_engine(eng, dm.input);
        ++row.gpu.ran;
        for (size_t k = 0; k < dm.outputs.size(); ++k) {
            const double e = k < got.size() ? diff_error(got[k], ref.at(dm.outputs[k])) : 1e30;
            row.gpu.worst = std::max(row.gpu.worst, e);
            if (c.device_tol == 0 ? e != 0 : !(e <= c.device_tol)) {
                ++row.gpu.failed;
                ADD_FAILURE() << c.name << ": the CUDA plan differs from the reference by " << e << " (tolerance "
                              << c.device_tol << ")";
            }
        }
    }
    std::printf("%-34s %5s %5s %9s\n", "op", "cases", "gpu", "worst");
    int ran = 0;
    for (const auto& kv : by_op) {
        std::printf("%-34s %5d %5d %9.2g\n", kv.first.c_str(), kv.second.cases, kv.second.gpu.ran, kv.second.gpu.worst);
        ran += kv.second.gpu.ran;
    }
    EXPECT_GT(ran, 500);
}

// Every zoo model (segment and pose included) as an FP32 engine, on the input the host
// emulation test uses, within the same tolerance.
TEST(OpDiffGpu, EveryZooModelMatchesTheReferenceOnTheCudaPlan) {
    REQUIRE_SHARED();
    for (const std::string& name : zoo_models()) {
        Model m = load_onnx(shared_dir() + "/models/zoo/" + name + ".onnx");
        set_input_size(m, 1, 640);
        std::vector<float> v = random_floats(size_t(3 * 640 * 640), 3, 1.0f);
        for (float& f : v) f = (f + 1.f) * 0.5f;
        const Tensor x = Tensor::from_floats({1, 3, 640, 640}, v);
        engine::Plan plan;
        auto eng = fp32_engine(m, &plan);
        const TensorMap ref = ReferenceExecutor(m).run({{m.graph.inputs[0].name, x}});
        expect_outputs_match(name + " gpu", plan, run_engine(eng, x), ref, false);
    }
}

TEST(OpDiffGpu, Yolo11nMatchesTheReferenceOnAPhotoOnTheCudaPlan) {
    REQUIRE_SHARED();
    const Tensor x = preprocess(load_image(shared_dir() + "/data/samples/dog.jpg"), 640);
    Model m = load_onnx(shared_dir() + "/models/yolo11n_coco.onnx");
    engine::Plan plan;
    auto eng = fp32_engine(m, &plan);
    EXPECT_GT(plan.stats.generic_ops, 0);
    const TensorMap ref = ReferenceExecutor(m).run({{m.graph.inputs[0].name, x}});
    expect_outputs_match("yolo11n_coco gpu", plan, run_engine(eng, x), ref, true);
}
