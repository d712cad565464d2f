// Internal side of the GPU runtime: building an engine in memory (what `yoloc
// build` and the GPU tests use) and identifying the current device.
#pragma once

#include <memory>
#include <string>

#include "engine/engine_file.h"
#include "engine/memory_plan.h"
#include "engine/plan.h"
#include "ir/graph.h"
#include "yoloc/engine.h"

namespace yoloc {
namespace gpu {

// The current CUDA device (device 0 unless CUDA_VISIBLE_DEVICES says otherwise).
// Throws yoloc::Error when there is no usable GPU.
engine::DeviceIdentity current_device();

struct BuildOptions {
    engine::PlanOptions plan;
    int64_t memory_budget = 0;  // bytes; 0 = no limit
    std::string source;         // model path, stored for information
    bool tune = true;           // time every conv tactic on this GPU and store the fastest
    std::string timing_cache;   // optional file: tactic timings by layer shape, read and rewritten
};

// One conv's tactic choice at build time.
struct TacticChoice {
    int op = -1;
    std::string name;     // plan op name
    std::string shape;    // "3x3 s2 64->128 40x40" (input channels -> output channels, output size)
    int tactic = 0;       // chosen cuda::ConvTactic
    double best_us = 0;   // its time per launch (inside a CUDA graph)
    double auto_us = 0;   // the heuristic default's time, for comparison
    bool cached = false;  // from the timing cache
    std::vector<std::pair<int, double>> tried;  // every candidate and its time
    // cuDNN configurations dropped because their output differed from our heuristic
    // kernel's on the same activations, with the max relative difference.
    std::vector<std::pair<int, double>> rejected;
};

struct BuildResult {
    engine::EngineFile file;
    engine::MemoryPlan memory;
    std::vector<TacticChoice> tactics;  // empty when not tuned
};

// Plans the model for this GPU: plan + memory plan (refused over the budget) +
// device identity. Does not touch the GPU beyond asking what it is.
BuildResult build_engine(const Model& model, const BuildOptions& opts);

// Uploads an engine (checked against this device first).
std::shared_ptr<Engine> make_engine(engine::EngineFile file, const std::string& origin);

// Name of a conv tactic id ("mma64x64k32", "direct", ...).
std::string tactic_name(int tactic);

// The shared-memory carveout (percent, or -1: the driver's choice per kernel) the engine's
// kernels are launched with, unless YOLOC_CARVEOUT says otherwise (engine/cuda/launch.h).
int engine_carveout(const engine::Plan& p);

// Profile mode: every op timed alone (CUDA graph of back-to-back launches, median
// over `reps` replays) on a context's own arena; what `yoloc bench --profile` prints.
struct OpProfile {
    int op = -1;
    std::string kind, name, detail;  // detail: conv shape and tactic
    double us = 0;
    bool chain = false;  // on the critical chain of the op DAG (engine::critical_chain)
};
std::vector<OpProfile> profile_ops(const std::shared_ptr<const Engine>& engine, int reps = 10);

}  // namespace gpu
}  // namespace yoloc
