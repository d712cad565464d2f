#include "deploy/bundle.h"

#include <dirent.h>
#include <ftw.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file.h"
#include "core/sha256.h"
#include "engine/engine_file.h"
#include "engine/memory_plan.h"
#include "onnx/onnx_io.h"
#include "quant/calib_cache_reader.h"
#include "quant/fake_quant.h"
#include "quant/trt_rules.h"
#include "yolo/recognize.h"

namespace yoloc::deploy {

namespace {

// ---------------------------------------------------------------- trtexec flags
//
// Every flag below, with where it is documented:
// - --onnx, --saveEngine, --fp16, --int8, --calib=<file> ("Read INT8 calibration cache file"),
//   --minShapes/--optShapes/--maxShapes: trtexec's own help (samples/common/sampleOptions.cpp,
//   BuildOptions::help) in TensorRT 8.x and 10.x alike.
// - Workspace: `--workspace=N` ("Set workspace size in MiB") is the only form before
//   TensorRT 8.4; `--memPoolSize=workspace:N` arrived with IBuilderConfig::setMemoryPoolLimit
//   in 8.4.0 (API changes for TensorRT 8.4.0 EA,
//   https://docs.nvidia.com/deeplearning/tensorrt/archives/tensorrt-840-ea/api/index.html), and
//   TensorRT 10 removed --workspace ("--workspace flag replaced with
//   --memPoolSize=workspace:<size>", https://docs.nvidia.com/deeplearning/tensorrt/latest/api/
//   migration/tensorrt-8x-to-10x-trtexec.html). The size is written without a suffix: MiB
//   is the unit in 8.4-8.6 ("size constraints ... in MiB") and the default unit in 10.x ("If
//   none of suffixes is appended, the default unit is in MiB").
// - --int8 with a Q/DQ model: TensorRT 8's developer guide ("Working with INT8": the INT8 flag
//   must be set in the builder configuration to enable any quantized operation); with --fp16
//   the layers yoloc quantize leaves in float (DFL, Detect tail) run in FP16.
// - --int8 --calib on TensorRT 10: trtexec 10.x still lists --calib, but the calibrators
//   behind it are "Deprecated in TensorRT 10.1. Superseded by explicit quantization"
//   (https://docs.nvidia.com/deeplearning/tensorrt/api/c_api/deprecated.html): the README
//   says so and recommends the Q/DQ model.
// - --stronglyTyped (TensorRT 10) is not used: a strongly typed network takes every tensor's
//   type from the network (NetworkDefinitionCreationFlag.STRONGLY_TYPED), and yoloc's Q/DQ
//   models keep float32 between Q/DQ pairs, so every layer outside a Q/DQ pair would run in
//   FP32 instead of FP16; --fp16/--int8 are not allowed with it.
constexpr int kTrtMemPoolSince = 8400;

std::string mib_string(int64_t bytes) {
    int64_t mib = std::max<int64_t>(1, bytes >> 20);
    return std::to_string(mib);
}

std::string shape_spec(const std::string& input, const std::vector<int64_t>& shape) {
    std::string s = input + ":";
    for (size_t i = 0; i < shape.size(); ++i) s += (i ? "x" : "") + std::to_string(shape[i]);
    return s;
}

// ---------------------------------------------------------------- model inspection

// The model with every Quantize -> Dequantize pair bypassed and constant weight
// DequantizeLinear folded: the float graph the recogniser understands.
Model strip_qdq(const Model& m) {
    Model f = prepare_qdq_for_float(m);
    Graph& g = f.graph;
    std::set<std::string> outputs;
    for (const auto& o : g.outputs) outputs.insert(o.name);
    std::map<std::string, std::string> alias;
    for (const auto& n : g.nodes) {
        if (n.op_type != "DequantizeLinear" || n.inputs.empty() || n.outputs.empty()) continue;
        int p = g.producer(n.inputs[0]);
        if (p < 0 || g.nodes[size_t(p)].op_type != "QuantizeLinear" || g.nodes[size_t(p)].inputs.empty()) continue;
        if (outputs.count(n.outputs[0])) continue;
        alias[n.outputs[0]] = g.nodes[size_t(p)].inputs[0];
    }
    for (auto& n : g.nodes)
        for (auto& in : n.inputs)
            for (int hops = 0; hops < 64; ++hops) {
                auto it = alias.find(in);
                if (it == alias.end()) break;
                in = it->second;
            }
    remove_dead(g);
    return f;
}

// Convs narrower than Ultralytics' models at the recognised scale: the hidden width of
// each bottleneck, SPPF's hidden width (= c1 / 2), and the Detect
// head's box and class branches (c2 = max(16, ch0 / 4, 4 * reg_max), c3 = max(ch0,
// min(nc, 100)); ultralytics/nn/modules: C2f, SPPF, Detect).
int narrowed_convs(const YoloArch& a) {
    int n = 0;
    for (const auto& b : a.c2f) {
        // Bottleneck hidden width: the block's c in C2f and C3 (e = 1.0); half of it in C3k2,
        // directly (Bottleneck e = 0.5) or inside a C3k (c_ = c / 2, its bottlenecks e = 1.0).
        const int64_t want = b.kind == BlockKind::C3k2 ? b.c / 2 : b.c;
        for (const auto& bn : b.bottlenecks) n += bn.cv1.c_out != want;
    }
    for (const auto& s : a.sppf) n += s.cv1.c_out * 2 != s.cv1.c_in;
    if (!a.head.levels.empty() && !a.head.levels[0].box.empty()) {
        const int64_t ch0 = a.head.levels[0].box[0].c_in;
        const int64_t c2 = std::max<int64_t>({16, ch0 / 4, a.reg_max * 4});
        const int64_t c3 = std::max<int64_t>(ch0, std::min<int64_t>(a.nc, 100));
        for (const auto& L : a.head.levels) {
            for (size_t i = 0; i + 1 < L.box.size(); ++i) n += L.box[i].c_out != c2;
            for (size_t i = 0; i + 1 < L.cls.size(); ++i) n += L.cls[i].c_out != c3;
        }
    }
    return n;
}

// ---------------------------------------------------------------- files

std::string now_iso() {
    std::time_t t = std::time(nullptr);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
    return buf;
}

std::string base_name(const std::string& p) {
    size_t s = p.find_last_of('/');
    return s == std::string::npos ? p : p.substr(s + 1);
}

std::string strip_trailing_slashes(std::string p) {
    while (p.size() > 1 && p.back() == '/') p.pop_back();
    return p;
}

// True when `dir` holds no entry at all (hidden ones included).
bool dir_is_empty(const std::string& dir) {
    DIR* d = ::opendir(dir.c_str());
    if (!d) fail(dir, ": cannot open folder (", std::strerror(errno), ")");
    bool empty = true;
    while (dirent* e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n != "." && n != "..") {
            empty = false;
            break;
        }
    }
    ::closedir(d);
    return empty;
}

int remove_entry(const char* path, const struct stat*, int, struct FTW*) { return ::remove(path); }

// Removes a folder and everything in it (no symlinks followed). Best effort.
void remove_tree(const std::string& dir) {
    if (!dir.empty()) ::nftw(dir.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

std::string real_path(const std::string& p) {
    char buf[PATH_MAX];
    return ::realpath(p.c_str(), buf) ? std::string(buf) : std::string();
}

bool inside(const std::string& path, const std::string& dir) {
    std::string rp = real_path(path), rd = real_path(dir);
    return !rp.empty() && !rd.empty() && rp.size() > rd.size() && rp.compare(0, rd.size(), rd) == 0 &&
           (rd == "/" || rp[rd.size()] == '/');
}

std::string with_cache_ext(const std::string& model) {
    std::string ext = path_ext_lower(model);
    return (ext == ".onnx" ? model.substr(0, model.size() - 5) : model) + ".cache";
}

// Every value name of the graph (inputs, node outputs, initializers).
std::set<std::string> value_names(const Graph& g) {
    std::set<std::string> s;
    for (const auto& v : g.inputs) s.insert(v.name);
    for (const auto& n : g.nodes) s.insert(n.outputs.begin(), n.outputs.end());
    for (const auto& kv : g.initializers) s.insert(kv.first);
    return s;
}

struct BundleFile {
    std::string name, data;
    bool executable = false;
};

std::string shell_quote_free(const std::string& s) {
    // Names in the scripts are ours (model.onnx, ...) or profile names: no quoting needed,
    // but refuse anything that would need it rather than emit a broken script.
    for (char c : s)
        YOLOC_CHECK(std::isalnum(static_cast<unsigned char>(c)) || std::strchr("._-:=/", c), "'", s,
                    "' cannot go into a shell command unquoted: rename the model's input to letters, digits and ._-");
    return s;
}

}  // namespace

std::string trtexec_command(const TrtexecLine& l) {
    const int v = l.trt_version > 0 ? l.trt_version : 100000;  // 0: current (10.x) syntax
    std::string s = "trtexec --onnx=" + shell_quote_free(l.onnx) + " --saveEngine=" + shell_quote_free(l.engine);
    if (!l.shapes.empty()) {
        const std::string spec = shell_quote_free(l.shapes);
        s += " --minShapes=" + spec + " --optShapes=" + spec + " --maxShapes=" + spec;
    }
    if (l.workspace_bytes > 0)
        s += v < kTrtMemPoolSince ? " --workspace=" + mib_string(l.workspace_bytes)
                                  : " --memPoolSize=workspace:" + mib_string(l.workspace_bytes);
    s += " --fp16";
    if (l.int8) {
        s += " --int8";
        if (!l.calib.empty()) s += " --calib=" + shell_quote_free(l.calib);
    }
    return s;
}

ModelFacts inspect_model(const Model& model) {
    ModelFacts f;
    const Graph& g = model.graph;
    for (const auto& n : g.nodes) {
        f.quantize_nodes += n.op_type == "QuantizeLinear";
        f.dequantize_nodes += n.op_type == "DequantizeLinear";
    }
    f.qdq = f.quantize_nodes + f.dequantize_nodes > 0;
    if (!g.inputs.empty()) {
        f.input = g.inputs[0].name;
        for (const auto& d : g.inputs[0].shape) f.input_shape.push_back(d.known() ? d.value : -1);
    }
    f.opset = model.opset();
    f.parameters = g.parameter_count();
    YoloArch a;
    try {
        a = recognize_yolo(f.qdq ? strip_qdq(model) : model);
    } catch (const Error& e) {
        a.recognised = false;
        a.reason = e.what();
    }
    f.recognised = a.recognised;
    if (a.recognised) {
        f.scale = a.scale;
        if (a.scale == "custom") {
            f.pruned = true;
            f.architecture = cat("YOLOv8 with channel widths of no standard scale (pruned or custom), ", a.nc,
                                 " classes");
        } else {
            f.narrowed_convs = narrowed_convs(a);
            f.pruned = f.narrowed_convs > 0;
            f.architecture = cat("YOLOv8", a.scale, ", ", a.nc, " classes",
                                 f.pruned ? cat(", pruned (", f.narrowed_convs, " convs narrower than YOLOv8", a.scale, ")")
                                          : std::string());
        }
    } else {
        f.architecture = "not recognised as YOLOv8 (" + a.reason + ")";
    }
    for (const auto& v : check_model(model, "tensorrt")) f.trt_violations.push_back(v.line());
    return f;
}

ExportResult export_bundle(const ExportOptions& o) {
    // ---- everything is checked before anything is written
    const TargetProfile& prof = find_profile(o.target);
    YOLOC_CHECK(!o.model.empty(), "export: give the model to export");
    YOLOC_CHECK(!o.out_dir.empty(), "export: give the bundle folder (-o BUNDLE/)");
    const std::string out = strip_trailing_slashes(o.out_dir);
    YOLOC_CHECK(out != "/" && out != "." && out != "..", "export: '", o.out_dir,
                "' cannot be a bundle folder: name a new folder (e.g. -o bundle/)");

    const std::string model_bytes = read_file(o.model);
    Model m = parse_onnx(model_bytes, o.model);
    ExportResult r;
    r.model = inspect_model(m);
    r.model_sha256 = sha256_hex(model_bytes);
    YOLOC_CHECK(!r.model.input.empty() && r.model.input_shape.size() == 4, o.model,
                ": expected one image input [N,3,H,W], got ", r.model.input.empty() ? "none" : r.model.input);
    YOLOC_CHECK(r.model.input_shape[2] > 0 && r.model.input_shape[3] > 0, o.model, ": input '", r.model.input,
                "' has a symbolic height or width: export needs a fixed input size (export the model from "
                "Ultralytics with a fixed imgsz)");
    // The bundle must carry the weights: an ONNX file that keeps them in external data
    // files is re-serialized with every tensor inline (the model is the same).
    std::string bundle_model = model_bytes;
    if (int64_t(model_bytes.size()) < m.graph.weight_bytes()) {
        bundle_model = serialize_onnx(m);
        r.notes.push_back("the source model keeps its weights in external data files: model.onnx holds them inline");
    }

    // Calibration cache: given, or beside the model as MODEL.cache.
    std::string cache_path = o.calib_cache;
    if (cache_path.empty() && file_exists(with_cache_ext(o.model))) cache_path = with_cache_ext(o.model);
    CalibrationCache cache;
    std::string cache_text;
    if (!cache_path.empty()) {
        cache = read_calibration_cache(cache_path);
        const std::set<std::string> names = value_names(m.graph);
        int found = 0;
        for (const auto& kv : cache.scales) found += names.count(kv.first) != 0;
        YOLOC_CHECK(found > 0, cache_path, ": none of its ", cache.scales.size(), " tensors is a tensor of ", o.model,
                    ": the calibration cache belongs to another model (pass the right one with --calib-cache)");
        if (found < int(cache.scales.size()))
            r.notes.push_back(cat(cache_path, ": ", int(cache.scales.size()) - found, " of its ", cache.scales.size(),
                                  " tensors are not in the model (TensorRT ignores them)"));
        // TensorRT reads a cache only when its header matches its own version (it skips an
        // incompatible cache): the header carries the profile's version.
        cache_text = read_file(cache_path);
        if (prof.trt_version > 0) {
            const std::string header = cat("TRT-", prof.trt_version, "-", cache.method);
            size_t eol = cache_text.find('\n');
            size_t start = cache_text.find("TRT-");
            if (start != std::string::npos && (eol == std::string::npos || start < eol)) {
                cache_text = cache_text.substr(0, start) + header +
                             (eol == std::string::npos ? std::string("\n") : cache_text.substr(eol));
            }
            if (cache.trt_version != prof.trt_version)
                r.notes.push_back(cat("calibration cache header set to ", header, " (was ", cache.header,
                                      "): TensorRT skips a cache made for another version"));
        }
        r.calib_cache = true;
    }

    // Where it goes: a new or empty folder, or --force.
    const std::string parent = path_dirname(out);
    struct stat st;
    const bool out_exists = ::lstat(out.c_str(), &st) == 0;
    if (out_exists) {
        YOLOC_CHECK(S_ISDIR(st.st_mode), out, ": exists and is not a folder: name a new folder for the bundle");
        if (!dir_is_empty(out)) {
            YOLOC_CHECK(o.force, out, ": folder exists and is not empty: choose a new folder or pass --force to replace it");
            YOLOC_CHECK(!inside(o.model, out) && (cache_path.empty() || !inside(cache_path, out)), out,
                        ": holds the model or cache being exported; --force would delete them: choose another folder");
        }
    } else if (!parent.empty() && parent != "." && parent != "/") {
        struct stat ps;
        YOLOC_CHECK(::stat(parent.c_str(), &ps) != 0 || S_ISDIR(ps.st_mode), parent,
                    ": is not a folder, so the bundle cannot go inside it");
    }

    // ---- what the bundle says
    const bool device = is_device_profile(prof);
    const int trt = prof.trt_version;
    const std::string trt_name = trt > 0 ? "TensorRT " + trt_version_string(trt) : "TensorRT 8.x or 10.x";
    r.precision = r.model.qdq ? "int8" : "fp16";
    r.build_command = "yoloc build model.onnx --target " + prof.name + " --precision " + r.precision + " -o model.engine";

    TrtexecLine base;
    base.trt_version = trt;
    base.workspace_bytes = prof.workspace_bytes;
    if (r.model.input_shape[0] <= 0 || r.model.input_shape[1] <= 0) {
        std::vector<int64_t> s = r.model.input_shape;
        s[0] = prof.batch;
        if (s[1] <= 0) s[1] = 3;
        base.shapes = shape_spec(r.model.input, s);
    }
    TrtexecLine fp16 = base;
    fp16.engine = "model.fp16.plan";
    if (r.model.qdq) {
        TrtexecLine q = base;
        q.int8 = true;
        r.trtexec_command = trtexec_command(q);
        if (!prof.fast_int8 && device)
            r.notes.push_back(prof.device + " has no fast INT8: this INT8 engine is for size and accuracy, not speed; "
                              "export the float model for the fastest (FP16) engine");
    } else if (r.calib_cache) {
        TrtexecLine c = base;
        c.int8 = true;
        c.calib = "model.cache";
        c.engine = "model.int8.plan";
        if (prof.fast_int8) {
            r.trtexec_command = trtexec_command(c);
            r.trtexec_alternatives.push_back(trtexec_command(fp16));
        } else {
            r.trtexec_command = trtexec_command(fp16);
            r.trtexec_alternatives.push_back(trtexec_command(c));
            if (device)
                r.notes.push_back(prof.device + " has no fast INT8: the INT8 line (calibration cache) is for size and "
                                  "accuracy, not speed; the FP16 line is the fast one");
        }
        if (trt_major(trt) >= 10 || trt == 0)
            r.notes.push_back("TensorRT 10.1+ deprecates implicit INT8 calibration (IInt8Calibrator; trtexec --calib still "
                              "works in 10.x): prefer the Q/DQ model from `yoloc quantize` (explicit quantization)");
        r.notes.push_back("yoloc's own engine takes INT8 only from a Q/DQ model: build.sh builds FP16 from this float "
                          "model; the calibration cache is for TensorRT");
    } else {
        r.trtexec_command = trtexec_command(fp16);
    }
    if (r.model.qdq && prof.fast_int8 && !r.model.trt_violations.empty())
        r.notes.push_back(cat(r.model.trt_violations.size(), " TensorRT rule violation(s) in the Q/DQ model (`yoloc check "
                              "model.onnx --target tensorrt`): TensorRT may run those layers in float or reject them"));
    if (prof.name == "host")
        r.notes.push_back("host profile: no memory budget beyond the local GPU; the trtexec flags are valid for TensorRT "
                          "8.x and 10.x (no workspace flag)");
    r.out_dir = out;

    // ---- the files
    std::vector<BundleFile> files;
    files.push_back({"model.onnx", bundle_model, false});
    if (r.calib_cache) files.push_back({"model.cache", cache_text, false});

    const std::string created = now_iso();
    const std::string ver = engine::yoloc_version();
    {
        std::string s = "#!/bin/sh\n";
        s += "# Builds yoloc's engine for " + prof.device + " (" + prof.name + "). Run it on the device: an engine\n";
        s += "# is tied to the GPU and CUDA version it is built with. Extra arguments go to `yoloc build`.\n";
        s += "# Written by yoloc " + ver + " export, " + created + ". Set YOLOC to the yoloc binary if not on PATH.\n";
        s += "set -e\ncd \"$(dirname \"$0\")\"\n";
        s += "\"${YOLOC:-yoloc}\"" + r.build_command.substr(std::string("yoloc").size()) + " \"$@\"\n";
        files.push_back({"build.sh", s, true});
    }
    {
        std::string s = "#!/bin/sh\n";
        s += "# Builds a TensorRT engine for " + prof.device + " (" + prof.name + ") with trtexec (" + trt_name + ").\n";
        s += "# Run it on the device. See trtexec.txt for the flags, their sources and alternatives.\n";
        s += "# Set TRTEXEC to the trtexec binary; JetPack puts it in /usr/src/tensorrt/bin.\n";
        s += "set -e\ncd \"$(dirname \"$0\")\"\n";
        s += "TRTEXEC=${TRTEXEC:-trtexec}\n";
        s += "if ! command -v \"$TRTEXEC\" >/dev/null 2>&1 && [ -x /usr/src/tensorrt/bin/trtexec ]; then\n";
        s += "  TRTEXEC=/usr/src/tensorrt/bin/trtexec\nfi\n";
        s += "\"$TRTEXEC\"" + r.trtexec_command.substr(std::string("trtexec").size()) + " \"$@\"\n";
        files.push_back({"trtexec.sh", s, true});
    }
    {
        std::string s = "# trtexec for " + prof.device + " (" + prof.name + "), " +
                        (device ? prof.software : trt_name) + "\n";
        s += "# Model: model.onnx, " + r.model.architecture + (r.model.qdq ? ", Q/DQ (explicit INT8)" : ", float") +
             "\n#\n";
        s += "# Flags (trtexec --help of that version):\n";
        s += "#   --onnx, --saveEngine, --fp16, --int8, --calib=FILE: the same in TensorRT 8.x and 10.x.\n";
        if (prof.workspace_bytes > 0)
            s += trt < kTrtMemPoolSince
                     ? "#   --workspace=MiB: the workspace cap before TensorRT 8.4 (--memPoolSize arrived in 8.4;\n"
                       "#   10.x has only that).\n"
                     : "#   --memPoolSize=workspace:MiB: the workspace cap from TensorRT 8.4 on; TensorRT 10 removed\n"
                       "#   --workspace (docs.nvidia.com/deeplearning/tensorrt/latest/api/migration/\n"
                       "#   tensorrt-8x-to-10x-trtexec.html).\n";
        if (r.model.qdq)
            s += "#   Q/DQ model: --int8 enables the quantized layers (explicit quantization, no --calib); --fp16 lets\n"
                 "#   the layers left in float run in FP16. --stronglyTyped is not used: it would keep them in FP32.\n";
        else if (r.calib_cache)
            s += "#   --int8 --calib=model.cache: implicit INT8 from the calibration cache (deprecated since TensorRT 10.1;\n"
                 "#   a Q/DQ model from `yoloc quantize` is the replacement).\n";
        s += "\n" + r.trtexec_command + "\n";
        for (const auto& a : r.trtexec_alternatives) s += "\n# alternative:\n" + a + "\n";
        files.push_back({"trtexec.txt", s, false});
    }
    {
        const std::string budget = prof.memory_budget_bytes > 0 ? engine::format_bytes(prof.memory_budget_bytes)
                                                                 : std::string("none beyond the GPU's memory");
        const std::string ws = prof.workspace_bytes > 0 ? engine::format_bytes(prof.workspace_bytes)
                                                        : std::string("TensorRT's default");
        std::string s = "# yoloc bundle for " + prof.device + " (`" + prof.name + "`)\n\n";
        s += "Written by yoloc " + ver + " `export` on " + created + " from `" + o.model + "`.\n";
        s += "Engines are tied to the GPU and the CUDA/TensorRT versions they are built with, so they are built here, "
             "on the device, from this folder.\n\n";
        s += "## Target\n\n";
        s += "| | |\n| --- | --- |\n";
        s += "| device | " + prof.device + ": " + prof.hardware + " |\n";
        s += "| software | " + prof.software + " |\n";
        s += "| memory budget (engine weights + activations + workspace) | " + budget + " |\n";
        s += "| TensorRT workspace cap | " + ws + " |\n";
        s += "| fast INT8 | " + std::string(prof.fast_int8 ? "yes" : "no") + " |\n";
        s += "| preferred precision | " + prof.preferred_precision + " |\n";
        s += "| batch | " + std::to_string(prof.batch) + " |\n\n";
        s += prof.note + "\n\n";
        s += "## Model\n\n";
        s += "`model.onnx`: " + r.model.architecture + "; " +
             (r.model.qdq ? cat("Q/DQ INT8 (", r.model.quantize_nodes, " QuantizeLinear, ", r.model.dequantize_nodes,
                                " DequantizeLinear nodes)")
                          : std::string("float")) +
             "; input `" + r.model.input + "` " + shape_spec("", r.model.input_shape).substr(1) + "; opset " +
             std::to_string(r.model.opset) + "; sha256 `" + r.model_sha256 + "`.\n";
        if (r.calib_cache)
            s += "`model.cache`: TensorRT calibration cache (" + std::to_string(cache.scales.size()) +
                 " tensors, header `" +
                 (prof.trt_version > 0 ? cat("TRT-", prof.trt_version, "-", cache.method) : cache.header) +
                 "`).\n";
        s += "\n## On the device\n\n";
        s += "1. Check the copy: `sha256sum -c SHA256SUMS`.\n";
        s += "2. With yoloc (built on the device): `sh build.sh`, which runs\n\n       " + r.build_command + "\n\n";
        s += "   then e.g. `yoloc detect model.engine image.jpg --out det/` or `yoloc bench model.engine`.\n";
        s += "3. Or with TensorRT's trtexec (" + trt_name + "): `sh trtexec.sh`, which runs\n\n       " +
             r.trtexec_command + "\n\n";
        s += "   `trtexec.txt` explains each flag and lists alternatives.\n";
        if (!r.notes.empty()) {
            s += "\n## Notes\n\n";
            for (const auto& n : r.notes) s += "- " + n + "\n";
        }
        if (!r.model.trt_violations.empty()) {
            s += "\n## TensorRT rule check (`yoloc check model.onnx --target tensorrt`)\n\n";
            for (const auto& v : r.model.trt_violations) s += "- " + v + "\n";
        }
        files.push_back({"README.md", s, false});
    }
    {
        std::string sums;
        for (const auto& f : files) sums += sha256_hex(f.data) + "  " + f.name + "\n";
        nlohmann::json jf = nlohmann::json::array();
        for (const auto& f : files)
            jf.push_back({{"name", f.name}, {"bytes", f.data.size()}, {"sha256", sha256_hex(f.data)}});
        nlohmann::json shape = r.model.input_shape;
        nlohmann::json j = {
            {"format", "yoloc-bundle"},
            {"format_version", 1},
            {"yoloc_version", ver},
            {"created", created},
            {"profile", profile_json(prof)},
            {"model",
             {{"file", "model.onnx"},
              {"source", o.model},
              {"sha256", r.model_sha256},
              {"bytes", model_bytes.size()},
              {"qdq", r.model.qdq},
              {"quantize_nodes", r.model.quantize_nodes},
              {"dequantize_nodes", r.model.dequantize_nodes},
              {"recognised", r.model.recognised},
              {"scale", r.model.scale},
              {"pruned", r.model.pruned},
              {"narrowed_convs", r.model.narrowed_convs},
              {"architecture", r.model.architecture},
              {"input", r.model.input},
              {"input_shape", shape},
              {"opset", r.model.opset},
              {"parameters", r.model.parameters},
              {"tensorrt_violations", r.model.trt_violations}}},
            {"calibration_cache",
             r.calib_cache ? nlohmann::json{{"file", "model.cache"},
                                            {"source", cache_path},
                                            {"tensors", cache.scales.size()},
                                            {"method", cache.method},
                                            {"source_header", cache.header}}
                           : nlohmann::json(nullptr)},
            {"precision", r.precision},
            {"commands",
             {{"yoloc_build", r.build_command},
              {"trtexec", r.trtexec_command},
              {"trtexec_alternatives", r.trtexec_alternatives}}},
            {"notes", r.notes},
            {"files", jf}};
        BundleFile bj{"bundle.json", j.dump(2) + "\n", false};
        sums += sha256_hex(bj.data) + "  " + bj.name + "\n";
        files.push_back(bj);
        files.push_back({"SHA256SUMS", sums, false});
    }

    // ---- write into a temporary folder beside BUNDLE, then rename it into place
    if (!parent.empty() && parent != ".") make_dirs(parent);
    static std::atomic<unsigned> counter{0};
    const std::string tmp = path_join(parent, "." + base_name(out) + ".yoloc-export." + std::to_string(::getpid()) +
                                                  "." + std::to_string(counter++));
    remove_tree(tmp);
    if (::mkdir(tmp.c_str(), 0755) != 0) fail(tmp, ": cannot create folder (", std::strerror(errno), ")");
    try {
        for (const auto& f : files) {
            const std::string p = path_join(tmp, f.name);
            write_file_atomic(p, f.data);
            if (f.executable && ::chmod(p.c_str(), 0755) != 0)
                fail(p, ": cannot make executable (", std::strerror(errno), ")");
            r.files.push_back(f.name);
        }
        if (out_exists && !dir_is_empty(out)) {
            // --force: the old bundle moves aside, the new one takes its place, the old one goes.
            const std::string old = tmp + ".old";
            if (::rename(out.c_str(), old.c_str()) != 0)
                fail(out, ": cannot move the old folder aside (", std::strerror(errno), ")");
            if (::rename(tmp.c_str(), out.c_str()) != 0) {
                int e = errno;
                ::rename(old.c_str(), out.c_str());
                fail(out, ": cannot move the bundle into place (", std::strerror(e), ")");
            }
            remove_tree(old);
        } else if (::rename(tmp.c_str(), out.c_str()) != 0) {
            fail(out, ": cannot move the bundle into place (", std::strerror(errno), ")");
        }
    } catch (...) {
        remove_tree(tmp);
        throw;
    }
    std::sort(r.files.begin(), r.files.end());
    return r;
}

}  // namespace yoloc::deploy
