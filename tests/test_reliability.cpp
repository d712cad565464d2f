// Reliability: the calibration cache reader, every fuzzer finding, and the
// faults docs/RELIABILITY.md lists: memory budget and huge batches in `build`,
// SIGINT during a write or a long command, unreadable images in `eval`.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <map>
#include <random>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file.h"
#include "engine/engine_file.h"
#include "engine/memory_plan.h"
#include "eval/dataset.h"
#include "eval/yaml_lite.h"
#include "gpu/models.h"
#include "onnx/onnx_io.h"
#include "quant/calib_cache_reader.h"
#include "quant/quantize.h"
#include "test_util.h"
#include "tiny_yolo_fixture.h"
#include "yolo/image.h"

using namespace yoloc;

namespace {

using Result = yoloc_test::CliResult;
Result yoloc_cmd(const std::string& args) { return yoloc_test::run_cli(args); }

bool has(const std::string& s, const std::string& w) { return s.find(w) != std::string::npos; }

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

// Files of `dir` whose name contains ".tmp." (what write_file_atomic leaves if interrupted).
std::vector<std::string> temp_files_in(const std::string& dir) {
    std::vector<std::string> out;
    for (const auto& f : list_dir(dir))
        if (has(f.substr(f.find_last_of('/') + 1), ".tmp.")) out.push_back(f);
    return out;
}

// Starts the yoloc binary with `args` (no shell), stdout+stderr to `log`; returns its pid.
// address_space_bytes > 0: the child runs under that RLIMIT_AS.
pid_t spawn_yoloc(const std::vector<std::string>& args, const std::string& log,
                  const std::map<std::string, std::string>& env = {}, uint64_t address_space_bytes = 0) {
    pid_t pid = ::fork();
    if (pid == 0) {
        if (address_space_bytes > 0) {
            struct rlimit lim;
            lim.rlim_cur = lim.rlim_max = rlim_t(address_space_bytes);
            ::setrlimit(RLIMIT_AS, &lim);
        }
        int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            ::dup2(fd, 1);
            ::dup2(fd, 2);
        }
        ::setenv("YOLOC_NO_PROGRESS", "1", 1);
        for (const auto& kv : env) ::setenv(kv.first.c_str(), kv.second.c_str(), 1);
        // gtest may have blocked or ignored signals; the child starts from the defaults.
        ::signal(SIGINT, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        std::vector<char*> argv;
        std::string bin = YOLOC_BINARY;
        argv.push_back(&bin[0]);
        std::vector<std::string> copy = args;
        for (auto& a : copy) argv.push_back(&a[0]);
        argv.push_back(nullptr);
        ::execv(bin.c_str(), argv.data());
        ::_exit(127);
    }
    return pid;
}

// Waits for `pid`; true when it is gone within `seconds`, with its wait status.
bool wait_for(pid_t pid, double seconds, int* status) {
    auto t0 = std::chrono::steady_clock::now();
    while (true) {
        pid_t r = ::waitpid(pid, status, WNOHANG);
        if (r == pid) return true;
        if (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() > seconds) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

// A small JPEG of noise (something for detectors and calibration to chew on).
void write_noise_jpeg(const std::string& path, int w, int h, unsigned seed) {
    Image img(w, h);
    std::mt19937 rng(seed);
    for (auto& p : img.pixels) p = uint8_t(rng() & 0xff);
    save_jpeg(path, img);
}

engine::EngineFile tiny_engine() {
    engine::EngineFile e;
    engine::PlanOptions o;
    o.precision = engine::Precision::FP16;
    e.plan = engine::build_plan(yoloc_test::tiny_engine_model(1), o);
    e.info.yoloc_version = engine::yoloc_version();
    e.info.device.gpu_name = "test";
    e.info.device.cc_major = 9;
    e.info.device.cuda_runtime = 13000;
    return e;
}

std::string regressions_dir() { return std::string(YOLOC_SOURCE_DIR) + "/tests/data/fuzz_regressions"; }

}  // namespace

// ---------------------------------------------------------------- calibration cache

TEST(CalibCache, ReadsWhatQuantizeWrites) {
    std::map<std::string, double> amax = {{"images", 1.0}, {"/model.0/conv/Conv_output_0", 12.5},
                                          {"name: with colon", 3.0}, {"zero", 0.0}};
    std::string text = calibration_cache(amax, 8601, CalibMethod::Entropy);
    CalibrationCache c = parse_calibration_cache(text, "x.cache");
    EXPECT_EQ(c.header, "TRT-8601-EntropyCalibration2");
    EXPECT_EQ(c.trt_version, 8601);
    EXPECT_EQ(c.method, "EntropyCalibration2");
    ASSERT_EQ(c.scales.size(), amax.size());
    for (const auto& kv : amax) {
        ASSERT_TRUE(c.scales.count(kv.first)) << kv.first;
        float want = kv.second > 0 ? float(kv.second / 127.0) : 1.0f / 127.0f;
        EXPECT_EQ(c.scales.at(kv.first), want) << kv.first;
    }
    // Writing it back gives the same text (both write name order, 8 lowercase hex digits).
    EXPECT_EQ(format_calibration_cache(c), text);
    // MinMax header, CRLF line ends and blank lines are accepted.
    CalibrationCache m = parse_calibration_cache("TRT-10000-MinMaxCalibration\r\n\r\nx: 3c010204\r\n", "m.cache");
    EXPECT_EQ(m.method, "MinMaxCalibration");
    EXPECT_EQ(m.scales.size(), 1u);
}

TEST(CalibCache, ReadsAFileAndRefusesAHugeOne) {
    std::string dir = yoloc_test::scratch_dir("calib_cache_file");
    write_file_atomic(dir + "/a.cache", "TRT-8601-EntropyCalibration2\nx: 3f800000\n");
    EXPECT_EQ(read_calibration_cache(dir + "/a.cache").scales.at("x"), 1.0f);
    EXPECT_TRUE(has(error_of([&] { read_calibration_cache(dir + "/absent.cache"); }), "absent.cache"));
    // A sparse file past the limit is refused by its size, before it is read.
    std::string big = dir + "/big.cache";
    int fd = ::open(big.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, kMaxCalibrationCacheBytes + 1), 0);
    ::close(fd);
    EXPECT_TRUE(has(error_of([&] { read_calibration_cache(big); }), "too large")) << big;
}

TEST(CalibCache, EveryMalformedCacheIsAClearError) {
    const std::pair<const char*, const char*> bad[] = {
        {"", "empty calibration cache"},
        {"\n\n", "empty calibration cache"},
        {"x: 3f800000\n", "not a TensorRT calibration cache"},
        {"TRT--EntropyCalibration2\n", "bad calibration cache header"},
        {"TRT-86a1-EntropyCalibration2\n", "bad TensorRT version"},
        {"TRT-1234567890-EntropyCalibration2\n", "bad calibration cache header"},
        {"TRT-8601-Magic\n", "unknown calibration method"},
        {"TRT-8601-EntropyCalibration2\nx 3f800000\n", ":2: expected 'tensor: <8 hex digits>'"},
        {"TRT-8601-EntropyCalibration2\n: 3f800000\n", ":2: expected"},
        {"TRT-8601-EntropyCalibration2\nx: 3f80000\n", "not 8 hex digits"},
        {"TRT-8601-EntropyCalibration2\nx: 3f80000g\n", "not 8 hex digits"},
        {"TRT-8601-EntropyCalibration2\nx: 7fc00000\n", "finite positive"},   // NaN
        {"TRT-8601-EntropyCalibration2\nx: 7f800000\n", "finite positive"},   // inf
        {"TRT-8601-EntropyCalibration2\nx: bf800000\n", "finite positive"},   // -1
        {"TRT-8601-EntropyCalibration2\nx: 00000000\n", "finite positive"},   // 0
        {"TRT-8601-EntropyCalibration2\nx: 3f800000\nx: 3f800000\n", "listed twice"},
        {"TRT-8601-EntropyCalibration2\nx\x01y: 3f800000\n", "control character"},
    };
    for (const auto& b : bad) {
        std::string e = error_of([&] { parse_calibration_cache(b.first, "bad.cache"); });
        EXPECT_TRUE(has(e, b.second)) << "input: '" << b.first << "' gave: '" << e << "'";
        EXPECT_TRUE(e.empty() || has(e, "bad.cache")) << e;
    }
}

// ---------------------------------------------------------------- fuzz findings

// Every input a fuzzer once crashed, hung or ran out of memory on (files named
// <target>_<what>.bin; the ONNX ones are replayed by Onnx.FuzzFindingsStayFixed):
// each must now end in a yoloc::Error or a valid result, quickly.
TEST(Reliability, FuzzFindingsStayFixed) {
    int seen = 0;
    for (const auto& f : list_dir(regressions_dir())) {
        std::string base = f.substr(f.find_last_of('/') + 1);
        std::string bytes = read_file(f);
        auto t0 = std::chrono::steady_clock::now();
        try {
            if (base.rfind("engine_", 0) == 0) {
                engine::EngineFile e = engine::parse_engine(bytes, f);
                engine::verify_memory_plan(e.plan, engine::plan_memory(e.plan, 0));
            } else if (base.rfind("dataset_", 0) == 0) {
                size_t cut = bytes.find('\0');
                std::string yaml = bytes.substr(0, cut);
                std::string dir = yoloc_test::scratch_dir("fuzz_dataset");
                write_file_atomic(dir + "/data.yaml", yaml);
                int nc = 80;
                try {
                    nc = int(load_data_config(dir + "/data.yaml").names.size());
                } catch (const Error&) {
                }
                if (cut != std::string::npos) parse_labels(bytes.substr(cut + 1), f, nc, nullptr, nullptr);
            } else if (base.rfind("image_", 0) == 0) {
                decode_image(bytes, f);
            } else if (base.rfind("calib_", 0) == 0) {
                parse_calibration_cache(bytes, f);
            } else {
                continue;
            }
        } catch (const Error&) {
        }
        ++seen;
        double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        EXPECT_LT(s, 5.0) << base << " took " << s << " s";
    }
    std::printf("replayed %d fuzz findings\n", seen);
}

// fuzz_image finding: a 162-byte JPEG that claims 64519x2048 pixels and whose scan
// data ends at an EOI marker was decoded into a gray image (libjpeg pads the missing
// data and only warns: "premature end of data segment"), after allocating and filling
// 400 MB; it timed out under ASan. Now it is a corrupt-JPEG error at the first row,
// and rows are allocated as they are decoded.
TEST(Reliability, JpegWhoseScanEndsEarlyIsCorruptAndFailsFast) {
    const std::string f = regressions_dir() + "/image_jpeg_eoi_inside_scan_huge.bin";
    auto t0 = std::chrono::steady_clock::now();
    std::string e = error_of([&] { decode_image(read_file(f), "eoi.jpg"); });
    EXPECT_TRUE(has(e, "eoi.jpg: corrupt or truncated JPEG")) << e;
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 1.0);
    // A JPEG cut anywhere and closed with an EOI marker is corrupt too.
    Image img(64, 48);
    for (size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = uint8_t(i * 7);
    std::string dir = yoloc_test::scratch_dir("jpeg_eoi");
    save_jpeg(dir + "/a.jpg", img);
    std::string jpg = read_file(dir + "/a.jpg");
    std::string cut = jpg.substr(0, jpg.size() * 2 / 3) + "\xff\xd9";
    EXPECT_TRUE(has(error_of([&] { decode_image(cut, "cut.jpg"); }), "corrupt or truncated JPEG"));
    EXPECT_NO_THROW(decode_image(jpg, "a.jpg"));
}

// The stricter JPEG and the row-by-row PNG decoding still read every real photo.
TEST(Reliability, EveryRealPhotoStillDecodes) {
    REQUIRE_SHARED();
    int n = 0;
    for (const std::string dir : {"/data/samples", "/data/coco128/images/train2017"})
        for (const auto& f : list_images(yoloc_test::shared_dir() + dir)) {
            EXPECT_NO_THROW(load_image(f)) << f;
            ++n;
        }
    EXPECT_GE(n, 128);
}

// Hand-made inputs of the kinds the fuzzers look for, so that each rule is pinned
// even before a fuzzer finds it again.
TEST(Reliability, YamlNestingDepthIsBounded) {
    // 100k nested flow lists or block lists: an error, not a stack overflow.
    std::string flow = "names: " + std::string(100000, '[') + std::string(100000, ']');
    EXPECT_TRUE(has(error_of([&] { parse_yaml(flow, "deep.yaml"); }), "nested too deeply"));
    std::string block;
    for (int i = 0; i < 1000; ++i) block += std::string(size_t(i), ' ') + "- \n";
    std::string e = error_of([&] { parse_yaml(block, "deep.yaml"); });
    EXPECT_TRUE(e.empty() || has(e, "deep.yaml")) << e;
    // A flow list opened on one line and continued over 30k lines: linear, not quadratic.
    std::string lines = "names: [a";
    for (int i = 0; i < 30000; ++i) lines += "\n  , b" + std::to_string(i);
    lines += "]\n";
    auto t0 = std::chrono::steady_clock::now();
    YamlNode n = parse_yaml(lines, "long.yaml");
    EXPECT_EQ(n.get("names")->list.size(), 30001u);
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 2.0);
    std::string items;
    for (int i = 0; i < 20000; ++i) items += "- ";
    items += "x\n";
    EXPECT_TRUE(has(error_of([&] { parse_yaml(items, "deep.yaml"); }), "nested too deeply"));
}

