#include "deploy/profiles.h"

#include "core/error.h"

namespace yoloc::deploy {

namespace {

constexpr int64_t MiB = int64_t(1) << 20;
constexpr int64_t GiB = int64_t(1) << 30;

// Sources (docs/DEPLOY.md has the same table with links):
// - compute capability: https://developer.nvidia.com/cuda-legacy-gpus (5.3: Jetson Nano) and
//   https://developer.nvidia.com/cuda-gpus (8.7: Jetson AGX Orin, Orin NX, Orin Nano).
// - Jetson Nano: 128-core Maxwell GPU, 4 GB (or 2 GB) 64-bit LPDDR4 shared by CPU and GPU
//   (Jetson Nano module data sheet). No INT8 dot-product instruction before sm_61 (dp4a is
//   declared in CUDA's sm_61_intrinsics.h) and no tensor cores: INT8 brings no speed there.
// - JetPack 4.6.1 / 4.6.2 (L4T R32.7.1): CUDA 10.2, cuDNN 8.2.1, TensorRT 8.2.1, the last
//   JetPack for Jetson Nano (JetPack 4.6 itself, L4T R32.6.1, shipped TensorRT 8.0.1).
// - Jetson Orin Nano 8GB: 1024-core Ampere GPU with 32 tensor cores, 8 GB 128-bit LPDDR5
//   (Jetson Orin Nano data sheet); Orin NX 16GB: the same GPU, 16 GB 128-bit LPDDR5 (Orin NX
//   data sheet). INT8 and FP16 on tensor cores (TensorRT support matrix, hardware table).
// - JetPack 6.1 / 6.2 (L4T R36.4): CUDA 12.6, cuDNN 9.3, TensorRT 10.3
//   (https://pytorch.org/TensorRT/getting_started/jetpack.html). JetPack 6.0 had TensorRT 8.6.
//
// Memory budgets: a Jetson GPU has no memory of its own; L4T, the CUDA/cuDNN/TensorRT
// libraries and context of the process, the camera and video pipeline (capture buffers,
// ISP, decoder) and the application share the module's DRAM with the engine. yoloc gives
// the engine (weights + activation arena + workspace) half of the DRAM and leaves the other
// half to all of that: 1 GiB of 2 GiB on the smallest module is what a headless L4T with a
// camera pipeline needs to stay out of the out-of-memory killer. It is a yoloc choice, not
// an NVIDIA figure; `--memory-budget` overrides it.
//
// Workspace: 1/8 of the budget. TensorRT's workspace is a cap on the scratch memory one
// layer's tactic may use (IBuilderConfig kWORKSPACE: "restrict tactics whose workspace usage
// exceeds the threshold"); too small a cap can leave a layer without an implementation, so the
// cap is generous next to what a YOLOv8 conv needs. yoloc's own kernels need none
// (engine/memory_plan.h).
std::vector<TargetProfile> make_profiles() {
    std::vector<TargetProfile> v;
    const char* maxwell_note =
        "Maxwell (sm_53) has no fast INT8 (no dp4a, no tensor cores): INT8 is offered for size and accuracy "
        "studies, not for speed; FP16 is the fast precision. Build on the device with JetPack 4.6.1+.";
    const char* orin_note =
        "Ampere tensor cores run INT8 and FP16: INT8 needs a Q/DQ model (`yoloc quantize`). Build on the device with "
        "JetPack 6.1/6.2; on JetPack 6.0 (TensorRT 8.6) the same trtexec line works (--memPoolSize exists since 8.4).";
    {
        TargetProfile p;
        p.name = "jetson-nano-2gb";
        p.device = "Jetson Nano 2GB";
        p.hardware = "128-core Maxwell GPU (compute capability 5.3), 2 GB 64-bit LPDDR4 shared with the CPU";
        p.software = "JetPack 4.6.1+ (L4T R32.7): CUDA 10.2, cuDNN 8.2.1, TensorRT 8.2.1";
        p.cc_major = 5, p.cc_minor = 3;
        p.memory_budget_bytes = 1 * GiB;
        p.workspace_bytes = 128 * MiB;
        p.fast_int8 = false;
        p.tensor_cores = false;
        p.preferred_precision = "fp16";
        p.trt_version = 8201;
        p.note = maxwell_note;
        v.push_back(p);
        p.name = "jetson-nano-4gb";
        p.device = "Jetson Nano 4GB";
        p.hardware = "128-core Maxwell GPU (compute capability 5.3), 4 GB 64-bit LPDDR4 shared with the CPU";
        p.memory_budget_bytes = 2 * GiB;
        p.workspace_bytes = 256 * MiB;
        v.push_back(p);
    }
    {
        TargetProfile p;
        p.name = "orin-nano-8gb";
        p.device = "Jetson Orin Nano 8GB";
        p.hardware = "1024-core Ampere GPU with 32 tensor cores (compute capability 8.7), 8 GB 128-bit LPDDR5 shared "
                     "with the CPU";
        p.software = "JetPack 6.2 (L4T R36.4): CUDA 12.6, cuDNN 9.3, TensorRT 10.3";
        p.cc_major = 8, p.cc_minor = 7;
        p.memory_budget_bytes = 4 * GiB;
        p.workspace_bytes = 512 * MiB;
        p.fast_int8 = true;
        p.tensor_cores = true;
        p.preferred_precision = "int8";
        p.trt_version = 100300;
        p.note = orin_note;
        v.push_back(p);
        p.name = "orin-nx-16gb";
        p.device = "Jetson Orin NX 16GB";
        p.hardware = "1024-core Ampere GPU with 32 tensor cores (compute capability 8.7), 16 GB 128-bit LPDDR5 shared "
                     "with the CPU";
        p.memory_budget_bytes = 8 * GiB;
        p.workspace_bytes = 1 * GiB;
        v.push_back(p);
    }
    {
        TargetProfile p;
        p.name = "host";
        p.device = "this machine's GPU";
        p.hardware = "the GPU yoloc runs on (or the CPU when there is none)";
        p.software = "the CUDA and TensorRT installed here";
        p.preferred_precision = "fp16";
        p.note = "No budget beyond the local GPU's memory; INT8 kernels are used where the local GPU has them "
                 "(compute capability 8.0+ in yoloc's engine).";
        v.push_back(p);
    }
    return v;
}

}  // namespace

const std::vector<TargetProfile>& target_profiles() {
    static const std::vector<TargetProfile> profiles = make_profiles();
    return profiles;
}

std::string profile_names() {
    std::string s;
    for (const auto& p : target_profiles()) s += (s.empty() ? "" : ", ") + p.name;
    return s;
}

const TargetProfile& find_profile(const std::string& name) {
    for (const auto& p : target_profiles())
        if (p.name == name) return p;
    fail("unknown target profile '", name, "': expected one of ", profile_names());
}

int trt_major(int v) {
    if (v <= 0) return 0;
    return v >= 10000 ? v / 10000 : v / 1000;
}

std::string trt_version_string(int v) {
    if (v <= 0) return "";
    if (v >= 10000) return cat(v / 10000, ".", (v / 100) % 100, ".", v % 100);
    return cat(v / 1000, ".", (v / 100) % 10, ".", v % 100);
}

nlohmann::json profile_json(const TargetProfile& p) {
    const bool device = is_device_profile(p);
    return {{"name", p.name},
            {"device", p.device},
            {"hardware", p.hardware},
            {"software", p.software},
            {"compute_capability", device ? std::to_string(p.cc_major) + "." + std::to_string(p.cc_minor) : "local"},
            {"memory_budget_bytes", p.memory_budget_bytes},
            {"workspace_bytes", p.workspace_bytes},
            {"fast_int8", p.fast_int8},
            {"tensor_cores", p.tensor_cores},
            {"preferred_precision", p.preferred_precision},
            {"batch", p.batch},
            {"tensorrt_version", p.trt_version},
            {"tensorrt", trt_version_string(p.trt_version)},
            {"note", p.note}};
}

}  // namespace yoloc::deploy
