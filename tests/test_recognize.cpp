// Recognition of YOLOv8 detect graphs by structure.
#include <gtest/gtest.h>

#include <map>

#include "onnx/onnx_io.h"
#include "test_util.h"
#include "yolo/generate.h"
#include "yolo/recognize.h"

using namespace yoloc;

namespace {

Model real_yolov8n() { return load_onnx(yoloc_test::shared_dir() + "/models/yolov8n_coco.onnx"); }

// Gives every node, value and initializer a meaningless name.
Model renamed(const Model& m) {
    Model r = m;
    std::map<std::string, std::string> vmap;
    auto v = [&](const std::string& s) -> std::string {
        if (s.empty()) return s;
        auto it = vmap.find(s);
        if (it != vmap.end()) return it->second;
        std::string n = "t" + std::to_string(vmap.size() * 7919 % 100003);
        return vmap[s] = n;
    };
    Graph& g = r.graph;
    int k = 0;
    for (Node& n : g.nodes) {
        n.name = "node_" + std::to_string(1000 - k++);
        for (auto& i : n.inputs) i = v(i);
        for (auto& o : n.outputs) o = v(o);
    }
    std::map<std::string, Tensor> inits;
    for (auto& kv : g.initializers) inits[v(kv.first)] = kv.second;
    g.initializers = inits;
    for (auto& i : g.inputs) i.name = v(i.name);
    for (auto& o : g.outputs) o.name = v(o.name);
    g.value_info.clear();
    return r;
}

// TensorRT-style explicit quantization: Q/DQ on every Conv's activation input and
// int8 per-channel weights behind a DequantizeLinear.
Model quantized(const Model& m) {
    Model r = m;
    Graph& g = r.graph;
    std::vector<Node> nodes;
    int k = 0;
    for (const Node& n0 : g.nodes) {
        Node n = n0;
        if (n.op_type == "Conv") {
            std::string id = std::to_string(k++);
            g.initializers["qs" + id] = Tensor::scalar_f32(0.05f);
            g.initializers["qz" + id] = Tensor(DType::Int8, {});
            Node q, dq, wdq;
            q.name = "Q" + id;
            q.op_type = "QuantizeLinear";
            q.inputs = {n.inputs[0], "qs" + id, "qz" + id};
            q.outputs = {"xq" + id};
            dq.name = "DQ" + id;
            dq.op_type = "DequantizeLinear";
            dq.inputs = {"xq" + id, "qs" + id, "qz" + id};
            dq.outputs = {"xd" + id};
            const Tensor& w = g.initializers.at(n.inputs[1]);
            Tensor wq(DType::Int8, w.shape());
            Tensor ws(DType::Float32, {w.dim(0)});
            Tensor wz(DType::Int8, {w.dim(0)});
            for (int64_t i = 0; i < w.dim(0); ++i) ws.data<float>()[i] = 0.01f;
            std::string wname = n.inputs[1];
            g.initializers.erase(wname);
            g.initializers[wname + "_q"] = wq;
            g.initializers[wname + "_s"] = ws;
            g.initializers[wname + "_z"] = wz;
            wdq.name = "WDQ" + id;
            wdq.op_type = "DequantizeLinear";
            wdq.inputs = {wname + "_q", wname + "_s", wname + "_z"};
            wdq.outputs = {wname};
            wdq.attrs["axis"] = Attribute::of_int(0);
            n.inputs[0] = "xd" + id;
            nodes.push_back(q);
            nodes.push_back(dq);
            nodes.push_back(wdq);
        }
        nodes.push_back(n);
    }
    g.nodes = nodes;
    return r;
}

struct C2fExpect {
    int index;
    int64_t c_in, c, c_out;
    int n;
    bool shortcut;
};

// Ultralytics yolov8n (yolov8.yaml, scale n) C2f blocks.
const C2fExpect kYolov8nC2f[8] = {
    {2, 32, 16, 32, 1, true},     {4, 64, 32, 64, 2, true},      {6, 128, 64, 128, 2, true},
    {8, 256, 128, 256, 1, true},  {12, 384, 64, 128, 1, false},  {15, 192, 32, 64, 1, false},
    {18, 192, 64, 128, 1, false}, {21, 384, 128, 256, 1, false},
};

// The decode of Ultralytics' 8.0 export: per level Concat(box, cls) and Reshape (3 + 3),
// the Concat of levels and the Split (2), then the 15 nodes the Split feeds (DFL Reshape,
// Transpose, Softmax, Conv, Reshape; dist2bbox Slice x2, Sub, Add, Add, Sub, Div, Concat;
// stride Mul; class Sigmoid): 23. A Q/DQ pair on the DFL conv's input adds 2.
void expect_yolov8n(const YoloArch& a, size_t decode_nodes = 23, bool fused = true) {
    ASSERT_TRUE(a.recognised) << a.reason;
    EXPECT_EQ(a.nc, 80);
    EXPECT_EQ(a.reg_max, 16);
    EXPECT_EQ(a.imgsz, 640);
    EXPECT_EQ(a.scale, "n");
    EXPECT_EQ(a.strides, (std::vector<int64_t>{8, 16, 32}));
    ASSERT_EQ(a.c2f.size(), 8u);
    for (size_t i = 0; i < 8; ++i) {
        const C2fExpect& e = kYolov8nC2f[i];
        const C2fBlock& b = a.c2f[i];
        EXPECT_EQ(b.index, e.index) << "block " << i;
        EXPECT_EQ(b.c_in, e.c_in) << "block " << e.index;
        EXPECT_EQ(b.c, e.c) << "block " << e.index;
        EXPECT_EQ(b.c_out, e.c_out) << "block " << e.index;
        EXPECT_EQ(b.n, e.n) << "block " << e.index;
        EXPECT_EQ(b.shortcut(), e.shortcut) << "block " << e.index;
        ASSERT_EQ(int(b.bottlenecks.size()), e.n);
        EXPECT_EQ(b.bottlenecks[0].cv1.kernel, 3);
        EXPECT_EQ(b.cv1.kernel, 1);
    }
    ASSERT_EQ(a.sppf.size(), 1u);
    EXPECT_EQ(a.sppf[0].index, 9);
    EXPECT_EQ(a.sppf[0].pools.size(), 3u);
    EXPECT_EQ(a.sppf[0].cv1.c_out, 128);
    EXPECT_EQ(a.sppf[0].cv2.c_in, 512);
    ASSERT_EQ(a.convs.size(), 7u);
    const int conv_layers[7] = {0, 1, 3, 5, 7, 16, 19};
    const int64_t conv_out[7] = {16, 32, 64, 128, 256, 64, 128};
    for (int i = 0; i < 7; ++i) {
        EXPECT_EQ(a.convs[size_t(i)].index, conv_layers[i]);
        EXPECT_EQ(a.convs[size_t(i)].unit.c_out, conv_out[i]);
        EXPECT_EQ(a.convs[size_t(i)].unit.stride, 2);
    }
    ASSERT_EQ(a.neck.size(), 6u);  // 2 Resize + 4 Concat: layers 10, 11, 13, 14, 17, 20
    const int neck_layers[6] = {10, 11, 13, 14, 17, 20};
    for (int i = 0; i < 6; ++i) EXPECT_EQ(a.neck[size_t(i)].index, neck_layers[i]);
    EXPECT_EQ(a.neck[0].op_type, "Resize");
    EXPECT_EQ(a.head.index, 22);
    ASSERT_EQ(a.head.levels.size(), 3u);
    const int64_t feat_c[3] = {64, 128, 256};
    for (size_t l = 0; l < 3; ++l) {
        const DetectLevel& L = a.head.levels[l];
        ASSERT_EQ(L.box.size(), 3u);
        ASSERT_EQ(L.cls.size(), 3u);
        EXPECT_EQ(L.box[0].c_in, feat_c[l]);
        EXPECT_EQ(L.box[2].c_out, 64);
        EXPECT_EQ(L.cls[2].c_out, 80);
        EXPECT_FALSE(L.box[2].act());
        EXPECT_TRUE(L.cls[0].act());
    }
    EXPECT_FALSE(a.head.dfl_conv.empty());
    EXPECT_EQ(a.head.decode.size(), decode_nodes);
    EXPECT_EQ(a.head.fused, fused) << a.head.fused_reason;
    EXPECT_EQ(a.family, Family::YOLOv8);
    EXPECT_EQ(a.task, Task::Detect);
    EXPECT_FALSE(a.head.end2end);
    // The level features are the outputs of C2f 15, 18 and 21.
    EXPECT_EQ(a.head.levels[0].input, a.c2f[5].cv2.output);
    EXPECT_EQ(a.head.levels[1].input, a.c2f[6].cv2.output);
    EXPECT_EQ(a.head.levels[2].input, a.c2f[7].cv2.output);
}

}  // namespace

