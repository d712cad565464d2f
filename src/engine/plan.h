// The GPU engine plan: the folded IR lowered to a short list of fused ops over
// NHWC buffers, independent of CUDA so that it is built, stored and tested on
// machines without a GPU.
//
// Lowering (why each rule exists):
//  - Conv + bias + SiLU (Sigmoid, Mul) + residual Add become one op: the
//    activation never makes a round trip through memory.
//  - The stem conv reads the NCHW float32 input directly (no InputPack op) when it
//    is the packed input's only reader and has at most kMaxStemChannels channels.
//  - Split outputs are views (buffer + channel offset) of their input: free.
//  - Concat (channels) is free when its producers can write straight into their
//    slice of the output buffer; otherwise a Copy op moves the slice.
//  - Nearest Resize is an op of its own on NHWC; a chain of identical stride-1
//    MaxPools (SPPF) is one op writing every pool's output in one pass.
//  - The YOLOv8 Detect decode (Reshape/Concat/Split/DFL softmax/dist2bbox/
//    stride/sigmoid) becomes one Detect op that reads the per-level Concat(box,
//    cls) buffers and writes the model output [N, 4+nc, anchors] in float32.
//  - Q/DQ models (`yoloc quantize`): with --precision int8|best, a Conv whose weight
//    is a DequantizeLinear of int8 weights and whose input is a per-tensor
//    QuantizeLinear -> DequantizeLinear pair becomes an INT8 conv (int8 weights,
//    per-channel weight scales, the input scale; activations stay fp16 in memory and
//    are quantized when loaded). A Q -> DQ pair on the residual input of an Add fused
//    into an INT8 conv becomes the conv's residual fake-quant (res_scale). Every other
//    Q -> DQ pair keeps its meaning as a FakeQuant op (round(x/s), clamp to
//    [-128,127], times s); weight DequantizeLinears of convs that stay float are
//    folded into float weights (q * s, as the reference executor computes them).
//  - INT8 storage: a buffer whose every reader quantizes it with one scale per channel
//    (an INT8 conv input or fused residual, or a MaxPool / Resize / Copy whose output
//    is such a buffer) and whose writers are INT8 convs (or those pass-through ops)
//    is stored as int8: the writers' epilogues quantize, the readers load int8. This
//    is exact: quantization commutes with max-pooling, nearest resizing and copying,
//    and a reader's Q would have produced the same integers. `yoloc quantize` gives all
//    tensors a Concat joins one scale so that the C2f and neck concats qualify.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace yoloc {
namespace engine {

// INT8: fp16 activations, INT8 tensor-core convs where the model has Q/DQ, fp16 elsewhere.
enum class Precision : int32_t { FP32 = 0, FP16 = 1, INT8 = 2 };
const char* precision_name(Precision p);
Precision parse_precision(const std::string& s);  // "fp32" | "fp16" | "int8" | "best" (= int8)
// Bytes of one activation element.
inline int64_t precision_bytes(Precision p) { return p == Precision::FP32 ? 4 : 2; }

enum class BufferKind : int32_t {
    Activation = 0,  // NHWC, activation precision (or int8: elem_bytes 1, INT8 engines)
    Input = 1,       // the graph input as the user gives it: NCHW float32
    Output = 2,      // a graph output in ONNX layout, float32
    Tensor = 3,      // a value of the generic tier: ONNX layout (row-major), float32 or int32
};

struct PlanBuffer {
    std::string name;  // the IR value it was created for (messages, debugging)
    BufferKind kind = BufferKind::Activation;
    Shape shape;       // Activation: [N,H,W,C]; Input/Output/Tensor: the ONNX shape (rank 1..6)
    int32_t elem_bytes = 4;
    // Tensor: int32 elements (ONNX int64 and bool values narrowed: indices, class ids and
    // masks fit), else float32.
    bool integer = false;
    int64_t bytes() const;
};

// A channel slice of an NHWC buffer: what a Split output or a Concat input is.
struct View {
    int32_t buf = -1;
    int64_t c_off = 0;  // first channel
    int64_t c = 0;      // channels in the view
};

// A conv over at most this many input channels that is the only reader of the packed
// input reads the NCHW float32 Input buffer itself (the stem; InputPack is dropped).
constexpr int64_t kMaxStemChannels = 4;

enum class OpKind : int32_t {
    InputPack = 0,     // Input buffer (NCHW f32) -> NHWC activation view
    Conv = 1,          // conv + bias (+ SiLU) (+ residual)
    MaxPool = 2,
    Resize = 3,        // nearest, integer up-sampling factors
    Copy = 4,          // channel slice copy (a Concat input that could not be placed)
    Detect = 5,        // fused YOLOv8 decode
    OutputUnpack = 6,  // NHWC view -> Output buffer (NCHW f32)
    FakeQuant = 7,     // y = clamp(round_half_even(x / in_scale), -128, 127) * in_scale (a Q -> DQ pair)
    Generic = 8,       // an op of the generic tier (GenericKind) on Tensor buffers
};
const char* op_kind_name(OpKind k);

// The generic tier: every op the reference executor runs, on row-major Tensor buffers
// (engine/cuda/generic_ops.h has the element functions; the argument structs there are
// filled from these fields). Views of Tensor buffers are whole buffers (c_off 0, c 0).
// Shapes are padded to kGenericRank dims with leading 1s; strides count elements and 0
// broadcasts. Plan::validate bounds every offset an op can form by its buffers' sizes.
constexpr int kGenericRank = 6;
enum class GenericKind : int32_t {
    Unary = 0,           // sub: UnaryOp (ir/unary_ops.h); floats: alpha, beta; in: x
    Binary = 1,          // sub: BinaryOp; ints: dims[6], as[6], bs[6]; in: a, b (same type)
    Where = 2,           // ints: dims[6], cs[6], as[6], bs[6]; in: cond (int32), a, b
    Softmax = 3,         // sub: 1 = LogSoftmax; ints: outer, len, inner
    MatMul = 4,          // ints: m, n, k, batch[4], as[4], bs[4] (matrix strides per batch dim)
    Copy = 5,            // ints: dims[6], xs[6], ys[6], x_off, y_off: y[y_off + idx.ys] = x[x_off + idx.xs]
    Gather = 6,          // ints: outer, len, inner, count; in: x, indices (int32)
    GatherElements = 7,  // ints: dims[6], xs[6], axis (padded), len; in: x, indices (int32, shape dims)
    TopK = 8,            // sub: largest; ints: outer, len, inner, k; out: values; more_out[0]: indices
    Reduce = 9,          // sub: ReduceOp; ints: dims[6], xs[6], rdims[6], rs[6]
    Cast = 10,           // sub: CastKind; float32 <-> int32 (and to bool as int32 0/1)
    Const = 11,          // out = the op's b array (b_off, b_count floats; an int32 buffer gets them as integers)
    FakeQuant = 12,      // floats: scale; y = clamp(round_half_even(x / scale), -128, 127) * scale
    ConvTranspose = 13,  // NCHW float32, ints: kh, kw, sh, sw, ph, pw, group; w_off/w_count ([Cin][Cout/g][kh][kw]), b_off/b_count
};
const char* generic_kind_name(GenericKind k);

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
    // Conv: the kernel chosen for this layer at build time by timing the candidates on
    // the build GPU (a cuda::ConvTactic id; 0 = the runtime's heuristic choice).
    int32_t tactic = 0;
    // INT8 conv (in_scale > 0): the weights at w_off are integers in [-127, 127] (as
    // floats), s_off/s_count the per-output-channel weight scales; the input is
    // quantized with in_scale. res_scale > 0: the residual is fake-quantized with it
    // before the add. FakeQuant: in_scale is its scale.
    float in_scale = 0.f, res_scale = 0.f;
    int64_t s_off = -1, s_count = 0;
    // INT8 conv writing an int8 buffer (int8 storage, assign_int8_storage): the scale of
    // each output channel (ys_count == out.c floats at ys_off); the epilogue stores
    // QuantizeLinear(y, scale[c]).
    int64_t ys_off = -1, ys_count = 0;
    // Generic: the op (GenericKind), its sub-op and its parameters (see GenericKind).
    int32_t gop = 0, sub = 0;
    std::vector<int64_t> ints;
    std::vector<float> floats;
    // Detect: boxes as corners x1 y1 x2 y2 (end-to-end heads) instead of cx cy w h. A
    // reg_max of 1 reads the box distances directly (no DFL).
    bool xyxy = false;
    bool int8() const { return kind == OpKind::Conv && in_scale > 0.f; }
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
    int convs_int8 = 0;           // INT8 convs (Q/DQ folded)
    int fake_quants = 0;          // Q -> DQ pairs kept as FakeQuant ops
    int qdq_folded = 0;           // Q -> DQ pairs folded into INT8 conv inputs / residual reads
    int convs_fused_siblings = 0; // convs merged into a sibling reading the same input (horizontal fusion)
    int int8_buffers = 0;         // activation buffers stored as int8 (INT8 engines)
    int generic_ops = 0;          // ops of the generic tier
    int layout_changes = 0;       // NHWC <-> ONNX layout conversions at the generic tier's edges
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
    // The ONNX op types the generic tier runs (for `build` to say which ops took the
    // generic path); not stored in engine files.
    std::vector<std::string> generic_op_types;
    // How the arena shares bytes (engine/memory_plan.h): Concurrent keeps independent
    // branches (the Detect heads beside the neck) in separate bytes so that the runtime
    // can run them at the same time on several streams; Sequential shares whatever the
    // op order allows (smallest arena); Bounded keeps branches apart only as far as the
    // device allocation needs no more 2 MiB pages than the Sequential arena's (beyond
    // that a buffer shares in op order, and the runtime orders the ops that share).
    // `yoloc build` picks Bounded unless it does not fit the memory budget.
    enum class MemoryMode : int32_t { Sequential = 0, Concurrent = 1, Bounded = 2 };
    MemoryMode memory_mode = MemoryMode::Bounded;

