// `yoloc build MODEL -o OUT.engine`: plans the model for this GPU and writes an
// engine file (see src/engine/engine_file.h).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "option_rules.h"
#include "core/error.h"
#include "core/stats.h"
#include "deploy/profiles.h"
#include "engine/memory_plan.h"
#include "engine/plan.h"
#include "onnx/onnx_io.h"
#ifdef YOLOC_HAVE_CUDA
#include <cuda_runtime_api.h>

#include "engine/cuda/runtime.h"
#endif

namespace yoloc_cli {
namespace {

// No GPU yoloc builds for has more memory than this (H200: 141 GB, B200: 192 GB): a
// plan over it is refused even without --memory-budget and without a GPU at hand.
constexpr int64_t kLargestDeviceBytes = int64_t(192) << 30;

// The CPU side of `build`, run before any GPU is touched and before anything is
// written: the plan and its memory plan, refused when they exceed --memory-budget, the
// memory of this GPU (CUDA builds), or kLargestDeviceBytes.
//
// A large batch is first judged from the batch-1 plan: every activation buffer holds
// the batch in its first dimension, so the arena grows linearly with it. This refuses a
// huge --batch without planning it (shape inference materialises some tensors of the
// real shape while folding, which would allocate batch-sized memory or fail with a
// message that does not say why).
//
// workspace_cap > 0: the planned workspace must fit it (--workspace or the profile's).
void check_memory_before_building(const yoloc::Model& m, const yoloc::engine::PlanOptions& po, int64_t budget,
                                  int64_t workspace_cap) {
    namespace ye = yoloc::engine;
    int64_t limit = kLargestDeviceBytes;
    std::string limit_what = "more than any GPU has (" + ye::format_bytes(kLargestDeviceBytes) + ")";
#ifdef YOLOC_HAVE_CUDA
    size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess && int64_t(total_b) > 0 && int64_t(total_b) < limit) {
        limit = int64_t(total_b);
        limit_what = "more than this GPU's " + ye::format_bytes(limit);
    }
    (void)free_b;
#endif
    if (budget > 0 && budget < limit) {
        limit = budget;
        limit_what = "more than the budget of " + ye::format_bytes(budget);
    }
    const char* advice = ": use a smaller batch or image size, fp16, or a larger --memory-budget";
    if (po.batch > 1) {
        ye::PlanOptions one = po;
        one.batch = 1;
        bool planned = false;
        ye::Plan p1;
        try {
            p1 = ye::build_plan(m, one);
            planned = true;
        } catch (const yoloc::Error&) {
            // A model whose batch cannot be re-targeted: judged from its own plan below.
        }
        if (planned) {
            p1.memory_mode = ye::Plan::MemoryMode::Sequential;  // the smallest arena the build may fall back to
            ye::MemoryPlan mp1 = ye::plan_memory(p1, 0);
            const double need = double(mp1.weight_bytes + mp1.workspace_bytes) + double(mp1.arena_bytes) * double(po.batch);
            if (need > double(limit)) {
                yoloc::Shape in = p1.input_shape;
                in[0] = po.batch;
                yoloc::fail("the engine (batch ", po.batch, ", ", ye::precision_name(p1.precision), ", input ",
                            yoloc::shape_str(in), ") needs about ",
                            ye::format_bytes(need > 9e18 ? int64_t(9e18) : int64_t(need)),
                            " of device memory (weights ", ye::format_bytes(mp1.weight_bytes), ", activations ",
                            ye::format_bytes(mp1.arena_bytes), " per image), ", limit_what, advice);
            }
        }
    }
    ye::Plan plan;
    try {
        plan = ye::build_plan(m, po);
    } catch (const yoloc::Error& e) {
        if (po.batch <= 1) throw;
        // Shape inference bounds the tensors it materialises while folding (2^26
        // elements), which a large batch can exceed: say which batch failed.
        yoloc::fail("cannot plan the engine at batch ", po.batch, ": ", e.what(), " (try a smaller --batch)");
    }
    // Throws over the budget, naming the batch (after trying the smaller sequential arena).
    ye::MemoryPlan mp = ye::plan_memory_within(plan, budget);
    if (workspace_cap > 0 && mp.workspace_bytes > workspace_cap)
        yoloc::fail("the engine's kernels need a workspace of ", ye::format_bytes(mp.workspace_bytes),
                    ", more than the --workspace cap of ", ye::format_bytes(workspace_cap));
    if (mp.total_bytes() > limit)
        yoloc::fail("the engine (batch ", plan.batch, ", ", ye::precision_name(plan.precision), ", input ",
                    yoloc::shape_str(plan.input_shape), ") needs ", ye::format_bytes(mp.total_bytes()),
                    " of device memory (weights ", ye::format_bytes(mp.weight_bytes), ", activations ",
                    ye::format_bytes(mp.arena_bytes), "), ", limit_what, advice);
}

Registrar reg("build", "build a GPU engine file from an ONNX model (needs a CUDA build and a GPU)", [](CLI::App& app) {
    auto model = std::make_shared<std::string>();
    auto out = std::make_shared<std::string>();
    auto precision = std::make_shared<std::string>("fp16");
    auto batch = std::make_shared<int64_t>(0);
    auto imgsz = std::make_shared<int64_t>(0);
    auto budget = std::make_shared<std::string>();
    auto workspace = std::make_shared<std::string>();
    auto target = std::make_shared<std::string>();
    auto verbose = std::make_shared<bool>(false);
    auto timing_cache = std::make_shared<std::string>();
    auto no_tune = std::make_shared<bool>(false);
    auto no_hfuse = std::make_shared<bool>(false);
    auto no_i8store = std::make_shared<bool>(false);
    app.add_option("model", *model, "ONNX model")->required();
    app.add_option("-o,--output", *out, "engine file to write")->required();
    CLI::Option* precision_opt =
        app.add_option("--precision", *precision,
                       "fp32, fp16, int8 (a Q/DQ model from `yoloc quantize`: its quantized convs run in INT8, the "
                       "rest in fp16) or best (int8 where the model has Q/DQ, else fp16); default: fp16, or the "
                       "--target profile's preferred precision")
            ->check(CLI::IsMember({"fp32", "fp16", "int8", "best"}))->capture_default_str();
    CLI::Option* batch_opt =
        app.add_option("--batch", *batch, "batch size (0: the model's, 1 when dynamic; 1 for a Jetson --target)")
            ->check(rules::batch(true))->capture_default_str();
    app.add_option("--imgsz", *imgsz, "input size for symbolic H/W dims")->check(rules::imgsz(true));
    app.add_option("--memory-budget", *budget,
                   "refuse when weights + activations + workspace exceed this (e.g. 2GiB); default: the --target "
                   "profile's budget");
    app.add_option("--workspace", *workspace,
                   "cap on the scratch (workspace) memory of the engine's kernels, e.g. 128MiB; default: the --target "
                   "profile's. yoloc's own kernels need no workspace today (planned 0 B), so this is a limit that build "
                   "reports and enforces, not memory it reserves; the same cap goes into TensorRT's command in `yoloc "
                   "export`");
    app.add_option("--target", *target,
                   "target profile (" + yoloc::deploy::profile_names() +
                       "): sets the defaults of --memory-budget, --workspace and --precision (explicit flags win); "
                       "Jetson profiles build batch 1. On a GPU of another compute capability the engine is built for "
                       "this GPU with the profile's memory limits: a simulation of the device's memory budget, not of "
                       "its speed");
    app.add_flag("--verbose", *verbose, "print the plan, one op per line, and each conv's five fastest timed tactics");
    app.add_option("--timing-cache", *timing_cache,
                   "file of conv tactic timings on this GPU: read to skip timing known layer shapes, then rewritten");
    app.add_flag("--no-tune", *no_tune, "skip timing the conv tactics (heuristic kernel choice)");
    app.add_flag("--no-horizontal-fusion", *no_hfuse,
                 "keep convs that read the same input as separate ops (default: merge them, e.g. the Detect heads' "
                 "first box and class convs)");
    app.add_flag("--no-int8-storage", *no_i8store,
                 "INT8: keep every activation in fp16 between layers, the INT8 convs quantizing their inputs as they "
                 "load them (default: tensors whose readers all quantize them with one scale stay int8)");
    return [=]() {
        namespace ye = yoloc::engine;
        namespace yd = yoloc::deploy;
        const yd::TargetProfile* prof = target->empty() ? nullptr : &yd::find_profile(*target);
        std::string prec = *precision;
        int64_t batch_v = *batch;
        int64_t budget_bytes = budget->empty() ? 0 : ye::parse_bytes(*budget);
        YOLOC_CHECK(budget->empty() || budget_bytes > 0, "--memory-budget must be more than 0 bytes");
        int64_t workspace_cap = workspace->empty() ? 0 : ye::parse_bytes(*workspace);
        YOLOC_CHECK(workspace->empty() || workspace_cap > 0, "--workspace must be more than 0 bytes");
        if (prof) {
            // The profile's defaults; explicit flags win.
            if (precision_opt->count() == 0)
                prec = prof->preferred_precision == "int8" ? "best" : prof->preferred_precision;
            if (budget->empty()) budget_bytes = prof->memory_budget_bytes;
            if (workspace->empty()) workspace_cap = prof->workspace_bytes;
            if (yd::is_device_profile(*prof)) {
                YOLOC_CHECK(batch_opt->count() == 0 || batch_v == 0 || batch_v == prof->batch, "--batch ", batch_v,
                            ": target ", prof->name, " builds batch ", prof->batch, " only (one camera stream on ", prof->device,
                            "); drop --batch or use --target host");
                batch_v = prof->batch;
            }
            info("target     " + prof->name + " (" + prof->device + "): memory budget " +
                 (budget_bytes > 0 ? ye::format_bytes(budget_bytes) : std::string("none")) +
                 (budget->empty() ? "" : " (--memory-budget)") + ", workspace cap " +
                 (workspace_cap > 0 ? ye::format_bytes(workspace_cap) : std::string("none")) +
                 (workspace->empty() ? "" : " (--workspace)") + ", precision " + prec +
                 (precision_opt->count() ? " (--precision)" : " (profile default)") + ", batch " +
                 (batch_v > 0 ? std::to_string(batch_v) : std::string("of the model")));
            if (yd::is_device_profile(*prof) && !prof->fast_int8 && (prec == "int8" || prec == "best"))
                info("note       " + prof->device + " has no fast INT8: INT8 is for size and accuracy there, not speed");
        }
        ye::PlanOptions po;
        po.precision = ye::parse_precision(prec);
        po.int8_requires_qdq = prec == "int8";
        po.batch = batch_v;
        po.imgsz = *imgsz;
        po.fuse_siblings = !*no_hfuse;
        po.int8_storage = !*no_i8store;
        yoloc::Model m = yoloc::load_onnx(*model);
        check_memory_before_building(m, po, budget_bytes, workspace_cap);
#ifndef YOLOC_HAVE_CUDA
        yoloc::fail("this yoloc was built without CUDA support, so it cannot build GPU engines: "
                    "rebuild yoloc on a machine with the CUDA toolkit (nvcc) and -DYOLOC_WITH_CUDA=ON");
        return 1;
#else
        if (prof && yd::is_device_profile(*prof)) {
            const ye::DeviceIdentity here = yoloc::gpu::current_device();
            if (here.cc_major != prof->cc_major || here.cc_minor != prof->cc_minor)
                info("simulation " + here.gpu_name + " (compute capability " + std::to_string(here.cc_major) + "." +
                     std::to_string(here.cc_minor) + ") is not a " + prof->device + " (" +
                     std::to_string(prof->cc_major) + "." + std::to_string(prof->cc_minor) +
                     "): this engine is for this GPU, built under " + prof->name +
                     "'s memory limits. It simulates the device's memory budget, not its speed; build on the "
                     "device for a deployable engine (`yoloc export`)");
        }
        yoloc::gpu::BuildOptions o;
        o.plan = po;
        o.memory_budget = budget_bytes;
        o.source = *model;
        o.tune = !*no_tune;
        o.timing_cache = *timing_cache;
        yoloc::gpu::BuildResult r = yoloc::gpu::build_engine(m, o);
        YOLOC_CHECK(workspace_cap <= 0 || r.memory.workspace_bytes <= workspace_cap, "the engine's kernels need a "
                    "workspace of ", ye::format_bytes(r.memory.workspace_bytes), ", more than the cap of ",
                    ye::format_bytes(workspace_cap));
        ye::write_engine(*out, r.file);
        const ye::Plan& p = r.file.plan;
        const ye::PlanStats& s = p.stats;
        if (*verbose) std::fputs(ye::describe_plan(p).c_str(), stdout);
        std::printf("engine     %s (%s, batch %lld, input %s)\n", out->c_str(), ye::precision_name(p.precision),
                    static_cast<long long>(p.batch), yoloc::shape_str(p.input_shape).c_str());
        std::printf("device     %s, compute capability %d.%d, CUDA runtime %d\n",
                    r.file.info.device.gpu_name.c_str(), r.file.info.device.cc_major, r.file.info.device.cc_minor,
                    r.file.info.device.cuda_runtime);
        std::printf("ops        %zu: %d convs (%d with SiLU, %d with residual add, %d merged into a sibling reading "
                    "the same input), %d maxpool, %d resize, %d detect, %d copies; %d split views, %d/%d concat inputs "
                    "written in place\n",
                    p.ops.size(), s.convs, s.convs_silu, s.convs_residual, s.convs_fused_siblings, s.maxpools, s.resizes,
                    s.detects, s.copies, s.split_views, s.concat_in_place, s.concat_inputs);
        if (p.precision == ye::Precision::INT8 || s.fake_quants > 0)
            std::printf("int8       %d of %d convs in INT8 (%d Q/DQ pairs folded into conv inputs and residual reads), "
                        "%d fake-quant ops, %d convs in fp16; %d activation buffers stored as int8\n",
                        s.convs_int8, s.convs, s.qdq_folded, s.fake_quants, s.convs - s.convs_int8, s.int8_buffers);
        std::printf("memory     weights %s + activations %s + workspace %s = %s (unshared activations %s; %s)\n",
                    ye::format_bytes(r.memory.weight_bytes).c_str(), ye::format_bytes(r.memory.arena_bytes).c_str(),
                    ye::format_bytes(r.memory.workspace_bytes).c_str(), ye::format_bytes(r.memory.total_bytes()).c_str(),
                    ye::format_bytes(r.memory.unshared_bytes).c_str(),
                    p.memory_mode == ye::Plan::MemoryMode::Bounded
                        ? "bounded arena: independent branches overlap where that adds no 2 MiB page to the device "
                          "block, elsewhere they share bytes in op order"
                    : p.memory_mode == ye::Plan::MemoryMode::Concurrent
                        ? "concurrent arena: independent branches overlap"
                        : "sequential arena: branches that share bytes run one after the other");
        if (budget_bytes > 0 || workspace_cap > 0)
            std::printf("limits     memory budget %s, workspace cap %s%s%s\n",
                        budget_bytes > 0 ? ye::format_bytes(budget_bytes).c_str() : "none",
                        workspace_cap > 0 ? ye::format_bytes(workspace_cap).c_str() : "none",
                        prof ? ", target " : "", prof ? prof->name.c_str() : "");
        if (prof && yd::is_device_profile(*prof) &&
            (r.file.info.device.cc_major != prof->cc_major || r.file.info.device.cc_minor != prof->cc_minor))
            std::printf("simulation built on %s for %s's memory budget: the memory figures hold for %s, the speed "
                        "does not\n",
                        r.file.info.device.gpu_name.c_str(), prof->name.c_str(), prof->device.c_str());
        if (!r.tactics.empty()) {
            // Per-layer tactic choice (timed on this GPU, inside a CUDA graph).
            double best = 0, dflt = 0;
            int cached = 0;
            for (const auto& t : r.tactics) {
                best += t.best_us;
                dflt += t.auto_us;
                cached += t.cached ? 1 : 0;
                std::printf("tactic     op %-3d %-26s %-22s %-16s %7.2f us (heuristic %7.2f us)%s\n", t.op,
                            t.name.substr(0, 26).c_str(), t.shape.c_str(), yoloc::gpu::tactic_name(t.tactic).c_str(),
                            t.best_us, t.auto_us, t.cached ? " [cache]" : "");
                if (*verbose && !t.tried.empty()) {
                    // The five fastest candidates as timed (the choice may differ: shared tactics).
                    std::vector<std::pair<int, double>> tried = t.tried;
                    std::sort(tried.begin(), tried.end(),
                              [](const std::pair<int, double>& x, const std::pair<int, double>& y) { return x.second < y.second; });
                    std::printf("           candidates");
                    for (size_t k = 0; k < tried.size() && k < 5; ++k)
                        std::printf(" %s %.2f", yoloc::gpu::tactic_name(tried[k].first).c_str(), tried[k].second);
                    std::printf("\n");
                }
                // Always shown: a cuDNN configuration whose output was wrong here.
                for (const auto& rj : t.rejected)
                    std::printf("           dropped %s: its output differs from our kernel's by %.3g (relative)\n",
                                yoloc::gpu::tactic_name(rj.first).c_str(), rj.second);
            }
            std::printf("tactics    %zu convs timed (%d from the timing cache): sum %.1f us chosen vs %.1f us heuristic\n",
                        r.tactics.size(), cached, best, dflt);
        }
        return 0;
#endif
    };
});

}  // namespace