TEST(Reliability, DataYamlClassCountIsBounded) {
    std::string dir = yoloc_test::scratch_dir("yaml_nc");
    write_file_atomic(dir + "/data.yaml", "nc: 99999999999\nval: images\n");
    auto t0 = std::chrono::steady_clock::now();
    std::string e = error_of([&] { load_data_config(dir + "/data.yaml"); });
    EXPECT_TRUE(has(e, "'nc'")) << e;
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 1.0);
}

TEST(Reliability, EngineFileWithOverflowingFieldsIsRejected) {
    // A tiny engine, then every 8-byte field of the payload set to huge values in
    // turn (checksum repaired): each must give an Error, never UB or a huge allocation.
    std::string seed = engine::serialize_engine(tiny_engine());
    ASSERT_GT(seed.size(), 28u);
    const size_t n = seed.size() - 28;
    const engine::EngineFile tiny = tiny_engine();
    const size_t meta = n - 8 - 4 * tiny.plan.weights.size();  // payload before the weights
    int accepted = 0, rejected = 0;
    for (uint64_t v : {uint64_t(0x7fffffffffffffffull), uint64_t(0x8000000000000000ull), uint64_t(0xffffffff7fffffffull)}) {
        for (size_t at = 20; at + 8 <= 20 + meta; at += 4) {
            std::string b = seed;
            for (int i = 0; i < 8; ++i) b[at + size_t(i)] = char((v >> (8 * i)) & 0xff);
            uint64_t h = engine::fnv1a64(b.data() + 20, n);
            for (int i = 0; i < 8; ++i) b[20 + n + size_t(i)] = char((h >> (8 * i)) & 0xff);
            try {
                engine::EngineFile e = engine::parse_engine(b, "o.engine");
                engine::verify_memory_plan(e.plan, engine::plan_memory(e.plan, 0));
                // Informational fields (names, dates, stats) may take any value; what is
                // accepted must write and read back to the same file.
                std::string again = engine::serialize_engine(e);
                EXPECT_TRUE(engine::serialize_engine(engine::parse_engine(again, "o2.engine")) == again)
                    << "field at " << at;
                ++accepted;
            } catch (const Error&) {
                ++rejected;
            }
        }
    }
    EXPECT_GT(rejected, accepted) << "accepted " << accepted;
}

