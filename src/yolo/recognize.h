// Recognises Ultralytics detector graphs (YOLOv5u, YOLOv8, YOLO11, YOLO26; detect,
// segment and pose heads; decoupled and end-to-end) by structure alone: op types,
// connectivity, weight and value shapes, never node or value names, so renamed,
// simplified (onnxslim) or unsimplified exports, any opset and static or dynamic axes
// are understood alike. Prune, quantize, the GPU plan and `inspect` read the result:
// which convs form a block, which share a Split, which belong to the head, and which
// nodes the head's decode consists of.
//
// The head's decode (DFL, dist2bbox, strides, class sigmoid) is matched by structure
// and then confirmed by evaluation: the decode subgraph is run by the reference
// executor on random level outputs and compared with the fused decode's formula. Only
// a confirmed decode is replaced by the fused Detect op; anything else runs op by op.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace yoloc {

// Ultralytics' Conv module: Conv (+ Sigmoid + Mul, i.e. SiLU). Names are node names.
struct ConvUnit {
    std::string conv;
    std::string sigmoid;  // empty when there is no activation
    std::string mul;      // empty when there is no activation
    std::string input;    // value read
    std::string output;   // value produced (Mul output, or Conv output without activation)
    int64_t c_in = 0, c_out = 0, kernel = 0, stride = 1, group = 1;
    bool act() const { return !mul.empty(); }
};

struct Bottleneck {
    ConvUnit cv1, cv2;
    std::string add;  // residual Add node, empty without shortcut
};

// A self-attention block (PSABlock: x + attn(x), then + ffn(x)), YOLO11 / YOLO26.
struct PsaBlock {
    ConvUnit qkv, pe, proj, ffn1, ffn2;
    std::string add_attn, add_ffn;
};

enum class BlockKind {
    C2f,    // cv1 -> Split -> Bottlenecks -> Concat(all) -> cv2 (YOLOv8)
    C3k2,   // the same skeleton whose inner modules are Bottlenecks, C3k or PSA blocks (YOLO11, YOLO26)
    C2PSA,  // cv1 -> Split -> PSA blocks on one half -> Concat(both halves) -> cv2
    C3,     // cv1 and cv2 in parallel, Bottlenecks after cv1, Concat -> cv3 (YOLOv5u; C3k inside C3k2)
};
const char* block_kind_name(BlockKind k);

// A CSP block: C2f, C3k2, C2PSA (split form) or C3 (parallel form).
struct C2fBlock {
    BlockKind kind = BlockKind::C2f;
    int index = -1;      // Ultralytics layer index, from graph order
    ConvUnit cv1, cv2;   // C3: cv1 and cv2 read the block input, cv3 reads the Concat
    ConvUnit cv3;        // C3 only
    std::string split;   // Split node (split form)
    std::vector<Bottleneck> bottlenecks;  // every Bottleneck inside, nested ones (C3k) included, in order
    std::vector<PsaBlock> psa;            // PSA blocks inside
    std::vector<std::string> inner;       // the inner modules in order: "Bottleneck", "C3k", "PSABlock"
    std::vector<ConvUnit> inner_convs;    // the C3k modules' own cv1, cv2, cv3
    std::string concat;
    int64_t c_in = 0, c = 0, c_out = 0;  // c = hidden width (the Split half the inner modules read)
    std::vector<int64_t> split_sizes;    // both halves (equal unless pruned unevenly)
    int n = 0;                           // number of inner modules
    bool shortcut() const { return !bottlenecks.empty() && !bottlenecks[0].add.empty(); }
};

struct SppfBlock {
    int index = -1;
    ConvUnit cv1;
    std::vector<std::string> pools;  // 3 chained MaxPool nodes
    std::string concat;
    ConvUnit cv2;
    std::string add;  // YOLO26: cv2(...) + input, empty otherwise
};

struct ConvLayer {  // a standalone Conv module (stem and PAN downsampling convs)
    int index = -1;
    ConvUnit unit;
};

struct NeckNode {  // Upsample (Resize) or Concat of the neck
    int index = -1;
    std::string node;
    std::string op_type;
};

