// Recognises a YOLOv8 detect graph by structure alone (op types, connectivity,
// weight shapes; never node or value names), so renamed or re-exported models are
// understood too. Prune and quantize use the result to know which convs form a
// C2f block, which share a Split, and which belong to the Detect head.
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

struct C2fBlock {
    int index = -1;  // Ultralytics layer index (2, 4, 6, 8, 12, 15, 18, 21 in yolov8.yaml)
    ConvUnit cv1;
    std::string split;  // Split node
    std::vector<Bottleneck> bottlenecks;
    std::string concat;
    ConvUnit cv2;
    int64_t c_in = 0, c = 0, c_out = 0;  // c = hidden width = the Split half the bottlenecks read
    std::vector<int64_t> split_sizes;    // both halves (equal unless pruned unevenly)
    int n = 0;
    bool shortcut() const { return !bottlenecks.empty() && !bottlenecks[0].add.empty(); }
};

struct SppfBlock {
    int index = -1;
    ConvUnit cv1;
    std::vector<std::string> pools;  // 3 chained MaxPool nodes
    std::string concat;
    ConvUnit cv2;
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
    std::string input;               // feature value the level reads
    std::vector<ConvUnit> box;       // cv2: 3x3, 3x3, 1x1 -> 4*reg_max
    std::vector<ConvUnit> cls;       // cv3: 3x3, 3x3, 1x1 -> nc
    std::string concat;              // Concat(box, cls)
    std::string reshape;
};

struct DetectHead {
    int index = -1;
    std::vector<DetectLevel> levels;
    std::string concat;              // Concat axis 2 of all levels
    std::string split;               // Split [4*reg_max, nc]
    std::string dfl_conv;            // fixed 0..reg_max-1 weights
    std::vector<std::string> decode; // every node after the Split, in graph order (DFL + dist2bbox + sigmoid)
    std::string output;              // graph output value
};

struct YoloArch {
    bool recognised = false;
    std::string reason;  // why not, when !recognised
    int64_t nc = 0;
    int64_t reg_max = 0;
    int64_t imgsz_h = 0, imgsz_w = 0;  // from the input's declared shape (0 when symbolic)
    int64_t imgsz = 0;                 // imgsz_h when square, else max of both
    std::string input;
    std::vector<int64_t> strides;
    std::string scale;  // n, s, m, l, x, or "custom"
    std::vector<ConvLayer> convs;  // standalone conv layers (0, 1, 3, 5, 7, 16, 19)
    std::vector<C2fBlock> c2f;
    std::vector<SppfBlock> sppf;
    std::vector<NeckNode> neck;    // Resize and Concat nodes between blocks
    DetectHead head;
};

YoloArch recognize_yolov8(const Model& model);

// Where a Conv node sits in the architecture.
enum class ConvRole {
    Unknown,
    Layer,          // standalone Conv module
    C2fCv1,
    C2fCv2,
    BottleneckCv1,
    BottleneckCv2,
    SppfCv1,
    SppfCv2,
    DetectBox,      // cv2 branch of a level (position 0..2)
    DetectCls,      // cv3 branch of a level (position 0..2)
    Dfl,
};

struct ConvPlace {
    ConvRole role = ConvRole::Unknown;
    int layer = -1;     // Ultralytics layer index
    int sub = -1;       // bottleneck index, or detect level
    int position = -1;  // 0..2 within a detect branch
};

// Looks up a Conv node by name in a recognised architecture.
ConvPlace locate_conv(const YoloArch& arch, const std::string& conv_node);

}  // namespace yoloc