TEST(Reliability, EngineFileWithInconsistentShapesIsRejected) {
    // Each edit keeps Plan::validate's per-op checks happy but would make a kernel
    // index outside a buffer: the loader's geometry check must refuse it.
    auto reject = [](const std::function<void(engine::Plan&)>& edit, const char* why) {
        engine::EngineFile e = tiny_engine();
        edit(e.plan);
        std::string err = error_of([&] { engine::parse_engine(engine::serialize_engine(e), "g.engine"); });
        EXPECT_TRUE(has(err, "g.engine") && has(err, "inconsistent") && has(err, why)) << why << ": " << err;
    };
    auto find = [](engine::Plan& p, engine::OpKind k) -> engine::PlanOp& {
        for (auto& op : p.ops)
            if (op.kind == k) return op;
        throw Error("no such op");
    };
    reject([&](engine::Plan& p) { find(p, engine::OpKind::Resize).fy = 3; }, "resizes");
    reject([&](engine::Plan& p) { find(p, engine::OpKind::Conv).sh = 1; find(p, engine::OpKind::Conv).ph = 0;
                                  p.buffers[size_t(find(p, engine::OpKind::Conv).out.buf)].shape[1] += 40; },
           "writes");
    reject([&](engine::Plan& p) { p.batch = 3; }, "batch");
    // The untouched plan loads.
    EXPECT_NO_THROW(engine::parse_engine(engine::serialize_engine(tiny_engine()), "ok.engine"));
}

// ---------------------------------------------------------------- build: memory budget, huge batch

TEST(Reliability, BuildRefusesAPlanOverTheMemoryBudgetAndWritesNothing) {
    std::string dir = yoloc_test::scratch_dir("build_budget");
    ASSERT_EQ(yoloc_cmd("generate --scale n --nc 2 --imgsz 64 -o " + dir + "/m.onnx").code, 0);
    Result r = yoloc_cmd("build " + dir + "/m.onnx --precision fp16 --memory-budget 1MiB -o " + dir + "/m.engine");
    EXPECT_EQ(r.code, 1) << r.out;
    EXPECT_TRUE(has(r.out, "error: ") && has(r.out, "budget of 1.00 MiB")) << r.out;
    EXPECT_TRUE(has(r.out, "weights") && has(r.out, "activations")) << r.out;
    EXPECT_FALSE(file_exists(dir + "/m.engine"));
    EXPECT_TRUE(temp_files_in(dir).empty());
    // A budget that is not a size is refused before any work.
    Result bad = yoloc_cmd("build " + dir + "/m.onnx --memory-budget lots -o " + dir + "/m.engine");
    EXPECT_NE(bad.code, 0);
    EXPECT_TRUE(has(bad.out, "lots")) << bad.out;
    EXPECT_FALSE(file_exists(dir + "/m.engine"));
}

TEST(Reliability, BuildRefusesAHugeBatchBeforeAllocating) {
    std::string dir = yoloc_test::scratch_dir("build_batch");
    ASSERT_EQ(yoloc_cmd("generate --scale n --nc 2 --imgsz 640 -o " + dir + "/m.onnx").code, 0);
    auto t0 = std::chrono::steady_clock::now();
    // 4096 images of 640x640: ~100 GiB of activations, more than any GPU yoloc targets.
    Result r = yoloc_cmd("build " + dir + "/m.onnx --batch 4096 --memory-budget 8GiB -o " + dir + "/m.engine");
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_EQ(r.code, 1) << r.out;
    EXPECT_TRUE(has(r.out, "batch 4096") && has(r.out, "budget")) << r.out;
    EXPECT_FALSE(file_exists(dir + "/m.engine"));
    EXPECT_LT(s, 60.0) << "planning must not touch batch-sized memory";
    // Without a budget the plan is still checked, against this GPU's memory (CUDA
    // builds) or 192 GiB, more than any GPU has: 4096 images of 1600x1600 in fp32 need
    // ~270 GiB. Refused before any GPU is asked for memory.
    ASSERT_EQ(yoloc_cmd("generate --scale n --nc 2 --imgsz 1600 -o " + dir + "/m1600.onnx").code, 0);
    Result r2 = yoloc_cmd("build " + dir + "/m1600.onnx --batch 4096 --precision fp32 -o " + dir + "/m.engine");
    EXPECT_EQ(r2.code, 1) << r2.out;
    EXPECT_TRUE(has(r2.out, "batch 4096") && has(r2.out, "more than")) << r2.out;
    EXPECT_FALSE(file_exists(dir + "/m.engine"));
    // Out of the option's range: a usage error.
    // (Exit 2; not compared exactly because LeakSanitizer builds report a 54-byte leak
    // on CLI11's parse-error path and exit 1.)
    Result r3 = yoloc_cmd("build " + dir + "/m.onnx --batch 100000 -o " + dir + "/m.engine");
    EXPECT_NE(r3.code, 0) << r3.out;
    EXPECT_TRUE(has(r3.out, "--batch") && has(r3.out, "1 to 4096")) << r3.out;
    EXPECT_FALSE(file_exists(dir + "/m.engine"));
}

