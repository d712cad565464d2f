#include "core/npy.h"

#include <cstring>
#include <fstream>

#include "core/file.h"

namespace yoloc {

namespace {

const char kMagic[] = "\x93NUMPY";
const size_t kMagicLen = 6;
// A header larger than this is not something NumPy writes for a plain array.
const size_t kMaxHeaderLen = 1 << 20;

bool little_endian_host() {
    const uint16_t probe = 1;
    uint8_t b;
    std::memcpy(&b, &probe, 1);
    return b == 1;
}

// Finds `'key':` in the header dict and returns the position after the colon.
size_t find_key(const std::string& header, const std::string& key, const std::string& path) {
    for (const char q : {'\'', '"'}) {
        std::string k = std::string(1, q) + key + std::string(1, q);
        size_t p = header.find(k);
        if (p == std::string::npos) continue;
        p += k.size();
        while (p < header.size() && header[p] == ' ') ++p;
        if (p >= header.size() || header[p] != ':') fail(path, ": .npy header: no ':' after '", key, "'");
        return p + 1;
    }
    fail(path, ": .npy header has no '", key, "' field");
}

size_t skip_spaces(const std::string& s, size_t p) {
    while (p < s.size() && (s[p] == ' ' || s[p] == '\t')) ++p;
    return p;
}

struct NpyHeader {
    std::string descr;
    bool fortran_order = false;
    Shape shape;
};

NpyHeader parse_header(const std::string& h, const std::string& path) {
    NpyHeader out;
    size_t p = skip_spaces(h, find_key(h, "descr", path));
    if (p >= h.size() || (h[p] != '\'' && h[p] != '"')) fail(path, ": .npy header: 'descr' is not a string");
    char q = h[p];
    size_t e = h.find(q, p + 1);
    if (e == std::string::npos) fail(path, ": .npy header: unterminated 'descr'");
    out.descr = h.substr(p + 1, e - p - 1);

    p = skip_spaces(h, find_key(h, "fortran_order", path));
    if (h.compare(p, 4, "True") == 0) out.fortran_order = true;
    else if (h.compare(p, 5, "False") == 0) out.fortran_order = false;
    else fail(path, ": .npy header: 'fortran_order' is neither True nor False");

    p = skip_spaces(h, find_key(h, "shape", path));
    if (p >= h.size() || h[p] != '(') fail(path, ": .npy header: 'shape' is not a tuple");
    e = h.find(')', p);
    if (e == std::string::npos) fail(path, ": .npy header: unterminated 'shape'");
    std::string body = h.substr(p + 1, e - p - 1);
    size_t i = 0;
    while (true) {
        i = skip_spaces(body, i);
        if (i >= body.size()) break;
        if (body[i] < '0' || body[i] > '9') fail(path, ": .npy header: bad dimension in shape (", body, ")");
        int64_t v = 0;
        while (i < body.size() && body[i] >= '0' && body[i] <= '9') {
            v = v * 10 + (body[i] - '0');
            if (v > (int64_t(1) << 40)) fail(path, ": .npy header: dimension too large");
            ++i;
        }
        out.shape.push_back(v);
        i = skip_spaces(body, i);
        if (i < body.size()) {
            if (body[i] != ',') fail(path, ": .npy header: bad shape (", body, ")");
            ++i;
        }
    }
    return out;
}

}  // namespace

Tensor load_npy(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) fail(path, ": cannot open (missing file or no permission)");
    f.seekg(0, std::ios::end);
    const uint64_t file_size = uint64_t(f.tellg());
    f.seekg(0, std::ios::beg);

