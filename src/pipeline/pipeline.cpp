#include "pipeline/pipeline.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/file.h"
#include "core/limits.h"
#include "deploy/profiles.h"
#include "engine/engine_file.h"
#include "eval/dataset.h"
#include "onnx/onnx_io.h"
#include "quant/calibrate.h"
#include "yolo/input_size.h"

#ifdef YOLOC_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

namespace yoloc::pipeline {
namespace {

int64_t file_size(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? int64_t(st.st_size) : -1;
}

std::string now_utc() {
    std::time_t t = std::time(nullptr);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", std::gmtime(&t));
    return buf;
}

std::string host_name() {
    char buf[256] = {0};
    if (::gethostname(buf, sizeof buf - 1) != 0) return "unknown";
    long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
    return cat(buf, " (", cpus, " CPU cores)");
}

// Shell-style quoting, for the logged command lines only (execv gets the argv itself).
std::string quote(const std::string& s) {
    if (!s.empty() && s.find_first_of(" \t\n'\"\\$`*?&;|<>()") == std::string::npos) return s;
    std::string q = "'";
    for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

// Runs `argv` with stdout and stderr sent to files; returns the exit status (128 + signal
// when it was killed, like a shell).
int run_child(const std::vector<std::string>& argv, const std::string& out_path, const std::string& err_path) {
    std::fflush(nullptr);
    pid_t pid = ::fork();
    YOLOC_CHECK(pid >= 0, "cannot start ", argv[0], ": fork failed");
    if (pid == 0) {
        int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (out < 0 || err < 0) ::_exit(126);
        ::dup2(out, 1);
        ::dup2(err, 2);
        std::vector<char*> args;
        for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        ::execv(args[0], args.data());
        ::_exit(127);
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0) {
    }
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return 1;
}

std::string last_lines(const std::string& path, int n) {
    std::ifstream f(path);
    std::vector<std::string> lines;
    std::string l;
    while (std::getline(f, l)) {
        // Progress bars redraw with '\r': keep what the line shows last.
        size_t cr = l.find_last_of('\r');
        if (cr != std::string::npos) l = l.substr(cr + 1);
        if (!l.empty()) lines.push_back(l);
    }
    std::string s;
    for (size_t i = lines.size() > size_t(n) ? lines.size() - size_t(n) : 0; i < lines.size(); ++i)
        s += (s.empty() ? "" : "\n") + lines[i];
    return s;
}

// A stage's stdout: one JSON document (pretty-printed or one line), possibly after other text.
nlohmann::json parse_stdout(const std::string& path) {
    std::string text = file_exists(path) ? read_file(path) : "";
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (!j.is_discarded()) return j;
    size_t p = text.find('{');
    while (p != std::string::npos) {
        j = nlohmann::json::parse(text.substr(p), nullptr, false);
        if (!j.is_discarded()) return j;
        p = text.find("\n{", p + 1);
        if (p != std::string::npos) ++p;
    }
    return nlohmann::json();
}

double num(const nlohmann::json& j, const char* key, double dflt = -1) {
    return j.is_object() && j.contains(key) && j[key].is_number() ? j[key].get<double>() : dflt;
}

class Runner {
public:
    Runner(const Options& o, Report& r, const std::function<void(const std::string&)>& progress, int total)
        : o_(o), r_(r), progress_(progress), total_(total) {}

    // Runs `yoloc ARGS...`; throws (after writing the report) when it fails.
    nlohmann::json stage(const std::string& name, const std::vector<std::string>& args) {
        ++n_;
        char tag[16];
        std::snprintf(tag, sizeof tag, "%02d_", n_);
        const std::string base = path_join(path_join(o_.out_dir, "logs"), tag + name);
        std::vector<std::string> argv{o_.exe};
        argv.insert(argv.end(), args.begin(), args.end());
        StageRecord rec;
        rec.name = name;
        rec.log = base + ".log";
        for (const auto& a : argv) rec.command += (rec.command.empty() ? "" : " ") + quote(a);
        if (progress_) progress_(cat("[", n_, "/", total_, "] ", name, ": ", rec.command));
        auto t0 = std::chrono::steady_clock::now();
        rec.exit_code = run_child(argv, base + ".json", rec.log);
        rec.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        rec.ok = rec.exit_code == 0;
        r_.stages.push_back(rec);
        if (!rec.ok) {
            r_.failed = name;
            write_reports(r_);
            std::string why = rec.exit_code == 127 ? cat("could not run ", o_.exe) : last_lines(rec.log, 6);
            fail("pipeline stage '", name, "' failed (exit ", rec.exit_code, "):\n", why, "\nits log: ", rec.log,
                 "; the earlier stages' results are kept in ", o_.out_dir, " (report.md lists them)");
        }
        if (progress_) progress_(cat("      done in ", std::round(rec.seconds * 10) / 10, " s"));
        return parse_stdout(base + ".json");
    }

private:
    const Options& o_;
    Report& r_;
    const std::function<void(const std::string&)>& progress_;
    int total_ = 0, n_ = 0;
};

std::string threads_str(int t) { return std::to_string(std::max(0, t)); }

}  // namespace

void write_reports(const Report& r) {
    const std::string& d = r.options.out_dir;
    make_dirs(path_join(d, "charts"));
    write_file_atomic(path_join(d, "charts/map_vs_latency.svg"), chart_map_vs_latency(r));
    write_file_atomic(path_join(d, "charts/layer_times.svg"), chart_layer_times(r));
    write_file_atomic(path_join(d, "charts/device_memory.svg"), chart_device_memory(r));
    write_file_atomic(path_join(d, "report.json"), report_json(r).dump(2) + "\n");
    write_file_atomic(path_join(d, "report.md"), report_markdown(r));
    write_file_atomic(path_join(d, "report.html"), report_html(r));
}

bool gpu_available(std::string* why, std::string* name) {
#ifdef YOLOC_HAVE_CUDA
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
        if (why) *why = cat("no usable CUDA GPU (", e != cudaSuccess ? cudaGetErrorString(e) : "0 devices", ")");
        return false;
    }
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, 0) == cudaSuccess && name) *name = cat(p.name, " (sm_", p.major, p.minor, ")");
    return true;