// `yoloc bench ENGINE --profile`: every op timed alone (CUDA graph of repeated
// launches), to see where the forward's time goes.
int profile_engine(const std::string& path, int iters, bool json) {
#ifndef YOLOC_HAVE_CUDA
    yoloc::fail("this yoloc was built without CUDA support, so it cannot run ", path,
                ": rebuild yoloc with the CUDA toolkit (nvcc) and -DYOLOC_WITH_CUDA=ON");
    return 1;
#else
    auto eng = yoloc::gpu::Engine::load(path);
    std::vector<yoloc::gpu::OpProfile> prof = yoloc::gpu::profile_ops(eng, std::max(3, std::min(iters, 50)));
    double total = 0;
    for (const auto& r : prof) total += r.us;
    if (json) {
        nlohmann::json ops = nlohmann::json::array();
        for (const auto& r : prof)
            ops.push_back({{"op", r.op}, {"kind", r.kind}, {"name", r.name}, {"detail", r.detail}, {"us", r.us}, {"chain", r.chain}});
        nlohmann::json j = {{"engine", path}, {"sum_us", total}, {"ops", ops},
                            {"method", "each op alone: 20 launches in one CUDA graph, median of replays, per launch"}};
        std::cout << j.dump() << "\n";
        return 0;
    }
    for (const auto& r : prof)
        std::printf("%3d%c %-12s %7.2f us %5.1f%%  %-28s %s\n", r.op, r.chain ? '*' : ' ', r.kind.c_str(), r.us,
                    100.0 * r.us / total, r.name.substr(0, 28).c_str(), r.detail.c_str());
    std::printf("sum of ops alone: %.1f us (%zu ops; *: on the critical chain); the graph overlaps independent "
                "branches\n", total, prof.size());
    return 0;
#endif
}

}  // namespace yoloc_cli