// ---------------------------------------------------------------- SIGINT

// SIGINT while the output's temporary file is complete but not yet renamed (held
// there by YOLOC_TEST_WRITE_DELAY_MS): the old file stays, the temporary is removed,
// and the process dies of SIGINT.
TEST(Reliability, SigintDuringTheWriteLeavesTheOldFileAndNoTemporary) {
    std::string dir = yoloc_test::scratch_dir("sigint_write");
    const std::string out = dir + "/m.onnx";
    write_file_atomic(out, "old contents");
    pid_t pid = spawn_yoloc({"generate", "--scale", "n", "--nc", "2", "--imgsz", "64", "-o", out}, dir + "/log.txt",
                            {{"YOLOC_TEST_WRITE_DELAY_MS", "20000"}});
    ASSERT_GT(pid, 0);
    // Wait until the temporary file is there (written, fsynced, waiting for the rename).
    auto t0 = std::chrono::steady_clock::now();
    while (temp_files_in(dir).empty() &&
           std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < 60)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ASSERT_EQ(temp_files_in(dir).size(), 1u) << read_file(dir + "/log.txt");
    ASSERT_EQ(::kill(pid, SIGINT), 0);
    int status = 0;
    ASSERT_TRUE(wait_for(pid, 30, &status)) << "yoloc did not stop on SIGINT";
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGINT) << "status " << status;
    EXPECT_EQ(read_file(out), "old contents");
    EXPECT_TRUE(temp_files_in(dir).empty()) << temp_files_in(dir)[0];
    // Without the interruption the same command replaces the file.
    ASSERT_EQ(yoloc_cmd("generate --scale n --nc 2 --imgsz 64 -o " + out).code, 0);
    EXPECT_NO_THROW(load_onnx(out));
}

// SIGINT in the middle of a long `quantize` and `prune` (calibration / least-squares
// reconstruction on a generated YOLOv8n): the previous outputs are untouched and no
// temporary file is left.
TEST(Reliability, SigintDuringQuantizeAndPruneLeavesNoPartialOutput) {
    std::string dir = yoloc_test::scratch_dir("sigint_long");
    ASSERT_EQ(yoloc_cmd("generate --scale n --nc 80 --imgsz 320 -o " + dir + "/m.onnx").code, 0);
    make_dirs(dir + "/calib");
    for (unsigned i = 0; i < 16; ++i) write_noise_jpeg(dir + "/calib/" + std::to_string(i) + ".jpg", 320, 240, i);
    const std::string q = dir + "/q.onnx", qc = dir + "/q.cache", p = dir + "/p.onnx";
    write_file_atomic(q, "old model");
    write_file_atomic(qc, "old cache");
    write_file_atomic(p, "old pruned");
    const std::vector<std::pair<std::string, std::vector<std::string>>> runs = {
        {"quantize", {"quantize", dir + "/m.onnx", "--calib", dir + "/calib", "--method", "entropy", "-o", q}},
        {"prune", {"prune", dir + "/m.onnx", "--scope", "c2f", "--ratio", "0.3", "--calib", dir + "/calib",
                   "--reconstruct", "-o", p}},
    };
    for (const auto& run : runs) {
        pid_t pid = spawn_yoloc(run.second, dir + "/" + run.first + ".log");
        ASSERT_GT(pid, 0);
        int status = 0;
        // Long enough to be in the middle of loading, calibrating or reconstructing.
        bool finished = wait_for(pid, 1.5, &status);
        std::printf("%s: %s\n", run.first.c_str(), finished ? "finished before the signal" : "interrupted after 1.5 s");
        if (!finished) {
            ASSERT_EQ(::kill(pid, SIGINT), 0);
            ASSERT_TRUE(wait_for(pid, 60, &status)) << run.first << " did not stop on SIGINT";
            EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGINT)
                << run.first << ": status " << status << "\n" << read_file(dir + "/" + run.first + ".log");
        }
        if (run.first == "quantize") {
            if (finished) {  // a very fast machine: then the outputs are complete
                EXPECT_NO_THROW(load_onnx(q));
                EXPECT_NO_THROW(parse_calibration_cache(read_file(qc), qc));
            } else {
                EXPECT_EQ(read_file(q), "old model");
                EXPECT_EQ(read_file(qc), "old cache");
            }
        } else {
            if (finished) EXPECT_NO_THROW(load_onnx(p));
            else EXPECT_EQ(read_file(p), "old pruned");
        }
        EXPECT_TRUE(temp_files_in(dir).empty()) << run.first << ": " << temp_files_in(dir)[0];
    }
}

// ---------------------------------------------------------------- eval with unreadable images