    char pre[10];
    if (file_size < 10 || !f.read(pre, 10)) fail(path, ": not an .npy file (too short)");
    if (std::memcmp(pre, kMagic, kMagicLen) != 0) fail(path, ": not an .npy file (bad magic)");
    const int major = uint8_t(pre[6]);
    uint64_t header_len = 0;
    uint64_t prefix = 0;
    if (major == 1) {
        header_len = uint8_t(pre[8]) | (uint64_t(uint8_t(pre[9])) << 8);
        prefix = 10;
    } else if (major == 2 || major == 3) {
        char more[2];
        if (!f.read(more, 2)) fail(path, ": truncated .npy header");
        header_len = uint64_t(uint8_t(pre[8])) | (uint64_t(uint8_t(pre[9])) << 8) |
                     (uint64_t(uint8_t(more[0])) << 16) | (uint64_t(uint8_t(more[1])) << 24);
        prefix = 12;
    } else {
        fail(path, ": unsupported .npy format version ", major);
    }
    if (header_len > kMaxHeaderLen || prefix + header_len > file_size)
        fail(path, ": truncated or corrupt .npy header");
    std::string header(header_len, '\0');
    if (!f.read(&header[0], std::streamsize(header_len))) fail(path, ": truncated .npy header");

    NpyHeader h = parse_header(header, path);
    if (h.descr != "<f4" && !(h.descr == "=f4" && little_endian_host()))
        fail(path, ": .npy dtype is '", h.descr, "', expected '<f4' (float32 little-endian)");
    if (h.fortran_order) fail(path, ": .npy is in Fortran order; only C order is supported");

    const int64_t numel = shape_numel(h.shape);
    const uint64_t data_bytes = uint64_t(numel) * 4;
    if (file_size - prefix - header_len != data_bytes)
        fail(path, ": .npy data size mismatch: shape ", shape_str(h.shape), " needs ", data_bytes,
             " bytes but the file has ", file_size - prefix - header_len);

    Tensor t(DType::Float32, h.shape);
    if (data_bytes > 0 && !f.read(reinterpret_cast<char*>(t.raw()), std::streamsize(data_bytes)))
        fail(path, ": read error in .npy data");
    if (!little_endian_host()) {
        uint8_t* b = t.raw();
        for (uint64_t i = 0; i < data_bytes; i += 4) {
            std::swap(b[i], b[i + 3]);
            std::swap(b[i + 1], b[i + 2]);
        }
    }
    return t;
}

std::string encode_npy(const Tensor& t) {
    YOLOC_CHECK(t.dtype() == DType::Float32, "save_npy: only float32 tensors are supported, got ",
                dtype_name(t.dtype()));
    std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (";
    for (size_t i = 0; i < t.rank(); ++i) {
        dict += std::to_string(t.dim(i));
        if (t.rank() == 1 || i + 1 < t.rank()) dict += ",";
        if (i + 1 < t.rank()) dict += " ";
    }
    dict += "), }";
    // NumPy pads the header with spaces and a final newline so data starts 64-byte aligned.
    size_t prefix = 10;
    size_t total = prefix + dict.size() + 1;
    int version = 1;
    if (((total + 63) / 64) * 64 - prefix > 65535) {
        version = 2;
        prefix = 12;
        total = prefix + dict.size() + 1;
    }
    size_t padded = ((total + 63) / 64) * 64;
    dict.append(padded - total, ' ');
    dict += '\n';
    const size_t header_len = dict.size();

    std::string out(kMagic, kMagicLen);
    out += char(version);
    out += char(0);
    out += char(header_len & 0xff);
    out += char((header_len >> 8) & 0xff);
    if (version == 2) {
        out += char((header_len >> 16) & 0xff);
        out += char((header_len >> 24) & 0xff);
    }
    out += dict;
    const size_t data_start = out.size();
    out.append(t.nbytes(), '\0');
    if (t.nbytes() > 0) std::memcpy(&out[data_start], t.raw(), t.nbytes());
    if (!little_endian_host()) {
        for (size_t i = data_start; i < out.size(); i += 4) {
            std::swap(out[i], out[i + 3]);
            std::swap(out[i + 1], out[i + 2]);
        }
    }
    return out;
}

void save_npy(const std::string& path, const Tensor& t) {
    write_file_atomic(path, encode_npy(t));
}

}  // namespace yoloc
