// Choosing at most `cap` distinct conv kernels for an engine, from each layer's timed
// candidates (the build's tactic timing, src/engine/cuda/runtime.cpp). CPU-only, so that
// it is tested where there is no GPU.
//
// Each distinct kernel an engine launches is code the driver loads on first use (device
// memory in 2 MiB steps), so batch-1 engines keep at most 8 (docs/DECISIONS.md). Which 8
// is a small facility-location problem: pick the set S of kernels that minimizes the sum
// over layers of the layer's fastest time among the kernels of S it can run.
#pragma once

#include <utility>
#include <vector>

namespace yoloc {
namespace engine {

struct LayerTactics {
    // Timed candidates: (tactic id, microseconds per launch). Empty: the layer's tactic is
    // fixed (taken from a timing cache without its alternatives).
    std::vector<std::pair<int, double>> tried;
    int current = 0;  // the tactic picked so far (always kept when `tried` is empty)
};

// The sum over layers of their fastest time among `set` (infinity when a layer has no
// candidate in it; a fixed layer counts 0 when its tactic is in the set).
double kernel_set_cost(const std::vector<LayerTactics>& layers, const std::vector<int>& set);

// Per layer, the tactic to run with at most `cap` distinct tactics overall (cap <= 0: no
// limit, the current picks). From two starts (the current picks, and every candidate) it
// drops the kernel whose loss is smallest until `cap` remain, then swaps a kernel of the
// set for one outside it while that lowers the total (local search), and keeps the better
// end. Greedy dropping from the picks alone kept a worse set than one it had passed by
// (H100, yolov8n batch 1: 337 vs 329 us of layer time once cluster-8 tiles came).
// search = false: greedy dropping from the current picks only (the earlier rule; A/B runs).
std::vector<int> cap_kernels(const std::vector<LayerTactics>& layers, int cap, bool search = true);

}  // namespace engine
}  // namespace yoloc
