// Target profiles and the deployment bundle (src/deploy): every profile is found and
// sane, the bundle holds what the device needs, the trtexec lines use the flags each
// TensorRT version documents, and bad input writes nothing.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file.h"
#include "core/sha256.h"
#include "deploy/bundle.h"
#include "deploy/profiles.h"
#include "onnx/onnx_io.h"
#include "prune/prune.h"
#include "quant/calibrate.h"
#include "quant/quantize.h"
#include "test_util.h"
#include "yolo/generate.h"

using namespace yoloc;
using namespace yoloc::deploy;

namespace {

bool has(const std::string& s, const std::string& w) { return s.find(w) != std::string::npos; }

// Files in a folder, hidden ones included (nothing may be left behind).
std::set<std::string> entries(const std::string& dir) {
    std::set<std::string> s;
    std::string cmd = "ls -A '" + dir + "' 2>/dev/null";
    FILE* p = popen(cmd.c_str(), "r");
    char line[4096];
    while (p && fgets(line, sizeof line, p)) {
        std::string n = line;
        while (!n.empty() && (n.back() == '\n' || n.back() == '\r')) n.pop_back();
        s.insert(n);
    }
    if (p) pclose(p);
    return s;
}

bool exists(const std::string& p) {
    struct stat st;
    return ::lstat(p.c_str(), &st) == 0;
}

Model small_model() {
    GenerateOptions g;
    g.imgsz = 64;
    g.nc = 3;
    return generate_yolov8(g);
}

// A Q/DQ model and the TensorRT calibration cache `yoloc quantize` would write beside it
// (fixed ranges instead of calibration: the bundle does not care about the values).
std::pair<Model, std::string> qdq_model_and_cache(const Model& m) {
    QuantPlan p = plan_quantization(m);
    std::map<std::string, double> amax;
    for (const auto& l : p.layers) amax[l.input] = 4.0;
    for (const auto& t : calibration_tensors(m)) amax.emplace(t, 4.0);
    return {insert_qdq(m, p, amax, true), calibration_cache(amax, 8205, CalibMethod::Entropy)};
}

Model pruned_model(const Model& m) {
    PruneOptions o;
    o.scope = PruneScope::Bottleneck;
    o.ratio = 0.5;
    o.criterion = Criterion::L1;
    return prune_model(m, o, nullptr);
}

struct Bundle {
    std::string dir;
    ExportResult r;
    std::string file(const std::string& name) const { return read_file(path_join(dir, name)); }
    nlohmann::json json() const { return nlohmann::json::parse(file("bundle.json")); }
};

Bundle export_to(const std::string& model, const std::string& target, const std::string& dir,
                 const std::string& cache = "") {
    ExportOptions o;
    o.model = model;
    o.target = target;
    o.out_dir = dir;
    o.calib_cache = cache;
    return {dir, export_bundle(o)};
}

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }
std::string after_first_line(const std::string& s) { return s.substr(s.find('\n')); }

}  // namespace

// ---------------------------------------------------------------- profiles

TEST(Profiles, EveryProfileIsFoundByNameAndSane) {
    const std::set<std::string> expected = {"jetson-nano-2gb", "jetson-nano-4gb", "orin-nano-8gb", "orin-nx-16gb", "host"};
    std::set<std::string> names;
    for (const auto& p : target_profiles()) {
        names.insert(p.name);
        EXPECT_EQ(&find_profile(p.name), &p);
        EXPECT_FALSE(p.device.empty()) << p.name;
        EXPECT_FALSE(p.software.empty()) << p.name;
        EXPECT_FALSE(p.note.empty()) << p.name;
        EXPECT_EQ(p.batch, 1) << p.name;
        EXPECT_TRUE(p.preferred_precision == "fp16" || p.preferred_precision == "int8") << p.name;
        if (!is_device_profile(p)) continue;
        EXPECT_GT(p.memory_budget_bytes, 0) << p.name;
        EXPECT_GT(p.workspace_bytes, 0) << p.name;
        EXPECT_LT(p.workspace_bytes, p.memory_budget_bytes) << p.name;
        EXPECT_TRUE(!p.fast_int8 || p.tensor_cores) << p.name;
        EXPECT_EQ(p.preferred_precision, p.fast_int8 ? "int8" : "fp16") << p.name;
        // The JetPack line names the TensorRT the trtexec command is written for.
        EXPECT_TRUE(has(p.software, "TensorRT " + trt_version_string(p.trt_version).substr(0, 4))) << p.software;
    }
    EXPECT_EQ(names, expected);
}

