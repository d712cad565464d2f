// Protocol-buffers wire format, just what ONNX needs: varints, fixed32/64 and
// length-delimited fields. Every length is checked against the bytes that remain
// before anything is allocated, so a hostile file cannot make us allocate more
// than its own size.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

#include "core/error.h"

namespace yoloc {
namespace wire {

enum WireType : uint32_t { Varint = 0, Fixed64 = 1, Bytes = 2, Fixed32 = 5 };

class Reader {
public:
    Reader(const char* p, size_t n, const std::string* origin) : p_(p), end_(p + n), origin_(origin) {}

    bool done() const { return p_ >= end_; }
    size_t remaining() const { return size_t(end_ - p_); }

    uint64_t varint() {
        uint64_t v = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (p_ >= end_) bad("truncated varint");
            uint8_t b = uint8_t(*p_++);
            v |= uint64_t(b & 0x7f) << shift;
            if (!(b & 0x80)) return v;
        }
        bad("varint longer than 10 bytes");
    }
    // Reads a tag; returns false at the end of the message.
    bool tag(uint32_t& field, uint32_t& type) {
        if (done()) return false;
        uint64_t t = varint();
        field = uint32_t(t >> 3);
        type = uint32_t(t & 7);
        if (field == 0) bad("field number 0");
        return true;
    }
    uint32_t fixed32() {
        need(4);
        uint32_t v;
        std::memcpy(&v, p_, 4);
        p_ += 4;
        return v;
    }
    uint64_t fixed64() {
        need(8);
        uint64_t v;
        std::memcpy(&v, p_, 8);
        p_ += 8;
        return v;
    }
    // A length-delimited field: returns a sub-reader over its bytes.
    Reader bytes() {
        uint64_t n = varint();
        if (n > remaining()) bad("field length " + std::to_string(n) + " runs past the end of the data");
        Reader r(p_, size_t(n), origin_);
        p_ += n;
        return r;
    }
    std::string str() {
        Reader r = bytes();
        return std::string(r.p_, r.remaining());
    }
    const char* ptr() const { return p_; }
    void skip(uint32_t type) {
        switch (type) {
            case Varint: varint(); break;
            case Fixed64: need(8); p_ += 8; break;
            case Bytes: bytes(); break;
            case Fixed32: need(4); p_ += 4; break;
            default: bad("unsupported wire type " + std::to_string(type) + " (groups are not used by ONNX)");
        }
    }
    [[noreturn]] void bad(const std::string& what) const {
        fail(origin_ ? *origin_ : std::string("<onnx>"), ": not a valid ONNX file (", what,
             "); the file may be truncated or corrupt: re-export it");
    }

private:
    void need(size_t n) {
        if (remaining() < n) bad("truncated fixed-size field");
    }
    const char* p_;
    const char* end_;
    const std::string* origin_;
};

class Writer {
public:
    std::string out;
    void varint(uint64_t v) {
        while (v >= 0x80) {
            out.push_back(char(uint8_t(v) | 0x80));
            v >>= 7;
        }
        out.push_back(char(v));
    }
    void tag(uint32_t field, uint32_t type) { varint((uint64_t(field) << 3) | type); }
    void int_field(uint32_t field, int64_t v) {
        tag(field, Varint);
        varint(uint64_t(v));
    }
    void float_field(uint32_t field, float v) {
        tag(field, Fixed32);
        uint32_t u;
        std::memcpy(&u, &v, 4);
        char b[4];
        std::memcpy(b, &u, 4);
        out.append(b, 4);
    }
    void bytes_field(uint32_t field, const char* p, size_t n) {
        tag(field, Bytes);
        varint(n);
        out.append(p, n);
    }
    void string_field(uint32_t field, const std::string& s) { bytes_field(field, s.data(), s.size()); }
    void message_field(uint32_t field, const Writer& sub) { bytes_field(field, sub.out.data(), sub.out.size()); }
};

}  // namespace wire
}  // namespace yoloc
