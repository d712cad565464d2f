#include <algorithm>
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "option_rules.h"
#include "ir/cost.h"
#include "onnx/onnx_io.h"
#include "yolo/recognize.h"

namespace yoloc_cli {
namespace {

std::string dims_str(const yoloc::ValueInfo& v) {
    std::string s = "[";
    for (size_t k = 0; k < v.shape.size(); ++k)
        s += (k ? "," : "") + (v.shape[k].known() ? std::to_string(v.shape[k].value) : v.shape[k].param);
    return s + "]";
}

nlohmann::json unit_json(const yoloc::ConvUnit& u) {
    return {{"conv", u.conv}, {"c_in", u.c_in}, {"c_out", u.c_out}, {"kernel", u.kernel}, {"stride", u.stride}};
}

Registrar reg("inspect", "show a model's inputs, outputs, ops, parameters, FLOPs, memory and YOLOv8 structure",
              [](CLI::App& app) {
    auto path = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    auto imgsz = std::make_shared<int>(640);
    app.add_option("model", *path, "ONNX model")->required();
    app.add_flag("--json", *json, "print one JSON object instead of text");
    app.add_option("--imgsz", *imgsz, "input size for symbolic (dynamic) input dims")->check(rules::imgsz())
        ->capture_default_str();
    return [path, json, imgsz]() {
        yoloc::Model m = yoloc::load_onnx(*path);
        const yoloc::Graph& g = m.graph;
        std::map<std::string, yoloc::Shape> shapes;
        for (const auto& in : g.inputs) {
            yoloc::Shape s;
            for (size_t k = 0; k < in.shape.size(); ++k)
                s.push_back(in.shape[k].known() ? in.shape[k].value : (k == 0 ? 1 : k == 1 ? 3 : *imgsz));
            shapes[in.name] = s;
        }
        yoloc::ShapeInfo info = yoloc::infer_shapes(m, shapes);
        yoloc::ModelCost cost = yoloc::count_cost(m, info);
        yoloc::YoloArch arch = yoloc::recognize_yolo(m);

        nlohmann::json j;
        j["file"] = *path;
        j["opset"] = m.opset();
        j["ir_version"] = m.ir_version;
        j["producer"] = m.producer_name + (m.producer_version.empty() ? "" : " " + m.producer_version);
        for (const auto& in : g.inputs)
            j["inputs"].push_back({{"name", in.name}, {"dtype", yoloc::dtype_name(in.dtype)}, {"shape", dims_str(in)}});
        for (const auto& o : g.outputs) {
            nlohmann::json oj = {{"name", o.name}, {"dtype", yoloc::dtype_name(o.dtype)}, {"shape", dims_str(o)}};
            if (info.values.count(o.name)) oj["inferred_shape"] = info.at(o.name).shape;
            j["outputs"].push_back(oj);
        }
        j["nodes"] = g.nodes.size();
        j["ops"] = g.op_histogram();
        j["parameters"] = cost.params;
        j["flops"] = cost.flops;
        j["gflops"] = cost.flops / 1e9;
        j["weight_bytes"] = cost.weight_bytes;
        j["activation_bytes_peak_estimate"] = cost.activation_bytes_peak;
        j["input_shapes_used"] = shapes;
        nlohmann::json a;
        a["recognised"] = arch.recognised;
        if (!arch.recognised) {
            a["reason"] = arch.reason;
        } else {
            a["family"] = yoloc::family_name(arch.family);
            a["name"] = arch.name();
            a["task"] = yoloc::task_name(arch.task);
            a["scale"] = arch.scale;
            a["nc"] = arch.nc;
            a["reg_max"] = arch.reg_max;
            a["imgsz"] = arch.imgsz;
            a["strides"] = arch.strides;
            a["end2end"] = arch.head.end2end;
            if (arch.head.end2end) a["max_det"] = arch.head.max_det;
            a["decode_fused"] = arch.head.fused;
            a["box_format"] = arch.head.xyxy ? "xyxy" : "xywh";
            if (!arch.head.fused) a["decode_not_fused_because"] = arch.head.fused_reason;
            for (const auto& l : arch.convs) a["blocks"].push_back({{"layer", l.index}, {"kind", "Conv"},
                                                                 {"cv", unit_json(l.unit)}});
            for (const auto& c : arch.c2f) {
                nlohmann::json bj = {{"layer", c.index}, {"kind", yoloc::block_kind_name(c.kind)}, {"c_in", c.c_in},
                                     {"c_hidden", c.c}, {"c_out", c.c_out}, {"n", c.n}, {"inner", c.inner},
                                     {"shortcut", c.shortcut()}, {"cv1", unit_json(c.cv1)}, {"cv2", unit_json(c.cv2)}};
                if (c.kind == yoloc::BlockKind::C3) bj["cv3"] = unit_json(c.cv3);
                for (const auto& b : c.bottlenecks) bj["bottleneck_widths"].push_back(b.cv1.c_out);
                a["blocks"].push_back(bj);
                if (c.kind == yoloc::BlockKind::C2f) a["c2f"].push_back(bj);
            }
            for (const auto& s : arch.sppf) {
                nlohmann::json bj = {{"layer", s.index}, {"kind", "SPPF"}, {"cv1", unit_json(s.cv1)},
                                     {"cv2", unit_json(s.cv2)}, {"shortcut", !s.add.empty()}};
                a["blocks"].push_back(bj);
                a["sppf"].push_back(bj);
            }
            for (const auto& nk : arch.neck)
                a["blocks"].push_back({{"layer", nk.index}, {"kind", nk.op_type == "Concat" ? "Concat" : "Upsample"},
                                       {"node", nk.node}});
            for (const auto& l : arch.head.levels)
                a["detect_levels"].push_back({{"stride", l.stride}, {"input", l.input}, {"box_convs", l.box.size()},
                                              {"cls_convs", l.cls.size()}, {"extra_convs", l.extra.size()}});
            std::sort(a["blocks"].begin(), a["blocks"].end(),
                      [](const nlohmann::json& x, const nlohmann::json& y) { return x["layer"] < y["layer"]; });
        }
        j["architecture"] = a;
        if (*json) {
            std::cout << j.dump(2) << "\n";
            return 0;
        }
        std::printf("model       %s\n", path->c_str());
        std::printf("format      ONNX ir_version %lld, opset %lld, producer %s\n", (long long)m.ir_version,
                    (long long)m.opset(), j["producer"].get<std::string>().c_str());
        for (const auto& in : g.inputs)
            std::printf("input       %s %s %s\n", in.name.c_str(), yoloc::dtype_name(in.dtype), dims_str(in).c_str());
        for (const auto& o : g.outputs)
            std::printf("output      %s %s %s\n", o.name.c_str(), yoloc::dtype_name(o.dtype),
                        info.values.count(o.name) ? yoloc::shape_str(info.at(o.name).shape).c_str() : dims_str(o).c_str());
        std::printf("nodes       %zu:", g.nodes.size());
        for (const auto& kv : g.op_histogram()) std::printf(" %s %d", kv.first.c_str(), kv.second);
        std::printf("\n");
        std::printf("parameters  %lld (conv weights and biases)\n", (long long)cost.params);
        std::printf("FLOPs       %.2f G at %s (2 per multiply-add, counted from shapes)\n", cost.flops / 1e9,
                    yoloc::shape_str(shapes.begin()->second).c_str());
        std::printf("weights     %.2f MiB\n", double(cost.weight_bytes) / (1 << 20));
        std::printf("activations %.2f MiB peak live at float32 (estimate from shapes, graph order)\n",
                    double(cost.activation_bytes_peak) / (1 << 20));
        if (!arch.recognised) {
            std::printf("architecture not recognised as an Ultralytics YOLO detector (%s)\n", arch.reason.c_str());
            return 0;
        }
        std::printf("architecture %s %s, %lld classes, reg_max %lld, strides", arch.name().c_str(),
                    yoloc::task_name(arch.task), (long long)arch.nc, (long long)arch.reg_max);
        for (auto s : arch.strides) std::printf(" %lld", (long long)s);
        std::printf("\n");
        std::printf("head        %s; decode %s\n",
                    arch.head.end2end ? ("end-to-end, top " + std::to_string(arch.head.max_det) + ", no NMS").c_str()
                                      : "decoupled, NMS after the model",
                    arch.head.fused ? "fused on the GPU (confirmed by evaluation)"
                                    : ("op by op (" + arch.head.fused_reason + ")").c_str());
        // Every block in layer order, with its channels. Bottleneck widths (m.i.cv1 outputs)
        // too: pruning changes them independently.
        struct Line {
            int layer;
            std::string text;
        };
        std::vector<Line> lines;
        char buf[512];
        for (const auto& l : arch.convs) {
            std::snprintf(buf, sizeof buf, "  %-6s layer %-2d  %4lld -> %4lld  k%lld s%lld", "Conv", l.index,
                          (long long)l.unit.c_in, (long long)l.unit.c_out, (long long)l.unit.kernel,
                          (long long)l.unit.stride);
            lines.push_back({l.index, buf});
        }
        for (const auto& c : arch.c2f) {
            std::string m, inner;
            for (const auto& b : c.bottlenecks) m += (m.empty() ? "" : ",") + std::to_string(b.cv1.c_out);
            for (const auto& k : c.inner) inner += (inner.empty() ? "" : "+") + k;
            std::snprintf(buf, sizeof buf, "  %-6s layer %-2d  %4lld -> %4lld  hidden %4lld  n=%d  %s%s%s", yoloc::block_kind_name(c.kind),
                          c.index, (long long)c.c_in, (long long)c.c_out, (long long)c.c, c.n, inner.c_str(),
                          c.bottlenecks.empty() ? "" : (c.shortcut() ? ", shortcut" : ", no shortcut"),
                          m.empty() ? "" : ("  m " + m).c_str());
            lines.push_back({c.index, buf});
        }
        for (const auto& s : arch.sppf) {
            std::snprintf(buf, sizeof buf, "  %-6s layer %-2d  %4lld -> %4lld%s", "SPPF", s.index, (long long)s.cv1.c_in,
                          (long long)s.cv2.c_out, s.add.empty() ? "" : "  shortcut");
            lines.push_back({s.index, buf});
        }
        for (const auto& nk : arch.neck) {
            std::snprintf(buf, sizeof buf, "  %-6s layer %-2d", nk.op_type == "Concat" ? "Concat" : "Upsample", nk.index);
            lines.push_back({nk.index, buf});
        }
        std::sort(lines.begin(), lines.end(), [](const Line& x, const Line& y) { return x.layer < y.layer; });
        for (const auto& l : lines) std::printf("%s\n", l.text.c_str());
        for (const auto& l : arch.head.levels)
            std::printf("  Detect stride %-2lld  %lldx%lld  box %lld->%lld ch (%zu convs), cls %lld->%lld ch (%zu convs)%s\n",
                        (long long)l.stride, (long long)l.h, (long long)l.w,
                        l.box.empty() ? 0LL : (long long)l.box[0].c_in, l.box.empty() ? 0LL : (long long)l.box.back().c_out,
                        l.box.size(), l.cls.empty() ? 0LL : (long long)l.cls[0].c_in,
                        l.cls.empty() ? 0LL : (long long)l.cls.back().c_out, l.cls.size(),
                        l.extra.empty() ? "" : (", extra " + std::to_string(l.extra.back().c_out) + " ch").c_str());
        return 0;
    };
});

}  // namespace
}  // namespace yoloc_cli