TEST(Profiles, JetsonFactsMatchNvidiaSpecifications) {
    // developer.nvidia.com/cuda-legacy-gpus: Jetson Nano 5.3; cuda-gpus: Orin Nano/NX 8.7.
    for (const char* n : {"jetson-nano-2gb", "jetson-nano-4gb"}) {
        const TargetProfile& p = find_profile(n);
        EXPECT_EQ(p.cc_major * 10 + p.cc_minor, 53) << n;
        EXPECT_FALSE(p.fast_int8) << n;  // Maxwell: no dp4a (sm_61+), no tensor cores
        EXPECT_FALSE(p.tensor_cores) << n;
        EXPECT_EQ(p.trt_version, 8201) << n;  // JetPack 4.6.1+: TensorRT 8.2.1
        EXPECT_TRUE(has(p.note, "INT8")) << p.note;
        EXPECT_TRUE(has(p.software, "CUDA 10.2")) << p.software;
    }
    for (const char* n : {"orin-nano-8gb", "orin-nx-16gb"}) {
        const TargetProfile& p = find_profile(n);
        EXPECT_EQ(p.cc_major * 10 + p.cc_minor, 87) << n;
        EXPECT_TRUE(p.fast_int8) << n;
        EXPECT_TRUE(p.tensor_cores) << n;
        EXPECT_EQ(p.trt_version, 100300) << n;  // JetPack 6.1/6.2: TensorRT 10.3.0
    }
    // Budgets leave room for the OS and the camera pipeline: at most half the module's DRAM.
    EXPECT_LE(find_profile("jetson-nano-2gb").memory_budget_bytes, int64_t(1) << 30);
    EXPECT_LE(find_profile("jetson-nano-4gb").memory_budget_bytes, int64_t(2) << 30);
    EXPECT_LE(find_profile("orin-nano-8gb").memory_budget_bytes, int64_t(4) << 30);
    EXPECT_LE(find_profile("orin-nx-16gb").memory_budget_bytes, int64_t(8) << 30);
    const TargetProfile& h = find_profile("host");
    EXPECT_FALSE(is_device_profile(h));
    EXPECT_EQ(h.memory_budget_bytes, 0);
    EXPECT_EQ(h.trt_version, 0);
}

TEST(Profiles, UnknownProfileErrorListsTheValidNames) {
    try {
        find_profile("jetson-tx2");
        FAIL() << "no error";
    } catch (const Error& e) {
        const std::string m = e.what();
        EXPECT_TRUE(has(m, "jetson-tx2")) << m;
        for (const auto& p : target_profiles()) EXPECT_TRUE(has(m, p.name)) << m;
    }
}

TEST(Profiles, TensorRtVersionNumbersDecodePerMajorVersion) {
    // TensorRT 8: major*1000 + minor*100 + patch; TensorRT 10: major*10000 + minor*100 + patch.
    EXPECT_EQ(trt_version_string(8201), "8.2.1");
    EXPECT_EQ(trt_version_string(8602), "8.6.2");
    EXPECT_EQ(trt_version_string(100300), "10.3.0");
    EXPECT_EQ(trt_major(8201), 8);
    EXPECT_EQ(trt_major(100300), 10);
    EXPECT_EQ(trt_version_string(0), "");
}

// ---------------------------------------------------------------- trtexec lines

