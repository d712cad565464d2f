// Shared helpers for tests: where ../shared is, and how tests that need it behave
// when it is missing (CI: fail; elsewhere: skip with a clear message).
#pragma once

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace yoloc_test {

inline bool path_exists(const std::string& p) {
    struct stat st;
    return ::stat(p.c_str(), &st) == 0;
}

// ../shared beside the checkout (or $YOLOC_SHARED).
inline std::string shared_dir() {
    if (const char* e = std::getenv("YOLOC_SHARED")) return e;
    return std::string(YOLOC_SOURCE_DIR) + "/../shared";
}

inline bool in_ci() {
    const char* ci = std::getenv("CI");
    return ci && std::string(ci) == "true";
}

// A scratch folder for one test's outputs.
inline std::string scratch_dir(const std::string& name) {
    std::string d = std::string(YOLOC_BINARY_DIR_FOR_TESTS) + "/scratch/" + name;
    std::string cmd = "rm -rf '" + d + "' && mkdir -p '" + d + "'";
    if (std::system(cmd.c_str()) != 0) ADD_FAILURE() << "cannot create " << d;
    return d;
}

struct CliResult {
    int code = -1;          // exit code; -1 when killed by a signal
    bool signaled = false;
    std::string out;        // stdout + stderr
};

#ifdef YOLOC_BINARY
// Runs the yoloc binary under test with `args` (progress bars off).
inline CliResult run_cli(const std::string& args) {
    // YOLOC_PIPELINE_EXE: `pipeline` starts its stages with the same launcher (under qemu
    // in the aarch64 cross build, YOLOC_BINARY is a wrapper script).
    std::string cmd = std::string("YOLOC_NO_PROGRESS=1 YOLOC_PIPELINE_EXE='") + YOLOC_BINARY + "' " + YOLOC_BINARY +
                      " " + args + " 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    CliResult r;
    if (!p) return r;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
    int st = pclose(p);
    r.signaled = WIFSIGNALED(st);
    r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}
#endif

}  // namespace yoloc_test

// Use at the top of a test that needs ../shared.
#define REQUIRE_SHARED()                                                                         \
    do {                                                                                         \
        if (!yoloc_test::path_exists(yoloc_test::shared_dir() + "/models/yolov8n_coco.onnx")) {   \
            if (yoloc_test::in_ci()) FAIL() << "../shared is missing; CI must have it beside the checkout"; \
            GTEST_SKIP() << "../shared not found beside the checkout: skipping (set YOLOC_SHARED)"; \
        }                                                                                        \
    } while (0)