#else
    if (why) *why = "this yoloc was built without CUDA (no nvcc at build time)";
    (void)name;
    return false;
#endif
}

Report run(const Options& o, const std::function<void(const std::string&)>& progress) {
    // Every input is checked before the first stage: a bad one then costs a second, not
    // the stages that run before the one that reads it.
    YOLOC_CHECK(!o.exe.empty(), "pipeline: no yoloc binary to run the stages");
    YOLOC_CHECK(!o.out_dir.empty(), "give --out DIR");
    YOLOC_CHECK(!file_exists(o.out_dir), "--out ", o.out_dir, ": is a file; give a folder for the report");
    limits::check("--prune", limits::ratio_problem(o.prune));
    limits::check("--threads", limits::threads_problem(o.threads));
    limits::check("--calib-count", limits::at_least_problem(o.calib_count, 1));
    limits::check("--cpu-iters", limits::at_least_problem(o.cpu_iters, 1));
    limits::check("--gpu-iters", limits::at_least_problem(o.gpu_iters, 1));
    YOLOC_CHECK(!o.precisions.empty(), "--precision needs at least one of fp32, fp16, int8");
    for (const auto& p : o.precisions)
        YOLOC_CHECK(p == "fp32" || p == "fp16" || p == "int8", "--precision: unknown precision '", p,
                    "' (expected fp32, fp16 or int8)");
    const deploy::TargetProfile& prof = deploy::find_profile(o.target);
    YOLOC_CHECK(!o.model.empty(), "give the model to run the pipeline on");
    checked_input_dims(load_onnx(o.model), o.model);
    YOLOC_CHECK(!o.calib.empty(), "give --calib DIR (calibration images for prune and quantize)");
    const size_t calib_found = calibration_images(o.calib, 0).size();
    YOLOC_CHECK(size_t(o.calib_count) <= calib_found, "--calib-count ", o.calib_count, ": only ", calib_found,
                " calibration images in ", o.calib, " (use at most ", calib_found, ", or add images)");
    YOLOC_CHECK(!o.data.empty(), "give --data DATA.yaml (for mAP)");
    const Dataset val = load_dataset(o.data, "val");  // the file, its folders and its labels
    YOLOC_CHECK(!val.images.empty(), o.data, ": split 'val' has no images (eval measures mAP on it)");

    Report r;
    r.options = o;
    r.started = now_utc();
    r.yoloc_version = engine::yoloc_version();
    r.host = host_name();
    r.profile = deploy::profile_json(prof);
    std::string why_no_gpu, gpu_name;
    const bool gpu = !o.no_gpu && gpu_available(&why_no_gpu, &gpu_name);
    if (o.no_gpu) why_no_gpu = "--no-gpu was given";
    r.gpu = gpu ? gpu_name : why_no_gpu;
    r.gpu_ran = gpu;

    make_dirs(path_join(o.out_dir, "logs"));
    make_dirs(path_join(o.out_dir, "models"));
    if (gpu) make_dirs(path_join(o.out_dir, "engines"));

    const bool want_int8 = std::count(o.precisions.begin(), o.precisions.end(), "int8") > 0;
    const int total = 3 + (o.prune > 0 ? 4 : 0) + (want_int8 ? 4 : 0) + (gpu ? 3 * int(o.precisions.size()) + 1 : 0);
    Runner run(o, r, progress, total);
    const std::string T = threads_str(o.threads);
    const std::string cpu_how = cat("CPU fast executor, ", o.threads == 1 ? std::string("1 thread") : o.threads > 1 ? cat(o.threads, " threads") : std::string("all cores"),
                                    ", wall clock of one forward pass on a fixed input, median of ", o.cpu_iters,
                                    " runs (`yoloc bench --backend cpu`)");
    const std::string map_cpu_how = cat("`yoloc eval` on ", o.data, " (CPU fast executor, conf 0.001, IoU 0.7)");

    // One CPU variant: inspect, eval, bench.
    auto cpu_variant = [&](const std::string& vname, const std::string& model, const std::string& tag,
                           const std::string& precision) {
        Variant v;
        v.name = vname;
        v.backend = "cpu";
        v.precision = precision;
        v.model = model;
        v.model_bytes = file_size(model);
        nlohmann::json ins = run.stage("inspect_" + tag, {"inspect", model, "--json"});
        v.params = int64_t(num(ins, "parameters"));
        nlohmann::json ev = run.stage("eval_" + tag, {"eval", model, "--data", o.data, "--threads", T, "--json"});
        v.map50 = num(ev, "mAP50");
        v.map50_95 = num(ev, "mAP50_95");
        v.map_how = cat(map_cpu_how, ", ", int64_t(num(ev, "images", 0)), " images");
        nlohmann::json b = run.stage("bench_cpu_" + tag, {"bench", model, "--backend", "cpu", "--iters",
                                                          std::to_string(o.cpu_iters), "--threads", T, "--json"});
        v.latency_median_ms = num(b, "median_ms");
        v.latency_p99_ms = num(b, "p99_ms");
        v.fps = num(b, "throughput_img_per_s");
        v.latency_how = cpu_how;
        v.memory_how = "not measured on the CPU";
        r.variants.push_back(v);
        write_reports(r);
        return v;
    };

    cpu_variant("FP32", o.model, "fp32", "fp32");
    std::string source = o.model;
    if (o.prune > 0) {
        const std::string pruned = path_join(o.out_dir, "models/pruned.onnx");
        run.stage("prune", {"prune", o.model, "--scope", "c2f", "--ratio", cat(o.prune), "--criterion", "activation",
                            "--calib", o.calib, "--calib-count", std::to_string(o.calib_count), "--reconstruct",
                            "--threads", T, "-o", pruned, "--json"});
        Variant v = cpu_variant("pruned", pruned, "pruned", "fp32");
        r.variants.back().notes.push_back(cat("`yoloc prune --scope c2f --ratio ", o.prune,
                                              " --criterion activation --reconstruct`, no retraining"));
        source = pruned;
    }
    std::string qdq;
    if (want_int8) {
        qdq = path_join(o.out_dir, "models/int8_qdq.onnx");
        run.stage("quantize", {"quantize", source, "--calib", o.calib, "--calib-count", std::to_string(o.calib_count),
                               "--threads", T, "-o", qdq, "--json"});
        cpu_variant("INT8 Q/DQ", qdq, "int8", "int8");
        r.variants.back().notes.push_back(
            "static symmetric INT8 Q/DQ (`yoloc quantize` defaults) with a TensorRT calibration cache beside it; "
            "its CPU row is fake-quantized (float math on int8-rounded values, docs/DECISIONS.md): CPU accuracy, "
            "not INT8 speed");
    }

    if (!gpu) {
        r.skipped.push_back(cat("GPU stages (build, GPU eval, GPU bench, per-layer profile): ", why_no_gpu));
        write_reports(r);
        return r;
    }
    const bool simulated = prof.cc_major != 0;
    std::string chosen;
    for (const auto& p : o.precisions) {
        const std::string src = p == "int8" ? qdq : p == "fp32" ? o.model : source;
        const std::string eng = path_join(o.out_dir, "engines/" + p + ".engine");
        run.stage("build_" + p, {"build", src, "--precision", p, "--target", o.target, "-o", eng});
        Variant v;
        v.name = p == "fp32" ? "FP32 engine" : p == "fp16" ? "FP16 engine" : "INT8 engine";
        v.backend = "gpu";
        v.precision = p;
        v.model = src;
        v.engine = eng;
        v.model_bytes = file_size(src);
        v.engine_bytes = file_size(eng);
        for (const auto& cv : r.variants)
            if (cv.model == src) v.params = cv.params;
        nlohmann::json ev = run.stage("eval_gpu_" + p, {"eval", eng, "--data", o.data, "--json"});
        v.map50 = num(ev, "mAP50");
        v.map50_95 = num(ev, "mAP50_95");
        v.map_how = cat("`yoloc eval` of the engine on ", o.data, " (GPU letterbox, engine, GPU decode + NMS), ",
                        int64_t(num(ev, "images", 0)), " images");
        nlohmann::json b = run.stage("bench_gpu_" + p, {"bench", eng, "--iters", std::to_string(o.gpu_iters), "--warmup",
                                                        "30", "--json"});
        v.latency_median_ms = num(b, "median_ms");
        v.latency_p99_ms = num(b, "p99_ms");
        v.fps = num(b, "throughput_img_per_s");
        v.peak_device_bytes = int64_t(num(b, "mem_get_info_delta_bytes"));
        v.planned_device_bytes = int64_t(num(b, "planned_device_bytes"));
        v.latency_how = cat("GPU compute on ", b.value("gpu", std::string("the GPU")),
                            ": CUDA events around one CUDA-graph launch, median of ", o.gpu_iters,
                            " runs (`yoloc bench ENGINE`)");
        v.memory_how = "cudaMemGetInfo drop from before loading the engine to after inference and detect runs "
                       "(planned: weights + activation arena + workspace)";
        if (simulated)
            v.notes.push_back(cat("built for ", prof.name, "'s memory budget on the local GPU: a simulation of the "
                                  "budget, not of the ", prof.device, "'s speed"));
        if (p == "int8" && !prof.fast_int8)
            v.notes.push_back(cat(prof.device, " has no fast INT8: on the device INT8 is for size and accuracy, not "
                                               "speed (the latency here is the local GPU's)"));
        r.variants.push_back(v);
        write_reports(r);
        if (p == prof.preferred_precision || chosen.empty()) chosen = eng;
    }
    r.layer_profile = run.stage("profile", {"bench", chosen, "--profile", "--iters", "20", "--json"});
    r.layer_profile_engine = chosen;
    write_reports(r);
    return r;
}

}  // namespace yoloc::pipeline
