// Helpers shared by the prune sources (not part of the public API).
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "engine/cpu/executor.h"
#include "ir/graph.h"
#include "prune/prune.h"

namespace yoloc {
namespace prune_detail {

// Declared input shapes with symbolic dims made concrete (batch 1, 640 pixels).
std::map<std::string, Shape> concrete_input_shapes(const Model& m);

// Per conv: which output / input channels survive a plan (1 = kept).
struct ConvMasks {
    std::map<std::string, std::vector<char>> out, in;
};
ConvMasks conv_masks(const Graph& g, const ChannelAnalysis& an, const KeepPlan& plan);

// Runs `model` on every calibration image with `taps` added as graph outputs (fast
// executor) and calls fn(image index, outputs).
void run_taps(const Model& model, const std::vector<std::string>& taps, const CalibSource& calib, int threads,
              const std::function<void(int, const TensorMap&)>& fn);

}  // namespace prune_detail
}  // namespace yoloc