TEST(Reliability, EvalEvaluatesTheReadableImagesAndReportsTheOthers) {
    std::string dir = yoloc_test::scratch_dir("eval_bad_images");
    ASSERT_EQ(yoloc_cmd("generate --scale n --nc 2 --imgsz 64 -o " + dir + "/m.onnx").code, 0);
    make_dirs(dir + "/images/val");
    make_dirs(dir + "/labels/val");
    write_noise_jpeg(dir + "/images/val/a_good.jpg", 80, 60, 1);
    write_noise_jpeg(dir + "/images/val/d_good.jpg", 64, 64, 2);
    write_file_atomic(dir + "/images/val/b_text.jpg", "this is not a jpeg");
    std::string png_head = "\x89PNG\r\n\x1a\n";
    write_file_atomic(dir + "/images/val/c_truncated.png", png_head + std::string("\0\0\0\x0dIHDR", 8));
    std::string jpg = read_file(dir + "/images/val/a_good.jpg");
    write_file_atomic(dir + "/images/val/e_cut.jpg", jpg.substr(0, jpg.size() / 2));
    for (const char* l : {"a_good", "b_text", "c_truncated", "d_good", "e_cut"})
        write_file_atomic(dir + "/labels/val/" + l + ".txt", "0 0.5 0.5 0.4 0.4\n1 0.2 0.2 0.1 0.1\n");
    write_file_atomic(dir + "/data.yaml", "path: .\nval: images/val\nnames: [cat, dog]\n");
    for (int batch : {1, 2}) {
        Result r = yoloc_cmd("eval " + dir + "/m.onnx --data " + dir + "/data.yaml --batch " + std::to_string(batch));
        EXPECT_EQ(r.code, 1) << r.out;
        // The table covers the two readable images...
        EXPECT_TRUE(has(r.out, "2 images in")) << r.out;
        // ...and each unreadable one is named at the end.
        for (const char* bad : {"b_text.jpg", "c_truncated.png", "e_cut.jpg"})
            EXPECT_TRUE(has(r.out, std::string("error: ") + dir + "/images/val/" + bad)) << bad << "\n" << r.out;
        EXPECT_TRUE(has(r.out, "3 of 5 images could not be read")) << r.out;
        EXPECT_FALSE(has(r.out, "a_good.jpg")) << r.out;
    }
    // --json: the same, with the failures in the object.
    Result j = yoloc_cmd("eval " + dir + "/m.onnx --data " + dir + "/data.yaml --json");
    EXPECT_EQ(j.code, 1) << j.out;
    auto start = j.out.find('{');
    ASSERT_NE(start, std::string::npos) << j.out;
    auto end = j.out.rfind('}');
    nlohmann::json js = nlohmann::json::parse(j.out.substr(start, end - start + 1));
    EXPECT_EQ(js["images"], 2);
    EXPECT_EQ(js["failed_images"].size(), 3u);
    // `eval --compare REF --images DIR` over the same folder: the same report.
    Result c = yoloc_cmd("eval " + dir + "/m.onnx --compare " + dir + "/m.onnx --images " + dir + "/images/val");
    EXPECT_EQ(c.code, 1) << c.out;
    EXPECT_TRUE(has(c.out, "on 2 images")) << c.out;
    for (const char* bad : {"b_text.jpg", "c_truncated.png", "e_cut.jpg"})
        EXPECT_TRUE(has(c.out, std::string("error: ") + dir + "/images/val/" + bad)) << bad << "\n" << c.out;
    EXPECT_TRUE(has(c.out, "3 of 5 images could not be read")) << c.out;
    // With every image readable the exit code is 0.
    for (const char* bad : {"b_text.jpg", "c_truncated.png", "e_cut.jpg"}) std::remove((dir + "/images/val/" + bad).c_str());
    Result ok = yoloc_cmd("eval " + dir + "/m.onnx --data " + dir + "/data.yaml");
    EXPECT_EQ(ok.code, 0) << ok.out;
}

// ---------------------------------------------------------------- limits on flags and input sizes

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kAddressSanitizer = true;
#else
constexpr bool kAddressSanitizer = false;
#endif
#else
constexpr bool kAddressSanitizer = false;
#endif

struct BoundedRun {
    int code = -1;  // exit code; -1 when killed
    bool signaled = false, timed_out = false;
    std::string out;
    long max_rss_kb = 0;
    double seconds = 0;
};