TEST(Trtexec, WorkspaceFlagFollowsTheTensorRtVersion) {
    TrtexecLine l;
    l.workspace_bytes = int64_t(128) << 20;
    l.trt_version = 8201;  // before 8.4: only --workspace=N (MiB)
    std::string a = trtexec_command(l);
    EXPECT_TRUE(has(a, " --workspace=128")) << a;
    EXPECT_FALSE(has(a, "--memPoolSize")) << a;
    l.trt_version = 8602;  // 8.4+: --memPoolSize=workspace:N (MiB)
    std::string b = trtexec_command(l);
    EXPECT_TRUE(has(b, " --memPoolSize=workspace:128")) << b;
    EXPECT_FALSE(has(b, "--workspace=")) << b;
    l.trt_version = 100300;  // 10.x: --workspace removed
    std::string c = trtexec_command(l);
    EXPECT_TRUE(has(c, " --memPoolSize=workspace:128")) << c;
    EXPECT_FALSE(has(c, "--workspace=")) << c;
    l.workspace_bytes = 0;
    EXPECT_FALSE(has(trtexec_command(l), "workspace")) << trtexec_command(l);
}

TEST(Trtexec, ImplicitInt8ReadsTheCacheExplicitInt8DoesNot) {
    TrtexecLine l;
    l.trt_version = 8201;
    l.int8 = true;
    l.calib = "model.cache";
    std::string a = trtexec_command(l);
    EXPECT_TRUE(has(a, " --int8") && has(a, " --calib=model.cache") && has(a, " --fp16")) << a;
    l.calib.clear();
    std::string b = trtexec_command(l);
    EXPECT_TRUE(has(b, " --int8") && has(b, " --fp16")) << b;
    EXPECT_FALSE(has(b, "--calib")) << b;
    EXPECT_EQ(b.rfind("trtexec --onnx=model.onnx --saveEngine=", 0), 0u) << b;
}

TEST(Trtexec, SymbolicBatchGetsTheSameMinOptMaxShapes) {
    TrtexecLine l;
    l.shapes = "images:1x3x640x640";
    std::string a = trtexec_command(l);
    for (const char* f :
         {"--minShapes=images:1x3x640x640", "--optShapes=images:1x3x640x640", "--maxShapes=images:1x3x640x640"})
        EXPECT_TRUE(has(a, f)) << a;
}

// ---------------------------------------------------------------- model facts

TEST(DeployFacts, GeneratedModelIsFloatAndNotPruned) {
    ModelFacts f = inspect_model(small_model());
    EXPECT_FALSE(f.qdq);
    EXPECT_TRUE(f.recognised);
    EXPECT_EQ(f.scale, "n");
    EXPECT_FALSE(f.pruned) << f.architecture;
    EXPECT_EQ(f.narrowed_convs, 0);
    EXPECT_EQ(f.input_shape, (std::vector<int64_t>{1, 3, 64, 64}));
}

TEST(DeployFacts, QdqModelIsRecognisedThroughItsQuantizeNodes) {
    ModelFacts f = inspect_model(qdq_model_and_cache(small_model()).first);
    EXPECT_TRUE(f.qdq);
    EXPECT_GT(f.quantize_nodes, 0);
    EXPECT_GT(f.dequantize_nodes, f.quantize_nodes);  // weights have DequantizeLinear only
    EXPECT_TRUE(f.recognised) << f.architecture;
    EXPECT_EQ(f.scale, "n");
    EXPECT_FALSE(f.pruned) << f.architecture;
    EXPECT_TRUE(f.trt_violations.empty()) << f.trt_violations.front();
}

TEST(DeployFacts, C2fPrunedModelIsSeenAsPruned) {
    ModelFacts f = inspect_model(pruned_model(small_model()));
    EXPECT_TRUE(f.recognised) << f.architecture;
    EXPECT_TRUE(f.pruned) << f.architecture;
    EXPECT_GT(f.narrowed_convs, 0);
    EXPECT_TRUE(has(f.architecture, "pruned")) << f.architecture;
}

// ---------------------------------------------------------------- bundles

