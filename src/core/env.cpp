#include "core/env.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace yoloc {

const std::vector<EnvVar>& env_table() {
    static const std::vector<EnvVar> t = {
        {"YOLOC_NO_PROGRESS", "user", "progress bars on stderr when it is a terminal",
         "set (any value): no progress bars", "src/core/progress.cpp"},
        {"YOLOC_CPU_CONV", "user",
         "oneDNN convolutions when yoloc is built with it and the graph has at most 4 outputs, else yoloc's own",
         "dnnl (or onednn) / own: the CPU fast executor's convolution kernels; own is the remedy when "
         "oneDNN's spinning threads slow a busy machine down (docs/DECISIONS.md); any other value is an error",
         "src/engine/cpu/fast_executor.cpp"},
        {"YOLOC_MEM_TRACE", "diagnostic", "off",
         "1: print to stderr the device memory taken after each step of loading an engine, making a context "
         "and its first launch (bench/gpu_memory_steps.sh)",
         "src/engine/cuda/runtime.cpp"},
        {"YOLOC_DEBUG_CHAIN_ONLY", "diagnostic", "off",
         "N: each graph launch runs only the critical chain's ops (its first N when N > 1), to time the chain "
         "inside the graph; outputs are wrong (bench/gpu_ablation.sh)",
         "src/engine/cuda/runtime.cpp"},
        {"YOLOC_TACTIC_SHARE", "experiment", "0.03 up to batch 4, 0 above",
         "build: a layer takes a tactic more layers use when it is within this fraction of its fastest "
         "(fewer distinct kernels, less device memory)",
         "src/engine/cuda/runtime.cpp"},
        {"YOLOC_MAX_CONV_KERNELS", "experiment", "8 up to batch 4, no cap above",
         "build: at most N distinct conv kernels in the engine (0: no cap)", "src/engine/cuda/runtime.cpp"},
        {"YOLOC_CUDNN_CANDIDATES", "experiment", "4 from batch 8, 0 below",
         "build: how many of cuDNN's heuristic configurations are timed per conv", "src/engine/cuda/runtime.cpp"},
        {"YOLOC_CUDNN", "experiment", "cuDNN tactics allowed",
         "0: no cuDNN conv tactics at build", "src/engine/cuda/conv_cudnn.cpp"},
        {"YOLOC_ARENA", "experiment", "bounded",
         "build: bounded / sequential / concurrent, how independent branches share the activation arena; "
         "any other value is an error",
         "src/engine/cuda/runtime.cpp"},
        {"YOLOC_CONV_KERNEL", "experiment", "each layer's tactic from the engine",
         "N: run every conv with tactic N (cuda::ConvTactic; ContextOptions::conv_kernel does the same)",
         "src/engine/cuda/runtime.cpp"},
        {"YOLOC_GRAPH_STREAMS", "experiment", "4",
         "streams the op graph is spread over at run time (1-8; 1: one stream)", "src/engine/cuda/runtime.cpp"},
        {"YOLOC_PRIORITY", "experiment", "the critical chain on a high-priority stream",
         "0: no stream priorities", "src/engine/cuda/runtime.cpp"},
        {"YOLOC_PDL", "experiment", "programmatic dependent launch on sm_90+ with CUDA 12.3+",
         "0: no programmatic dependent launch", "src/engine/cuda/conv_mma.cu"},
        {"YOLOC_CARVEOUT", "experiment", "the engine's: 100 up to batch 7, the driver's per kernel from batch 8",
         "-1..100: shared-memory carveout for every kernel (-1: the driver's choice per kernel)",
         "src/engine/cuda/conv_mma.cu"},
        {"YOLOC_STAGE_OUT", "experiment", "output tiles through shared memory",
         "0: the implicit-GEMM kernel stores its output tile from the accumulator fragments",
         "src/engine/cuda/conv_mma.cu"},
        {"YOLOC_SPPF", "experiment", "the packed SPPF kernel, word width by how many SMs it fills",
         "plain: the one-channel kernel; w1 / w4: the packed kernel with 4- / 16-byte words",
         "src/engine/cuda/kernels.cu"},
        {"YOLOC_DETECT", "experiment", "one thread per (anchor, part)",
         "rows: the one-output-per-thread Detect kernel", "src/engine/cuda/kernels.cu"},
        {"YOLOC_PIPELINE_EXE", "test", "the running yoloc (/proc/self/exe)",
         "the program `yoloc pipeline` starts its stages with (the aarch64 test build's qemu-user wrapper)",
         "tools/yoloc/cmd_pipeline.cpp"},
        {"YOLOC_TEST_WRITE_DELAY_MS", "test", "0",
         "N: atomic writes hold the complete temporary file N ms before the rename, so that tests can "
         "interrupt a write there",
         "src/core/file.cpp"},
    };
    return t;
}

const char* env_get(const char* name) {
    const auto& t = env_table();
    const bool known = std::any_of(t.begin(), t.end(), [&](const EnvVar& v) { return std::strcmp(v.name, name) == 0; });
    YOLOC_CHECK(known, "environment variable ", name, " is read but not listed in env_table() (src/core/env.cpp)");
    return std::getenv(name);
}

namespace {

std::string pad(std::string s, size_t w) {
    if (s.size() < w) s.append(w - s.size(), ' ');
    return s;
}

// `text` broken at spaces into lines of at most `width` characters, each after `indent`.
std::string wrap(const std::string& text, const std::string& first, const std::string& indent, size_t width) {
    std::string out, line = first;
    size_t p = 0;
    while (p < text.size()) {
        size_t q = text.find(' ', p);
        if (q == std::string::npos) q = text.size();
        const std::string word = text.substr(p, q - p);
        if (line.size() > indent.size() && line.size() + 1 + word.size() > width) {
            out += line + "\n";
            line = indent;
        }
        if (line.size() > indent.size() && line.back() != ' ') line += ' ';
        line += word;
        p = q + 1;
    }
    return out + line + "\n";
}

}  // namespace

std::string env_table_text() {
    size_t w = 0;
    for (const auto& v : env_table()) w = std::max(w, std::strlen(v.name));
    std::string s = "Environment variables yoloc reads (docs/ENVIRONMENT.md):\n";
    const char* kinds[] = {"user", "diagnostic", "experiment", "test"};
    const char* titles[] = {"For users", "Diagnostics", "Experiments (A/B runs of bench/gpu_ablation.sh)",
                            "For tests"};
    for (int k = 0; k < 4; ++k) {
        s += std::string("\n") + titles[k] + ":\n";
        for (const auto& v : env_table()) {
            if (std::strcmp(v.kind, kinds[k]) != 0) continue;
            const std::string indent(w + 4, ' ');
            s += wrap(v.effect, "  " + pad(v.name, w) + "  ", indent, 100);
            s += wrap(std::string("unset: ") + v.fallback, indent, indent, 100);
        }
    }
    return s;
}

std::string env_table_markdown() {
    std::string s = "| variable | kind | when unset | what setting it does | read by |\n| --- | --- | --- | --- | --- |\n";
    for (const auto& v : env_table())
        s += std::string("| `") + v.name + "` | " + v.kind + " | " + v.fallback + " | " + v.effect + " | `" +
             v.read_by + "` |\n";
    return s;
}

}  // namespace yoloc
