// NumPy .npy files (format v1/v2), float32 little-endian, C order: the form in
// which reference outputs are published and raw outputs are exchanged with Python.
#pragma once

#include <string>

#include "core/tensor.h"

namespace yoloc {

// Reads a '<f4' C-order array. Validates the header and that the file holds
// exactly the bytes the shape needs before allocating; throws yoloc::Error naming the file.
Tensor load_npy(const std::string& path);

// Writes a Float32 tensor as .npy v1 (v2 if the header needs it), atomically.
void save_npy(const std::string& path, const Tensor& t);

// The bytes of an .npy file for `t` (header + data).
std::string encode_npy(const Tensor& t);

}  // namespace yoloc