TEST(DeployBundle, FloatModelForJetsonNanoHasEveryFileAndTensorRt82Flags) {
    std::string dir = yoloc_test::scratch_dir("deploy_float");
    save_onnx(small_model(), dir + "/m.onnx");
    Bundle b = export_to(dir + "/m.onnx", "jetson-nano-2gb", dir + "/bundle");
    const std::set<std::string> want = {"README.md", "SHA256SUMS", "build.sh", "bundle.json",
                                        "model.onnx", "trtexec.sh", "trtexec.txt"};
    EXPECT_EQ(entries(b.dir), want);
    EXPECT_EQ(std::set<std::string>(b.r.files.begin(), b.r.files.end()), want);
    // The model is copied byte for byte.
    EXPECT_EQ(b.file("model.onnx"), read_file(dir + "/m.onnx"));
    EXPECT_EQ(b.r.precision, "fp16");
    EXPECT_EQ(b.r.build_command, "yoloc build model.onnx --target jetson-nano-2gb --precision fp16 -o model.engine");
    EXPECT_TRUE(has(b.file("build.sh"), "build model.onnx --target jetson-nano-2gb --precision fp16 -o model.engine"));
    // TensorRT 8.2.1 (JetPack 4.6.1): --workspace in MiB, no --memPoolSize (8.4+), FP16, no INT8.
    const std::string t = b.r.trtexec_command;
    EXPECT_TRUE(has(t, "--onnx=model.onnx") && has(t, "--saveEngine=") && has(t, " --fp16")) << t;
    EXPECT_TRUE(has(t, " --workspace=128")) << t;
    EXPECT_FALSE(has(t, "--memPoolSize") || has(t, "--int8") || has(t, "--calib")) << t;
    EXPECT_TRUE(has(b.file("trtexec.sh"), t.substr(std::string("trtexec").size())));
    EXPECT_TRUE(has(b.file("trtexec.txt"), t));
    // Scripts are executable.
    struct stat st;
    ASSERT_EQ(::stat((b.dir + "/build.sh").c_str(), &st), 0);
    EXPECT_TRUE(st.st_mode & S_IXUSR);
    ASSERT_EQ(::stat((b.dir + "/trtexec.sh").c_str(), &st), 0);
    EXPECT_TRUE(st.st_mode & S_IXUSR);
    // README for the person at the device.
    const std::string readme = b.file("README.md");
    for (const char* w : {"Jetson Nano 2GB", "JetPack 4.6.1", "sha256sum -c SHA256SUMS", "build.sh", "trtexec.sh"})
        EXPECT_TRUE(has(readme, w)) << w;
    // bundle.json: profile, model sha256, files with their sha256, commands.
    nlohmann::json j = b.json();
    EXPECT_EQ(j["profile"]["name"], "jetson-nano-2gb");
    EXPECT_EQ(j["profile"]["compute_capability"], "5.3");
    EXPECT_EQ(j["profile"]["tensorrt"], "8.2.1");
    EXPECT_EQ(j["model"]["sha256"], sha256_hex(read_file(dir + "/m.onnx")));
    EXPECT_EQ(j["model"]["qdq"], false);
    EXPECT_EQ(j["commands"]["yoloc_build"], b.r.build_command);
    EXPECT_EQ(j["commands"]["trtexec"], t);
    EXPECT_TRUE(j["calibration_cache"].is_null());
    for (const auto& f : j["files"]) EXPECT_EQ(f["sha256"], sha256_hex(b.file(f["name"]))) << f.dump();
    // SHA256SUMS is in `sha256sum -c` format and right for every other file.
    std::istringstream sums(b.file("SHA256SUMS"));
    std::string sum, name;
    int n = 0;
    while (sums >> sum >> name) {
        EXPECT_EQ(sum, sha256_hex(b.file(name))) << name;
        ++n;
    }
    EXPECT_EQ(n, 6);
}

TEST(DeployBundle, FloatModelForOrinUsesMemPoolSizeOfTensorRt10) {
    std::string dir = yoloc_test::scratch_dir("deploy_orin_float");
    save_onnx(small_model(), dir + "/m.onnx");
    Bundle b = export_to(dir + "/m.onnx", "orin-nano-8gb", dir + "/bundle");
    const std::string t = b.r.trtexec_command;
    // TensorRT 10.3 (JetPack 6.2): --workspace was removed, --memPoolSize=workspace:<MiB>.
    EXPECT_TRUE(has(t, " --memPoolSize=workspace:512")) << t;
    EXPECT_FALSE(has(t, "--workspace=")) << t;
    EXPECT_TRUE(has(t, " --fp16")) << t;
    EXPECT_FALSE(has(t, "--int8")) << t;  // a float model without cache: FP16
    EXPECT_EQ(b.r.precision, "fp16");
    EXPECT_EQ(b.json()["profile"]["tensorrt"], "10.3.0");
}