TEST(Recognize, RealYolov8nIsRecognised) {
    REQUIRE_SHARED();
    expect_yolov8n(recognize_yolo(real_yolov8n()));
}

TEST(Recognize, RenamedGraphIsRecognisedTheSame) {
    REQUIRE_SHARED();
    Model r = renamed(real_yolov8n());
    ASSERT_EQ(r.graph.find_initializer("model.22.anchors"), nullptr);
    expect_yolov8n(recognize_yolo(r));
}

TEST(Recognize, QuantizedGraphIsReadThroughQdq) {
    REQUIRE_SHARED();
    Model q = quantized(real_yolov8n());
    EXPECT_EQ(q.graph.parameter_count(), 3151904);
    // The DFL conv's Q/DQ pair joins the decode nodes; its weights (int8 zeros here) no longer
    // compute the DFL expectation, which the decode check sees: the decode stays op by op.
    expect_yolov8n(recognize_yolo(q), 25, false);
    expect_yolov8n(recognize_yolo(renamed(q)), 25, false);
}

TEST(Recognize, GeneratedNanoMatchesRealStructure) {
    GenerateOptions o;
    expect_yolov8n(recognize_yolo(generate_yolov8(o)));
}

TEST(Recognize, EveryGeneratedScaleIsRecognised) {
    for (const char* s : {"n", "s", "m", "l", "x"}) {
        GenerateOptions o;
        o.scale = s;
        o.nc = 7;
        o.imgsz = 320;
        o.calibrate = false;  // structure only
        YoloArch a = recognize_yolo(renamed(generate_yolov8(o)));
        ASSERT_TRUE(a.recognised) << s << ": " << a.reason;
        EXPECT_EQ(a.scale, s);
        EXPECT_EQ(a.nc, 7);
        EXPECT_EQ(a.imgsz, 320);
        EXPECT_EQ(a.strides, (std::vector<int64_t>{8, 16, 32}));
        auto spec = yolov8_c2f_specs(s);
        ASSERT_EQ(a.c2f.size(), 8u);
        for (size_t i = 0; i < 8; ++i) {
            EXPECT_EQ(a.c2f[i].index, spec[i].layer) << s;
            EXPECT_EQ(a.c2f[i].n, spec[i].n) << s;
            EXPECT_EQ(a.c2f[i].c_out, spec[i].c_out) << s;
        }
    }
}