    // Bytes the weights take on the device: device_weight_layout(*this).bytes.
    int64_t device_weight_bytes() const;
    // Checks internal consistency (view ranges, weight ranges, op arity); throws
    // yoloc::Error. Run after loading a plan from a file, before any kernel sees it.
    void validate() const;
};

struct PlanOptions {
    Precision precision = Precision::FP32;
    int64_t batch = 0;       // 0: the model's batch (1 when symbolic); else must match a fixed one
    int64_t imgsz = 0;       // used when H/W are symbolic (0: must be declared)
    // INT8 on a model without Q/DQ: refuse (`--precision int8`) or build FP16 (`best`).
    bool int8_requires_qdq = true;
    // Merge convs that read the same input with the same window into one (horizontal
    // fusion; the Detect heads' first convs). Off: one op per IR conv.
    bool fuse_siblings = true;
    // INT8: keep a tensor in int8 between layers when every reader quantizes it with the
    // same scale (INT8 conv inputs and residuals, through MaxPool / Resize / Copy) and
    // INT8 convs write it. Off: activations stay fp16 and INT8 convs quantize on load.
    bool int8_storage = true;
};

// An INT8 conv's weights on the device are int8 [cout][K padded to 16] (the mma B
// operand, each channel's K contiguous): the padded K.
int int8_weight_stride(const PlanOp& op);

// Where each conv's weights lie in the runtime's one device block of weights: conv
// weights in the activation precision (fp32, fp16) or int8, float32 biases, INT8 scales
// (s_in * s_w per channel) and output scales; each array 256-byte aligned. Per op, -1
// for ops without that array. The memory planner sizes the engine's allocation with it,
// so planned and allocated bytes are the same number.
struct DeviceWeightLayout {
    std::vector<int64_t> w, b, s, y;  // byte offsets per op
    int64_t bytes = 0;                // the whole block
};
DeviceWeightLayout device_weight_layout(const Plan& plan);

// Builds the plan from an ONNX model (folded here for the chosen batch). Throws
// yoloc::Error naming the first node it cannot lower.
Plan build_plan(const Model& model, const PlanOptions& opts);

// One line per op, for `yoloc build --verbose` and debugging.
std::string describe_plan(const Plan& p);

}  // namespace engine
}  // namespace yoloc
