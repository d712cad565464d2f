// libFuzzer target: data.yaml and YOLO label files, as `yoloc eval --data` reads
// them. The input is "YAML \0 LABELS": the YAML part is written to a temporary
// data.yaml and loaded with load_data_config (parse_yaml, names/nc/splits checks);
// the label part goes through parse_labels with the classes the YAML gave (80 when
// it was rejected). Anything bad must be a yoloc::Error or a skipped line with a
// warning: never a crash, hang or unbounded allocation.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/error.h"
#include "eval/dataset.h"
#include "eval/yaml_lite.h"

namespace {

std::string temp_dir() {
    static std::string dir = [] {
        const char* t = std::getenv("TMPDIR");
        std::string tmpl = std::string(t && *t ? t : "/tmp") + "/yoloc-fuzz-dataset-XXXXXX";
        std::vector<char> buf(tmpl.begin(), tmpl.end());
        buf.push_back('\0');
        if (!::mkdtemp(buf.data())) std::abort();
        return std::string(buf.data());
    }();
    return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string bytes(reinterpret_cast<const char*>(data), size);
    size_t cut = bytes.find('\0');
    std::string yaml = bytes.substr(0, cut);
    std::string labels = cut == std::string::npos ? std::string() : bytes.substr(cut + 1);

    try {
        yoloc::parse_yaml(yaml, "fuzz.yaml");
    } catch (const yoloc::Error&) {
    }
    int nc = 80;
    std::string path = temp_dir() + "/data.yaml";
    FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) std::abort();
    if (!yaml.empty()) std::fwrite(yaml.data(), 1, yaml.size(), f);
    std::fclose(f);
    try {
        yoloc::DataConfig cfg = yoloc::load_data_config(path);
        if (cfg.names.empty()) __builtin_trap();  // load_data_config promises at least one class
        nc = int(cfg.names.size());
    } catch (const yoloc::Error&) {
    }
    std::vector<std::string> warnings;
    int skipped = 0;
    std::vector<yoloc::LabelBox> boxes = yoloc::parse_labels(labels, "fuzz.txt", nc, &warnings, &skipped);
    for (const auto& b : boxes)
        if (b.class_id < 0 || b.class_id >= nc || !(b.cx >= 0 && b.cx <= 1 && b.w >= 0 && b.w <= 1))
            __builtin_trap();
    if (size_t(skipped) != warnings.size()) __builtin_trap();
    return 0;
}