struct DetectLevel {
    int64_t stride = 0;
    int64_t h = 0, w = 0;            // the level's grid at the recognised input size
    std::string input;               // feature value the level reads
    std::vector<ConvUnit> box;       // cv2: conv units up to the 1x1 -> 4*reg_max
    std::vector<ConvUnit> cls;       // cv3: conv units up to the 1x1 -> nc
    std::vector<ConvUnit> extra;     // cv4 of segment (mask coefficients) and pose (keypoints) heads
    std::string concat;              // Concat(box, cls) of older exports, empty otherwise
    std::string reshape;
};

enum class Task { Detect, Segment, Pose };
const char* task_name(Task t);

enum class Family { Unknown, YOLOv5u, YOLOv8, YOLO11, YOLO26 };
const char* family_name(Family f);

struct DetectHead {
    int index = -1;
    std::vector<DetectLevel> levels;
    std::string concat;              // Concat axis 2 of all levels (older exports)
    std::string split;               // Split [4*reg_max, nc] (older exports)
    std::string dfl_conv;            // fixed 0..reg_max-1 weights; empty when reg_max is 1
    std::vector<std::string> decode; // every node the fused decode replaces, in graph order
    std::string output;              // the decode's value [N, 4+nc, anchors]: a graph output, or the
                                     // input of an end-to-end top-k or of a segment/pose concat
    bool fused = false;              // the decode was confirmed equal to the fused Detect formula
    bool xyxy = false;               // boxes as corners (end-to-end heads) instead of (cx, cy, w, h)
    std::string fused_reason;        // why not, when !fused
    bool end2end = false;            // the graph output is [N, max_det, 6] after a top-k (no NMS)
    int64_t max_det = 0;             // end2end: K
    std::vector<std::string> post;   // end2end / segment / pose: the nodes after `output`
};

struct YoloArch {
    bool recognised = false;
    std::string reason;  // why not, when !recognised
    Family family = Family::Unknown;
    Task task = Task::Detect;
    int64_t nc = 0;
    int64_t reg_max = 0;
    int64_t imgsz_h = 0, imgsz_w = 0;  // from the input's declared shape (0 when symbolic)
    int64_t imgsz = 0;                 // imgsz_h when square, else max of both
    std::string input;
    std::vector<int64_t> strides;
    std::string scale;  // n, s, m, l, x, or "custom"
    std::vector<ConvLayer> convs;  // standalone conv layers
    std::vector<C2fBlock> c2f;     // CSP blocks of every kind (C2f, C3k2, C2PSA, C3), in layer order
    std::vector<SppfBlock> sppf;
    std::vector<NeckNode> neck;    // Resize and Concat nodes between blocks
    DetectHead head;

    // "YOLOv8n", "YOLO11s", "YOLO26 (custom)".
    std::string name() const;
};

YoloArch recognize_yolo(const Model& model);

// Where a Conv node sits in the architecture.
enum class ConvRole {
    Unknown,
    Layer,          // standalone Conv module
    C2fCv1,         // a CSP block's cv1 (C3: cv1 or cv2, the two parallel convs)
    C2fCv2,         // a CSP block's output conv (C3: cv3)
    BottleneckCv1,  // the hidden channels of a Bottleneck: what `prune --scope bottleneck` thins
    BottleneckCv2,
    BlockInner,     // other convs inside a block (C3k's own convs, PSA attention and FFN)
    SppfCv1,
    SppfCv2,
    DetectBox,      // cv2 branch of a level
    DetectCls,      // cv3 branch of a level
    DetectExtra,    // cv4 branch (mask coefficients, keypoints)
    Dfl,
};
const char* conv_role_name(ConvRole r);

struct ConvPlace {
    ConvRole role = ConvRole::Unknown;
    int layer = -1;     // Ultralytics layer index
    int sub = -1;       // bottleneck index, or detect level
    int position = -1;  // position within a detect branch
};

// Looks up a Conv node by name in a recognised architecture.
ConvPlace locate_conv(const YoloArch& arch, const std::string& conv_node);

}  // namespace yoloc
