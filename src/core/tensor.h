// Tensors: a dtype, a shape and a reference-counted, 64-byte aligned buffer.
// Copies share the buffer (cheap); clone() makes a deep copy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"

namespace yoloc {

// Values are ONNX's TensorProto.DataType numbers, so the codec maps them 1:1.
enum class DType : int32_t {
    Undefined = 0,
    Float32 = 1,
    UInt8 = 2,
    Int8 = 3,
    UInt16 = 4,
    Int16 = 5,
    Int32 = 6,
    Int64 = 7,
    String = 8,
    Bool = 9,
    Float16 = 10,
    Float64 = 11,
    UInt32 = 12,
    UInt64 = 13,
    BFloat16 = 16,
};

// Bytes per element; 0 for Undefined/String (not storable as plain bytes).
size_t dtype_size(DType t);
const char* dtype_name(DType t);
bool dtype_known(int32_t onnx_type);

using Shape = std::vector<int64_t>;

// Product of dims; throws on negative dims or overflow past `limit` elements.
int64_t shape_numel(const Shape& s, int64_t limit = (int64_t(1) << 40));
std::string shape_str(const Shape& s);

class Tensor {
public:
    Tensor() = default;
    // Allocates zero-filled storage.
    Tensor(DType dtype, Shape shape);

    static Tensor from_floats(Shape shape, const std::vector<float>& v);
    static Tensor from_int64s(Shape shape, const std::vector<int64_t>& v);
    static Tensor scalar_f32(float v) { return from_floats({}, {v}); }

    DType dtype() const { return dtype_; }
    const Shape& shape() const { return shape_; }
    int64_t dim(size_t i) const { return shape_.at(i); }
    size_t rank() const { return shape_.size(); }
    int64_t numel() const { return numel_; }
    size_t nbytes() const { return size_t(numel_) * dtype_size(dtype_); }
    bool empty() const { return !buf_; }

    template <typename T>
    T* data() { return reinterpret_cast<T*>(ptr()); }
    template <typename T>
    const T* data() const { return reinterpret_cast<const T*>(ptr()); }
    uint8_t* raw() { return ptr(); }
    const uint8_t* raw() const { return ptr(); }

    // Same buffer, new shape with the same element count.
    Tensor reshaped(Shape shape) const;
    Tensor clone() const;

    // Reads element i converted to double / int64 (for small shape tensors).
    double at_f64(int64_t i) const;
    int64_t at_i64(int64_t i) const;
    std::vector<int64_t> to_int64s() const;
    std::vector<float> to_floats() const;

private:
    uint8_t* ptr() const { return buf_ ? buf_.get() + offset_ : nullptr; }
    DType dtype_ = DType::Undefined;
    Shape shape_;
    int64_t numel_ = 0;
    std::shared_ptr<uint8_t> buf_;
    size_t offset_ = 0;
};

// Aligned allocation used by tensors and kernels (64 bytes: AVX-512 lines).
std::shared_ptr<uint8_t> alloc_aligned(size_t bytes);

}  // namespace yoloc