TEST(DeployBundle, FloatModelWithCacheGetsImplicitInt8AndTheCacheWithTheProfilesHeader) {
    std::string dir = yoloc_test::scratch_dir("deploy_cache");
    Model m = small_model();
    save_onnx(m, dir + "/m.onnx");
    // `yoloc quantize` writes OUT.cache beside OUT.onnx; here beside the float model, found by default.
    const std::string cache = qdq_model_and_cache(m).second;
    write_file_atomic(dir + "/m.cache", cache);
    ASSERT_EQ(first_line(cache), "TRT-8205-EntropyCalibration2");

    Bundle orin = export_to(dir + "/m.onnx", "orin-nx-16gb", dir + "/orin");
    EXPECT_TRUE(orin.r.calib_cache);
    EXPECT_TRUE(exists(orin.dir + "/model.cache"));
    // TensorRT checks the header's version: it carries TensorRT 10.3.0's; the scales are unchanged.
    EXPECT_EQ(first_line(orin.file("model.cache")), "TRT-100300-EntropyCalibration2");
    EXPECT_EQ(after_first_line(orin.file("model.cache")), after_first_line(cache));
    // Fast INT8 on Orin: the primary line is implicit INT8 from the cache, FP16 the alternative.
    EXPECT_TRUE(has(orin.r.trtexec_command, " --int8") && has(orin.r.trtexec_command, " --calib=model.cache"))
        << orin.r.trtexec_command;
    ASSERT_EQ(orin.r.trtexec_alternatives.size(), 1u);
    EXPECT_FALSE(has(orin.r.trtexec_alternatives[0], "--int8"));
    // yoloc's engine takes INT8 only from Q/DQ: build.sh builds FP16 from the float model.
    EXPECT_EQ(orin.r.precision, "fp16");
    bool deprecated = false;
    for (const auto& n : orin.r.notes) deprecated = deprecated || has(n, "deprecat");
    EXPECT_TRUE(deprecated) << "TensorRT 10.1+ deprecates implicit INT8 calibration";

    Bundle nano = export_to(dir + "/m.onnx", "jetson-nano-4gb", dir + "/nano");
    EXPECT_EQ(first_line(nano.file("model.cache")), "TRT-8201-EntropyCalibration2");
    // No fast INT8 on Maxwell: FP16 is the primary line, INT8 from the cache the alternative, and the README says so.
    EXPECT_FALSE(has(nano.r.trtexec_command, "--int8")) << nano.r.trtexec_command;
    ASSERT_EQ(nano.r.trtexec_alternatives.size(), 1u);
    EXPECT_TRUE(has(nano.r.trtexec_alternatives[0], " --int8 --calib=model.cache")) << nano.r.trtexec_alternatives[0];
    EXPECT_TRUE(has(nano.r.trtexec_alternatives[0], " --workspace=256")) << nano.r.trtexec_alternatives[0];
    EXPECT_TRUE(has(nano.file("README.md"), "no fast INT8"));
}

TEST(DeployBundle, QdqModelGetsExplicitInt8WithoutCalib) {
    std::string dir = yoloc_test::scratch_dir("deploy_qdq");
    auto qc = qdq_model_and_cache(small_model());
    save_onnx(qc.first, dir + "/q.onnx");
    write_file_atomic(dir + "/q.cache", qc.second);
    for (const char* target : {"jetson-nano-2gb", "orin-nano-8gb"}) {
        Bundle b = export_to(dir + "/q.onnx", target, dir + "/" + target);
        EXPECT_EQ(b.r.precision, "int8") << target;
        EXPECT_TRUE(has(b.r.build_command, "--precision int8")) << b.r.build_command;
        EXPECT_TRUE(has(b.r.trtexec_command, " --int8") && has(b.r.trtexec_command, " --fp16")) << b.r.trtexec_command;
        EXPECT_FALSE(has(b.r.trtexec_command, "--calib")) << b.r.trtexec_command;  // explicit quantization
        EXPECT_TRUE(b.r.calib_cache) << "the cache beside the model travels too";
        EXPECT_EQ(b.file("model.onnx"), read_file(dir + "/q.onnx"));
        EXPECT_EQ(b.json()["model"]["qdq"], true);
        EXPECT_GT(b.json()["model"]["quantize_nodes"].get<int>(), 0);
    }
    Bundle nano = {dir + "/jetson-nano-2gb", {}};
    EXPECT_TRUE(has(nano.file("README.md"), "no fast INT8")) << "Maxwell: INT8 for size/accuracy, not speed";
}

