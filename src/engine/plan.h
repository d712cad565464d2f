// The GPU engine plan: the folded IR lowered to a short list of fused ops over
// NHWC buffers, independent of CUDA so that it is built, stored and tested on
// machines without a GPU.
//
// Lowering (why each rule exists):
//  - Conv + bias + SiLU (Sigmoid, Mul) + residual Add become one op: the
//    activation never makes a round trip through memory.
//  - Split outputs are views (buffer + channel offset) of their input: free.
//  - Concat (channels) is free when its producers can write straight into their
//    slice of the output buffer; otherwise a Copy op moves the slice.
//  - Nearest Resize is an op of its own on NHWC; a chain of identical stride-1
//    MaxPools (SPPF) is one op writing every pool's output in one pass.
//  - The YOLOv8 Detect decode (Reshape/Concat/Split/DFL softmax/dist2bbox/
//    stride/sigmoid) becomes one Detect op that reads the per-level Concat(box,
//    cls) buffers and writes the model output [N, 4+nc, anchors] in float32.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace yoloc {
namespace engine {

enum class Precision : int32_t { FP32 = 0, FP16 = 1 };
const char* precision_name(Precision p);
Precision parse_precision(const std::string& s);  // "fp32" | "fp16"
inline int64_t precision_bytes(Precision p) { return p == Precision::FP16 ? 2 : 4; }

enum class BufferKind : int32_t {
    Activation = 0,  // NHWC, activation precision
    Input = 1,       // the graph input as the user gives it: NCHW float32
    Output = 2,      // a graph output in ONNX layout, float32
};

struct PlanBuffer {
    std::string name;  // the IR value it was created for (messages, debugging)
    BufferKind kind = BufferKind::Activation;
    Shape shape;       // Activation: [N,H,W,C]; Input/Output: the ONNX shape
    int32_t elem_bytes = 4;
    int64_t bytes() const;
};

// A channel slice of an NHWC buffer: what a Split output or a Concat input is.
struct View {
    int32_t buf = -1;
    int64_t c_off = 0;  // first channel
    int64_t c = 0;      // channels in the view
};

enum class OpKind : int32_t {
    InputPack = 0,     // Input buffer (NCHW f32) -> NHWC activation view
    Conv = 1,          // conv + bias (+ SiLU) (+ residual)
    MaxPool = 2,
    Resize = 3,        // nearest, integer up-sampling factors
    Copy = 4,          // channel slice copy (a Concat input that could not be placed)
    Detect = 5,        // fused YOLOv8 decode
    OutputUnpack = 6,  // NHWC view -> Output buffer (NCHW f32)
};
const char* op_kind_name(OpKind k);

struct PlanOp {
    OpKind kind = OpKind::Conv;
    std::string name;         // the IR node(s) it replaces, for messages and profiles
    std::vector<View> in;     // Conv: [x] or [x, residual]; Detect: one per level
    View out;
    // Conv / MaxPool window: kernel, stride, top/left pads (bottom/right follow from the
    // output size), groups.
    int32_t kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0, group = 1;
    bool silu = false;
    int64_t w_off = -1, w_count = 0;  // Conv weights in Plan::weights, [kh][kw][C/group][M]
    int64_t b_off = -1, b_count = 0;  // Conv bias in Plan::weights
    int32_t fy = 1, fx = 1;           // Resize factors
    int32_t reg_max = 0, nc = 0;      // Detect
    std::vector<int32_t> strides;     // Detect: stride per level
    // MaxPool chain (SPPF): outputs of the 2nd, 3rd... pool of a chain of identical
    // stride-1 "same" pools, computed in the same pass as `out` (window k, 2k-1, ...).
    std::vector<View> more_out;
};

struct PlanStats {
    int convs = 0, convs_silu = 0, convs_residual = 0;
    int split_views = 0;          // Split outputs served as views
    int concat_inputs = 0;        // all Concat inputs
    int concat_in_place = 0;      // ... written in place by their producer
    int copies = 0;               // ... that needed a Copy op
    int maxpools = 0, resizes = 0, detects = 0;
    int maxpool_chains = 0;       // fused chains (each counts its pools in maxpools)
    int ir_nodes = 0;             // nodes of the folded IR that were lowered
};

struct Plan {
    Precision precision = Precision::FP32;
    int64_t batch = 1;
    std::string input_name;
    Shape input_shape;                        // NCHW, batch included
    std::vector<std::string> output_names;
    std::vector<Shape> output_shapes;
    int32_t input_buf = -1;
    std::vector<int32_t> output_bufs;
    std::vector<PlanBuffer> buffers;
    std::vector<PlanOp> ops;
    std::vector<float> weights;               // float32 on the host; the runtime converts
    PlanStats stats;

    // Bytes the weights take on the device (conv weights in the activation
    // precision, biases in float32).
    int64_t device_weight_bytes() const;
    // Checks internal consistency (view ranges, weight ranges, op arity); throws
    // yoloc::Error. Run after loading a plan from a file, before any kernel sees it.
    void validate() const;
};

struct PlanOptions {
    Precision precision = Precision::FP32;
    int64_t batch = 0;       // 0: the model's batch (1 when symbolic); else must match a fixed one
    int64_t imgsz = 0;       // used when H/W are symbolic (0: must be declared)
};

// Builds the plan from an ONNX model (folded here for the chosen batch). Throws
// yoloc::Error naming the first node it cannot lower.
Plan build_plan(const Model& model, const PlanOptions& opts);

// One line per op, for `yoloc build --verbose` and debugging.
std::string describe_plan(const Plan& p);

}  // namespace engine
}  // namespace yoloc
