// cuDNN as a conv tactic: one layer's conv + bias (+ SiLU) (+ residual add) as one cuDNN
// graph (the backend API, cuDNN 8.4+), so cuDNN fuses the epilogue as our kernels do.
// The build offers the first configurations that cuDNN's heuristics (mode A) list for
// the layer and times them beside our own kernels (engine/cuda/runtime.cpp); the engine
// file stores the winner as kConvCudnnBase + its index in that list and the cuDNN
// version, and loading re-creates the plan from the same list (engine_file.cpp refuses
// another cuDNN version). Without cuDNN (or below 8.4) every function here says "none".
// C++14: kernels.cu includes it.
#pragma once

#include <cuda_runtime_api.h>

#include <memory>
#include <string>
#include <vector>

#include "engine/cuda/element_ops.h"

namespace yoloc {
namespace cuda {

// cudnnGetVersion() of the library yoloc runs with, 0 when built without cuDNN.
int cudnn_version();

// Whether cuDNN may be offered this conv: fp16 NHWC views with 8-channel multiples and
// 16-byte alignment, group 1, not INT8, not the NCHW stem, no residual that is the input
// itself. YOLOC_CUDNN=0 turns it off.
bool cudnn_conv_supported(const ConvArgs& a);

struct DnnCandidate {
    int index = 0;                   // in the heuristic list: the tactic is kConvCudnnBase + index
    std::shared_ptr<DnnPlan> plan;
    long long engine_id = -1;        // cuDNN's global engine index (for build logs)
    bool runtime_compiled = false;   // compiled by NVRTC when finalized
};

// Finalized plans for up to `max` of the heuristic list's configurations that this GPU
// can run without workspace. Empty when cuDNN is absent or refuses the graph.
std::vector<DnnCandidate> cudnn_conv_candidates(const ConvArgs& a, int max);

// The plan of configuration `index` (a tactic read from an engine file); fails with a
// message naming `layer` when it cannot be made here.
std::shared_ptr<DnnPlan> cudnn_conv_plan(const ConvArgs& a, int index, const std::string& layer);

// Enqueues the plan on `s` with a's pointers (x, KRSC weights, bias, y, residual); fails
// when `p` is null (a cuDNN tactic launched without the plan the runtime makes for it).
void cudnn_conv_run(const DnnPlan* p, const ConvArgs& a, cudaStream_t s);

}  // namespace cuda
}  // namespace yoloc
