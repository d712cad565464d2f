// Structured (channel) pruning of a YOLOv8 ONNX graph, training-free.
//
// 1. analyze_channels(): channel dependency groups found by propagating channel
//    provenance through the graph (never by names): a conv's output channels are
//    atoms; Split cuts them into segments, Concat joins them, element-wise Add/Mul
//    ties segments channel by channel, and any op that is not channel-wise
//    (Reshape, Transpose, graph outputs, ...) pins what reaches it. So C2f's cv1
//    output falls into two groups (one per Split half), each residual chain is one
//    group, and the Detect head's box/class outputs and the DFL are never prunable.
//    The recogniser only labels the groups (layer, role) for scopes and reports.
// 2. channel_importance(): L1/L2 norm of each channel's (already BN-folded) weights,
//    or the mean |activation| on calibration images.
// 3. apply_pruning(): removes channels (weights, biases, Split sizes) so the result
//    is a valid model with the same inputs and outputs.
// 4. reconstruct(): refits every consumer conv of a pruned group by ridge least
//    squares on calibration activations so its output matches the unpruned model
//    (He et al. 2017, "Channel Pruning for Accelerating Very Deep Neural Networks").
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "ir/graph.h"

namespace yoloc {

// Output channels [begin, begin + size) of a conv node.
struct ChannelSegment {
    std::string conv;
    int64_t begin = 0, size = 0;
};

// Input channels [in_begin, in_begin + size) of conv `conv` read the group's
// channels [group_begin, group_begin + size).
struct ChannelUse {
    std::string conv;
    int64_t in_begin = 0, size = 0, group_begin = 0;
};

struct ChannelGroup {
    int id = 0;
    int64_t size = 0;
    std::vector<ChannelSegment> producers;  // tied: channel j of each is the same group channel j
    std::vector<ChannelUse> uses;
    bool prunable = true;
    std::string pinned_reason;  // why not, when !prunable
    std::string label;          // "L4 C2f cv1[32:64] + m.0.cv2 + m.1.cv2" (from the recogniser)
    int layer = -1;             // Ultralytics layer index of the first producer (-1: unknown)
    // Scope bottleneck (YOLOv8's "c2f"): the hidden channels of the Bottlenecks inside C2f,
    // C3 and C3k2 blocks, C3k's included (m.i.cv1 -> m.i.cv2, 2 convs per bottleneck, the
    // "20 layers" of the seed's yolov8n). The block's split halves, residual
    // stream and output are wider interfaces (backbone/neck/all scopes): pruning them by
    // 14% cost yolov8n_coco all its mAP without reconstruction (docs/PRUNING.md).
    bool in_bottleneck = false;
    bool in_backbone = false;   // every producer is in layers 0..SPPF
    bool in_neck = false;       // every producer is after SPPF and before Detect
};

struct ChannelAnalysis {
    std::vector<ChannelGroup> groups;
    // Split nodes on channels: for each output, the group channel each of its channels
    // is (group id, channel) or (-1, -1) for channels of no group. Used to resize them.
    struct SplitInfo {
        std::string node;
        std::vector<std::vector<std::pair<int, int64_t>>> outputs;
    };
    std::vector<SplitInfo> splits;
    bool recognised = false;  // the recogniser understood the graph (labels, scopes)
    int num_bottleneck_blocks = 0;  // CSP blocks with Bottlenecks (C2f, C3, C3k2)
};

// Throws yoloc::Error when the graph has no constant-weight convs at all.
ChannelAnalysis analyze_channels(const Model& model);

enum class PruneScope { Bottleneck, Backbone, Neck, All };
enum class Criterion { L1, L2, Activation, ReconError };
PruneScope parse_scope(const std::string& s);
Criterion parse_criterion(const std::string& s);
const char* scope_name(PruneScope s);
// Throws yoloc::Error when `scope` cannot apply to the analysed graph (bottleneck scope on
// a graph without blocks of Bottlenecks), naming the scope and the way out.
void check_scope(const ChannelAnalysis& an, PruneScope scope);
const char* criterion_name(Criterion c);

bool group_in_scope(const ChannelGroup& g, PruneScope s);

// Per group id: one importance score per group channel.
using Importance = std::map<int, std::vector<double>>;

// Calibration input tensors, one [1,3,H,W] tensor per image, produced on demand
// (so 64 letterboxed 640x640 images are never all in memory).
struct CalibSource {
    int count = 0;
    std::function<Tensor(int)> load;
};

// L1/L2: norm of the producers' output-channel weights (BN is folded in the export).
// Activation: the mean squared contribution of the channel to its consumer convs' outputs
// on calibration images (`calib` needed), i.e. the error its removal causes before
// reconstruction. ReconError: greedy backward elimination by the least-squares error
// left after refitting the consumers (the selection for --reconstruct). Only groups in
// `scope` are scored for Activation and ReconError.
Importance channel_importance(const Model& model, const ChannelAnalysis& an, Criterion c,
                              const CalibSource* calib = nullptr, int threads = 0,
                              PruneScope scope = PruneScope::All);

// Which group channels to keep (sorted ascending), by group id. Groups not listed keep all.
using KeepPlan = std::map<int, std::vector<int64_t>>;

// Channels kept for a group of `size` at `ratio` removed: the nearest multiple of
// round_to, at least round_to, at most size.
int64_t kept_channels(int64_t size, double ratio, int64_t round_to);

// Keeps the most important kept_channels(size, ratio) of every prunable group in scope.
KeepPlan plan_ratio(const ChannelAnalysis& an, const Importance& imp, PruneScope scope, double ratio,
                    int64_t round_to);

// Removes the channels not kept. The result has the same inputs and outputs; value_info
// of intermediate values is dropped (shapes changed). Throws on an inconsistent plan.
Model apply_pruning(const Model& model, const ChannelAnalysis& an, const KeepPlan& plan);

struct ReconstructOptions {
    int samples_per_image = 128;  // output positions sampled per consumer per image
    double ridge = 1e-3;          // relative to the mean diagonal of X^T X (when ridge_folds < 2)
    // Shrink the refitted weights toward the unpruned conv's weights on the kept channels
    // (true) or toward zero (false, plain ridge). With the original as the prior, a large
    // ridge means "keep the weights, refit only the bias" and a small one the free fit.
    bool ridge_to_original = true;
    // >= 2: choose the ridge per output channel by cross-validation over this many folds of
    // the calibration images (image i in fold i % folds), from a grid of 1e-4 .. 10 times
    // the mean diagonal; the free fit overfits 64 images (docs/PRUNING.md). < 2: `ridge`.
    int ridge_folds = 4;
    int iterations = 2;           // 1: fit on the unpruned model's inputs; 2+: refit on the pruned model's
    // Passes 2+: one system at a time in graph order, each on the model carrying the refits
    // before it (true), or all at once on the previous pass's model (false).
    bool sequential = true;
    // From pass 2, also refit the convs this many layers downstream of the convs that lost
    // input channels (1: the readers of their outputs, C2f's cv2 and the next bottleneck's
    // cv1; 0: none). 1 by default since the refit is sequential and its ridge
    // cross-validated: on yolov8n_coco it took the seed setting from -1.9 to -0.7 points
    // (docs/PRUNING.md); with the old all-at-once pass and fixed ridge it had cost 0.6.
    int refit_depth = 1;
    // Keep the unpruned model's targets (conv outputs at the sampled positions) from the pass
    // that first computes them, so that later passes do not rerun the unpruned model for each
    // system (same results; off only to check that).
    bool cache_targets = true;
    // After the refit: per output channel affine fix (scale and shift) of every conv downstream
    // of a pruned channel, fitted on the pruned model's own activations so that its output
    // matches the unpruned model's (least squares per channel, or moment matching with
    // correct_moments). Sequential: level by level in graph order, each level fitted on the
    // pruned model that carries every earlier level's fix.
    bool correct = false;
    int correct_images = 0;          // calibration images used (0 = all)
    bool correct_moments = false;    // match mean and std instead of regressing
    bool correct_scale = true;       // false: shift only (bias correction)
    bool correct_head_outputs = false;  // also fix the Detect head's box/class convs
    // Convs read only through SiLU: fit silu(s x + t) to the unpruned silu(y) (what the next
    // layers see) instead of the pre-activation; samples per channel per image.
    bool correct_post_activation = true;
    int correct_samples = 256;
    int threads = 0;
    std::function<void(int, int)> progress;  // (done, total) over all image passes
};

struct ReconstructReport {
    int consumers = 0;      // convs refitted
    int systems = 0;        // least-squares systems solved (convs reading the same input share one)
    int64_t samples = 0;    // rows per system
    // Mean squared error of the refitted convs' outputs vs the unpruned model on the
    // calibration samples, before (channels dropped) and after the refit, last iteration.
    double mse_before = 0, mse_after = 0;
    // Cross-validated ridge: held-out MSE of the refitted outputs with the chosen ridges,
    // and with the fixed `ridge` option, summed over the folds (last iteration).
    double cv_mse = 0, cv_mse_fixed = 0;
};

struct AffineCorrectionReport {
    int convs = 0, levels = 0;
    // Over the corrected channels: mean squared difference to the unpruned output relative to
    // the output variance, before and after each level's fix (on the calibration images).
    double rel_mse_before = 0, rel_mse_after = 0;
};

// Refits, in `pruned`, the weights and biases of every conv that lost input channels
// (plan applied to `original` by apply_pruning).
ReconstructReport reconstruct(const Model& original, Model& pruned, const ChannelAnalysis& an,
                              const KeepPlan& plan, const CalibSource& calib, const ReconstructOptions& opt);

// Per-channel affine correction of every conv downstream of the pruning (opt.correct_*).
AffineCorrectionReport correct_downstream(const Model& original, Model& pruned, const ChannelAnalysis& an,
                                          const KeepPlan& plan, const CalibSource& calib,
                                          const ReconstructOptions& opt);

// Calibration images: the first `count` images (JPEG/PNG, sorted by path) under `dir`,
// letterboxed to `imgsz`. Throws when the folder holds none.
CalibSource calib_from_dir(const std::string& dir, int count, int imgsz);

// Full pipeline of `yoloc prune`.
struct PruneOptions {
    PruneScope scope = PruneScope::Bottleneck;
    double ratio = 0;           // > 0: uniform ratio
    int64_t target_params = 0;  // > 0: search the ratio that reaches this many parameters
    double target_flops = 0;    // > 0: same for FLOPs
    Criterion criterion = Criterion::L1;
    int64_t round_to = 8;
    bool reconstruct = false;
    std::string calib_dir;
    int calib_count = 64;
    ReconstructOptions recon;
    int threads = 0;
    std::function<void(const std::string&)> stage;  // "importance", "reconstruct", ... (for progress)
};

struct GroupReport {
    int id = 0;
    std::string label;
    int64_t before = 0, after = 0;
    bool prunable = false;
    bool in_scope = false;
    std::string pinned_reason;
};

struct PruneReport {
    std::vector<GroupReport> groups;
    double ratio = 0;  // the uniform ratio used (searched for a target)
    int64_t params_before = 0, params_after = 0;
    double flops_before = 0, flops_after = 0;
    int convs_changed = 0;
    bool reconstructed = false;
    ReconstructReport recon;
    AffineCorrectionReport correction;
};

// Validates the request (ratio in (0,1), reachable target, scope present, calib when
// needed) before any work; throws yoloc::Error with a clear message.
Model prune_model(const Model& model, const PruneOptions& opt, PruneReport* report);

}  // namespace yoloc