// Runs yoloc with `args`, killed after `seconds`, under a 4 GiB address-space limit (not
// under AddressSanitizer, which reserves more than that): a regression that allocates
// what a file or flag asks for then fails quickly instead of taking the machine's memory.
BoundedRun run_bounded(const std::vector<std::string>& args, const std::string& log, double seconds = 60) {
    BoundedRun r;
    auto t0 = std::chrono::steady_clock::now();
    pid_t pid = spawn_yoloc(args, log, {}, kAddressSanitizer ? 0 : uint64_t(4) << 30);
    if (pid <= 0) return r;
    int status = 0;
    struct rusage ru {};
    while (::wait4(pid, &status, WNOHANG, &ru) != pid) {
        if (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() > seconds) {
            ::kill(pid, SIGKILL);
            ::wait4(pid, &status, 0, &ru);
            r.timed_out = true;
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    r.signaled = WIFSIGNALED(status);
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.max_rss_kb = ru.ru_maxrss;
    r.out = read_file(log);
    return r;
}

std::vector<std::string> split_args(const std::string& s) {
    std::vector<std::string> v;
    std::istringstream is(s);
    std::string w;
    while (is >> w) v.push_back(w);
    return v;
}

std::vector<std::string> lines_of(const std::string& out) {
    std::vector<std::string> v;
    std::istringstream is(out);
    std::string l;
    while (std::getline(is, l))
        if (!l.empty()) v.push_back(l);
    return v;
}

int error_lines(const std::string& out) {
    int n = 0;
    for (const auto& l : lines_of(out)) n += l.rfind("error: ", 0) == 0;
    return n;
}

// A model of a single Relu whose input declares `dims`: ~100 bytes of ONNX.
void write_relu_model(const std::string& path, const std::vector<int64_t>& dims) {
    Model m;
    ValueInfo in;
    in.name = "images";
    for (int64_t d : dims) in.shape.push_back(Dim{d, ""});
    m.graph.inputs.push_back(in);
    Node n;
    n.name = "relu";
    n.op_type = "Relu";
    n.inputs = {"images"};
    n.outputs = {"output0"};
    m.graph.nodes.push_back(n);
    ValueInfo out;
    out.name = "output0";
    out.has_shape = false;
    m.graph.outputs.push_back(out);
    save_onnx(m, path);
}

// A labelled dataset of two noise pictures (for commands that need --data).
std::string write_tiny_dataset(const std::string& dir) {
    make_dirs(dir + "/images/val");
    make_dirs(dir + "/labels/val");
    for (unsigned i = 0; i < 2; ++i) {
        write_noise_jpeg(dir + "/images/val/" + std::to_string(i) + ".jpg", 64, 48, i);
        write_file_atomic(dir + "/labels/val/" + std::to_string(i) + ".txt", "0 0.5 0.5 0.4 0.4\n");
    }
    write_file_atomic(dir + "/data.yaml", "path: .\nval: images/val\nnames: [a, b]\n");
    return dir + "/data.yaml";
}

}  // namespace

// --threads 100000 crashed `run` and `bench` (SIGSEGV) and 20000 hung `bench`: every
// command with a thread count refuses more than 4 per hardware thread, before any work.
TEST(Reliability, ThreadCountsAreBoundedInEveryCommand) {
    std::string dir = yoloc_test::scratch_dir("limits_threads");
    ASSERT_EQ(yoloc_cmd("generate --scale n --nc 2 --imgsz 64 -o " + dir + "/m.onnx").code, 0);
    make_dirs(dir + "/calib");
    write_noise_jpeg(dir + "/calib/a.jpg", 64, 48, 1);
    const std::string data = write_tiny_dataset(dir + "/ds");
    const std::string m = dir + "/m.onnx", img = dir + "/calib/a.jpg", out = dir + "/out";
    const std::string max = std::to_string(std::max(1u, std::thread::hardware_concurrency()) * 4);
    const std::vector<std::pair<std::string, std::string>> commands = {
        {"bench " + m + " --iters 1 --warmup 0 --threads N", "--threads"},
        {"run " + m + " --image " + img + " --threads N", "--threads"},
        {"detect " + m + " " + img + " --out " + out + " --threads N", "--threads"},
        {"eval " + m + " --data " + data + " --threads N", "--threads"},
        {"pipeline " + m + " --calib " + dir + "/calib --data " + data + " --no-gpu --out " + out + " --threads N",
         "--threads"},
        {"prune " + m + " --ratio 0.2 -o " + out + "/p.onnx --threads N", "--threads"},
        {"prune " + m + " --sweep 0.2 --calib " + dir + "/calib --data " + data + " --out " + out +
             " --bench-threads N", "--bench-threads"},
        {"quantize " + m + " --calib " + dir + "/calib -o " + out + "/q.onnx --threads N", "--threads"},
    };
    for (const auto& c : commands)
        for (const char* n : {"100000", "20000", "-1"}) {
            std::string args = c.first;
            args.replace(args.rfind(" N"), 2, std::string(" ") + n);
            BoundedRun r = run_bounded(split_args(args), dir + "/log.txt", 60);
            EXPECT_FALSE(r.timed_out || r.signaled) << args << "\n" << r.out;
            EXPECT_NE(r.code, 0) << args << "\n" << r.out;
            ASSERT_EQ(lines_of(r.out).size(), 1u) << args << "\n" << r.out;
            EXPECT_EQ(r.out.rfind("error: " + c.second + ": ", 0), 0u) << args << "\n" << r.out;
            EXPECT_TRUE(has(r.out, max)) << "the limit is shown: " << args << "\n" << r.out;
            EXPECT_FALSE(yoloc_test::path_exists(out)) << args;
        }
    // The limit itself and 0 (all cores) still run.
    for (const std::string n : {max, std::string("0")}) {
        Result r = yoloc_cmd("run " + m + " --image " + img + " --threads " + n);
        EXPECT_EQ(r.code, 0) << n << "\n" << r.out;
    }
}

// Numbers out of their range were accepted without a word (`bench --batch 0` ran batch
// 1, `detect --conf 5` ran and found nothing, `eval --imgsz -64` ran at the model's
// size, `eval --imgsz 100000` failed in a Reshape node): each is now a usage error, one
// line naming the flag and its range, before any work, and nothing is written.
TEST(Reliability, OutOfRangeNumbersAreUsageErrorsNamingTheFlagAndTheRange) {
    std::string dir = yoloc_test::scratch_dir("limits_ranges");
    ASSERT_EQ(yoloc_cmd("generate --scale n --nc 2 --imgsz 64 -o " + dir + "/m.onnx").code, 0);
    write_noise_jpeg(dir + "/a.jpg", 64, 48, 1);
    const std::string data = write_tiny_dataset(dir + "/ds");
    const std::string m = dir + "/m.onnx", img = dir + "/a.jpg", out = dir + "/out";
    struct Case {
        std::string args, flag, range;
    };
    for (const Case& c : std::vector<Case>{
             {"bench " + m + " --iters 1 --warmup 0 --batch 0", "--batch", "1 to 4096"},
             {"bench " + m + " --iters 1 --warmup 0 --batch -1", "--batch", "1 to 4096"},
             {"bench " + m + " --iters 1 --warmup 0 --threads lots", "--threads", "whole number"},
             {"detect " + m + " " + img + " --out " + out + " --conf 5", "--conf", "[0, 1]"},
             {"detect " + m + " " + img + " --out " + out + " --conf -1", "--conf", "[0, 1]"},
             {"detect " + m + " " + img + " --out " + out + " --iou 7", "--iou", "[0, 1]"},
             {"detect " + m + " " + img + " --out " + out + " --max-det -5", "--max-det", "less than 1"},
             {"eval " + m + " --data " + data + " --imgsz -64", "--imgsz", "multiple of 32 from 32 to 4096"},
             {"eval " + m + " --data " + data + " --imgsz 100", "--imgsz", "multiple of 32 from 32 to 4096"},
             {"eval " + m + " --data " + data + " --imgsz 100000", "--imgsz", "larger than 4096"},
             {"eval " + m + " --data " + data + " --conf 1.5", "--conf", "[0, 1]"},
             {"eval " + m + " --data " + data + " --max-det 0", "--max-det", "less than 1"},
             {"inspect " + m + " --imgsz -5", "--imgsz", "multiple of 32 from 32 to 4096"},
             {"generate --imgsz 100000 -o " + out + "/g.onnx", "--imgsz", "larger than 4096"},
             {"build " + m + " --batch 100000 -o " + out + "/m.engine", "--batch", "1 to 4096 (or 0: the model's)"},
             {"pipeline " + m + " --calib " + dir + " --data " + data + " --out " + out + " --prune 1", "--prune",
              "[0, 1)"},
             {"prune " + m + " --ratio 1.5 -o " + out + "/p.onnx", "--ratio", "[0, 1)"},
             {"quantize " + m + " --calib " + dir + " --percentile 0 -o " + out + "/q.onnx", "--percentile",
              "(0, 100]"},
         }) {
        BoundedRun r = run_bounded(split_args(c.args), dir + "/log.txt", 60);
        EXPECT_FALSE(r.timed_out || r.signaled) << c.args << "\n" << r.out;
        EXPECT_NE(r.code, 0) << c.args << "\n" << r.out;
        ASSERT_EQ(lines_of(r.out).size(), 1u) << c.args << "\n" << r.out;
        EXPECT_EQ(r.out.rfind("error: " + c.flag + ": ", 0), 0u) << c.args << "\n" << r.out;
        EXPECT_TRUE(has(r.out, c.range)) << c.args << "\n" << r.out;
        EXPECT_FALSE(yoloc_test::path_exists(out)) << c.args;
    }
}

// Sizes from a file or a flag are checked before anything is allocated for them: a
// 100-byte ONNX whose input is [1000000,3,64000,64000] made `run` allocate and fill 49 GB;
// now every command refuses it in a moment, naming the file and the bytes it would take.
TEST(Reliability, InputSizesFromFilesAndFlagsAreCheckedBeforeAllocating) {
    std::string dir = yoloc_test::scratch_dir("limits_inputs");
    const std::string huge = dir + "/huge.onnx", big = dir + "/big.onnx";
    write_relu_model(huge, {1000000, 3, 64000, 64000});
    write_relu_model(big, {1, 3, 8192, 8192});  // within the input budget, over the largest size
    EXPECT_LT(read_file(huge).size(), 200u);
    write_noise_jpeg(dir + "/a.jpg", 64, 48, 1);
    make_dirs(dir + "/calib");
    write_noise_jpeg(dir + "/calib/a.jpg", 64, 48, 2);
    const std::string data = write_tiny_dataset(dir + "/ds");
    const std::string out = dir + "/out";
    struct Case {
        std::string args;
        std::vector<std::string> must_say;
    };
    const std::vector<std::string> budget = {"huge.onnx: input 'images'", "[1000000,3,64000,64000]", "GiB",
                                             "more than the input budget of 2.00 GiB"};
    for (const Case& c : std::vector<Case>{
             {"run " + huge + " --image " + dir + "/a.jpg", budget},
             {"bench " + huge + " --iters 1 --warmup 0", budget},
             {"detect " + huge + " " + dir + "/a.jpg --out " + out, budget},
             {"eval " + huge + " --data " + data, budget},
             {"quantize " + huge + " --calib " + dir + "/calib -o " + dir + "/q.onnx", budget},
             {"prune " + huge + " --scope all --ratio 0.2 -o " + out + "/p.onnx", budget},
             {"pipeline " + huge + " --calib " + dir + "/calib --data " + data + " --no-gpu --out " + out, budget},
             {"run " + big + " --image " + dir + "/a.jpg", {"big.onnx: input 'images' height", "larger than 4096"}},
         }) {
        BoundedRun r = run_bounded(split_args(c.args), dir + "/log.txt", 60);
        EXPECT_FALSE(r.timed_out || r.signaled) << c.args << "\n" << r.out;
        EXPECT_EQ(r.code, 1) << c.args << "\n" << r.out;
        EXPECT_EQ(error_lines(r.out), 1) << c.args << "\n" << r.out;
        for (const auto& w : c.must_say) EXPECT_TRUE(has(r.out, w)) << c.args << ": no '" << w << "'\n" << r.out;
        EXPECT_LT(r.seconds, 20.0) << c.args;
        EXPECT_LT(r.max_rss_kb, 300 * 1024) << c.args << ": peak memory";
        EXPECT_FALSE(yoloc_test::path_exists(out)) << c.args;
        EXPECT_FALSE(yoloc_test::path_exists(dir + "/q.onnx")) << c.args;
    }
    // A size asked for by flags: 256 images of 4096x4096 (48 GiB of float32 input).
    ASSERT_EQ(yoloc_cmd("generate --scale n --nc 2 --imgsz 64 -o " + dir + "/m.onnx").code, 0);
    BoundedRun r = run_bounded({"eval", dir + "/m.onnx", "--data", data, "--imgsz", "4096", "--batch", "256"},
                               dir + "/log.txt", 60);
    EXPECT_EQ(r.code, 1) << r.out;
    EXPECT_TRUE(has(r.out, "m.onnx: input 'images': a float32 input of [256,3,4096,4096] takes 48.00 GiB")) << r.out;
    EXPECT_LT(r.max_rss_kb, 300 * 1024) << "peak memory";
    // Within the budget but past what the graph can be planned at: the error says which
    // request failed (it named only a Reshape node).
    r = run_bounded({"eval", dir + "/m.onnx", "--data", data, "--imgsz", "320", "--batch", "1024"}, dir + "/log.txt", 60);
    EXPECT_EQ(r.code, 1) << r.out;
    EXPECT_EQ(error_lines(r.out), 1) << r.out;
    EXPECT_TRUE(has(r.out, "m.onnx: cannot run at batch 1024 and input size 320")) << r.out;
    EXPECT_TRUE(has(r.out, "use a smaller batch or input size")) << r.out;
}

// `/dev/zero` as a model or an image was "no such file" (or "empty file"), and `detect`
// printed two error lines and "the others were written" when none was, leaving an empty
// output folder.
TEST(Reliability, ErrorsSayWhatIsWrongWithThePathOncePerFailure) {
    std::string dir = yoloc_test::scratch_dir("limits_errors");
    ASSERT_EQ(yoloc_cmd("generate --scale n --nc 2 --imgsz 64 -o " + dir + "/m.onnx").code, 0);
    const std::string m = dir + "/m.onnx", out = dir + "/out";
    write_noise_jpeg(dir + "/a.jpg", 64, 48, 1);
    write_file_atomic(dir + "/notes.jpg", "this is not a jpeg");
    struct Case {
        std::string args, must_say;
        int errors;
    };
    for (const Case& c : std::vector<Case>{
             {"inspect /dev/zero", "/dev/zero: is not a regular file", 1},
             {"inspect " + dir, dir + ": is a folder", 1},
             {"run " + m + " --image /dev/zero", "/dev/zero: is not a regular file", 1},
             {"detect " + m + " /dev/zero --out " + out, "/dev/zero: is not a regular file", 1},
             {"detect " + m + " " + dir + "/missing.jpg --out " + out, "missing.jpg: no such file", 1},
             {"detect " + m + " " + dir + "/missing.jpg " + dir + "/notes.jpg --out " + out, "notes.jpg", 2},
         }) {
        BoundedRun r = run_bounded(split_args(c.args), dir + "/log.txt", 60);
        EXPECT_EQ(r.code, 1) << c.args << "\n" << r.out;
        EXPECT_TRUE(has(r.out, c.must_say)) << c.args << "\n" << r.out;
        EXPECT_EQ(error_lines(r.out), c.errors) << c.args << "\n" << r.out;
        EXPECT_EQ(int(lines_of(r.out).size()), c.errors) << c.args << ": nothing but the errors\n" << r.out;
        EXPECT_FALSE(has(r.out, "written")) << c.args << "\n" << r.out;
        EXPECT_FALSE(yoloc_test::path_exists(out)) << c.args << ": no output folder when nothing was written";
    }
    // Some images fail: the others are written, each failure is one line.
    Result r = yoloc_cmd("detect " + m + " " + dir + "/a.jpg " + dir + "/missing.jpg --no-draw --out " + out);
    EXPECT_EQ(r.code, 1) << r.out;
    EXPECT_EQ(error_lines(r.out), 1) << r.out;
    EXPECT_TRUE(has(r.out, "wrote 1 result")) << r.out;
    EXPECT_TRUE(file_exists(out + "/a.json"));
}

// `pipeline --calib DIR` with fewer images than the default --calib-count (64) stopped at
// the quantize stage. A default is a cap: all the images there are are used, and said
// so; only a count the user gave is refused, before any stage. `prune` follows the
// same rule (it used fewer images silently, even when a count was given).
TEST(Reliability, DefaultCalibrationCountUsesTheImagesThereAre) {
    yoloc_test::TinyYoloFixture fx("limits_calib_count");  // 6 calibration images
    const std::string out = fx.dir + "/run";
    Result r = yoloc_cmd("pipeline " + fx.model + " --calib " + fx.calib + " --data " + fx.yaml +
                         " --precision int8 --no-gpu --threads 1 --cpu-iters 1 --out " + out);
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_TRUE(has(r.out, "6 calibration images, fewer than the default --calib-count 64: using all 6")) << r.out;
    nlohmann::json j = nlohmann::json::parse(read_file(out + "/report.json"));
    EXPECT_EQ(j["variants"].back()["name"], "INT8 Q/DQ");

    Result given = yoloc_cmd("pipeline " + fx.model + " --calib " + fx.calib + " --data " + fx.yaml +
                             " --precision int8 --no-gpu --calib-count 10 --out " + fx.dir + "/run10");
    EXPECT_EQ(given.code, 1) << given.out;
    EXPECT_TRUE(has(given.out, "error: --calib-count 10: only 6 calibration images in " + fx.calib)) << given.out;
    EXPECT_FALSE(yoloc_test::path_exists(fx.dir + "/run10")) << "refused before the first stage";

    const std::string p = fx.dir + "/p.onnx";
    Result pr = yoloc_cmd("prune " + fx.model + " --ratio 0.25 --criterion activation --calib " + fx.calib + " -o " + p);
    ASSERT_EQ(pr.code, 0) << pr.out;
    EXPECT_TRUE(has(pr.out, "using all 6")) << pr.out;
    std::remove(p.c_str());
    Result pg = yoloc_cmd("prune " + fx.model + " --ratio 0.25 --criterion activation --calib " + fx.calib +
                          " --calib-count 10 -o " + p);
    EXPECT_EQ(pg.code, 1) << pg.out;
    EXPECT_TRUE(has(pg.out, "error: --calib-count 10: only 6 calibration images")) << pg.out;
    EXPECT_FALSE(file_exists(p));
}

// `pipeline` with a data.yaml whose folders do not exist started its stages and failed
// at the first eval. Every input is now checked before the first stage.
TEST(Reliability, PipelineChecksEveryInputBeforeTheFirstStage) {
    yoloc_test::TinyYoloFixture fx("limits_pipeline");
    const std::string nowhere = fx.dir + "/nowhere.yaml", empty = fx.dir + "/empty", junk = fx.dir + "/junk.onnx";
    write_file_atomic(nowhere, "path: .\nval: images/missing\nnames: [a, b, c]\n");
    make_dirs(empty);
    write_file_atomic(junk, "not a model");
    const std::string out = fx.dir + "/run";
    struct Case {
        std::string args, must_say;
    };
    for (const Case& c : std::vector<Case>{
             {fx.model + " --calib " + fx.calib + " --data " + nowhere, "nowhere.yaml"},
             {fx.model + " --calib " + fx.calib + " --data " + fx.dir + "/absent.yaml", "absent.yaml"},
             {fx.model + " --calib " + empty + " --data " + fx.yaml, empty + ": no calibration images"},
             {junk + " --calib " + fx.calib + " --data " + fx.yaml, "junk.onnx"},
         }) {
        BoundedRun r = run_bounded(split_args("pipeline " + c.args + " --no-gpu --threads 1 --out " + out),
                                   fx.dir + "/log.txt", 60);
        EXPECT_EQ(r.code, 1) << c.args << "\n" << r.out;
        EXPECT_EQ(error_lines(r.out), 1) << c.args << "\n" << r.out;
        EXPECT_TRUE(has(r.out, c.must_say)) << c.args << "\n" << r.out;
        EXPECT_FALSE(has(r.out, "[1/")) << "a stage started: " << c.args << "\n" << r.out;
        EXPECT_FALSE(yoloc_test::path_exists(out)) << c.args;
    }
}

// `build --timing-cache FILE` rewrote the cache in place. It now goes through a temporary
// file and a rename like every other output: SIGINT while the new cache waits for its
// rename (held there by YOLOC_TEST_WRITE_DELAY_MS) leaves the old cache whole and no
// temporary file. Needs a GPU; skipped where `build` cannot run.
TEST(Reliability, TimingCacheIsReplacedAtomically) {
    std::string dir = yoloc_test::scratch_dir("timing_cache");
    ASSERT_EQ(yoloc_cmd("generate --scale n --nc 2 --imgsz 64 -o " + dir + "/m.onnx").code, 0);
    const std::string cache = dir + "/timing.cache", log = dir + "/build.log";
    write_file_atomic(cache, "# old cache\n");
    pid_t pid = spawn_yoloc({"build", dir + "/m.onnx", "--timing-cache", cache, "-o", dir + "/m.engine"}, log,
                            {{"YOLOC_TEST_WRITE_DELAY_MS", "20000"}});
    ASSERT_GT(pid, 0);
    auto cache_temp = [&] {
        for (const auto& f : temp_files_in(dir))
            if (f.rfind(cache + ".tmp.", 0) == 0) return true;
        return false;
    };
    int status = 0;
    bool ended = false;
    auto t0 = std::chrono::steady_clock::now();
    while (!cache_temp() && !(ended = ::waitpid(pid, &status, WNOHANG) == pid) &&
           std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < 300)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (ended) {
        const std::string out = read_file(log);
        if (has(out, "without CUDA") || has(out, "no CUDA GPU")) GTEST_SKIP() << "no GPU here: " << out;
        FAIL() << "build ended without writing the timing cache through a temporary file (status " << status
               << "):\n" << out;
    }
    ASSERT_TRUE(cache_temp()) << "no temporary timing cache after 300 s\n" << read_file(log);
    ASSERT_EQ(::kill(pid, SIGINT), 0);
    ASSERT_TRUE(wait_for(pid, 30, &status)) << "yoloc did not stop on SIGINT";
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGINT) << "status " << status;
    EXPECT_EQ(read_file(cache), "# old cache\n");
    EXPECT_TRUE(temp_files_in(dir).empty()) << temp_files_in(dir)[0];
    EXPECT_FALSE(file_exists(dir + "/m.engine"));
}
