// FastExecutor: the CPU executor for speed. At construction it folds constants
// and infers shapes for the concrete input shape, then compiles a plan:
//  - Conv (+ Sigmoid + Mul = SiLU) (+ residual Add) fused into one conv kernel
//    (oneDNN with post-ops when built with it, else our direct kernel);
//  - activations between convs kept blocked (N, C/16, H, W, 16; see fast/blocked.h),
//    with MaxPool, nearest Resize, channel Split/Concat and Add done on that layout;
//  - every other op runs its reference kernel (ref_eval) on plain NCHW tensors,
//    converting from the blocked layout once where needed.
// Buffers for blocked activations are allocated once per compiled shape; a run
// with a different input shape compiles a new plan.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/cpu/executor.h"

namespace yoloc {

// Which convolution kernels run the fused convs.
enum class ConvKernels {
    // oneDNN when built in (faster on a quiet machine) and the graph has at most 4
    // outputs (graphs with calibration taps keep ours: see resolve_dnnl), else our own;
    // YOLOC_CPU_CONV=dnnl|own in the environment overrides. Debian's oneDNN threads
    // with OpenMP, whose workers spin between primitives: under heavy load from other
    // processes that made it several times slower, while our kernels (own thread
    // pool, no spinning) degrade gracefully (docs/DECISIONS.md). Exception: a conv
    // whose blocked input is at least a quarter zero padding (channel-pruned widths
    // such as 24 of 32) on a map at least 40 wide runs on our kernel, which skips the
    // padding that oneDNN multiplies (see plan_conv).
    Auto,
    Dnnl,  // oneDNN if built in (else own)
    Own,
};

struct FastExecutorOptions {
    ConvKernels conv = ConvKernels::Auto;
    bool profile = false;  // time every step (see FastExecutor::profile())
};

// Per-step timing summed over runs since construction (when profiling is on).
struct StepProfile {
    std::string label;   // "conv[silu,add] node_name (impl)"
    double total_ms = 0;
    int64_t calls = 0;
};

// Counts of what the plan became (for tests and `bench` reports).
struct FastPlanStats {
    int convs = 0;            // fused conv steps
    int dnnl_convs = 0;       // of those, run by oneDNN
    int fused_silu = 0;
    int fused_residual = 0;
    int blocked_steps = 0;    // MaxPool/Resize/Split/Concat/Add on the blocked layout
    int plain_steps = 0;      // Sigmoid/Softmax/Concat/Split by own kernels on plain tensors
    int ref_steps = 0;        // nodes run by ref_eval
    int layout_changes = 0;   // blocked <-> plain conversions
    int64_t arena_bytes = 0;  // buffers of blocked activations (reused by liveness)
};

class FastExecutor : public Executor {
public:
    FastExecutor(const Model& model, const ExecutorOptions& opts, const FastExecutorOptions& fopts = {});
    ~FastExecutor() override;
    TensorMap run(const TensorMap& inputs) override;
    const char* name() const override { return "fast"; }

    // Of the plan compiled last (compiles for the declared input shape if none yet).
    FastPlanStats stats();
    std::vector<StepProfile> profile() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

std::unique_ptr<Executor> make_fast_executor(const Model& model, const ExecutorOptions& opts);
std::unique_ptr<Executor> make_fast_executor(const Model& model, const ExecutorOptions& opts,
                                             const FastExecutorOptions& fopts);

}  // namespace yoloc
