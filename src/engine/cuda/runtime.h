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
};

struct BuildResult {
    engine::EngineFile file;
    engine::MemoryPlan memory;
};

// Plans the model for this GPU: plan + memory plan (refused over the budget) +
// device identity. Does not touch the GPU beyond asking what it is.
BuildResult build_engine(const Model& model, const BuildOptions& opts);

// Uploads an engine (checked against this device first).
std::shared_ptr<Engine> make_engine(engine::EngineFile file, const std::string& origin);

}  // namespace gpu
}  // namespace yoloc