TEST(Recognize, LocateConvNamesEveryRole) {
    GenerateOptions o;
    Model m = generate_yolov8(o);
    YoloArch a = recognize_yolo(m);
    ASSERT_TRUE(a.recognised) << a.reason;
    auto at = [&](const std::string& n) { return locate_conv(a, n); };
    EXPECT_EQ(at("/model.0/conv/Conv").role, ConvRole::Layer);
    EXPECT_EQ(at("/model.4/cv1/conv/Conv").role, ConvRole::C2fCv1);
    EXPECT_EQ(at("/model.4/cv1/conv/Conv").layer, 4);
    ConvPlace p = at("/model.4/m.1/cv2/conv/Conv");
    EXPECT_EQ(p.role, ConvRole::BottleneckCv2);
    EXPECT_EQ(p.layer, 4);
    EXPECT_EQ(p.sub, 1);
    EXPECT_EQ(at("/model.9/cv2/conv/Conv").role, ConvRole::SppfCv2);
    p = at("/model.22/cv3.2/cv3.2.2/Conv");
    EXPECT_EQ(p.role, ConvRole::DetectCls);
    EXPECT_EQ(p.sub, 2);
    EXPECT_EQ(p.position, 2);
    EXPECT_EQ(at("/model.22/dfl/conv/Conv").role, ConvRole::Dfl);
    EXPECT_EQ(at("nope").role, ConvRole::Unknown);
    // Every Conv of the graph has a place.
    for (const Node& n : m.graph.nodes)
        if (n.op_type == "Conv") EXPECT_NE(at(n.name).role, ConvRole::Unknown) << n.name;
}

