// NumPy .npy files (format 1.0/2.0, little-endian float32 or int64, C order): the CLI's tensor I/O.
#pragma once
#include <string>

#include "core/tensor.h"

namespace dnn {

Tensor read_npy(const std::string& path);              // throws IoError with the path and reason
void write_npy(const std::string& path, const Tensor& t);
Tensor parse_npy(const void* data, size_t size, const std::string& what);  // from memory

}  // namespace dnn
