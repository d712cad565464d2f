#include "quant/calib_cache_reader.h"

#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "core/error.h"
#include "core/file.h"

namespace yoloc {

namespace {

bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return c - 'A' + 10;
}

// Short, printable excerpt of a line for messages.
std::string excerpt(const std::string& s) {
    std::string out;
    for (char c : s.substr(0, 60)) out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
    if (s.size() > 60) out += "...";
    return out;
}

}  // namespace

CalibrationCache parse_calibration_cache(const std::string& text, const std::string& name) {
    CalibrationCache c;
    size_t pos = 0;
    int number = 0;
    bool have_header = false;
    while (pos < text.size()) {
        size_t e = text.find('\n', pos);
        if (e == std::string::npos) e = text.size();
        std::string line = text.substr(pos, e - pos);
        pos = e + 1;
        ++number;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty()) continue;
        for (char ch : line)
            if (static_cast<unsigned char>(ch) < 0x20 && ch != '\t')
                fail(name, ":", number, ": not a calibration cache (control character in '", excerpt(line), "')");
        if (!have_header) {
            // TRT-<digits>-<Method>
            YOLOC_CHECK(line.compare(0, 4, "TRT-") == 0, name, ":", number,
                        ": not a TensorRT calibration cache (expected a 'TRT-<version>-<Method>' header, got '",
                        excerpt(line), "')");
            size_t dash = line.find('-', 4);
            YOLOC_CHECK(dash != std::string::npos && dash > 4 && dash - 4 <= 9, name, ":", number,
                        ": bad calibration cache header '", excerpt(line), "'");
            int v = 0;
            for (size_t i = 4; i < dash; ++i) {
                YOLOC_CHECK(line[i] >= '0' && line[i] <= '9', name, ":", number, ": bad TensorRT version in header '",
                            excerpt(line), "'");
                v = v * 10 + (line[i] - '0');
            }
            std::string method = line.substr(dash + 1);
            YOLOC_CHECK(method == "EntropyCalibration2" || method == "EntropyCalibration" ||
                            method == "MinMaxCalibration" || method == "LegacyCalibration",
                        name, ":", number, ": unknown calibration method '", excerpt(method),
                        "' (EntropyCalibration2, EntropyCalibration, MinMaxCalibration, LegacyCalibration)");
            c.header = line;
            c.trt_version = v;
            c.method = method;
            have_header = true;
            continue;
        }
        size_t colon = line.rfind(": ");
        YOLOC_CHECK(colon != std::string::npos && colon > 0, name, ":", number,
                    ": expected 'tensor: <8 hex digits>', got '", excerpt(line), "'");
        std::string tensor = line.substr(0, colon);
        std::string hex = line.substr(colon + 2);
        bool ok = hex.size() == 8;
        for (size_t i = 0; ok && i < hex.size(); ++i) ok = is_hex(hex[i]);
        YOLOC_CHECK(ok, name, ":", number, ": scale of '", excerpt(tensor), "' is not 8 hex digits ('", excerpt(hex),
                    "')");
        uint32_t bits = 0;
        for (char h : hex) bits = (bits << 4) | uint32_t(hex_value(h));
        float scale;
        std::memcpy(&scale, &bits, 4);
        YOLOC_CHECK(std::isfinite(scale) && scale > 0.0f, name, ":", number, ": scale of '", excerpt(tensor), "' is ",
                    scale, " (must be a finite positive number)");
        YOLOC_CHECK(c.scales.emplace(tensor, scale).second, name, ":", number, ": tensor '", excerpt(tensor),
                    "' is listed twice");
    }
    YOLOC_CHECK(have_header, name, ": empty calibration cache (no 'TRT-<version>-<Method>' header)");
    return c;
}

CalibrationCache read_calibration_cache(const std::string& path) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) fail(path, ": cannot open (", std::strerror(errno), ")");
    if (S_ISREG(st.st_mode) && int64_t(st.st_size) > kMaxCalibrationCacheBytes)
        fail(path, ": ", int64_t(st.st_size), " bytes is too large for a calibration cache (at most ",
             kMaxCalibrationCacheBytes, ")");
    return parse_calibration_cache(read_file(path), path);
}

std::string format_calibration_cache(const CalibrationCache& c) {
    std::string s = c.header + "\n";
    for (const auto& kv : c.scales) {
        uint32_t bits;
        std::memcpy(&bits, &kv.second, 4);
        char buf[16];
        std::snprintf(buf, sizeof buf, "%08x", bits);
        s += kv.first + ": " + buf + "\n";
    }
    return s;
}

}  // namespace yoloc