TEST(Recognize, NonYoloGraphIsRejectedWithReason) {
    Model m;
    ValueInfo in;
    in.name = "x";
    for (int64_t d : {1, 3, 8, 8}) in.shape.push_back(Dim{d, ""});
    m.graph.inputs.push_back(in);
    Node relu;
    relu.name = "r";
    relu.op_type = "Relu";
    relu.inputs = {"x"};
    relu.outputs = {"y"};
    m.graph.nodes.push_back(relu);
    ValueInfo out;
    out.name = "y";
    m.graph.outputs.push_back(out);
    YoloArch a = recognize_yolo(m);
    EXPECT_FALSE(a.recognised);
    EXPECT_NE(a.reason.find("head"), std::string::npos) << a.reason;
}

// A pruner may keep different channel counts in the two halves of a C2f Split.
TEST(Recognize, UnevenlyPrunedC2fSplitIsRecognised) {
    GenerateOptions o;
    o.calibrate = false;
    Model m = generate_yolov8(o);
    Graph& g = m.graph;
    g.initializers["model.2.cv1.conv.weight"] = Tensor(DType::Float32, {28, 32, 1, 1});
    g.initializers["model.2.cv1.conv.bias"] = Tensor(DType::Float32, {28});
    g.initializers["pruned_split"] = Tensor::from_int64s({2}, {12, 16});
    g.initializers["model.2.cv2.conv.weight"] = Tensor(DType::Float32, {32, 44, 1, 1});  // reads 12 + 16 + 16
    g.nodes[size_t(g.producer("/model.2/Split_output_0"))].inputs[1] = "pruned_split";
    YoloArch a = recognize_yolo(m);
    ASSERT_TRUE(a.recognised) << a.reason;
    ASSERT_EQ(a.c2f.size(), 8u);
    EXPECT_EQ(a.c2f[0].split_sizes, (std::vector<int64_t>{12, 16}));
    EXPECT_EQ(a.c2f[0].c, 16);
    EXPECT_EQ(a.c2f[0].cv1.c_out, 28);
    EXPECT_EQ(a.scale, "custom");
}

// ---- every detector Ultralytics exports today (../shared/models/zoo, Ultralytics 8.4) ------