TEST(DeployBundle, PrunedModelIsExportedAndLabelledPruned) {
    std::string dir = yoloc_test::scratch_dir("deploy_pruned");
    save_onnx(pruned_model(small_model()), dir + "/p.onnx");
    Bundle b = export_to(dir + "/p.onnx", "orin-nano-8gb", dir + "/bundle");
    EXPECT_TRUE(b.r.model.pruned);
    EXPECT_EQ(b.json()["model"]["pruned"], true);
    EXPECT_TRUE(has(b.file("README.md"), "pruned"));
    EXPECT_EQ(b.file("model.onnx"), read_file(dir + "/p.onnx"));
}

TEST(DeployBundle, HostProfileHasNoBudgetAndNoWorkspaceFlag) {
    std::string dir = yoloc_test::scratch_dir("deploy_host");
    save_onnx(small_model(), dir + "/m.onnx");
    Bundle b = export_to(dir + "/m.onnx", "host", dir + "/bundle");
    EXPECT_FALSE(has(b.r.trtexec_command, "workspace")) << b.r.trtexec_command;
    EXPECT_EQ(b.json()["profile"]["memory_budget_bytes"], 0);
    EXPECT_EQ(b.r.build_command, "yoloc build model.onnx --target host --precision fp16 -o model.engine");
}

// ---------------------------------------------------------------- bad input writes nothing

TEST(DeployBadInput, NothingIsWrittenOnError) {
    std::string dir = yoloc_test::scratch_dir("deploy_bad");
    save_onnx(small_model(), dir + "/m.onnx");
    auto fails = [&](ExportOptions o, const std::string& want) {
        try {
            export_bundle(o);
            ADD_FAILURE() << "no error, expected '" << want << "'";
        } catch (const Error& e) {
            EXPECT_TRUE(has(e.what(), want)) << e.what();
        }
    };
    ExportOptions o;
    o.model = dir + "/m.onnx";
    o.target = "jetson-nano-2gb";
    o.out_dir = dir + "/out";
    ExportOptions missing = o;
    missing.model = dir + "/nope.onnx";
    fails(missing, "nope.onnx");
    ExportOptions unknown = o;
    unknown.target = "xavier";
    fails(unknown, "orin-nx-16gb");
    ExportOptions bad_cache = o;
    write_file_atomic(dir + "/bad.cache", "not a cache\n");
    bad_cache.calib_cache = dir + "/bad.cache";
    fails(bad_cache, "bad.cache");
    ExportOptions other_cache = o;
    write_file_atomic(dir + "/other.cache", "TRT-8205-EntropyCalibration2\nsome_other_tensor: 3c010204\n");
    other_cache.calib_cache = dir + "/other.cache";
    fails(other_cache, "another model");
    ExportOptions not_onnx = o;
    write_file_atomic(dir + "/junk.onnx", "\x08\x07junk that is not a model");
    not_onnx.model = dir + "/junk.onnx";
    fails(not_onnx, "junk.onnx");
    EXPECT_FALSE(exists(dir + "/out"));
    // Only the inputs are in the folder: no temporary bundle left behind.
    EXPECT_EQ(entries(dir), (std::set<std::string>{"m.onnx", "bad.cache", "other.cache", "junk.onnx"}));

    // A non-empty folder is not replaced without force, and stays as it was.
    make_dirs(dir + "/busy");
    write_file_atomic(dir + "/busy/keep.txt", "mine");
    ExportOptions busy = o;
    busy.out_dir = dir + "/busy";
    fails(busy, "--force");
    EXPECT_EQ(entries(dir + "/busy"), std::set<std::string>{"keep.txt"});
    // With force it is replaced by the bundle, whole.
    busy.force = true;
    export_bundle(busy);
    EXPECT_FALSE(exists(dir + "/busy/keep.txt"));
    EXPECT_TRUE(exists(dir + "/busy/bundle.json"));
    // --force never deletes the model it exports.
    ExportOptions self = o;
    self.out_dir = dir;
    self.force = true;
    fails(self, "holds the model");
    EXPECT_TRUE(exists(dir + "/m.onnx"));
    // An empty folder is fine.
    make_dirs(dir + "/empty");
    ExportOptions empty = o;
    empty.out_dir = dir + "/empty";
    EXPECT_NO_THROW(export_bundle(empty));
    EXPECT_TRUE(exists(dir + "/empty/model.onnx"));
}

