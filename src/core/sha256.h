// SHA-256 (FIPS 180-4), used to check that tensors and files are bit-identical
// to published references (e.g. input_tensor_sha256_f32le).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace yoloc {

// Incremental hasher for data that arrives in pieces.
class Sha256 {
public:
    Sha256();
    void update(const void* data, size_t n);
    // Finishes and returns 64 lowercase hex digits; the hasher is spent afterwards.
    std::string hex_digest();

private:
    void compress(const uint8_t* block);
    uint32_t h_[8];
    uint8_t buf_[64];
    size_t buf_len_ = 0;
    uint64_t total_bytes_ = 0;
};

std::string sha256_hex(const void* data, size_t n);
inline std::string sha256_hex(const std::string& s) { return sha256_hex(s.data(), s.size()); }

}  // namespace yoloc
