// Target profiles: what `--target PROFILE` means for `build`, `export` and `pipeline`.
// A profile names one Jetson module (or `host`, the machine yoloc runs on) and the
// facts a build for it needs: compute capability, the memory an engine may take, the
// TensorRT workspace cap, whether INT8 is fast there, the precision to prefer, and the
// TensorRT version of its JetPack (for the trtexec line and the calibration cache
// header). Every fact is sourced in profiles.cpp and in docs/DEPLOY.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace yoloc::deploy {

struct TargetProfile {
    std::string name;      // "jetson-nano-2gb"
    std::string device;    // short device name, "Jetson Nano 2GB" (used in sentences)
    std::string hardware;  // GPU and memory in one line
    std::string software;  // "JetPack 4.6.1+ (L4T R32.7): CUDA 10.2, cuDNN 8.2.1, TensorRT 8.2.1"
    int cc_major = 0, cc_minor = 0;   // 0,0 for host (the local GPU's)
    int64_t memory_budget_bytes = 0;  // weights + activations + workspace; 0 = no limit beyond the GPU (host)
    int64_t workspace_bytes = 0;      // TensorRT workspace cap; 0 = TensorRT's default (host)
    bool fast_int8 = false;           // INT8 arithmetic faster than FP16 on this GPU
    bool tensor_cores = false;
    std::string preferred_precision;  // fp16 | int8
    int batch = 1;
    int trt_version = 0;  // NV_TENSORRT_VERSION of its JetPack: 8201 (8.2.1), 100300 (10.3.0); 0 for host
    std::string note;     // what a user of this profile must know (e.g. no fast INT8)
};

// All profiles, in a fixed order (the Jetsons from small to large, then host).
const std::vector<TargetProfile>& target_profiles();

// The profile called `name`; throws yoloc::Error listing the valid names.
const TargetProfile& find_profile(const std::string& name);

// The profile's facts as JSON (bundle.json, the pipeline's report.json).
nlohmann::json profile_json(const TargetProfile& p);

// "jetson-nano-2gb, jetson-nano-4gb, orin-nano-8gb, orin-nx-16gb, host"
std::string profile_names();

// A profile of a device other than "the GPU it runs on" (every profile but host).
inline bool is_device_profile(const TargetProfile& p) { return p.cc_major > 0; }

// NV_TENSORRT_VERSION -> "8.2.1" / "10.3.0". TensorRT 8 encodes major*1000 + minor*100 +
// patch, TensorRT 10 major*10000 + minor*100 + patch (NvInferRuntimeBase.h,
// NV_TENSORRT_VERSION_INT). "" for 0.
std::string trt_version_string(int trt_version);
// Major version of an NV_TENSORRT_VERSION (8 for 8201, 10 for 100300); 0 for 0.
int trt_major(int trt_version);

}  // namespace yoloc::deploy