// ---------------------------------------------------------------- CLI

TEST(DeployCli, ExportWritesTheBundleAndPrintsJson) {
    std::string dir = yoloc_test::scratch_dir("deploy_cli");
    ASSERT_EQ(yoloc_test::run_cli("generate --scale n --nc 2 --imgsz 64 -o " + dir + "/m.onnx").code, 0);
    auto r = yoloc_test::run_cli("export " + dir + "/m.onnx --target orin-nano-8gb -o " + dir + "/b --json");
    ASSERT_EQ(r.code, 0) << r.out;
    std::string js = r.out.substr(r.out.find('{'));
    js = js.substr(0, js.rfind('}') + 1);
    nlohmann::json j = nlohmann::json::parse(js);
    EXPECT_EQ(j["target"], "orin-nano-8gb");
    EXPECT_TRUE(has(j["trtexec_command"].get<std::string>(), "--memPoolSize=workspace:512"));
    EXPECT_TRUE(exists(dir + "/b/bundle.json"));
    // Again into the same folder: refused without --force, exit 1, one error line.
    auto again = yoloc_test::run_cli("export " + dir + "/m.onnx --target orin-nano-8gb -o " + dir + "/b");
    EXPECT_EQ(again.code, 1) << again.out;
    EXPECT_TRUE(has(again.out, "error: ") && has(again.out, "--force")) << again.out;
    EXPECT_EQ(yoloc_test::run_cli("export " + dir + "/m.onnx --target orin-nano-8gb -o " + dir + "/b --force").code, 0);
}

TEST(DeployCli, ExportErrorsAreOneClearLine) {
    std::string dir = yoloc_test::scratch_dir("deploy_cli_bad");
    ASSERT_EQ(yoloc_test::run_cli("generate --scale n --nc 2 --imgsz 64 -o " + dir + "/m.onnx").code, 0);
    auto missing = yoloc_test::run_cli("export " + dir + "/none.onnx --target host -o " + dir + "/b");
    EXPECT_EQ(missing.code, 1);
    EXPECT_TRUE(has(missing.out, "error: ") && has(missing.out, "none.onnx")) << missing.out;
    auto unknown = yoloc_test::run_cli("export " + dir + "/m.onnx --target jetson-tx2 -o " + dir + "/b");
    EXPECT_EQ(unknown.code, 1);
    EXPECT_TRUE(has(unknown.out, "error: unknown target profile 'jetson-tx2'") && has(unknown.out, "jetson-nano-2gb"))
        << unknown.out;
    EXPECT_FALSE(exists(dir + "/b"));
    auto help = yoloc_test::run_cli("export --help");
    EXPECT_EQ(help.code, 0);
    EXPECT_TRUE(has(help.out, "trtexec") && has(help.out, "orin-nx-16gb") && has(help.out, "--calib-cache")) << help.out;
}