namespace {

struct ZooExpect {
    const char* file;
    Family family;
    Task task;
    int64_t nc, reg_max;
    int c2f, c3k2, c2psa, c3;  // blocks of each kind, from the model's yaml
    bool end2end;
    bool fused;  // decode confirmed equal to the fused Detect formula
};

// Counts from Ultralytics' yaml files (v8/yolov8.yaml: 8 C2f; v5/yolov5.yaml: 8 C3;
// 11/yolo11.yaml and 26/yolo26.yaml: 8 C3k2 and 1 C2PSA) and zoo.json (nc). Segment and
// pose exports join boxes, scores and their extra outputs in one Concat, so their decode
// runs op by op.
const ZooExpect kZoo[] = {
    {"yolov8z.onnx", Family::YOLOv8, Task::Detect, 80, 16, 8, 0, 0, 0, false, true},
    {"yolov8z_nc7.onnx", Family::YOLOv8, Task::Detect, 7, 16, 8, 0, 0, 0, false, true},
    {"yolov8z_dynamic.onnx", Family::YOLOv8, Task::Detect, 7, 16, 8, 0, 0, 0, false, true},
    {"yolov8z_op12_raw.onnx", Family::YOLOv8, Task::Detect, 7, 16, 8, 0, 0, 0, false, true},
    {"yolov5uz.onnx", Family::YOLOv5u, Task::Detect, 7, 16, 0, 0, 0, 8, false, true},
    {"yolo11z.onnx", Family::YOLO11, Task::Detect, 7, 16, 0, 8, 1, 0, false, true},
    {"yolo26z.onnx", Family::YOLO26, Task::Detect, 7, 1, 0, 8, 1, 0, false, true},
    {"yolo26z_end2end.onnx", Family::YOLO26, Task::Detect, 7, 1, 0, 8, 1, 0, true, true},
    {"yolov8z_seg.onnx", Family::YOLOv8, Task::Segment, 7, 16, 8, 0, 0, 0, false, false},
    {"yolov8z_pose.onnx", Family::YOLOv8, Task::Pose, 1, 16, 8, 0, 0, 0, false, false},
};

void expect_zoo(const YoloArch& a, const ZooExpect& e) {
    SCOPED_TRACE(e.file);
    ASSERT_TRUE(a.recognised) << a.reason;
    EXPECT_EQ(a.family, e.family);
    EXPECT_EQ(a.task, e.task);
    EXPECT_EQ(a.nc, e.nc);
    EXPECT_EQ(a.reg_max, e.reg_max);
    EXPECT_EQ(a.scale, "custom");  // the zoo's width 0.0625 is no Ultralytics scale
    std::map<BlockKind, int> kinds;
    for (const auto& b : a.c2f) ++kinds[b.kind];
    EXPECT_EQ(kinds[BlockKind::C2f], e.c2f);
    EXPECT_EQ(kinds[BlockKind::C3k2], e.c3k2);
    EXPECT_EQ(kinds[BlockKind::C2PSA], e.c2psa);
    EXPECT_EQ(kinds[BlockKind::C3], e.c3);
    EXPECT_EQ(a.sppf.size(), 1u);
    EXPECT_EQ(a.strides, (std::vector<int64_t>{8, 16, 32}));
    EXPECT_EQ(a.head.end2end, e.end2end);
    if (e.end2end) {
        EXPECT_EQ(a.head.max_det, 300);
        EXPECT_TRUE(a.head.xyxy);  // end-to-end boxes are corners
    }
    EXPECT_EQ(a.head.fused, e.fused) << a.head.fused_reason;
    for (const auto& L : a.head.levels) {
        EXPECT_EQ(L.box.back().c_out, 4 * e.reg_max);
        EXPECT_EQ(L.cls.back().c_out, e.nc);
        EXPECT_EQ(!L.extra.empty(), e.task != Task::Detect);
    }
    for (const auto& b : a.c2f)
        for (const auto& bn : b.bottlenecks) EXPECT_EQ(locate_conv(a, bn.cv1.conv).role, ConvRole::BottleneckCv1);
}

}  // namespace

TEST(Recognize, EveryZooModelIsRecognisedWithItsFamilyTaskAndBlocks) {
    REQUIRE_SHARED();
    for (const ZooExpect& e : kZoo) {
        Model m = load_onnx(yoloc_test::shared_dir() + "/models/zoo/" + e.file);
        expect_zoo(recognize_yolo(m), e);
        expect_zoo(recognize_yolo(renamed(m)), e);  // by structure, never by names
    }
}

TEST(Recognize, YoloElevenNanoCocoIsRecognised) {
    REQUIRE_SHARED();
    YoloArch a = recognize_yolo(load_onnx(yoloc_test::shared_dir() + "/models/yolo11n_coco.onnx"));
    ASSERT_TRUE(a.recognised) << a.reason;
    EXPECT_EQ(a.family, Family::YOLO11);
    EXPECT_EQ(a.scale, "n");
    EXPECT_EQ(a.name(), "YOLO11n");
    EXPECT_EQ(a.nc, 80);
    EXPECT_TRUE(a.head.fused) << a.head.fused_reason;
    // yolo11.yaml at scale n (width 0.25, max 1024): C2PSA at layer 10 over 256 channels.
    bool psa = false;
    for (const auto& b : a.c2f)
        if (b.kind == BlockKind::C2PSA) {
            psa = true;
            EXPECT_EQ(b.index, 10);
            EXPECT_EQ(b.c_out, 256);
            EXPECT_EQ(b.psa.size(), 1u);
        }
    EXPECT_TRUE(psa);
}
