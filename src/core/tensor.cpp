#include "core/tensor.h"

#include <cstdlib>
#include <cstring>

namespace yoloc {

size_t dtype_size(DType t) {
    switch (t) {
        case DType::Float32: return 4;
        case DType::UInt8: return 1;
        case DType::Int8: return 1;
        case DType::UInt16: return 2;
        case DType::Int16: return 2;
        case DType::Int32: return 4;
        case DType::Int64: return 8;
        case DType::Bool: return 1;
        case DType::Float16: return 2;
        case DType::Float64: return 8;
        case DType::UInt32: return 4;
        case DType::UInt64: return 8;
        case DType::BFloat16: return 2;
        default: return 0;
    }
}

const char* dtype_name(DType t) {
    switch (t) {
        case DType::Float32: return "float32";
        case DType::UInt8: return "uint8";
        case DType::Int8: return "int8";
        case DType::UInt16: return "uint16";
        case DType::Int16: return "int16";
        case DType::Int32: return "int32";
        case DType::Int64: return "int64";
        case DType::String: return "string";
        case DType::Bool: return "bool";
        case DType::Float16: return "float16";
        case DType::Float64: return "float64";
        case DType::UInt32: return "uint32";
        case DType::UInt64: return "uint64";
        case DType::BFloat16: return "bfloat16";
        default: return "undefined";
    }
}

bool dtype_known(int32_t t) {
    return dtype_size(static_cast<DType>(t)) != 0;
}

int64_t shape_numel(const Shape& s, int64_t limit) {
    int64_t n = 1;
    for (int64_t d : s) {
        YOLOC_CHECK(d >= 0, "negative dimension in shape ", shape_str(s));
        if (d != 0 && n > limit / d) fail("tensor shape ", shape_str(s), " is too large (over ", limit, " elements)");
        n *= d;
    }
    return n;
}

std::string shape_str(const Shape& s) {
    std::string r = "[";
    for (size_t i = 0; i < s.size(); ++i) {
        if (i) r += ",";
        r += std::to_string(s[i]);
    }
    return r + "]";
}

std::shared_ptr<uint8_t> alloc_aligned(size_t bytes) {
    size_t rounded = (bytes + 63) / 64 * 64;
    if (rounded == 0) rounded = 64;
    void* p = std::aligned_alloc(64, rounded);
    if (!p) fail("out of memory allocating ", bytes, " bytes");
    std::memset(p, 0, rounded);
    return std::shared_ptr<uint8_t>(static_cast<uint8_t*>(p), [](uint8_t* q) { std::free(q); });
}

Tensor::Tensor(DType dtype, Shape shape) : dtype_(dtype), shape_(std::move(shape)) {
    YOLOC_CHECK(dtype_size(dtype_) != 0, "unsupported tensor dtype ", dtype_name(dtype_));
    numel_ = shape_numel(shape_);
    buf_ = alloc_aligned(nbytes());
}

Tensor Tensor::from_floats(Shape shape, const std::vector<float>& v) {
    Tensor t(DType::Float32, std::move(shape));
    YOLOC_CHECK(size_t(t.numel()) == v.size(), "from_floats: ", v.size(), " values for shape ", shape_str(t.shape()));
    if (!v.empty()) std::memcpy(t.raw(), v.data(), v.size() * 4);
    return t;
}

Tensor Tensor::from_int64s(Shape shape, const std::vector<int64_t>& v) {
    Tensor t(DType::Int64, std::move(shape));
    YOLOC_CHECK(size_t(t.numel()) == v.size(), "from_int64s: ", v.size(), " values for shape ", shape_str(t.shape()));
    if (!v.empty()) std::memcpy(t.raw(), v.data(), v.size() * 8);
    return t;
}

Tensor Tensor::reshaped(Shape shape) const {
    YOLOC_CHECK(shape_numel(shape) == numel_, "cannot reshape ", shape_str(shape_), " to ", shape_str(shape));
    Tensor t = *this;
    t.shape_ = std::move(shape);
    return t;
}

Tensor Tensor::clone() const {
    if (empty()) return *this;
    Tensor t(dtype_, shape_);
    std::memcpy(t.raw(), raw(), nbytes());
    return t;
}

double Tensor::at_f64(int64_t i) const {
    YOLOC_CHECK(i >= 0 && i < numel_, "tensor index ", i, " out of range ", shape_str(shape_));
    switch (dtype_) {
        case DType::Float32: return data<float>()[i];
        case DType::Float64: return data<double>()[i];
        case DType::Int64: return double(data<int64_t>()[i]);
        case DType::Int32: return data<int32_t>()[i];
        case DType::Int8: return data<int8_t>()[i];
        case DType::UInt8: return data<uint8_t>()[i];
        case DType::Bool: return data<uint8_t>()[i] ? 1 : 0;
        case DType::Int16: return data<int16_t>()[i];
        case DType::UInt16: return data<uint16_t>()[i];
        case DType::UInt32: return data<uint32_t>()[i];
        case DType::UInt64: return double(data<uint64_t>()[i]);
        default: fail("cannot read ", dtype_name(dtype_), " element as a number");
    }
}

int64_t Tensor::at_i64(int64_t i) const {
    YOLOC_CHECK(i >= 0 && i < numel_, "tensor index ", i, " out of range ", shape_str(shape_));
    switch (dtype_) {
        case DType::Int64: return data<int64_t>()[i];
        case DType::Int32: return data<int32_t>()[i];
        case DType::Int8: return data<int8_t>()[i];
        case DType::UInt8: return data<uint8_t>()[i];
        case DType::Int16: return data<int16_t>()[i];
        case DType::UInt16: return data<uint16_t>()[i];
        case DType::UInt32: return data<uint32_t>()[i];
        case DType::UInt64: return int64_t(data<uint64_t>()[i]);
        case DType::Bool: return data<uint8_t>()[i] ? 1 : 0;
        case DType::Float32: return int64_t(data<float>()[i]);
        case DType::Float64: return int64_t(data<double>()[i]);
        default: fail("cannot read ", dtype_name(dtype_), " element as an integer");
    }
}

std::vector<int64_t> Tensor::to_int64s() const {
    std::vector<int64_t> v(static_cast<size_t>(numel_));
    for (int64_t i = 0; i < numel_; ++i) v[size_t(i)] = at_i64(i);
    return v;
}

std::vector<float> Tensor::to_floats() const {
    std::vector<float> v(static_cast<size_t>(numel_));
    for (int64_t i = 0; i < numel_; ++i) v[size_t(i)] = float(at_f64(i));
    return v;
}

}  // namespace yoloc