TEST(DeployCli, BuildTargetSetsTheProfileLimitsAndRefusesBatchOtherThanOne) {
    std::string dir = yoloc_test::scratch_dir("deploy_build_target");
    ASSERT_EQ(yoloc_test::run_cli("generate --scale n --nc 2 --imgsz 64 -o " + dir + "/m.onnx").code, 0);
    const std::string m = dir + "/m.onnx", e = " -o " + dir + "/m.engine";
    auto batch = yoloc_test::run_cli("build " + m + " --target jetson-nano-2gb --batch 4" + e);
    EXPECT_EQ(batch.code, 1) << batch.out;
    EXPECT_TRUE(has(batch.out, "error: --batch 4") && has(batch.out, "batch 1")) << batch.out;
    auto unknown = yoloc_test::run_cli("build " + m + " --target tx2" + e);
    EXPECT_EQ(unknown.code, 1) << unknown.out;
    EXPECT_TRUE(has(unknown.out, "unknown target profile 'tx2'") && has(unknown.out, "orin-nano-8gb")) << unknown.out;
    // Explicit flags win over the profile: a 1 MiB budget refuses the plan before any GPU work.
    auto budget = yoloc_test::run_cli("build " + m + " --target jetson-nano-2gb --memory-budget 1MiB" + e);
    EXPECT_EQ(budget.code, 1) << budget.out;
    EXPECT_TRUE(has(budget.out, "budget of 1.00 MiB")) << budget.out;
    EXPECT_TRUE(has(budget.out, "target     jetson-nano-2gb") && has(budget.out, "workspace cap 128.00 MiB") &&
                has(budget.out, "precision fp16 (profile default)"))
        << budget.out;
    // Orin prefers INT8: on a float model that means int8 where there is Q/DQ, else fp16 ("best").
    auto orin = yoloc_test::run_cli("build " + m + " --target orin-nano-8gb --memory-budget 1MiB" + e);
    EXPECT_TRUE(has(orin.out, "precision best (profile default)") &&
                has(orin.out, "memory budget 1.00 MiB (--memory-budget)"))
        << orin.out;
    // The profile's own budget: within it, the build goes on to the GPU part, which fails cleanly
    // here (no CUDA in this build, or no GPU), with no engine written.
    auto fits = yoloc_test::run_cli("build " + m + " --target jetson-nano-2gb" + e);
    EXPECT_TRUE(has(fits.out, "memory budget 1.00 GiB")) << fits.out;
    if (fits.code != 0) {
        EXPECT_EQ(fits.code, 1) << fits.out;
        EXPECT_TRUE(has(fits.out, "error: ")) << fits.out;
        EXPECT_FALSE(exists(dir + "/m.engine"));
    }
    auto ws = yoloc_test::run_cli("build " + m + " --workspace 0" + e);
    EXPECT_NE(ws.code, 0) << ws.out;
    EXPECT_TRUE(has(ws.out, "--workspace")) << ws.out;
}

TEST(DeployCli, BuildRefusesAModelOverTheProfilesBudget) {
    std::string dir = yoloc_test::scratch_dir("deploy_build_budget");
    // YOLOv8m at 3840x3840 in fp32: 1.26 GiB (99 MiB of weights, 1.16 GiB of activations), more than
    // jetson-nano-2gb's 1 GiB and less than jetson-nano-4gb's 2 GiB.
    ASSERT_EQ(yoloc_test::run_cli("generate --scale m --nc 2 --imgsz 3840 -o " + dir + "/big.onnx").code, 0);
    auto r = yoloc_test::run_cli("build " + dir + "/big.onnx --target jetson-nano-2gb --precision fp32 -o " + dir +
                                 "/big.engine");
    EXPECT_EQ(r.code, 1) << r.out;
    EXPECT_TRUE(has(r.out, "budget of 1.00 GiB")) << r.out;
    EXPECT_FALSE(exists(dir + "/big.engine"));
    // The 4 GB Nano's 2 GiB take it.
    auto r4 = yoloc_test::run_cli("build " + dir + "/big.onnx --target jetson-nano-4gb --precision fp32 -o " + dir +
                                  "/big.engine");
    EXPECT_FALSE(has(r4.out, "budget of")) << r4.out;
    EXPECT_TRUE(has(r4.out, "memory budget 2.00 GiB")) << r4.out;
    std::remove((dir + "/big.onnx").c_str());  // 100 MB
}
